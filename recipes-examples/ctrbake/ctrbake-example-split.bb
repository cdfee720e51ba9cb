SUMMARY = "Example bundle: a docker overlay2 store as SquashFS, layers used in place (split layout)"
require ctrbake-examples.inc

CTRBAKE_IMAGES = "${CTRBAKE_EXAMPLE_APP}"
CTRBAKE_LAYOUT = "split"
CTRBAKE_COMPRESSION = "gzip"
