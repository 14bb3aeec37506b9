#!/usr/bin/env bash
# The agent's process `app` (via-agent.toml): the app on http://127.0.0.1:3000.
#   VIA_APP=release (./run.sh): the release build ./run.sh made into target/app
#     (scripts/build_app.sh), served as it is (e2e/serve.mjs). Rebuilt by the next ./run.sh.
#   VIA_APP=dev (./run.sh --dev): trunk serve, a debug build rebuilt after every edit (reload
#     the page by hand: see via-agent.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
case ${VIA_APP:-release} in
  release)
    [[ -f target/app/index.html ]] ||
      { echo "app: no release build in target/app: run ./run.sh (or bash scripts/build_app.sh target/app)" >&2; exit 1; }
    exec node e2e/serve.mjs target/app 3000
    ;;
  dev) exec trunk serve --no-autoreload ;;
  *) echo "app: VIA_APP is release or dev, not \"$VIA_APP\"" >&2; exit 2 ;;
esac
