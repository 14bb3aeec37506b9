#!/usr/bin/env bash
# Runs every test of the project: bash test.sh
# Steps run in order; the first failure stops the run with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH:/usr/sbin" # cargo-installed tools; Debian's nats-server
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

CURRENT_STEP=""
TEST_NATS_PID=""
TEST_TMP=""

step() {
  CURRENT_STEP=$1
  printf '\n==> %s\n' "$1"
}

# --- throwaway nats-server for the browser tests ---------------------------------------------

# A throwaway nats-server under scripts/nats_test_control.py, which lets the browser tests stop and
# start it over HTTP (they cannot manage processes themselves).
start_test_server() {
  TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nats-ws-test.XXXXXX")
  python3 scripts/nats_test_control.py "$TEST_TMP" </dev/null >"$TEST_TMP/control.out" 2>&1 &
  TEST_NATS_PID=$!
  local deadline=$((SECONDS + 30)) line=""
  until line=$(grep -m1 '^ready ' "$TEST_TMP/control.out" 2>/dev/null); do
    if ! kill -0 "$TEST_NATS_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "test nats-server did not start:" >&2
      cat "$TEST_TMP/control.out" >&2 || true
      tail -n 20 "$TEST_TMP/nats-server.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  read -r _ NATS_WS_TEST_URL NATS_TEST_CONTROL NATS_TEST_URL <<<"$line"
  export NATS_WS_TEST_URL NATS_TEST_CONTROL NATS_TEST_URL
  echo "test nats-server: websocket $NATS_WS_TEST_URL, control $NATS_TEST_CONTROL"
}

stop_test_server() {
  if [[ -n $TEST_NATS_PID ]]; then
    kill -TERM "$TEST_NATS_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$TEST_NATS_PID" 2>/dev/null || break # bash reaps its own children
      sleep 0.1
    done
    kill -KILL "$TEST_NATS_PID" 2>/dev/null || true
    wait "$TEST_NATS_PID" 2>/dev/null || true
    TEST_NATS_PID=""
  fi
  if [[ -n $TEST_TMP ]]; then
    rm -rf "$TEST_TMP"
    TEST_TMP=""
  fi
}

on_exit() {
  local rc=$?
  stop_test_server
  if ((rc != 0)); then
    printf '\n==> FAILED: %s (exit %d)\n' "${CURRENT_STEP:-?}" "$rc" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- steps -----------------------------------------------------------------------------------

setup() {
  step "setup (install missing tools)"
  bash scripts/setup.sh
}

fmt() {
  step "fmt"
  cargo fmt --all -- --check
}

clippy_native() {
  step "clippy (native)"
  cargo clippy --workspace --all-targets -- -D warnings
}

clippy_wasm() {
  step "clippy (wasm32)"
  # The browser tests read these at compile time; check them against placeholder values.
  NATS_WS_TEST_URL="${NATS_WS_TEST_URL:-ws://127.0.0.1:8080}" \
    NATS_TEST_CONTROL="${NATS_TEST_CONTROL:-http://127.0.0.1:9}" \
    cargo clippy --workspace --target wasm32-unknown-unknown --all-targets -- -D warnings
}

test_native() {
  step "tests (native)"
  cargo test --workspace
}

test_browser() {
  step "tests (wasm32 in headless Chromium, nats-ws)"
  start_test_server
  # NATS_WS_TEST_URL / NATS_TEST_CONTROL are read by the tests at compile time (env!).
  # webdriver.json holds the Chromium flags; WASM_BINDGEN_USE_BROWSER runs test binaries
  # without wasm_bindgen_test_configure!(run_in_browser) in the browser too (not in Node).
  # TMPDIR: chromedriver leaves a ~12 MB Chromium profile per session there; keep it in TEST_TMP.
  mkdir -p "$TEST_TMP/tmp"
  TMPDIR="$TEST_TMP/tmp" \
    CHROMEDRIVER=/usr/bin/chromedriver \
    WASM_BINDGEN_TEST_TIMEOUT=120 \
    WASM_BINDGEN_USE_BROWSER=1 \
    WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/crates/nats-ws/webdriver.json" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p nats-ws --target wasm32-unknown-unknown
  stop_test_server
}

bench_smoke() {
  step "benchmark harness smoke run (bench/run.sh --quick)"
  bash bench/run.sh --quick
}

test_e2e() {
  step "end-to-end (the app in headless Chromium, several tabs, real nats-server)"
  start_test_server
  # trunk finds wasm-opt 123 in node_modules/.bin (scripts/setup.sh installs it).
  PATH="$PWD/node_modules/.bin:$PATH" trunk build --release --dist "$TEST_TMP/dist"
  # One file at a time: they share the server, and one of them stops and starts it.
  E2E_DIST="$TEST_TMP/dist" \
    NATS_WS_TEST_URL="$NATS_WS_TEST_URL" \
    NATS_TEST_CONTROL="$NATS_TEST_CONTROL" \
    NATS_TEST_URL="$NATS_TEST_URL" \
    node --test --test-concurrency=1 --test-reporter=spec e2e/
  stop_test_server
}

setup
fmt
clippy_native
clippy_wasm
test_native
test_browser
test_e2e
bench_smoke
printf '\n==> all tests passed\n'
