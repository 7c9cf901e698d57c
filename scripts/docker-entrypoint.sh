#!/bin/sh
# Container entrypoint: initialise the data dir on first start only (so every container has
# its own identity and SoftHSM token, in its volume), then run the command (default: run).
#
# Configuration: mount node.toml / peers.toml into the data dir (/data), or set MILAGRO_*
# variables (MILAGRO_NODE_ROLES=mfa, MILAGRO_HSM_PIN, ...); see docs/deploy.md.
set -eu
data=${MILAGRO_DATA_DIR:-/data}
if [ "${1:-run}" = "run" ]; then
  if [ ! -e "$data/node.db" ]; then
    echo "milagro-entrypoint: first start: initialising $data" >&2
    milagro-node init --data-dir "$data"
  fi
  exec milagro-node run --data-dir "$data"
fi
exec milagro-node "$@"
