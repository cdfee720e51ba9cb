SUMMARY = "Example bundle: every image of a compose file (pinned by digest), as archives"
require ctrbake-examples.inc

CTRBAKE_COMPOSE = "${CTRBAKE_EXAMPLE_COMPOSE}"
CTRBAKE_LAYOUT = "archive"

# Ship the compose file too, so the device can start the services.
do_install:append() {
	install -d ${D}${CTRBAKE_PAYLOAD_DIR}/compose
	install -m 0644 ${CTRBAKE_COMPOSE} ${D}${CTRBAKE_PAYLOAD_DIR}/compose/compose.yaml
}
do_install[file-checksums] += "${CTRBAKE_COMPOSE}:True"
do_install[vardepsexclude] += "CTRBAKE_COMPOSE CTRBAKE_EXAMPLE_COMPOSE"
