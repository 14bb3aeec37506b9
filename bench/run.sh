#!/usr/bin/env bash
# The benchmarks of nats-ws against nats.js (and async-nats natively), setup included:
#   bash bench/run.sh            # the full run (~10 min once built); writes bench/results.json
#   bash bench/run.sh --quick    # a few seconds of each metric: a smoke test of the harness
#   bash bench/run.sh --profile  # also Chromium CPU profiles (bench/build/profiles/*.cpuprofile)
#   BENCH_APP_DIST=dir bash bench/run.sh …  # use an app already built into dir (scripts/build_app.sh)
#   bash bench/run.sh --settings # publish → subscribe (16 B, 1 KiB) against four server settings:
#                                # Debian's nats-server and the current release (.tools/), each with
#                                # and without WebSocket compression; writes bench/settings.json
# Installs what is missing (scripts/setup.sh, then bench/package.json into bench/node_modules),
# builds everything under bench/build/, starts a throwaway nats-server, runs the native benchmarks,
# then bench/bench.mjs (headless Chromium), which prints a markdown table. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK="" PROFILE="" SETTINGS=""
for arg in "$@"; do
  case $arg in
    --quick) QUICK=--quick ;;
    --profile) PROFILE=--profile ;;
    --settings) SETTINGS=1 ;;
    *) echo "usage: bash bench/run.sh [--quick] [--profile] [--settings]" >&2; exit 2 ;;
  esac
done

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PWD/node_modules/.bin:$PATH:/usr/sbin"
BUILD=bench/build
START=$SECONDS
NATS_PID="" NATS_TMP=""

say() { printf '\n==> bench: %s\n' "$*" >&2; }

stop_server() {
  if [[ -n $NATS_PID ]]; then
    kill -TERM "$NATS_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$NATS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
  fi
  [[ -n $NATS_TMP ]] && rm -rf "$NATS_TMP"
  NATS_PID="" NATS_TMP=""
}

# A throwaway nats-server ($NATS_SERVER_BIN, $NATS_WS_COMPRESSION) under the test harness; sets
# WS_URL and CONTROL_URL.
start_server() {
  NATS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nats-ws-bench.XXXXXX")
  python3 scripts/nats_test_control.py "$NATS_TMP" </dev/null >"$NATS_TMP/control.out" 2>&1 &
  NATS_PID=$!
  local deadline=$((SECONDS + 30)) line
  until line=$(grep -m1 '^ready ' "$NATS_TMP/control.out" 2>/dev/null); do
    if ! kill -0 "$NATS_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "bench: nats-server did not start:" >&2
      cat "$NATS_TMP/control.out" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  read -r _ WS_URL CONTROL_URL _ <<<"$line"
  say "nats-server $("${NATS_SERVER_BIN:-nats-server}" --version 2>/dev/null | awk '{print $NF}')${NATS_WS_COMPRESSION:+ with websocket compression}: websocket $WS_URL"
}

cleanup() {
  local rc=$?
  stop_server
  if ((rc != 0)); then
    printf '\n==> bench: FAILED (exit %d) after %d s\n' "$rc" $((SECONDS - START)) >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- setup -------------------------------------------------------------------------------------
say "setup"
bash scripts/setup.sh
if [[ ! -f bench/node_modules/.package-lock.json || bench/package-lock.json -nt bench/node_modules/.package-lock.json ]]; then
  say "installing bench/package.json (npm ci)"
  (cd bench && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
mkdir -p "$BUILD"

# --- builds ------------------------------------------------------------------------------------
# One at a time: the machine may be running other builds.
say "building nats-ws for the bench page (bench/wasm, release, opt-level 3)"
(cd bench/wasm && cargo build --quiet --release --target wasm32-unknown-unknown)
wasm-bindgen --target web --out-dir "$BUILD/ours" --out-name ours \
  bench/wasm/target/wasm32-unknown-unknown/release/nats_ws_bench.wasm

say "bundling nats.js (esbuild, minified)"
bench/node_modules/.bin/esbuild bench/natsjs.mjs --bundle --format=esm --minify --target=es2022 \
  --log-level=warning --outfile="$BUILD/natsjs.js"
bench/node_modules/.bin/esbuild bench/startup.mjs --bundle --format=esm --minify --target=es2022 \
  --log-level=warning --outfile="$BUILD/natsjs-startup.js"

say "building the client alone for its shipped size (opt-level z, wasm-opt -Oz, esbuild --minify)"
mkdir -p "$BUILD/size"
# pubsub and kv carry NKey / JWT authentication as nats.js does; core is pub/sub without it (what
# `nats-ws` with `default-features = false` costs).
for variant in pubsub kv core; do
  case $variant in
    core) features=size-pubsub ;;
    *) features=size-$variant,size-nkeys ;;
  esac
  (cd bench/wasm && cargo build --quiet --profile size --target wasm32-unknown-unknown \
    --no-default-features --features "$features")
  # What the client keeps out of a browser build (crates/nats-ws/src/text.rs): a `str` sliced with
  # `[..]` brings the panic path that formats a bad index (with `char`'s Debug), a `&str` pattern
  # the Two-Way searcher: kilobytes gzipped, unseen until the next full run (the url checks
  # brought the first back: 74.7 → 80.7 KiB with NKeys). The size build keeps function names.
  for unwanted in slice_error_fail TwoWaySearcher; do
    if grep -qa "$unwanted" bench/wasm/target/wasm32-unknown-unknown/size/nats_ws_bench.wasm; then
      echo "bench: the client's $variant size build has $unwanted in it (twiggy paths tells from where):" \
        "slice with str::get, search with crates/nats-ws/src/text.rs" >&2
      exit 1
    fi
  done
  out="$BUILD/size/ours-$variant"
  rm -rf "$out" "$out.tmp"
  wasm-bindgen --target web --out-dir "$out.tmp" --out-name nats_ws \
    bench/wasm/target/wasm32-unknown-unknown/size/nats_ws_bench.wasm
  mkdir -p "$out"
  wasm-opt -Oz --strip-debug --strip-producers "$out.tmp/nats_ws_bg.wasm" -o "$out/nats_ws_bg.wasm"
  bench/node_modules/.bin/esbuild "$out.tmp/nats_ws.js" --minify --format=esm --log-level=warning \
    --outfile="$out/nats_ws.js"
  rm -rf "$out.tmp"
  [[ -f bench/size/natsjs-$variant.mjs ]] || continue
  bench/node_modules/.bin/esbuild "bench/size/natsjs-$variant.mjs" --bundle --format=esm --minify \
    --target=es2022 --log-level=warning --outfile="$BUILD/size/natsjs-$variant.js"
done

if [[ -n $SETTINGS ]]; then
  # The same page, clients and metrics as the full run's publish → subscribe rows, once per
  # server setting; bench.mjs --settings-summary turns the four result files into one table.
  current=$PWD/.tools/nats-server-current/nats-server
  [[ -x $current ]] || { echo "bench: $current missing (scripts/setup.sh installs it)" >&2; exit 1; }
  system=$(command -v nats-server || echo /usr/sbin/nats-server)
  files=()
  for setting in system system-compression current current-compression; do
    case $setting in
      system*) bin=$system ;;
      current*) bin=$current ;;
    esac
    compression=""
    [[ $setting == *-compression ]] && compression=1
    export NATS_SERVER_BIN=$bin NATS_WS_COMPRESSION=$compression
    start_server
    say "browser: publish → subscribe, setting $setting"
    node bench/bench.mjs --ws "$WS_URL" --control "$CONTROL_URL" --only pubsub_16b,pubsub_1k \
      --out "$BUILD/settings-$setting.json"
    stop_server
    files+=("$setting=$BUILD/settings-$setting.json")
  done
  node bench/bench.mjs --settings-summary bench/settings.json "${files[@]}"
  say "done in $((SECONDS - START)) s"
  exit 0
fi

rm -rf "$BUILD/app"
if [[ -n ${BENCH_APP_DIST:-} ]]; then
  # An app already built (./test.sh passes the release build its end-to-end tests ran).
  say "the app: $BENCH_APP_DIST, already built"
  [[ -f $BENCH_APP_DIST/index.html ]] || { echo "bench: no index.html in $BENCH_APP_DIST" >&2; exit 1; }
  cp -r "$BENCH_APP_DIST" "$BUILD/app"
elif [[ -n $QUICK ]]; then
  say "building the app (trunk, debug for --quick)"
  trunk build --dist "$BUILD/app" >/dev/null 2>&1 || trunk build --dist "$BUILD/app"
else
  say "building the app (release: scripts/build_app.sh)"
  bash scripts/build_app.sh "$BUILD/app" >/dev/null 2>&1 || bash scripts/build_app.sh "$BUILD/app"
fi

# --quick builds it unoptimized (80 s instead of 165 s from scratch): a smoke run's numbers mean
# nothing, its point is that the harness runs.
if [[ -n $QUICK ]]; then
  say "building the native benchmark (bench/native: nats-ws and async-nats; debug for --quick)"
  (cd bench/native && cargo build --quiet)
  NATIVE_BIN=bench/native/target/debug/nats-ws-bench-native
else
  say "building the native benchmark (bench/native: nats-ws and async-nats)"
  (cd bench/native && cargo build --quiet --release)
  NATIVE_BIN=bench/native/target/release/nats-ws-bench-native
fi

# --- native parser (criterion) -----------------------------------------------------------------
CRITERION=()
if [[ -n $QUICK ]]; then
  say "native parser benchmark, test mode (each benchmark once)"
  cargo test --quiet -p nats-ws --bench parser
else
  say "native parser benchmark (criterion)"
  cargo bench --quiet -p nats-ws --bench parser -- --warm-up-time 2 --measurement-time 5 --noplot
  CRITERION=(--criterion-dir "${CARGO_TARGET_DIR:-target}/criterion")
fi

# --- server ------------------------------------------------------------------------------------
start_server

# --- native pub→sub and request/reply ----------------------------------------------------------
say "native: nats-ws vs async-nats over the same WebSocket port"
if [[ -n $QUICK ]]; then
  NATIVE_ARGS=(--n 20000 --reps 1 --rr 100)
else
  NATIVE_ARGS=(--n 1000000 --reps 3 --rr 2000)
fi
"$NATIVE_BIN" --ws "$WS_URL" --batch 1000 "${NATIVE_ARGS[@]}" \
  >"$BUILD/native.json"

# --- browser -----------------------------------------------------------------------------------
say "browser: nats-ws vs nats.js in headless Chromium"
node bench/bench.mjs --ws "$WS_URL" --control "$CONTROL_URL" $QUICK $PROFILE "${CRITERION[@]}"

if [[ -z $QUICK ]]; then
  # A million events through one native worker: its allocated bytes must end flat (BENCHMARKS.md).
  say "native worker memory (bench/workers.sh)"
  bash bench/workers.sh
fi

say "done in $((SECONDS - START)) s"
