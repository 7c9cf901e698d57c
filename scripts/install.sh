#!/usr/bin/env bash
# Install Milagro Node into a venv (.venv beside this repo). Idempotent; safe to re-run.
#
#   scripts/install.sh                      the node, with the roles of its config (else all roles)
#   scripts/install.sh --roles dta,mfa      the base and exactly these roles' components
#   scripts/install.sh --with-tests         every role and the test dependencies
#   scripts/install.sh --venv DIR           install into DIR instead of .venv
#   scripts/install.sh --config FILE        take the roles from this node.toml
#
# Roles: dta, mfa, custody (pyproject.toml's optional groups of the same names). Without
# --roles, the roles come from the node config: --config, else $MILAGRO_DATA_DIR/node.toml,
# else ~/.local/share/milagro-node/node.toml; with none, all roles. As root on Debian it first
# installs the Debian packages it needs (build tools for native/, the venv module, SoftHSM2).
# Python packages are pinned by constraints.txt. PYTHON chooses the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

all_roles="dta,mfa,custody"
roles="" tests="" venv=".venv" config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --with-tests) tests=1 ;;
    --roles) roles="${2:?--roles needs a list, e.g. dta,mfa}"; shift ;;
    --roles=*) roles="${1#--roles=}" ;;
    --venv) venv="${2:?--venv needs a directory}"; shift ;;
    --config) config="${2:?--config needs a file}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

python=${PYTHON:-python3}
if [ -n "$tests" ]; then
  roles="$all_roles"
elif [ -z "$roles" ]; then
  config=${config:-${MILAGRO_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/milagro-node}/node.toml}
  if [ -f "$config" ]; then
    roles=$("$python" -c 'import sys, tomllib
print(",".join(tomllib.load(open(sys.argv[1], "rb")).get("node", {}).get("roles", sys.argv[2].split(","))))' \
      "$config" "$all_roles") || { echo "install.sh: cannot read the roles from $config" >&2; exit 2; }
    echo "install.sh: roles from $config: $roles"
  else
    roles="$all_roles"
  fi
fi
for role in ${roles//,/ }; do
  case ",$all_roles," in
    *",$role,"*) ;;
    *) echo "install.sh: unknown role \"$role\" (roles: $all_roles)" >&2; exit 2 ;;
  esac
done
extras="$roles${tests:+,test}"

apt_packages=(python3 python3-venv python3-dev build-essential libffi-dev libsodium-dev softhsm2)
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

if [ ! -x "$venv/bin/python" ]; then
  echo "install.sh: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi

# Re-run pip only when what we ask for changed since the last successful install, or asks
# for a group not installed yet (a venv with every role also serves one role).
stamp="$venv/.milagro-installed"
inputs=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
installed_inputs="" installed_extras=""
if [ -f "$stamp" ]; then read -r installed_inputs installed_extras < "$stamp" || true; fi
covered=1
if [ "${installed_inputs:-}" != "$inputs" ]; then covered=""; fi
for extra in ${extras//,/ }; do
  case ",${installed_extras:-}," in *",$extra,"*) ;; *) covered="" ;; esac
done
if [ -z "$covered" ]; then
  # Groups installed before stay (pip removes nothing): keep the record their union.
  if [ "${installed_inputs:-}" = "$inputs" ] && [ -n "${installed_extras:-}" ]; then
    extras=$(printf '%s\n' ${installed_extras//,/ } ${extras//,/ } | awk '!seen[$0]++' | paste -sd,)
  fi
  echo "install.sh: installing Python packages: the base and [$extras]"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$extras]"
  echo "$inputs $extras" > "$stamp"
fi

# native/: the extensions (build.py rebuilds only those whose sources changed).
"$venv/bin/python" native/build.py
