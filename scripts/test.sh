#!/usr/bin/env bash
# Install if needed (with test dependencies), then run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --with-tests

# npm packages for the IPLD interop test (tests/interop), from its lockfile; only when missing
# or older than the lockfile. As root with neither node nor npm, install Debian's first.
if ! command -v node >/dev/null && ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
# Debian's Chromium and its WebDriver, for the admin console's browser tests (tests/console).
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; } && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi
if command -v npm >/dev/null && [ tests/interop/package-lock.json -nt tests/interop/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/interop --no-audit --no-fund \
    || echo "test.sh: npm ci failed; the npm interop test will be skipped (it fails under CI=true)" >&2
fi

exec .venv/bin/python -m pytest "$@"
