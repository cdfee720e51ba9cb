#!/bin/sh
# Buildroot post-image script (BR2_ROOTFS_POST_IMAGE_SCRIPT) of the ctrbake BR2_EXTERNAL
# tree: the disk image with genimage, the ctrbake payload partition included.
#
# Buildroot runs it from its top directory with BINARIES_DIR, BUILD_DIR and TARGET_DIR set;
# $1 is BINARIES_DIR. CTRBAKE_GENIMAGE_CFG may name another genimage.cfg.
set -eu

: "${BINARIES_DIR:?not set: this script is run by Buildroot (BR2_ROOTFS_POST_IMAGE_SCRIPT)}"
GENIMAGE_CFG="${CTRBAKE_GENIMAGE_CFG:-$(dirname "$0")/genimage.cfg}"

if grep -q '"ctrbake.sqfs"' "$GENIMAGE_CFG" && [ ! -f "$BINARIES_DIR/ctrbake.sqfs" ]; then
	echo "ctrbake: $GENIMAGE_CFG needs $BINARIES_DIR/ctrbake.sqfs: enable BR2_CTRBAKE_PARTITION" >&2
	exit 1
fi

exec support/scripts/genimage.sh -c "$GENIMAGE_CFG"
