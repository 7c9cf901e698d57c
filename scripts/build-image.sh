#!/usr/bin/env bash
# Build the milagro-node container image from the top-level Dockerfile; print its size and
# how long the build took.
#
#   scripts/build-image.sh [--roles dta,mfa] [--tag milagro-node:latest]
#
# Engine: docker when a docker engine answers, else podman (as root: --isolation=chroot with
# the vfs storage driver, which work where containers cannot be nested; on Debian, podman,
# buildah and debootstrap are installed if missing). Where no registry serves
# debian:bookworm-slim, the base is made here from Debian packages (debootstrap --variant=minbase)
# and imported under that name, so the same Dockerfile builds everywhere. Python packages go
# into the image from build/wheelhouse, made here from constraints.txt (no PyPI access needed
# inside the build).
set -euo pipefail
cd "$(dirname "$0")/.."

roles="dta,mfa,custody" tag="milagro-node:latest"
while [ $# -gt 0 ]; do
  case "$1" in
    --roles) roles="${2:?--roles needs a list, e.g. dta,mfa}"; shift ;;
    --tag) tag="${2:?--tag needs a name}"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
base="docker.io/library/debian:bookworm-slim"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
started=$(date +%s)

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=(docker) build_flags=()
else
  if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "build-image.sh: no docker engine and no podman/debootstrap (install them, or run as root)" >&2
      exit 1
    fi
    echo "build-image.sh: installing podman, buildah and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman buildah debootstrap uidmap >/dev/null
  fi
  engine=(podman --storage-driver vfs) build_flags=(--isolation chroot)
fi
echo "build-image.sh: engine: ${engine[*]}"

if ! "${engine[@]}" image inspect "$base" >/dev/null 2>&1; then
  if ! timeout 60 "${engine[@]}" pull -q "$base" >/dev/null 2>&1; then
    echo "build-image.sh: no registry serves $base: making it with debootstrap from $mirror"
    rootfs=$(mktemp -d /tmp/milagro-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
    chmod 0755 "$rootfs"  # mktemp made it 0700: it becomes the image's /
    tar -C "$rootfs" -c . | "${engine[@]}" import - "$base" >/dev/null
    rm -rf "$rootfs"
  fi
fi

scripts/install.sh --roles "$roles" >/dev/null
echo "build-image.sh: wheelhouse for [$roles] in build/wheelhouse"
mkdir -p build/wheelhouse
.venv/bin/python -m pip wheel -q --disable-pip-version-check -c constraints.txt -w build/wheelhouse \
  "setuptools>=68" ".[$roles]"
rm -f build/wheelhouse/milagro_node-*.whl  # the image builds the project from its sources

"${engine[@]}" build "${build_flags[@]}" --build-arg "ROLES=$roles" -t "$tag" -f Dockerfile .
# vfs keeps a full copy of the tree per layer: drop the build stage and replaced images.
"${engine[@]}" image prune -f >/dev/null
size=$("${engine[@]}" image inspect "$tag" --format '{{.Size}}')
echo "build-image.sh: built $tag (roles $roles): $((size / 1024 / 1024)) MiB in $(( $(date +%s) - started )) s"
