# ctrbake-rootfs-store.bbclass: an image whose engine store is part of the rootfs.
#
#   inherit ctrbake-rootfs-store
#   CTRBAKE_ROOTFS_STORE = "my-bundle"     # a recipe with `inherit ctrbake` and CTRBAKE_LAYOUT = "rootfs"
#
# The bundle package ships store.tar (a docker store baked with ctrbake bake --mode store);
# after the rootfs is assembled, the store is extracted into ${IMAGE_ROOTFS}${CTRBAKE_ROOTFS_DATA_ROOT}
# (ownership, modes, xattrs and whiteouts kept; pseudo records them) and the tar is removed.
# The engine's daemon.json is pinned to the store's storage driver.
#
# Constraints (docs/yocto.md#the-store-in-the-rootfs):
# - One store per image: two engine stores cannot be merged into one data-root.
# - The engine writes to its data-root at start (containers, network, runtime state). With a
#   read-only rootfs (IMAGE_FEATURES read-only-rootfs) the data-root must be made writable at
#   boot by an overlay whose upper dir is on a writable partition. overlay2 does not work on
#   top of overlayfs: bake the bundle with CTRBAKE_STORAGE_DRIVER = "vfs" (every container
#   then copies its image), or use the split layout (CTRBAKE_LAYOUT = "split") instead.
# - The store costs its full unpacked size in the rootfs image, and an update of the images is
#   an update of the rootfs.

CTRBAKE_ROOTFS_STORE ?= ""
CTRBAKE_ROOTFS_STORE[doc] = "The bundle recipe (CTRBAKE_LAYOUT = \"rootfs\") whose store is extracted into the rootfs."
CTRBAKE_ROOTFS_DATA_ROOT ?= "/var/lib/docker"
CTRBAKE_ROOTFS_DATA_ROOT[doc] = "Engine data-root in the rootfs the store is extracted into."
CTRBAKE_ROOTFS_PAYLOAD_DIR ?= "/usr/share/ctrbake"
CTRBAKE_ROOTFS_PAYLOAD_DIR[doc] = "CTRBAKE_PAYLOAD_DIR of the bundle recipe (where its package puts <bundle>/store.tar)."
CTRBAKE_ROOTFS_DAEMON_JSON ?= "1"
CTRBAKE_ROOTFS_DAEMON_JSON[doc] = "1: write /etc/docker/daemon.json with the data-root and the store's storage driver."

IMAGE_INSTALL:append = " ${CTRBAKE_ROOTFS_STORE}"
ROOTFS_POSTPROCESS_COMMAND += "ctrbake_rootfs_extract_store"

python __anonymous() {
    stores = (d.getVar('CTRBAKE_ROOTFS_STORE') or '').split()
    if len(stores) != 1:
        bb.fatal('%s: set CTRBAKE_ROOTFS_STORE to exactly one bundle recipe (CTRBAKE_LAYOUT = "rootfs"); two engine stores cannot share a data-root, got %r'
                 % (d.getVar('PN'), ' '.join(stores)))
}

ctrbake_rootfs_extract_store() {
	store_dir="${IMAGE_ROOTFS}${CTRBAKE_ROOTFS_PAYLOAD_DIR}/${CTRBAKE_ROOTFS_STORE}"
	data_root="${IMAGE_ROOTFS}${CTRBAKE_ROOTFS_DATA_ROOT}"
	if [ ! -f "$store_dir/store.tar" ]; then
		bbfatal "ctrbake: $store_dir/store.tar is not in the rootfs: is ${CTRBAKE_ROOTFS_STORE} a bundle with CTRBAKE_LAYOUT = \"rootfs\"?"
	fi
	driver=$(sed -n 's/^  "storageDriver": "\([a-z0-9]*\)",$/\1/p' "$store_dir/manifest.json")
	engine=$(sed -n '/^  "engine": {$/,/}/s/^    "name": "\([a-z]*\)",$/\1/p' "$store_dir/manifest.json")
	if [ "$engine" != docker ] || [ -z "$driver" ]; then
		bbfatal "ctrbake: $store_dir/manifest.json is not a docker store (engine '$engine', driver '$driver')"
	fi
	if [ -n "$(ls -A "$data_root" 2>/dev/null)" ]; then
		bbfatal "ctrbake: $data_root is not empty: the store must be the only content of the data-root"
	fi
	mkdir -p "$data_root"
	tar -C "$data_root" --numeric-owner --same-owner --preserve-permissions \
		--xattrs --xattrs-include='*' -xf "$store_dir/store.tar"
	rm -f "$store_dir/store.tar"
	if [ "${CTRBAKE_ROOTFS_DAEMON_JSON}" = "1" ]; then
		mkdir -p "${IMAGE_ROOTFS}/etc/docker"
		printf '{\n  "data-root": "%s",\n  "storage-driver": "%s",\n  "features": { "containerd-snapshotter": false }\n}\n' \
			"${CTRBAKE_ROOTFS_DATA_ROOT}" "$driver" >"${IMAGE_ROOTFS}/etc/docker/daemon.json"
	fi
}
