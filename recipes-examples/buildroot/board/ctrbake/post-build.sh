#!/bin/sh
# Buildroot post-build script (BR2_ROOTFS_POST_BUILD_SCRIPT) of the ctrbake BR2_EXTERNAL
# tree: bakes the images of the ctrbake options and installs them in TARGET_DIR.
#
# Buildroot runs it with TARGET_DIR as $1 and its environment: BR2_CONFIG, BUILD_DIR,
# BINARIES_DIR, and the CTRBAKE_* variables external.mk exports from the options.
# The cache is BR2_DL_DIR/ctrbake: after `make source` the build needs no network.
set -eu

TARGET_DIR="${1:?usage: post-build.sh TARGET_DIR (Buildroot passes it)}"
: "${BR2_CONFIG:?not set: this script is run by Buildroot (BR2_ROOTFS_POST_BUILD_SCRIPT)}"
: "${BUILD_DIR:?not set: this script is run by Buildroot}"
: "${BINARIES_DIR:?not set: this script is run by Buildroot}"
: "${CTRBAKE_CACHE_DIR:?not set: enable BR2_CTRBAKE (menuconfig: External options -> ctrbake)}"
CTRBAKE="${CTRBAKE:-ctrbake}"

OVERLAY="$BUILD_DIR/ctrbake/overlay"
mkdir -p "$BUILD_DIR/ctrbake"
# What the previous run installed, to remove what this run no longer installs.
PREVIOUS="$BUILD_DIR/ctrbake/installed.list"

set -- build --br2-config "$BR2_CONFIG" --cache "$CTRBAKE_CACHE_DIR" \
	--layout "${CTRBAKE_LAYOUT:-archive}" --init "${CTRBAKE_INIT:-busybox}" -o "$OVERLAY"
if [ -n "${CTRBAKE_ENGINE:-}" ]; then set -- "$@" --engine "$CTRBAKE_ENGINE"; fi
if [ -n "${CTRBAKE_IMAGES_FILE:-}" ]; then set -- "$@" --images "$CTRBAKE_IMAGES_FILE"; fi
if [ -n "${CTRBAKE_COMPOSE_FILE:-}" ]; then set -- "$@" --compose "$CTRBAKE_COMPOSE_FILE"; fi
if [ -n "${CTRBAKE_LOCK_FILE:-}" ]; then set -- "$@" --lock "$CTRBAKE_LOCK_FILE"; fi
if [ "${CTRBAKE_OFFLINE:-}" = y ]; then set -- "$@" --offline; fi
if [ -n "${CTRBAKE_PARTITION_DEVICE:-}" ]; then
	set -- "$@" --partition-image "$BINARIES_DIR/ctrbake.sqfs" --partition-device "$CTRBAKE_PARTITION_DEVICE"
fi
# Extra arguments are words on purpose (e.g. "--authfile /etc/auth.json --compression zstd").
# shellcheck disable=SC2086
set -- "$@" ${CTRBAKE_EXTRA_ARGS:-}

echo "ctrbake: $CTRBAKE $*"
"$CTRBAKE" "$@"

# A rebuild must not leave stale files in TARGET_DIR (an old archive, the partition's mount
# script after the partition was turned off): remove what the previous run installed.
# The list is depth-first: a directory comes after its content and goes if it is empty.
if [ -f "$PREVIOUS" ]; then
	while IFS= read -r path; do
		if [ -d "$TARGET_DIR/$path" ] && [ ! -L "$TARGET_DIR/$path" ]; then
			rmdir "$TARGET_DIR/$path" 2>/dev/null || true
		else
			rm -f "$TARGET_DIR/$path"
		fi
	done <"$PREVIOUS"
fi

# The overlay (init scripts, device script, engine config and, without a partition, the
# payload) goes over the target like a BR2_ROOTFS_OVERLAY.
cp -a "$OVERLAY/." "$TARGET_DIR/"
(cd "$OVERLAY" && find . -depth ! -name .) >"$PREVIOUS.tmp"
mv "$PREVIOUS.tmp" "$PREVIOUS"
if [ -z "${CTRBAKE_PARTITION_DEVICE:-}" ]; then rm -f "$BINARIES_DIR/ctrbake.sqfs"; fi
