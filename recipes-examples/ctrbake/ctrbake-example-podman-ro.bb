SUMMARY = "Example bundle: a podman store as SquashFS, mounted read-only as an additional image store"
require ctrbake-examples.inc

CTRBAKE_IMAGES = "${CTRBAKE_EXAMPLE_APP}"
CTRBAKE_LAYOUT = "podman-ro"
