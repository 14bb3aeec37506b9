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

# Prints three free TCP ports on 127.0.0.1.
free_ports() {
  python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
}

start_test_server() {
  local client_port ws_port http_port
  read -r client_port ws_port http_port < <(free_ports)
  TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nats-ws-test.XXXXXX")
  cat >"$TEST_TMP/nats-server.conf" <<EOF
server_name: nats-ws-test
host: 127.0.0.1
port: $client_port
http: 127.0.0.1:$http_port
websocket {
  host: 127.0.0.1
  port: $ws_port
  no_tls: true
}
jetstream {
  store_dir: "$TEST_TMP/store"
}
EOF
  nats-server -c "$TEST_TMP/nats-server.conf" </dev/null >"$TEST_TMP/nats-server.log" 2>&1 &
  TEST_NATS_PID=$!

  local deadline=$((SECONDS + 20))
  until curl -fsS --max-time 1 "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1; do
    if ! kill -0 "$TEST_NATS_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "test nats-server did not start; last log lines:" >&2
      tail -n 20 "$TEST_TMP/nats-server.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  export NATS_WS_TEST_URL="ws://127.0.0.1:$ws_port"
  export NATS_TEST_MONITOR="http://127.0.0.1:$http_port"
  echo "test nats-server (pid $TEST_NATS_PID): websocket $NATS_WS_TEST_URL, monitoring $NATS_TEST_MONITOR"
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
  step "clippy (wasm32, nats-ws)"
  # The browser tests read these at compile time; check them against placeholder values.
  NATS_WS_TEST_URL="${NATS_WS_TEST_URL:-ws://127.0.0.1:8080}" \
    NATS_TEST_MONITOR="${NATS_TEST_MONITOR:-http://127.0.0.1:8222}" \
    cargo clippy -p nats-ws --target wasm32-unknown-unknown --all-targets -- -D warnings
}

test_native() {
  step "tests (native)"
  cargo test --workspace
}

test_browser() {
  step "tests (wasm32 in headless Chromium, nats-ws)"
  start_test_server
  # NATS_WS_TEST_URL / NATS_TEST_MONITOR are read by the tests at compile time (env!).
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

setup
fmt
clippy_native
clippy_wasm
test_native
test_browser
printf '\n==> all tests passed\n'
