# ctrbake.bbclass: a recipe that bakes container images into a bundle package.
#
#   inherit ctrbake
#   CTRBAKE_IMAGES = "registry.example.com/app:1.4@sha256:<digest>"
#   CTRBAKE_LAYOUT = "split"
#
# SRC_URI             one ctrbake://REGISTRY/REPO[:TAG]@sha256:...;platform=OS/ARCH[/VARIANT]
#                     entry per image (CTRBAKE_IMAGES and CTRBAKE_COMPOSE), generated here.
# do_fetch            BitBake's fetcher with this layer's ctrbake:// method (lib/ctrbake-bb/
#                     ctrbake_bb/fetcher.py): each image becomes ONE verified file in DL_DIR, so
#                     PREMIRRORS/MIRRORS, BB_NO_NETWORK and --runall=fetch work as for any source.
# do_unpack           the fetcher re-verifies each file and unpacks its blobs into
#                     ${UNPACKDIR}/ctrbake/cache; a postfunc writes the bundle's lock.
# do_ctrbake_bake     ctrbake bake (offline; ctrbake's own builder as the build user where it
#                     serves the bake, else a private engine as root) + ctrbake loader
# do_install          ships the loader's rootfs overlay: the opaque payload (archives or a
#                     SquashFS), the device script, init units and engine config.
# docs/yocto.md explains the variables, privileges and offline builds.

CTRBAKE_IMAGES ?= ""
CTRBAKE_IMAGES[doc] = "Image references to bake, space separated, each pinned by digest (NAME:TAG@sha256:...)."
CTRBAKE_COMPOSE ?= ""
CTRBAKE_COMPOSE[doc] = "Path of a compose file whose services.*.image are baked too (pinned by digest); e.g. ${THISDIR}/files/compose.yaml."
CTRBAKE_ALLOW_TAGS ?= "0"
CTRBAKE_ALLOW_TAGS[doc] = "1: accept references without a digest (development only: the bundle then depends on what a tag points to when DL_DIR is first filled)."
CTRBAKE_PLATFORM ?= ""
CTRBAKE_PLATFORM[doc] = "OCI platform of the device (linux/arm64/v8, linux/arm/v7, ...). Empty: derived from TARGET_ARCH, TARGET_OS, TUNE_FEATURES and TUNE_PKGARCH, never from the build host."
CTRBAKE_LAYOUT ?= "archive"
CTRBAKE_LAYOUT[doc] = "How the device gets the images: archive, overlay-vfs, split, copy, podman-ro (docs/loader.md), or rootfs (store.tar for the ctrbake-rootfs-store image class)."
CTRBAKE_MODE ?= "${@ctrbake_bb.layouts.defaults(d.getVar('CTRBAKE_LAYOUT'))[0]}"
CTRBAKE_MODE[doc] = "ctrbake bake --mode: archive or store. Default: what CTRBAKE_LAYOUT needs."
CTRBAKE_ENGINE ?= "${@ctrbake_bb.layouts.defaults(d.getVar('CTRBAKE_LAYOUT'))[1]}"
CTRBAKE_ENGINE[doc] = "Engine that bakes and runs the images: docker or podman. Default: docker, podman for podman-ro."
CTRBAKE_STORAGE_DRIVER ?= "${@ctrbake_bb.layouts.defaults(d.getVar('CTRBAKE_LAYOUT'))[2]}"
CTRBAKE_STORAGE_DRIVER[doc] = "Storage driver of the baked store: overlay2 or vfs (docker), overlay or vfs (podman). Default: what CTRBAKE_LAYOUT needs."
CTRBAKE_ARCHIVE_FORMAT ?= "docker-archive"
CTRBAKE_ARCHIVE_FORMAT[doc] = "Archive layout: docker-archive or oci-archive."
CTRBAKE_COMPRESSION ?= "gzip"
CTRBAKE_COMPRESSION[doc] = "Store layouts: SquashFS compression (gzip, zstd, lz4, xz); the device kernel must support it."
CTRBAKE_SQUASHFS_BACKEND ?= "builtin"
CTRBAKE_SQUASHFS_BACKEND[doc] = "Store layouts: SquashFS writer (builtin, tar2sqfs, sqfstar)."
CTRBAKE_INIT ?= "${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'systemd', 'sysvinit', d)}"
CTRBAKE_INIT[doc] = "Init system the generated units are for: systemd, sysvinit or busybox. Default: from DISTRO_FEATURES."
CTRBAKE_PAYLOAD_DIR ?= "/usr/share/ctrbake"
CTRBAKE_PAYLOAD_DIR[doc] = "Read-only payload directory on the device."
CTRBAKE_DATA_DIR ?= ""
CTRBAKE_DATA_DIR[doc] = "Writable loader state on the device. Empty: the loader's default (/var/lib/ctrbake)."
CTRBAKE_DATA_ROOT ?= ""
CTRBAKE_DATA_ROOT[doc] = "Engine data-root on the device. Empty: /var/lib/docker (docker), /var/lib/containers/storage (podman)."
CTRBAKE_BUDGET ?= ""
CTRBAKE_BUDGET[doc] = "Bytes the data partition may take at first boot (512M, 1.5GiB): the bake fails when the bundle does not fit."
CTRBAKE_INSECURE_REGISTRIES ?= ""
CTRBAKE_INSECURE_REGISTRIES[doc] = "HOST:PORT registries spoken to over plain HTTP during do_fetch (space separated)."
CTRBAKE_AUTHFILE ?= ""
CTRBAKE_AUTHFILE[doc] = "Registry credentials for do_fetch (docker config.json or containers auth.json). Not part of the task signature."
CTRBAKE_BUILDER ?= "${@ctrbake_bb.layouts.default_builder(d.getVar('CTRBAKE_MODE'), d.getVar('CTRBAKE_ENGINE'), d.getVar('CTRBAKE_STORAGE_DRIVER'), d.getVar('CTRBAKE_ARCHIVE_FORMAT'))}"
CTRBAKE_BUILDER[doc] = "Who writes the bake: native (ctrbake itself, as the build user: no root, no engine, no sudo) or engine (a private dockerd/podman, needs root: see CTRBAKE_RUNNER). Default: native where it serves the bake (every store: split, copy, rootfs, overlay-vfs, podman-ro), else engine (archive)."
CTRBAKE_RUNNER ?= ""
CTRBAKE_RUNNER[doc] = "With CTRBAKE_BUILDER = engine only: command prefix that runs the bake as root when BitBake does not run as root, e.g. 'sudo -n' (docs/yocto.md#privileges). Empty: BitBake must run as root (privileged build container). Never used by native bakes."
CTRBAKE_NODE ?= "node"
CTRBAKE_NODE[doc] = "Node.js (>= 20.19) that runs the CLI: a HOSTTOOLS name or an absolute path."
CTRBAKE_BIN ?= "${CTRBAKE_LAYERDIR}/bin/ctrbake.js"
CTRBAKE_BIN[doc] = "The ctrbake CLI script. Default: this layer's bin/ctrbake.js (run npm ci && npm run build in the layer once)."
CTRBAKE_CLI_ID ?= "${@ctrbake_bb.refs.cli_id(d.getVar('CTRBAKE_BIN'))}"
CTRBAKE_CLI_ID[doc] = "What identifies the CLI in task signatures (default: its package.json version): a new value re-runs the bake."
# The signature holds the value (ctrbake@VERSION), not the path it was read from.
CTRBAKE_CLI_ID[vardepvalue] = "${CTRBAKE_CLI_ID}"
CTRBAKE_HOST_PATH ?= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CTRBAKE_HOST_PATH[doc] = "PATH the CLI runs with: where the build host's dockerd/podman/skopeo and their helpers are (they are not HOSTTOOLS)."
CTRBAKE_ENGINE_RDEPENDS ?= "${@ctrbake_bb.layouts.ENGINE_RDEPENDS.get(d.getVar('CTRBAKE_ENGINE'), '')}"
CTRBAKE_ENGINE_RDEPENDS[doc] = "Runtime dependency on the engine package (meta-virtualization's docker or podman)."

# The images as sources: set by the anonymous function below, one URL per image.
CTRBAKE_SRC_URI = ""
SRC_URI += "${CTRBAKE_SRC_URI}"
# Where do_unpack puts them (UNPACKDIR; WORKDIR on releases without it) and the bake reads them.
CTRBAKE_SRC = "${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}/ctrbake"
CTRBAKE_CACHE = "${CTRBAKE_SRC}/cache"
CTRBAKE_LOCK = "${CTRBAKE_SRC}/ctrbake.lock.json"
# The sources are the unpacked images: OE-core's do_qa_unpack warns when S (default
# ${UNPACKDIR}/${BP}) does not exist after do_unpack of a non-empty SRC_URI.
S = "${CTRBAKE_SRC}"
CTRBAKE_B = "${WORKDIR}/ctrbake-bake"

# A bundle compiles nothing: no toolchain, no debug split, no strip of container files.
INHIBIT_DEFAULT_DEPS = "1"
INHIBIT_PACKAGE_STRIP = "1"
INHIBIT_PACKAGE_DEBUG_SPLIT = "1"
PACKAGES = "${PN}"
FILES:${PN} = "/etc /usr /lib /var /opt"
RDEPENDS:${PN} += "${CTRBAKE_ENGINE_RDEPENDS}"
do_configure[noexec] = "1"
do_compile[noexec] = "1"

# Never part of a signature: host paths and how the CLI is reached, not what it produces.
CTRBAKE_HOST_VARS = "CTRBAKE_LAYERDIR CTRBAKE_BIN CTRBAKE_NODE CTRBAKE_RUNNER CTRBAKE_HOST_PATH CTRBAKE_AUTHFILE CTRBAKE_COMPOSE CTRBAKE_SRC CTRBAKE_CACHE CTRBAKE_LOCK UNPACKDIR WORKDIR DL_DIR BB_NO_NETWORK"

python __anonymous() {
    import ctrbake_bb.layouts, ctrbake_bb.platform, ctrbake_bb.refs, ctrbake_bb.imagearchive, ctrbake_bb.fetcher
    pn = d.getVar('PN')
    # The ctrbake:// fetch method, in this process's list of BitBake fetchers (once). Only
    # recipes that inherit this class parse this: no other recipe sees it.
    ctrbake_bb.fetcher.register()

    if not d.getVar('CTRBAKE_PLATFORM'):
        try:
            d.setVar('CTRBAKE_PLATFORM', ctrbake_bb.platform.oci_platform(
                d.getVar('TARGET_ARCH'), d.getVar('TARGET_OS') or 'linux',
                d.getVar('TUNE_FEATURES') or '', d.getVar('TUNE_PKGARCH') or '',
                d.getVar('MACHINEOVERRIDES') or ''))
        except ValueError as e:
            raise bb.parse.SkipRecipe('ctrbake: %s' % e)

    layout = d.getVar('CTRBAKE_LAYOUT')
    try:
        why = ctrbake_bb.layouts.check(layout, d.getVar('CTRBAKE_MODE'), d.getVar('CTRBAKE_ENGINE'), d.getVar('CTRBAKE_STORAGE_DRIVER'))
    except ValueError as e:
        why = str(e)
    if why:
        bb.fatal('%s: %s' % (pn, why))

    images = (d.getVar('CTRBAKE_IMAGES') or '').split()
    compose = d.getVar('CTRBAKE_COMPOSE') or ''
    compose_text = ''
    if compose:
        if not os.path.isfile(compose):
            bb.fatal('%s: CTRBAKE_COMPOSE %s does not exist' % (pn, compose))
        bb.parse.mark_dependency(d, compose)
        with open(compose, encoding='utf-8') as f:
            compose_text = f.read()
        if not ctrbake_bb.refs.compose_images(compose_text):
            bb.fatal('%s: CTRBAKE_COMPOSE %s has no services.*.image' % (pn, compose))
        d.appendVarFlag('do_ctrbake_bake', 'file-checksums', ' %s:True' % compose)
    if not images and not compose:
        bb.fatal('%s: set CTRBAKE_IMAGES (references pinned by digest) or CTRBAKE_COMPOSE' % pn)

    if d.getVar('CTRBAKE_ALLOW_TAGS') != '1':
        bad = ctrbake_bb.refs.unpinned(images)
        if bad:
            bb.fatal('%s: %s' % (pn, ctrbake_bb.refs.pin_error(bad, 'CTRBAKE_IMAGES')))
        bad = ctrbake_bb.refs.unpinned(ctrbake_bb.refs.compose_images(compose_text))
        if bad:
            bb.fatal('%s: %s' % (pn, ctrbake_bb.refs.pin_error(bad, 'CTRBAKE_COMPOSE ' + os.path.basename(compose))))

    d.setVar('CTRBAKE_LOCK_ID', ctrbake_bb.refs.lock_id(d.getVar('CTRBAKE_PLATFORM'), images, compose_text))
    try:
        urls = ctrbake_bb.imagearchive.src_uri(images + ctrbake_bb.refs.compose_images(compose_text), d.getVar('CTRBAKE_PLATFORM'))
    except ValueError as e:
        bb.fatal('%s: %s' % (pn, e))
    d.setVar('CTRBAKE_SRC_URI', ' '.join(urls))
}

# --- shell helpers (set -e is on in BitBake shell tasks) ---

# Resolves node, checks its version, then runs the CLI with the host PATH (for the engines).
ctrbake_cli() {
	ctrbake_node=$(command -v ${CTRBAKE_NODE} || true)
	if [ -z "$ctrbake_node" ]; then
		bbfatal "ctrbake: node (${CTRBAKE_NODE}) not found: install Node.js >= 20.19 on the build host (HOSTTOOLS picks it up) or set CTRBAKE_NODE to its absolute path"
	fi
	if [ ! -f "${CTRBAKE_BIN}" ]; then
		bbfatal "ctrbake: ${CTRBAKE_BIN} not found: set CTRBAKE_BIN, or run 'npm ci && npm run build' in the layer"
	fi
	PATH="${CTRBAKE_HOST_PATH}" "$ctrbake_node" "${CTRBAKE_BIN}" "$@"
}

# Same, through CTRBAKE_RUNNER (the one place that may gain root).
ctrbake_cli_privileged() {
	ctrbake_node=$(command -v ${CTRBAKE_NODE} || true)
	[ -n "$ctrbake_node" ] || bbfatal "ctrbake: node (${CTRBAKE_NODE}) not found: install Node.js >= 20.19 or set CTRBAKE_NODE"
	PATH="${CTRBAKE_HOST_PATH}" ${CTRBAKE_RUNNER} "$ctrbake_node" "$@"
}

# The engine path needs root (a native bake never calls this). Fails before anything is
# baked when there is no way to get it.
ctrbake_check_privileges() {
	if [ -n "${CTRBAKE_RUNNER}" ]; then
		if ! ctrbake_cli_privileged -e 'process.exit(process.getuid() === 0 ? 0 : 1)' </dev/null; then
			bbfatal "ctrbake: CTRBAKE_RUNNER = \"${CTRBAKE_RUNNER}\" does not run node as root without a password: add a sudoers rule for $(id -un) and node (docs/yocto.md#privileges), or build as root in a privileged container (docs/cqfd.md)"
		fi
	elif [ "$(id -u)" != 0 ]; then
		bbfatal "ctrbake: CTRBAKE_BUILDER = \"engine\" runs a private container engine and needs root, but BitBake runs as $(id -un): leave CTRBAKE_BUILDER unset for a layout the native builder serves (docs/yocto.md#privileges), or set CTRBAKE_RUNNER = \"sudo -n\" with a sudoers rule for node, or build as root in a privileged container (docs/cqfd.md)"
	fi
}

# --- do_fetch and do_unpack: BitBake's, with the ctrbake:// fetch method ---
# do_fetch is the only task that uses the network (base.bbclass gives it [network]); its
# signature holds SRC_URI, hence every image's digest and the platform.

# After the fetcher unpacked each image (verified) into ${CTRBAKE_SRC}: the bundle's lock.
python ctrbake_do_unpack() {
    import ctrbake_bb.fetcher
    urls = (d.getVar('CTRBAKE_SRC_URI') or '').split()
    ctrbake_bb.fetcher.merge_unpacked_locks(urls, d.getVar('UNPACKDIR') or d.getVar('WORKDIR'), d.getVar('CTRBAKE_LOCK'), d)
}
ctrbake_do_unpack[vardeps] += "CTRBAKE_SRC_URI"
ctrbake_do_unpack[vardepsexclude] += "${CTRBAKE_HOST_VARS}"
do_unpack[postfuncs] += "ctrbake_do_unpack"
ctrbake_cli[vardepsexclude] += "${CTRBAKE_HOST_VARS}"
ctrbake_cli_privileged[vardepsexclude] += "${CTRBAKE_HOST_VARS}"
ctrbake_check_privileges[vardepsexclude] += "${CTRBAKE_HOST_VARS}"

# --- do_ctrbake_bake: offline; native as the build user, or the engine path as root ---

do_ctrbake_bake() {
	case "${CTRBAKE_BUILDER}" in
	native) bake_cli=ctrbake_cli ;;
	engine)
		ctrbake_check_privileges
		bake_cli=ctrbake_cli_privileged ;;
	*) bbfatal "ctrbake: CTRBAKE_BUILDER = \"${CTRBAKE_BUILDER}\" is not native or engine" ;;
	esac
	lock="${CTRBAKE_LOCK}"
	[ -s "$lock" ] || bbfatal "ctrbake: $lock is missing: do_unpack did not run for ${PN} (bitbake ${PN} -c unpack)"
	out="${CTRBAKE_B}/out"
	overlay="${CTRBAKE_B}/rootfs"
	budget_arg=""
	if [ -n "${CTRBAKE_BUDGET}" ]; then
		budget_arg="--budget ${CTRBAKE_BUDGET}"
		# rootfs is no loader layout: the bake's default model (from mode and driver) applies
		[ "${CTRBAKE_LAYOUT}" = "rootfs" ] || budget_arg="$budget_arg --layout ${CTRBAKE_LAYOUT}"
	fi
	# --archive-format belongs to archive mode only (a store bake refuses it)
	format_arg=""
	[ "${CTRBAKE_MODE}" = "archive" ] && format_arg="--archive-format ${CTRBAKE_ARCHIVE_FORMAT}"
	# SOURCE_DATE_EPOCH is passed explicitly: a runner such as sudo resets the environment
	# (its sudoers rule must keep it, see docs/yocto.md); the manifest check below proves it.
	# shellcheck disable=SC2086
	if [ "$bake_cli" = ctrbake_cli ]; then
		SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" ctrbake_cli bake --offline --builder native \
			--lock "$lock" --cache "${CTRBAKE_CACHE}" \
			--mode ${CTRBAKE_MODE} --engine ${CTRBAKE_ENGINE} --storage-driver ${CTRBAKE_STORAGE_DRIVER} \
			$format_arg $budget_arg -o "$out"
	else
		SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" ctrbake_cli_privileged "${CTRBAKE_BIN}" bake --offline --builder engine \
			--lock "$lock" --cache "${CTRBAKE_CACHE}" \
			--mode ${CTRBAKE_MODE} --engine ${CTRBAKE_ENGINE} --storage-driver ${CTRBAKE_STORAGE_DRIVER} \
			$format_arg $budget_arg -o "$out"
	fi
	if [ "$bake_cli" = ctrbake_cli_privileged ] && [ -n "${CTRBAKE_RUNNER}" ]; then
		# Give the outputs back to the build user, so BitBake can clean and package them.
		ctrbake_cli_privileged "${CTRBAKE_LAYERDIR}/lib/ctrbake-bb/chown-tree.mjs" "$(id -u):$(id -g)" "${CTRBAKE_B}"
	fi
	if ! grep -q "\"sourceDateEpoch\": ${SOURCE_DATE_EPOCH}," "$out/manifest.json"; then
		bbfatal "ctrbake: the bake did not get SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} (see sourceDateEpoch in $out/manifest.json): CTRBAKE_RUNNER must keep it, e.g. sudoers 'Defaults env_keep += SOURCE_DATE_EPOCH'"
	fi

	mkdir -p "$overlay"
	loader_args=""
	[ -z "${CTRBAKE_DATA_DIR}" ] || loader_args="$loader_args --data-dir ${CTRBAKE_DATA_DIR}"
	[ -z "${CTRBAKE_DATA_ROOT}" ] || loader_args="$loader_args --data-root ${CTRBAKE_DATA_ROOT}"
	if [ "${CTRBAKE_MODE}" = "store" ]; then
		loader_args="$loader_args --squashfs-backend ${CTRBAKE_SQUASHFS_BACKEND} --compression ${CTRBAKE_COMPRESSION}"
	fi
	if [ "${CTRBAKE_LAYOUT}" = "rootfs" ]; then
		# The image class ctrbake-rootfs-store extracts store.tar into IMAGE_ROOTFS. The engine
		# config comes from the loader (what it writes for a store layout), shipped beside the store.
		# shellcheck disable=SC2086
		SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" ctrbake_cli loader --manifest "$out/manifest.json" \
			--layout copy --init ${CTRBAKE_INIT} $loader_args -o "${CTRBAKE_B}/engine"
		mkdir -p "$overlay${CTRBAKE_PAYLOAD_DIR}/${PN}"
		cp "$out/store.tar" "$out/manifest.json" "${CTRBAKE_B}/engine/etc/docker/daemon.json" "$overlay${CTRBAKE_PAYLOAD_DIR}/${PN}/"
		return 0
	fi
	# shellcheck disable=SC2086
	SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" ctrbake_cli loader --manifest "$out/manifest.json" \
		--layout ${CTRBAKE_LAYOUT} --init ${CTRBAKE_INIT} --payload-dir "${CTRBAKE_PAYLOAD_DIR}" \
		$loader_args -o "$overlay"
}
do_ctrbake_bake[vardeps] += "CTRBAKE_SRC_URI CTRBAKE_LOCK_ID CTRBAKE_PLATFORM CTRBAKE_LAYOUT CTRBAKE_MODE CTRBAKE_ENGINE CTRBAKE_BUILDER \
    CTRBAKE_STORAGE_DRIVER CTRBAKE_ARCHIVE_FORMAT CTRBAKE_COMPRESSION CTRBAKE_SQUASHFS_BACKEND CTRBAKE_INIT \
    CTRBAKE_PAYLOAD_DIR CTRBAKE_DATA_DIR CTRBAKE_DATA_ROOT CTRBAKE_BUDGET CTRBAKE_CLI_ID"
do_ctrbake_bake[vardepsexclude] += "${CTRBAKE_HOST_VARS}"
# Not for network use (the bake reads only what do_unpack verified; its engine has no network): BitBake
# isolates tasks without this flag in a new user namespace, where the engine path's engine
# cannot mount its storage, and a setuid runner (sudo) cannot gain root. (A native bake needs
# neither; the flag is per task, and the engine path must keep working.)
do_ctrbake_bake[network] = "1"
do_ctrbake_bake[dirs] = "${CTRBAKE_B}"
do_ctrbake_bake[cleandirs] = "${CTRBAKE_B}"
addtask ctrbake_bake after do_unpack before do_install

ctrbake_do_install() {
	cp -R --no-preserve=ownership "${CTRBAKE_B}/rootfs/." "${D}/"
}
ctrbake_do_install[vardepsexclude] += "${CTRBAKE_HOST_VARS}"

EXPORT_FUNCTIONS do_install
