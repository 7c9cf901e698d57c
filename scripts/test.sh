#!/usr/bin/env bash
# Install if needed (with test dependencies), then run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --with-tests
exec .venv/bin/python -m pytest "$@"
