SUMMARY = "core-image-minimal that boots with the example containers (archive layout, loaded at first boot)"
DESCRIPTION = "Needs meta-virtualization for the docker package. One bundle per image: bundles of \
different layouts each bring /usr/sbin/ctrbake-device and the engine's config, so they conflict."

require recipes-core/images/core-image-minimal.bb

CTRBAKE_EXAMPLE_BUNDLE ?= "ctrbake-example-archive"
IMAGE_INSTALL:append = " ${CTRBAKE_EXAMPLE_BUNDLE}"
# The containers' data partition: the loader writes the engine's data-root there.
IMAGE_ROOTFS_EXTRA_SPACE = "262144"
