#!/usr/bin/env bash
# The workers' memory under load, natively and in a tab: does it stay flat?
#   bash bench/workers.sh           # 1 000 000 events, each part
#   bash bench/workers.sh --quick   # 100 000 natively, 300 000 in the tab (it samples every 5 s)
#   bash bench/workers.sh --native  # only the native part (no app build, no Chromium)
# Builds via-worker and via-publisher with the bench profile (opt-level 3, LTO: the workspace's
# release profile is opt-level z, sized for the wasm app), starts a throwaway nats-server, runs one
# worker (memory sample every 500 ms, exits after the last event) and publishes the events. The
# allocated bytes after the warm-up (the first sample past 10 % of the events) are compared with the
# last sample; it passes if the end is within 10 % of the warmed-up level.
# Then the same in a tab: the app (trunk, release) in headless Chromium joins /workers as the only
# worker and processes what via-publisher sends, in two halves (bench/workers-tab.mjs); it passes if
# the tab's live heap, idle after the second half, is within 128 KiB of where it was idle after the
# first. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=1000000 TAB_COUNT=1000000 TAB=1
for arg in "$@"; do
  case $arg in
    --quick) COUNT=100000 TAB_COUNT=300000 ;;
    --native) TAB="" ;;
    *) echo "usage: bash bench/workers.sh [--quick] [--native]" >&2; exit 2 ;;
  esac
done

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PWD/node_modules/.bin:$PATH:/usr/sbin"
NATS_PID="" WORKER_PID="" TMP=""

cleanup() {
  local rc=$?
  for pid in $WORKER_PID $NATS_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -n $TMP ]] && rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> workers bench: building via-worker (profile bench)" >&2
cargo build --quiet --profile bench -p via-worker
# Cargo puts the bench profile's output in target/release.
BIN="${CARGO_TARGET_DIR:-target}/release"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/via-workers-bench.XXXXXX")
PORT=$(free_port)
cat >"$TMP/nats.conf" <<EOF
host: 127.0.0.1
port: $PORT
jetstream { store_dir: "$TMP/store" }
EOF
SERVER="${NATS_SERVER_BIN:-nats-server}"
"$SERVER" -c "$TMP/nats.conf" >"$TMP/nats.log" 2>&1 &
NATS_PID=$!
deadline=$((SECONDS + 20))
until grep -q "Server is ready" "$TMP/nats.log" 2>/dev/null; do
  if ! kill -0 "$NATS_PID" 2>/dev/null || ((SECONDS >= deadline)); then
    echo "workers bench: nats-server did not start:" >&2; cat "$TMP/nats.log" >&2; exit 1
  fi
  sleep 0.1
done
URL="nats://127.0.0.1:$PORT"
VERSION=$("$SERVER" --version | awk '{print $NF}')
echo "==> workers bench: nats-server $VERSION on $URL, $COUNT events" >&2

"$BIN/via-worker" --url "$URL" --id bench --memory-ms 500 --max-events "$COUNT" \
  >"$TMP/worker.out" 2>"$TMP/worker.err" &
WORKER_PID=$!
START=$SECONDS
"$BIN/via-publisher" --url "$URL" --count "$COUNT" >"$TMP/publisher.json"
# The worker exits by itself after the last event; bounded, in case it never gets there.
deadline=$((SECONDS + 600))
while kill -0 "$WORKER_PID" 2>/dev/null; do
  if ((SECONDS >= deadline)); then echo "workers bench: the worker did not finish" >&2; exit 1; fi
  sleep 0.2
done
wait "$WORKER_PID" || { echo "workers bench: the worker failed:" >&2; cat "$TMP/worker.err" >&2; exit 1; }
WORKER_PID=""
ELAPSED=$((SECONDS - START))

python3 - "$TMP/worker.out" "$TMP/publisher.json" "$COUNT" "$ELAPSED" "$VERSION" <<'EOF'
import json, sys
out, pub, count, elapsed, version = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
samples = [json.loads(l)["memory"] for l in open(out) if l.startswith('{"memory"')]
warm = next((s for s in samples if s["processed"] >= count // 10), None)
end = samples[-1] if samples else None
if warm is None or end is None or end["processed"] < count:
    sys.exit(f"workers bench: not enough samples (processed {end and end['processed']})")
report = json.loads(open(pub).read())
mib = lambda b: f"{b / 1048576:.2f} MiB"
ratio = end["allocated_bytes"] / warm["allocated_bytes"]
print(f"nats-server {version}: {count} events, published at {report['per_second']:.0f}/s, "
      f"processed in {elapsed} s")
print(f"| point | processed | allocated | allocations so far | allocated so far | RSS |")
print(f"|---|---|---|---|---|---|")
for name, s in (("warmed up", warm), ("end", end)):
    print(f"| {name} | {s['processed']} | {mib(s['allocated_bytes'])} | {s['allocations']} | "
          f"{mib(s['total_allocated_bytes'])} | {mib(s['rss_bytes'])} |")
peak = max(s["allocated_bytes"] for s in samples if s["processed"] >= warm["processed"])
print(f"allocated at the end / warmed up: {ratio:.3f} (peak after warm-up {mib(peak)}); "
      f"{(end['allocations'] - warm['allocations']) / max(1, end['processed'] - warm['processed']):.1f} allocations per event")
if ratio > 1.10:
    sys.exit("workers bench: FAILED: allocated bytes grew more than 10 % after the warm-up")
print("workers bench: passed (within 10 % of the warmed-up level)")
EOF

[[ -n $TAB ]] || exit 0
# trunk finds wasm-opt 123 in node_modules/.bin (scripts/setup.sh installs it).
echo "==> workers bench: building the app (trunk, release) for the tab" >&2
DIST=bench/build/app
trunk build --release --dist "$DIST" >"$TMP/trunk.log" 2>&1 || { cat "$TMP/trunk.log" >&2; exit 1; }
echo "==> workers bench: $TAB_COUNT events to a tab worker" >&2
E2E_DIST="$DIST" NATS_SERVER_BIN="$SERVER" node bench/workers-tab.mjs "$BIN/via-publisher" "$TAB_COUNT"
