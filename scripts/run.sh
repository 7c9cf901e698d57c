#!/usr/bin/env bash
# Install if needed, then run one node on the embedded defaults: all roles,
# SQLite store, data in the default data dir (initialised on first run).
# Extra arguments go to milagro-node, e.g. scripts/run.sh --data-dir /srv/node
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/milagro-node init "$@"
exec .venv/bin/milagro-node run "$@"
