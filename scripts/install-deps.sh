#!/usr/bin/env bash
# Installs what ctrbake needs on Debian 12, as root, then the npm dependencies (npm ci).
# Idempotent: does nothing when everything is present.
#   install-deps.sh        what the tests and benchmarks need (`npm test`, `npm run bench`)
#   install-deps.sh demo   only what `npm run demo` uses: a private dockerd (docker.io), a
#                          registry on 127.0.0.1 (docker-registry) and busybox for the sample
set -euo pipefail

DEMO_PACKAGES=(docker.io docker-registry busybox-static)
ALL_PACKAGES=(
  "${DEMO_PACKAGES[@]}" podman skopeo uidmap
  squashfs-tools squashfs-tools-ng
  shellcheck apache2-utils attr jq e2fsprogs util-linux tar
  debootstrap
  gcc libc6-dev
  chromium zstd
  genimage make fdisk
)

case "${1:-all}" in
  all) PACKAGES=("${ALL_PACKAGES[@]}") ;;
  demo) PACKAGES=("${DEMO_PACKAGES[@]}") ;;
  *)
    echo "install-deps: unknown set '$1': use 'demo' or nothing (everything the tests need)" >&2
    exit 2
    ;;
esac

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
