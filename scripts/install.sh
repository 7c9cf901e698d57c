#!/usr/bin/env bash
# Install Milagro Node into .venv beside this repo. Idempotent; safe to re-run.
#
#   scripts/install.sh                 the node
#   scripts/install.sh --with-tests    the node and its test dependencies
#
# As root on Debian it first installs the Debian packages it needs (build
# tools for native/, the venv module). Python packages are pinned by
# constraints.txt. Set PYTHON to choose the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
for arg in "$@"; do
  case "$arg" in
    --with-tests) extras="[test]" ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

apt_packages=(python3 python3-venv python3-dev build-essential libffi-dev softhsm2)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "install.sh: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  if ! out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" 2>&1); then
    echo "$out" >&2
    exit 1
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "install.sh: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

# Re-run pip only when what we ask for changed since the last successful install
# (an install with test dependencies also serves a plain one).
stamp=.venv/.milagro-installed
inputs=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
wanted="$inputs $extras"
installed=$(cat "$stamp" 2>/dev/null || true)
if [ "$installed" != "$wanted" ] && [ "$installed" != "$inputs [test]" ]; then
  echo "install.sh: installing Python packages${extras:+ with $extras}"
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".$extras"
  echo "$wanted" > "$stamp"
fi

# native/: the secret-memory extension (rebuilt when its sources change).
so=$(ls milagro_node/_secmem*.so 2>/dev/null | head -n1 || true)
if [ -z "$so" ] || [ -n "$(find native -newer "$so" -type f 2>/dev/null)" ]; then
  .venv/bin/python native/build.py
fi
