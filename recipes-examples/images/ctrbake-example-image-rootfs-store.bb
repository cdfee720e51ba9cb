SUMMARY = "core-image-minimal with a docker store extracted into /var/lib/docker at build time"
DESCRIPTION = "The seed article's approach: the store is part of the rootfs. Needs a writable \
/var/lib/docker at run time (see docs/yocto.md, 'The store in the rootfs')."

require recipes-core/images/core-image-minimal.bb

inherit ctrbake-rootfs-store
CTRBAKE_ROOTFS_STORE = "ctrbake-example-rootfs"
IMAGE_INSTALL:append = " docker"
