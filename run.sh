#!/usr/bin/env bash
# Runs the app: installs what is missing, starts nats-server (bash nats.sh start), then runs
# via-agent, which serves the app on http://127.0.0.1:3000 (its process `app`: scripts/app.sh) and
# answers the /processes, /scale, /workers and /playground pages (via-agent.toml lists what it
# runs).
# Open several windows there: they stay in sync.
# Ctrl-C (or SIGTERM to this script's process group) stops the agent and everything it started;
# nats-server keeps running (`bash nats.sh stop` stops it).
#
# The app is served as a release build, the speed users see (on 2026-11-25 a +1 reached 10 other
# tabs in 8 ms p50 from a release build, 20 ms from a debug one), built here with the heavy pages
# in modules of their own (scripts/build_app.sh: fetched when one of them is first opened);
# `./run.sh --dev` serves a debug build instead (trunk serve), which rebuilds after every edit.
set -euo pipefail
cd "$(dirname "$0")"

case ${1:-} in
  "") release=true ;;
  --dev) release=false ;;
  *) echo "usage: ./run.sh [--dev]" >&2; exit 2 ;;
esac
# scripts/app.sh (the agent's process `app`) reads it.
export VIA_APP=$([[ $release == true ]] && echo release || echo dev)

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PWD/node_modules/.bin:$PATH:/usr/sbin"

# Another ./run.sh (its agent) already running: said now, before a rebuild of target/app pulls the
# files from under the app it serves (the agent would refuse to start only after that).
if [[ -e data/via-agent.lock ]] && command -v flock >/dev/null && ! flock -n data/via-agent.lock true; then
  echo "run.sh: another via-agent (another ./run.sh?) is running on data/: stop it first (Ctrl-C in its terminal)" >&2
  exit 1
fi
# Port 3000 held by something else: the app could not be served.
if (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null; then
  echo "run.sh: port 127.0.0.1:3000 is already in use by another process: the app could not be served there; stop it first" >&2
  exit 1
fi

bash scripts/setup.sh --app
bash nats.sh start
# The agent, and the binaries its processes run: via-worker for worker-1 … worker-4 (/workers: "Add
# worker"), via-math (math.sum, started with the agent) and via-sensor (MQTT) for /playground.
cargo build --quiet -p via-agent -p via-worker -p via-playground
if [[ $release == true ]]; then
  echo "run.sh: building the app (release: scripts/build_app.sh target/app)"
  bash scripts/build_app.sh target/app
fi
echo "run.sh: via-agent serves http://127.0.0.1:3000, a $([[ $release == true ]] && echo release || echo debug) build (Ctrl-C stops the app and the agent; \`bash nats.sh stop\` stops the server)"
# cargo run replaces itself with the agent, so the agent gets the signals directly.
exec cargo run --quiet -p via-agent -- --config via-agent.toml
