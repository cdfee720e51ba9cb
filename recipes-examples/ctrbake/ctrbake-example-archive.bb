SUMMARY = "Example bundle: one docker-archive per image, loaded by the device at first boot"
require ctrbake-examples.inc

CTRBAKE_IMAGES = "${CTRBAKE_EXAMPLE_APP}"
CTRBAKE_LAYOUT = "archive"
