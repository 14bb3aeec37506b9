#!/usr/bin/env bash
# Runs the app: installs what is missing, starts nats-server (bash nats.sh start), then serves the
# app on http://127.0.0.1:3000 with trunk. Open several windows there: they stay in sync.
set -euo pipefail
cd "$(dirname "$0")"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PWD/node_modules/.bin:$PATH:/usr/sbin"

bash scripts/setup.sh --app
bash nats.sh start
echo "run.sh: serving http://127.0.0.1:3000 (Ctrl-C stops the app; \`bash nats.sh stop\` stops the server)"
exec trunk serve "$@"
