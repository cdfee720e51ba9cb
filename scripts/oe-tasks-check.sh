#!/usr/bin/env bash
# OE-core's own tasks on the layer's example bundles: do_install under pseudo, do_package,
# do_packagedata, do_package_qa, do_package_write_deb, then a second build from a fresh TMPDIR
# that must restore everything from SSTATE_DIR (setscene) without baking again.
#
#   CTRBAKE_BITBAKE_DIR=/path/to/bitbake CTRBAKE_OECORE_DIR=/path/to/openembedded-core \
#     CTRBAKE_BB_USER=builder scripts/oe-tasks-check.sh
#
# A CHECK RIG, not a way to build products. OE-core builds its native tools (pseudo, rpm,
# quilt, patch, dpkg, binutils-cross...) from source, which needs network this machine does
# not have. The rig takes them from the build host instead:
#   - ASSUME_PROVIDED for the native recipes the example bundles' tasks depend on (quilt,
#     patch, rpm, file, dwarfsrcfiles, dpkg, opkg-utils, binutils-cross), with
#     RPMDEPS pointed at the host's /usr/lib/rpm/rpmdeps and dpkg-deb/quilt added to HOSTTOOLS;
#   - pseudo (virtual/fakeroot-native) through a small recipe, pseudo-host-native, in a rig
#     layer written to the work dir, whose sysroot holds symlinks to the host's pseudo and
#     libpseudo.so (ASSUME_PROVIDED cannot be used for it: do_package_setscene depends on
#     virtual/fakeroot-native and bitbake's scenequeue then fails with an IndexError);
#   - INHERIT:remove = "uninative" (its tarball is a download), CONNECTIVITY_CHECK_URIS = "";
#   - rig-engine-standin RPROVIDES docker and podman (meta-virtualization is not here), and
#     rig-control, a plain recipe packaged alongside for comparison.
# Nothing else of OE-core is changed: its bitbake.conf, classes, sanity checks and QA
# (ERROR_QA/WARN_QA defaults), nodistro, MACHINE qemux86-64, PACKAGE_CLASSES package_deb.
#
# Checks: the first build (fixture registry up) runs do_fetch .. do_package_write_deb of
# every bundle with no QA issue and no warning; each .deb holds the layout's files, all
# root/root, Depends on the engine; a second build with a fresh TMPDIR, the same SSTATE_DIR
# and DL_DIR, the registry stopped and BB_NO_NETWORK runs only setscene (and noexec) tasks,
# and its .deb files are byte-identical. CTRBAKE_OE_RECIPES overrides the bundle list.
#
# Host packages this rig needs (Debian 12 names; deliberately NOT in scripts/install-deps.sh,
# CI does not run this check): pseudo libpseudo rpm quilt dpkg, plus what OE-core's sanity
# check wants on the host (the `oecore` mode of scripts/bitbake-check.sh needs the same).
#
# Runs as root: the fixture registry (test/integration/bitbake-fixtures.ts) runs as root,
# bitbake runs as CTRBAKE_BB_USER (OE-core refuses root), and the bake gets root through
# CTRBAKE_RUNNER = "sudo -n": that user needs the sudoers rule of docs/yocto.md#privileges.
# The layer must be built (npm run build). Took 3 to 6 min on 2 cores (two full parses of
# OE-core, 1 to 7 min each depending on the machine's load; BB_NUMBER_THREADS=2).
# The work dir is a temp dir (kept with CTRBAKE_KEEP=1).
set -euo pipefail

LAYER=$(cd "$(dirname "$0")/.." && pwd)
: "${CTRBAKE_BITBAKE_DIR:?set CTRBAKE_BITBAKE_DIR to a bitbake checkout}"
: "${CTRBAKE_OECORE_DIR:?set CTRBAKE_OECORE_DIR to an openembedded-core checkout}"
: "${CTRBAKE_BB_USER:?set CTRBAKE_BB_USER to the non-root user bitbake runs as (with the sudoers rule of docs/yocto.md#privileges)}"
BITBAKE_DIR=$(cd "$CTRBAKE_BITBAKE_DIR" && pwd)
OE_DIR=$(cd "$CTRBAKE_OECORE_DIR" && pwd)
BB_USER=$CTRBAKE_BB_USER
RECIPES=${CTRBAKE_OE_RECIPES:-ctrbake-example-archive ctrbake-example-split ctrbake-example-podman-ro ctrbake-example-compose ctrbake-example-rootfs}

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (fixture registry, user switch); bitbake itself runs as CTRBAKE_BB_USER"
id "$BB_USER" >/dev/null 2>&1 || fail "no user $BB_USER"
[ "$(id -u "$BB_USER")" != 0 ] || fail "CTRBAKE_BB_USER must not be root (OE-core's sanity check)"
runuser -u "$BB_USER" -- sudo -n "$(command -v node)" -e 'process.exit(process.getuid() === 0 ? 0 : 1)' ||
	fail "sudo -n node does not give $BB_USER root: add the sudoers rule of docs/yocto.md#privileges"
HOST_PSEUDO=$(command -v pseudo || true)
HOST_LIBPSEUDO=$(find /usr/lib -name libpseudo.so -path '*pseudo*' 2>/dev/null | head -n 1)
{ [ -n "$HOST_PSEUDO" ] && [ -n "$HOST_LIBPSEUDO" ]; } || fail "install the host's pseudo: apt-get install pseudo libpseudo"
[ -x /usr/lib/rpm/rpmdeps ] || fail "install rpm (/usr/lib/rpm/rpmdeps): apt-get install rpm"
command -v quilt >/dev/null || fail "install quilt"
command -v dpkg-deb >/dev/null || fail "install dpkg"
[ -f "$LAYER/dist/cli/main.js" ] || fail "build the layer's CLI first: npm run build"

rev() { (cd "$1" && git log -1 --format='%H (%cd)' 2>/dev/null) || echo unknown; }
echo "bitbake: $BITBAKE_DIR $(grep -m1 '__version__' "$BITBAKE_DIR/lib/bb/__init__.py") commit $(rev "$BITBAKE_DIR")"
echo "openembedded-core: $OE_DIR commit $(rev "$OE_DIR") series $(sed -n 's/^LAYERSERIES_CORENAMES = "\(.*\)"/\1/p' "$OE_DIR/meta/conf/layer.conf")"
echo "layer: $LAYER commit $(rev "$LAYER")"
echo "host: pseudo $("$HOST_PSEUDO" -V 2>&1 | head -n 1 | sed 's/pseudo version //') ($HOST_LIBPSEUDO), $(rpm --version), dpkg-deb $(dpkg-deb --version | head -n 1 | sed 's/.*version \([^ ]*\).*/\1/'), $(quilt --version | head -n 1 | sed 's/^/quilt /')"

WORK=$(mktemp -d /tmp/ctrbake-oe.XXXXXX)
chmod 755 "$WORK"
FIXTURES_PID=""
cleanup() {
	if [ -n "$FIXTURES_PID" ]; then kill "$FIXTURES_PID" 2>/dev/null || true; wait "$FIXTURES_PID" 2>/dev/null || true; fi
	if [ "${CTRBAKE_KEEP:-0}" = 1 ]; then echo "oe-tasks-check: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

(cd "$LAYER" && exec node_modules/.bin/vite-node test/integration/bitbake-fixtures.ts -- serve "$WORK/refs.json") >"$WORK/fixtures.log" 2>&1 &
FIXTURES_PID=$!
for _ in $(seq 180); do [ -s "$WORK/refs.json" ] && break; sleep 0.5; done
[ -s "$WORK/refs.json" ] || { cat "$WORK/fixtures.log" >&2; fail "the fixture registry did not start"; }
ref() { jq -r ".$1" "$WORK/refs.json"; }

# --- the rig layer: the host's pseudo as virtual/fakeroot-native ---
R=$WORK/meta-hostnative
mkdir -p "$R/conf" "$R/recipes"
cat >"$R/conf/layer.conf" <<-EOF
BBPATH .= ":\${LAYERDIR}"
BBFILES += "\${LAYERDIR}/recipes/*.bb"
BBFILE_COLLECTIONS += "ctrbake-hostnative"
BBFILE_PATTERN_ctrbake-hostnative = "^\${LAYERDIR}/"
BBFILE_PRIORITY_ctrbake-hostnative = "1"
LAYERDEPENDS_ctrbake-hostnative = "core"
LAYERSERIES_COMPAT_ctrbake-hostnative = "$(sed -n 's/^LAYERSERIES_CORENAMES = "\(.*\)"/\1/p' "$OE_DIR/meta/conf/layer.conf")"
EOF
cat >"$R/recipes/pseudo-host-native.bb" <<-'EOF'
SUMMARY = "ctrbake check rig only: the build host's pseudo as virtual/fakeroot-native"
LICENSE = "LGPL-2.1-only"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/LGPL-2.1-only;md5=1a6d268fd218675ffea8be556788b780"
PROVIDES = "virtual/fakeroot-native"
INHIBIT_DEFAULT_DEPS = "1"
inherit native
do_configure[noexec] = "1"
do_compile[noexec] = "1"
do_install() {
	install -d ${D}${bindir} ${D}${prefix}/lib/pseudo/lib
	ln -s ${HOST_PSEUDO} ${D}${bindir}/pseudo
	ln -s ${HOST_LIBPSEUDO} ${D}${prefix}/lib/pseudo/lib/libpseudo.so
}
EOF

# A plain OE recipe packaged by the same rig, to tell what comes from OE-core/the rig (e.g.
# the mode dpkg-deb records for the package's "./") from what comes from the ctrbake class.
cat >"$R/recipes/rig-control.bb" <<-'EOF'
SUMMARY = "ctrbake check rig only: a plain recipe packaged like the bundles, for comparison"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"
INHIBIT_DEFAULT_DEPS = "1"
do_configure[noexec] = "1"
do_compile[noexec] = "1"
do_install() {
	install -d ${D}${datadir}/${BPN}
	echo control >${D}${datadir}/${BPN}/hello
}
EOF

# meta-virtualization is not here: a stand-in package RPROVIDES docker and podman, so the
# bundles keep their default RDEPENDS (CTRBAKE_ENGINE_RDEPENDS) and package QA's build-deps
# check and the .deb Depends see them.
cat >"$R/recipes/rig-engine-standin.bb" <<-'EOF'
SUMMARY = "ctrbake check rig only: stands in for meta-virtualization's docker and podman packages"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"
INHIBIT_DEFAULT_DEPS = "1"
PACKAGES = "${PN}"
RPROVIDES:${PN} = "docker podman"
ALLOW_EMPTY:${PN} = "1"
do_configure[noexec] = "1"
do_compile[noexec] = "1"
EOF

# --- the build dir, as the user ---
B=$WORK/build
mkdir -p "$B/conf"
cat >"$B/conf/bblayers.conf" <<-EOF
POKY_BBLAYERS_CONF_VERSION = "2"
BBPATH = "\${TOPDIR}"
BBFILES ?= ""
BBLAYERS = "$OE_DIR/meta $LAYER $R"
EOF
cat >"$B/conf/local.conf" <<-EOF
MACHINE ?= "qemux86-64"
DISTRO ?= "nodistro"
PACKAGE_CLASSES = "package_deb"
BB_NUMBER_THREADS = "2"
PARALLEL_MAKE = "-j 2"
DL_DIR = "\${TOPDIR}/downloads"
SSTATE_DIR = "\${TOPDIR}/sstate-cache"
CONF_VERSION = "2"

# --- check rig: native tools from the build host (see scripts/oe-tasks-check.sh) ---
CONNECTIVITY_CHECK_URIS = ""
INHERIT:remove = "uninative"
ASSUME_PROVIDED += "quilt-native patch-native patch-replacement-native rpm-native file-native \\
    dwarfsrcfiles-native dpkg-native opkg-utils-native binutils-cross-\${TARGET_ARCH}"
PREFERRED_PROVIDER_virtual/fakeroot-native = "pseudo-host-native"
PSEUDO_SYSROOT = "\${COMPONENTS_DIR}/\${BUILD_ARCH}/pseudo-host-native"
HOST_PSEUDO = "$HOST_PSEUDO"
HOST_LIBPSEUDO = "$HOST_LIBPSEUDO"
RPMDEPS:forcevariable = "/usr/lib/rpm/rpmdeps --alldeps --define '__font_provides %{nil}'"
HOSTTOOLS += "dpkg-deb quilt"

# --- the examples: images on the fixture registry ---
CTRBAKE_EXAMPLE_APP = "$(ref sample)"
CTRBAKE_EXAMPLE_COMPOSE = "$WORK/compose.yaml"
CTRBAKE_EXAMPLE_REGISTRIES = "$(ref host)"
CTRBAKE_RUNNER = "sudo -n"
BBMASK += "$LAYER/recipes-examples/images/"
EOF
cat >"$WORK/compose.yaml" <<-EOF
services:
  app:
    image: $(ref sample)
  multi:
    image: "$(ref multi)"
EOF
cat >"$B/conf/fresh.conf" <<-'EOF'
TMPDIR = "${TOPDIR}/tmp-fresh"
BB_NO_NETWORK = "1"
EOF
chown -R "$BB_USER" "$WORK"

# bb LOG ARGS...: bitbake as the user, in a clean environment, from the build dir
# shellcheck disable=SC2016
bb() {
	local log=$1; shift
	(cd "$WORK" && runuser -u "$BB_USER" -- env -i HOME="$WORK" USER="$BB_USER" LANG=C.UTF-8 \
		PATH=/usr/local/bin:/usr/bin:/bin BITBAKEDIR="$BITBAKE_DIR" \
		bash -c '. "$1/oe-init-build-env" "$2" >/dev/null && shift 2 && bitbake "$@"' bash "$OE_DIR" "$B" "$@") >"$log" 2>&1
}
# recipe:do_task of every task that ran (setscene tasks keep their _setscene suffix)
executed() {
	sed -n 's/^NOTE: Running \(setscene \)\{0,1\}task [0-9]* of [0-9]* (\(virtual:native:\)\{0,1\}.*\/\([^/]*\)\.bb:\(do_[a-z_]*\))$/\3:\4/p' "$1"
}
deb_of() { find "$B/$1/deploy/deb" -name "$2_*.deb" | head -n 1; }

# --- 1. build with network (fetch from the registry), OE-core's tasks ---
T0=$(date +%s)
# shellcheck disable=SC2086
bb "$WORK/build1.log" $RECIPES rig-control || { tail -n 80 "$WORK/build1.log" >&2; fail "first build failed"; }
echo "first build: $(($(date +%s) - T0)) s, $(grep -o 'Tasks Summary: .*' "$WORK/build1.log")"
executed "$WORK/build1.log" >"$WORK/tasks1.txt"
for r in $RECIPES; do
	for t in do_fetch do_ctrbake_bake do_install do_package do_packagedata do_package_qa do_package_write_deb do_populate_lic do_create_spdx; do
		grep -qx "$r:$t" "$WORK/tasks1.txt" || { cat "$WORK/tasks1.txt" >&2; fail "$r:$t did not run"; }
	done
done
pass "first build ran, for each of $RECIPES: do_fetch do_ctrbake_bake do_install(pseudo) do_package do_packagedata do_package_qa do_package_write_deb ($(wc -l <"$WORK/tasks1.txt") tasks, $(grep -c -- '-native:' "$WORK/tasks1.txt" || true) of them of pseudo-host-native)"
if grep -E 'QA Issue|^WARNING:|^ERROR:' "$WORK/build1.log"; then fail "package QA or bitbake reported the issues above"; fi
for r in $RECIPES; do
	grep -q 'Executing python function do_package_qa' "$B/tmp/work/"*"/$r/1.0/temp/log.do_package_qa" || fail "$r: no do_package_qa log"
done
pass "package QA (OE-core's default ERROR_QA/WARN_QA): no QA issue, no warning"

# What the packages hold: root-owned files, the payload as plain files, the expected layout.
expected() {
	case $1 in
	ctrbake-example-archive) echo 'usr/share/ctrbake/manifest.json usr/sbin/ctrbake-device etc/docker/daemon.json usr/share/ctrbake/archives/.*\.tar' ;;
	ctrbake-example-split) echo 'usr/share/ctrbake/manifest.json usr/sbin/ctrbake-device etc/docker/daemon.json usr/share/ctrbake/store\.sqfs etc/systemd/system/usr-share-ctrbake-store\.mount' ;;
	ctrbake-example-podman-ro) echo 'usr/share/ctrbake/manifest.json usr/sbin/ctrbake-device etc/containers/storage\.conf usr/share/ctrbake/store\.sqfs' ;;
	ctrbake-example-compose) echo 'usr/share/ctrbake/manifest.json usr/sbin/ctrbake-device usr/share/ctrbake/compose/compose\.yaml' ;;
	ctrbake-example-rootfs) echo 'usr/share/ctrbake/ctrbake-example-rootfs/store\.tar usr/share/ctrbake/ctrbake-example-rootfs/manifest\.json' ;;
	*) echo 'usr/share/ctrbake/manifest.json' ;;
	esac
}
control_deb=$(deb_of tmp rig-control)
[ -n "$control_deb" ] || fail "no .deb for the control recipe rig-control"
control_root=$(dpkg-deb -c "$control_deb" | awk '$6 == "./" { print $1 }')
for r in $RECIPES; do
	deb=$(deb_of tmp "$r")
	[ -n "$deb" ] || fail "no .deb for $r"
	dpkg-deb -c "$deb" >"$WORK/$r.list"
	awk '$2 != "root/root" { bad = 1; print } END { exit bad }' "$WORK/$r.list" >&2 || fail "$r: entries not owned by root/root (pseudo)"
	for f in $(expected "$r"); do
		grep -Eq " \./$f( |$)" "$WORK/$r.list" || { cat "$WORK/$r.list" >&2; fail "$r: no $f"; }
	done
	# "./" gets the mode a plain OE recipe's package gets too (the control); nothing else is world-writable
	[ "$(awk '$6 == "./" { print $1 }' "$WORK/$r.list")" = "$control_root" ] || fail "$r: ./ differs from the control recipe's ($control_root)"
	if awk '$6 != "./" && $1 ~ /^d.......w/' "$WORK/$r.list" | grep .; then fail "$r: a world-writable directory"; fi
	depends=$(dpkg-deb -f "$deb" Depends)
	case $r in
	*podman*) engine=podman ;;
	*) engine=docker ;;
	esac
	grep -Eq "(^|[ ,])($engine|rig-engine-standin)( |,|$)" <<<"$depends" || fail "$r: Depends '$depends' does not name the engine ($engine)"
	echo "  $(basename "$deb"): $(wc -l <"$WORK/$r.list") entries, $(stat -c %s "$deb") bytes, Depends: $depends"
done
pass "the .deb packages hold the payload (archives, store.sqfs, store.tar as plain files), ctrbake-device, units and engine config, all root/root, modes as a plain OE recipe's, Depends on the engine"

# --- 2. fresh TMPDIR, same SSTATE_DIR and DL_DIR, registry stopped, BB_NO_NETWORK ---
kill "$FIXTURES_PID"; wait "$FIXTURES_PID" 2>/dev/null || true; FIXTURES_PID=""
T0=$(date +%s)
# shellcheck disable=SC2086
bb "$WORK/build2.log" -R conf/fresh.conf $RECIPES || { tail -n 80 "$WORK/build2.log" >&2; fail "second build (fresh TMPDIR) failed"; }
echo "second build: $(($(date +%s) - T0)) s, $(grep -o 'Sstate summary: .*' "$WORK/build2.log"), $(grep -o 'Tasks Summary: .*' "$WORK/build2.log")"
executed "$WORK/build2.log" >"$WORK/tasks2.txt"
if grep -v '_setscene$' "$WORK/tasks2.txt" >"$WORK/real2.txt"; then
	cat "$WORK/real2.txt" >&2; fail "the build from sstate ran tasks that are not setscene tasks"
fi
for r in $RECIPES; do
	grep -qx "$r:do_package_write_deb_setscene" "$WORK/tasks2.txt" || { cat "$WORK/tasks2.txt" >&2; fail "$r: do_package_write_deb not restored from sstate"; }
	grep -q "^$r:do_ctrbake_bake" "$WORK/tasks2.txt" && fail "$r: baked again"
	cmp "$(deb_of tmp "$r")" "$(deb_of tmp-fresh "$r")" || fail "$r: the restored .deb differs"
done
pass "fresh TMPDIR: $(wc -l <"$WORK/tasks2.txt") setscene tasks ($(sed 's/.*://' "$WORK/tasks2.txt" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep=", " }')), no other task, no do_ctrbake_bake, registry down; the .deb files are identical"
echo "oe-tasks-check: all checks passed"
