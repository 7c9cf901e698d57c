#!/usr/bin/env bash
# Install if needed, then run one node on the embedded defaults: all roles,
# SQLite store, data in the default data dir (initialised on first run).
# Extra arguments go to milagro-node, e.g. scripts/run.sh --data-dir /srv/node
# An existing node.toml there decides which roles' components get installed.
set -euo pipefail
cd "$(dirname "$0")/.."
install_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --data-dir) install_args=(--config "${args[$((i + 1))]:-}/node.toml") ;;
    --data-dir=*) install_args=(--config "${args[$i]#--data-dir=}/node.toml") ;;
    --config) install_args=(--config "${args[$((i + 1))]:-}") ;;
    --config=*) install_args=(--config "${args[$i]#--config=}") ;;
  esac
done
scripts/install.sh "${install_args[@]}"
.venv/bin/milagro-node init "$@"
exec .venv/bin/milagro-node run "$@"
