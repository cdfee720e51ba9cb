# ctrbake-rootfs-store.bbclass: an image whose engine store is part of the rootfs.
#
#   inherit ctrbake-rootfs-store
#   CTRBAKE_ROOTFS_STORE = "my-bundle"     # a recipe with `inherit ctrbake` and CTRBAKE_LAYOUT = "rootfs"
#
# The bundle package ships store.tar (a docker store baked with ctrbake bake --mode store);
# after the rootfs is assembled, the store is extracted into ${IMAGE_ROOTFS}${CTRBAKE_ROOTFS_DATA_ROOT}
# (ownership, modes, xattrs and whiteouts kept; pseudo records them) and the tar is removed.
# /etc/docker/daemon.json is the one `ctrbake loader` rendered for the store (shipped by the
# bundle), with CTRBAKE_ROOTFS_DATA_ROOT as its data-root.
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
CTRBAKE_ROOTFS_DAEMON_JSON[doc] = "1: install the bundle's daemon.json (from ctrbake loader: the store's storage driver) as /etc/docker/daemon.json, with the data-root set."

IMAGE_INSTALL:append = " ${CTRBAKE_ROOTFS_STORE}"
ROOTFS_POSTPROCESS_COMMAND += "ctrbake_rootfs_check_store ctrbake_rootfs_extract_store ctrbake_rootfs_engine_config"
CTRBAKE_ROOTFS_STORE_DIR = "${IMAGE_ROOTFS}${CTRBAKE_ROOTFS_PAYLOAD_DIR}/${CTRBAKE_ROOTFS_STORE}"

python __anonymous() {
    stores = (d.getVar('CTRBAKE_ROOTFS_STORE') or '').split()
    if len(stores) != 1:
        bb.fatal('%s: set CTRBAKE_ROOTFS_STORE to exactly one bundle recipe (CTRBAKE_LAYOUT = "rootfs"); two engine stores cannot share a data-root, got %r'
                 % (d.getVar('PN'), ' '.join(stores)))
}

# The bundle's manifest, read as JSON: a docker store, before anything is extracted.
python ctrbake_rootfs_check_store() {
    import os, ctrbake_bb.rootfsstore
    try:
        ctrbake_bb.rootfsstore.store_driver(os.path.join(d.getVar('CTRBAKE_ROOTFS_STORE_DIR'), 'manifest.json'))
    except ValueError as e:
        bb.fatal('ctrbake: %s' % e)
}

ctrbake_rootfs_extract_store() {
	store_dir="${CTRBAKE_ROOTFS_STORE_DIR}"
	data_root="${IMAGE_ROOTFS}${CTRBAKE_ROOTFS_DATA_ROOT}"
	if [ ! -f "$store_dir/store.tar" ]; then
		bbfatal "ctrbake: $store_dir/store.tar is not in the rootfs: is ${CTRBAKE_ROOTFS_STORE} a bundle with CTRBAKE_LAYOUT = \"rootfs\"?"
	fi
	if [ -n "$(ls -A "$data_root" 2>/dev/null)" ]; then
		bbfatal "ctrbake: $data_root is not empty: the store must be the only content of the data-root"
	fi
	mkdir -p "$data_root"
	tar -C "$data_root" --numeric-owner --same-owner --preserve-permissions \
		--xattrs --xattrs-include='*' -xf "$store_dir/store.tar"
	rm -f "$store_dir/store.tar"
}

# The loader's daemon.json for the store, moved to /etc/docker with the data-root set.
python ctrbake_rootfs_engine_config() {
    import os, ctrbake_bb.rootfsstore
    store_dir = d.getVar('CTRBAKE_ROOTFS_STORE_DIR')
    shipped = os.path.join(store_dir, 'daemon.json')
    if d.getVar('CTRBAKE_ROOTFS_DAEMON_JSON') != '1':
        return
    try:
        text = ctrbake_bb.rootfsstore.engine_config(shipped, os.path.join(store_dir, 'manifest.json'), d.getVar('CTRBAKE_ROOTFS_DATA_ROOT'))
    except ValueError as e:
        bb.fatal('ctrbake: %s' % e)
    etc = os.path.join(d.getVar('IMAGE_ROOTFS'), 'etc', 'docker')
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(etc, 'daemon.json'), 'w', encoding='utf-8') as f:
        f.write(text)
    os.unlink(shipped)
}
