SUMMARY = "Example bundle: a docker store shipped as store.tar, extracted into the rootfs by the ctrbake-rootfs-store image class"
require ctrbake-examples.inc

CTRBAKE_IMAGES = "${CTRBAKE_EXAMPLE_APP}"
CTRBAKE_LAYOUT = "rootfs"
