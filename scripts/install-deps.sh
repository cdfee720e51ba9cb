#!/usr/bin/env bash
# Installs what ctrbake's tests, demo and benchmarks need on Debian 12, as root.
# Idempotent: does nothing when everything is present.
set -euo pipefail

PACKAGES=(
  docker.io podman skopeo docker-registry uidmap
  squashfs-tools squashfs-tools-ng
  busybox-static shellcheck apache2-utils attr jq e2fsprogs util-linux tar
  debootstrap
  gcc libc6-dev
  chromium zstd
  genimage make fdisk
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run this script as root (apt-get install)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's docker.io may start a host daemon through its service scripts where an init
# system runs; ctrbake never uses it, and the tests check that nothing touches it.
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci installs exactly the committed lock and never rewrites it (the checkout stays clean).
  npm ci --no-audit --no-fund
fi
[ -f dist/cli/main.js ] || npm run build
