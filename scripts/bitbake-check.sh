#!/usr/bin/env bash
# Runs the layer's example recipes with a real BitBake (and parses them with OE-core).
#
#   CTRBAKE_BITBAKE_DIR=/path/to/bitbake [CTRBAKE_OECORE_DIR=/path/to/openembedded-core \
#     CTRBAKE_BB_USER=builder] scripts/bitbake-check.sh [tasks|unprivileged|runner|oecore|all]
#
# tasks (default, needs root for the bake's private engines): bitbake alone with a minimal
#   conf written to a temp dir (bitbake.conf, base.bbclass with fetch/unpack/checkuri/install/
#   package tasks, layer.conf) plus this layer. A registry on 127.0.0.1 serves test images. Checks:
#   1. `bitbake -c checkuri` finds the images (ctrbake:// checkstatus); `bitbake --runall=fetch`
#      fills DL_DIR with one ctrbake_*.tar per image and platform;
#   2. a file:// PREMIRRORS made from a copy of that DL_DIR serves a second build dir with an
#      empty DL_DIR, the registry stopped and BB_NO_NETWORK = "1": the bundles build and each
#      package holds the expected files; the same through an http:// PREMIRRORS (wget);
#   3. a second build with nothing changed runs no task;
#   4. another image digest re-runs do_fetch and do_ctrbake_bake (and what follows) only;
#   5. a bundle for an aarch64 target holds the arm64 image (platform from TARGET_ARCH);
#   6. BB_NO_NETWORK with the image in no DL_DIR and no mirror fails in do_fetch (BitBake's
#      network-access error naming the ctrbake:// URL);
#   7. a tag without digest fails at parse time;
#   8. no host path in the signatures; 9. an altered archive on a mirror is refused.
# unprivileged (as root, with CTRBAKE_BB_USER, a user without sudo): see run_unprivileged.
# runner (as root, with CTRBAKE_BB_USER): see run_runner.
# oecore (needs a non-root user, CTRBAKE_BB_USER when run as root): OE-core + this layer
#   parse; CTRBAKE_PLATFORM for each of CTRBAKE_OE_MACHINES (default qemux86-64 qemuarm64
#   qemuarm; each MACHINE is a full re-parse); adding the
#   layer changes no signature of core-image-minimal's tasks (bitbake -S lockedsigs, compared).
#   OE-core's own tasks cannot run here (no network for its native tools' sources).
#
# The work dir is a temp dir (kept with CTRBAKE_KEEP=1). Nothing is written to the layer.
set -euo pipefail

LAYER=$(cd "$(dirname "$0")/.." && pwd)
WHAT=${1:-tasks}
: "${CTRBAKE_BITBAKE_DIR:?set CTRBAKE_BITBAKE_DIR to a bitbake checkout (git clone https://git.openembedded.org/bitbake)}"
BITBAKE_DIR=$(cd "$CTRBAKE_BITBAKE_DIR" && pwd)
[ -x "$BITBAKE_DIR/bin/bitbake" ] || { echo "bitbake-check: $BITBAKE_DIR/bin/bitbake not found" >&2; exit 2; }

WORK=$(mktemp -d /tmp/ctrbake-bb.XXXXXX)
chmod 755 "$WORK"
FIXTURES_PID=""
cleanup() {
	if [ -n "$FIXTURES_PID" ]; then kill "$FIXTURES_PID" 2>/dev/null || true; wait "$FIXTURES_PID" 2>/dev/null || true; fi
	# a bitbake server that is still exiting may write its event log for a moment
	if [ "${CTRBAKE_KEEP:-0}" = 1 ]; then echo "bitbake-check: kept $WORK" >&2; else rm -rf "$WORK" 2>/dev/null || { sleep 3; rm -rf "$WORK"; }; fi
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

bb_version() { (cd "$1" && git log -1 --format='%H (%cd)' 2>/dev/null) || echo unknown; }
echo "bitbake: $BITBAKE_DIR $(grep -m1 '__version__' "$BITBAKE_DIR/lib/bb/__init__.py") commit $(bb_version "$BITBAKE_DIR")"

start_fixtures() {
	(cd "$LAYER" && exec node_modules/.bin/vite-node test/integration/bitbake-fixtures.ts -- serve "$WORK/refs.json") &
	FIXTURES_PID=$!
	for _ in $(seq 120); do [ -s "$WORK/refs.json" ] && break; sleep 0.5; done
	[ -s "$WORK/refs.json" ] || fail "the fixture registry did not start"
}
stop_fixtures() {
	kill "$FIXTURES_PID"; wait "$FIXTURES_PID" || true; FIXTURES_PID=""
}
ref() { jq -r ".$1" "$WORK/refs.json"; }

# A minimal metadata layer: what OE-core's bitbake.conf/base.bbclass provide to a recipe,
# reduced to the tasks a bundle goes through. Collection "core" satisfies LAYERDEPENDS.
write_minimal_layer() {
	local m=$WORK/meta-min
	mkdir -p "$m/conf" "$m/classes"
	cat >"$m/conf/layer.conf" <<-'EOF'
	BBPATH .= ":${LAYERDIR}"
	BBFILE_COLLECTIONS += "core"
	BBFILE_PATTERN_core = "^${LAYERDIR}/"
	BBFILE_PATTERN_IGNORE_EMPTY_core = "1"
	LAYERSERIES_CORENAMES = "wrynose blacksail"
	LAYERSERIES_COMPAT_core = "wrynose blacksail"
	LAYERVERSION_core = "1"
	EOF
	cat >"$m/conf/bitbake.conf" <<-'EOF'
	TMPDIR = "${TOPDIR}/tmp"
	DL_DIR ?= "${TOPDIR}/downloads"
	CACHE = "${TMPDIR}/cache"
	PERSISTENT_DIR = "${TMPDIR}/cache"
	PN = "${@bb.parse.vars_from_file(d.getVar('FILE', False),d)[0] or 'defaultpkgname'}"
	PV = "${@bb.parse.vars_from_file(d.getVar('FILE', False),d)[1] or '1.0'}"
	PR = "${@bb.parse.vars_from_file(d.getVar('FILE', False),d)[2] or 'r0'}"
	P = "${PN}-${PV}"
	PF = "${PN}-${PV}-${PR}"
	PROVIDES = ""
	DEPENDS = ""
	SRC_URI = ""
	FILE_DIRNAME = "${@os.path.dirname(d.getVar('FILE', False))}"
	FILESPATH = "${FILE_DIRNAME}/${PN}:${FILE_DIRNAME}/files:${FILE_DIRNAME}"
	WORKDIR = "${TMPDIR}/work/${MACHINE_ARCH}/${PF}"
	UNPACKDIR = "${WORKDIR}/sources"
	S = "${UNPACKDIR}"
	B = "${WORKDIR}/build"
	D = "${WORKDIR}/image"
	T = "${WORKDIR}/temp"
	STAMP = "${TMPDIR}/stamps/${MACHINE_ARCH}/${PF}"
	DEPLOY_DIR = "${TMPDIR}/deploy"
	PKG_DIR = "${DEPLOY_DIR}/packages/${MACHINE_ARCH}"
	MACHINE_ARCH ?= "${TARGET_ARCH}"
	TARGET_ARCH ?= "x86_64"
	TARGET_OS ?= "linux"
	TUNE_FEATURES ?= "m64"
	TUNE_PKGARCH ?= "core2-64"
	DISTRO_FEATURES ?= "systemd"
	OVERRIDES = "${TARGET_OS}:${TARGET_ARCH}"
	export SOURCE_DATE_EPOCH ?= "1700000000"
	BB_SIGNATURE_HANDLER = "basichash"
	BB_BASEHASH_IGNORE_VARS = "TMPDIR FILE PATH PWD BB_TASKHASH BB_UNIHASH HOME LOGNAME SHELL TERM USER \
	    TOPDIR DL_DIR WORKDIR STAMP FILE_DIRNAME FILESPATH THISDIR BB_WORKERCONTEXT BB_CURRENTTASK \
	    BB_LIMITEDDEPS SOURCE_DATE_EPOCH BBPATH BBSERVER"
	BB_HASHCONFIG_IGNORE_VARS = "${BB_BASEHASH_IGNORE_VARS} DATE TIME BB_NO_NETWORK BB_ORIGENV"
	THISDIR = "${@os.path.dirname(d.getVar('FILE'))}"
	include conf/local.conf
	EOF
	cat >"$m/classes/base.bbclass" <<-'EOF'
	die() {
	    bbfatal "$*"
	}
	bbnote() {
	    echo "NOTE:" "$*"
	}
	bbwarn() {
	    echo "WARNING:" "$*"
	}
	bbfatal() {
	    echo "ERROR:" "$*"
	    exit 1
	}

	python base_do_fetch() {
	    src = (d.getVar('SRC_URI') or '').split()
	    if src:
	        bb.fetch2.Fetch(src, d).download()
	}
	addtask fetch
	do_fetch[dirs] = "${DL_DIR}"
	do_fetch[network] = "1"

	python do_checkuri() {
	    src = (d.getVar('SRC_URI') or '').split()
	    if src:
	        bb.fetch2.Fetch(src, d).checkstatus()
	}
	addtask checkuri
	do_checkuri[nostamp] = "1"
	do_checkuri[network] = "1"

	python base_do_unpack() {
	    src = (d.getVar('SRC_URI') or '').split()
	    if src:
	        bb.fetch2.Fetch(src, d).unpack(d.getVar('UNPACKDIR'))
	}
	addtask unpack after do_fetch
	do_unpack[cleandirs] = "${UNPACKDIR}"

	base_do_configure() {
	    :
	}
	addtask configure after do_unpack
	base_do_compile() {
	    :
	}
	addtask compile after do_configure
	base_do_install() {
	    :
	}
	addtask install after do_compile
	do_install[dirs] = "${B}"
	do_install[cleandirs] = "${D}"

	# The "package": a tar of ${D}, the way a package manager would get it.
	do_package() {
	    mkdir -p ${PKG_DIR}
	    tar --sort=name --numeric-owner --owner=0 --group=0 -C ${D} -cf ${PKG_DIR}/${PN}.tar .
	}
	addtask package after do_install
	do_build() {
	    :
	}
	addtask build after do_package

	EXPORT_FUNCTIONS do_fetch do_unpack do_configure do_compile do_install
	EOF
}

# Runs bitbake in the build dir ($BUILD, as $BB_AS when set); output in $WORK/last.log.
BUILD=$WORK/build
BB_AS=""
bb() {
	local as=()
	[ -z "$BB_AS" ] || as=(runuser -u "$BB_AS" --)
	(cd "$BUILD" && "${as[@]}" env LANG=en_US.UTF-8 PATH="$BITBAKE_DIR/bin:$PATH" BBPATH="$BUILD" bitbake "$@") >"$WORK/last.log" 2>&1
}
bb_expect_ok() {
	bb "$@" || { tail -n 80 "$WORK/last.log" >&2; fail "bitbake $*"; }
}
tasks_run() {
	# "Tasks Summary: Attempted N tasks of which M didn't need to be rerun"
	sed -n "s/.*Attempted \([0-9]*\) tasks of which \([0-9]*\) didn't need to be rerun.*/\1 \2/p" "$WORK/last.log" | tail -n 1 | awk '{ print $1 - $2 }'
}
# The console shows only that a task failed: its message is in the task's log.
# task_log ARCH RECIPE TASK
task_log() { cat "$BUILD/tmp/work/$1/$2-1.0-r0/temp/log.$3" 2>/dev/null || true; }

# recipe.bb:do_task of every task that ran
executed() { sed -n 's/^NOTE: Running task [0-9]* of [0-9]* (.*\/\([^/]*\.bb:do_[a-z_]*\))$/\1/p' "$WORK/last.log"; }
pkg_has() {
	local pkg=$1 list; shift
	list=$(tar -tf "$pkg")
	for f in "$@"; do
		grep -qx "./$f" <<<"$list" || { echo "$list" >&2; fail "$(basename "$pkg") lacks $f"; }
	done
}

# A build dir: bblayers.conf and local.conf (the fixture images; EXTRA lines appended).
# new_build DIR [EXTRA]
new_build() {
	local dir=$1 extra=${2:-}
	mkdir -p "$dir/conf"
	echo "BBLAYERS = \"$WORK/meta-min $LAYER\"" >"$dir/conf/bblayers.conf"
	cat >"$dir/conf/local.conf" <<-EOF
	CTRBAKE_EXAMPLE_APP = "$(ref sample)"
	CTRBAKE_EXAMPLE_COMPOSE = "$WORK/compose.yaml"
	CTRBAKE_EXAMPLE_REGISTRIES = "$(ref host)"
	# No engine recipe (meta-virtualization) and no OE-core image recipes in this minimal world.
	CTRBAKE_ENGINE_RDEPENDS = ""
	BBMASK = "recipes-examples/images/"
	$extra
	EOF
}
archives() { find "$1" -maxdepth 1 -name 'ctrbake_*.tar' "${@:2}" | sort; }

run_tasks() {
	[ "$(id -u)" = 0 ] || fail "the tasks check bakes with private engines and runs as root (the OE-core check is the non-root one)"
	[ -f "$LAYER/dist/cli/main.js" ] || (cd "$LAYER" && npm run build >/dev/null)
	start_fixtures
	write_minimal_layer
	local host
	host=$(ref host)
	cat >"$WORK/compose.yaml" <<-EOF
	services:
	  app:
	    image: $(ref sample)
	  multi:
	    image: "$(ref multi)"
	EOF
	# The same app, pinned to another digest (read after local.conf with -R).
	echo "CTRBAKE_EXAMPLE_APP = \"$(ref sampleV2)\"" >"$WORK/v2.conf"
	cat >"$WORK/arm64.conf" <<-EOF
	TARGET_ARCH = "aarch64"
	TUNE_FEATURES = "aarch64"
	TUNE_PKGARCH = "cortexa53"
	CTRBAKE_EXAMPLE_APP = "$(ref multi)"
	EOF
	local recipes="ctrbake-example-archive ctrbake-example-split ctrbake-example-podman-ro ctrbake-example-compose ctrbake-example-rootfs"

	# 1. with network, in a first build dir: checkuri, then fetch every recipe, the v2 digest
	#    and the arm64 target
	BUILD=$WORK/build-fetch
	new_build "$BUILD"
	bb_expect_ok -c checkuri ctrbake-example-archive
	pass "checkuri: the registry has $(ref sample | cut -c1-60)... for linux/amd64"
	bb_expect_ok --runall=fetch $recipes
	bb_expect_ok -R "$WORK/v2.conf" -c fetch ctrbake-example-archive
	bb_expect_ok -R "$WORK/arm64.conf" -c fetch ctrbake-example-archive
	local dl=$BUILD/downloads n
	n=$(archives "$dl" | wc -l)
	# sample and multi for amd64 (shared by the five recipes), sample 2.0, multi for arm64
	[ "$n" = 4 ] || { archives "$dl" >&2; fail "expected 4 image archives in DL_DIR, found $n"; }
	for f in $(archives "$dl"); do [ -f "$f.done" ] || fail "no done stamp for $f"; done
	[ -z "$(find "$dl" -maxdepth 1 -name '*.tmp-*')" ] || fail "temp files left in DL_DIR"
	# shellcheck disable=SC2046 # the temp paths have no blanks
	pass "--runall=fetch filled DL_DIR: $n image archives ($(du -cb $(archives "$dl") | tail -n1 | cut -f1) bytes), each with its .done stamp: $(archives "$dl" -printf '%f ')"

	# 2. a mirror made from a copy of that DL_DIR; a new build dir with an empty DL_DIR,
	#    BB_NO_NETWORK and the registry stopped
	local mirror=$WORK/mirror
	mkdir -p "$mirror"
	# shellcheck disable=SC2046
	cp $(archives "$dl") "$mirror/"
	stop_fixtures
	BUILD=$WORK/build
	new_build "$BUILD" "BB_NO_NETWORK = \"1\"
PREMIRRORS:prepend = \"ctrbake://.*/.* file://$mirror/ \""
	bb_expect_ok $recipes
	local p=$BUILD/tmp/deploy/packages/x86_64
	local sample_id
	pkg_has "$p/ctrbake-example-archive.tar" usr/share/ctrbake/manifest.json usr/share/ctrbake/images.list usr/sbin/ctrbake-device etc/docker/daemon.json
	grep -q '^./usr/share/ctrbake/archives/.*\.tar$' <<<"$(tar -tf "$p/ctrbake-example-archive.tar")" || fail "archive bundle has no archive"
	pkg_has "$p/ctrbake-example-split.tar" usr/share/ctrbake/manifest.json usr/share/ctrbake/store.sqfs usr/sbin/ctrbake-device etc/docker/daemon.json
	pkg_has "$p/ctrbake-example-podman-ro.tar" usr/share/ctrbake/manifest.json usr/share/ctrbake/store.sqfs etc/containers/storage.conf
	pkg_has "$p/ctrbake-example-compose.tar" usr/share/ctrbake/manifest.json usr/share/ctrbake/compose/compose.yaml
	[ "$(tar -xOf "$p/ctrbake-example-compose.tar" ./usr/share/ctrbake/manifest.json | jq '.images | length')" = 2 ] || fail "compose bundle: not 2 images"
	pkg_has "$p/ctrbake-example-rootfs.tar" usr/share/ctrbake/ctrbake-example-rootfs/store.tar usr/share/ctrbake/ctrbake-example-rootfs/manifest.json usr/share/ctrbake/ctrbake-example-rootfs/daemon.json
	sample_id=$(tar -xOf "$p/ctrbake-example-archive.tar" ./usr/share/ctrbake/manifest.json | jq -r '.images[0].digest')
	[ "$(tar -xOf "$p/ctrbake-example-archive.tar" ./usr/share/ctrbake/manifest.json | jq -r '.sourceDateEpoch')" = 1700000000 ] || fail "SOURCE_DATE_EPOCH not passed"
	local links
	links=$(find "$BUILD/downloads" -maxdepth 1 -type l -name 'ctrbake_*.tar' -lname "$mirror/*" | wc -l)
	[ "$links" = 2 ] || { ls -l "$BUILD/downloads" >&2; fail "expected DL_DIR links to the 2 mirrored archives these recipes need, found $links"; }
	pass "PREMIRRORS file:// (a copy of DL_DIR), empty DL_DIR, registry stopped, BB_NO_NETWORK: 5 bundle packages with the expected files (archive: $sample_id); DL_DIR links to $links mirror files"

	# the same from an http:// mirror (BitBake's wget fetcher), fetch only, another new build dir
	local http_pid port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	(cd "$mirror" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
	http_pid=$!
	for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
	local saved=$BUILD
	BUILD=$WORK/build-http
	new_build "$BUILD" "PREMIRRORS:prepend = \"ctrbake://.*/.* http://127.0.0.1:$port/ \""
	bb --runall=fetch ctrbake-example-archive ctrbake-example-compose || { kill "$http_pid"; tail -n 40 "$WORK/last.log" >&2; fail "fetch from the http:// mirror"; }
	kill "$http_pid"; wait "$http_pid" 2>/dev/null || true
	n=$(archives "$BUILD/downloads" -type f | wc -l)
	[ "$n" = 2 ] || fail "expected 2 archives downloaded from the http:// mirror, found $n"
	cmp -s "$(archives "$BUILD/downloads" -type f | head -n1)" "$mirror/$(basename "$(archives "$BUILD/downloads" -type f | head -n1)")" || fail "http:// mirror copy differs"
	pass "PREMIRRORS http:// (registry stopped): --runall=fetch downloaded the $n archives from the mirror"

	# MIRRORS: the registry (stopped) fails first, then BitBake falls back to the mirror
	BUILD=$WORK/build-mirrors
	new_build "$BUILD" "MIRRORS:append = \" ctrbake://.*/.* file://$mirror/\""
	bb_expect_ok -c fetch ctrbake-example-archive
	n=$(find "$BUILD/downloads" -maxdepth 1 -type l -name 'ctrbake_*.tar' -lname "$mirror/*" | wc -l)
	[ "$n" = 1 ] || { ls -l "$BUILD/downloads" >&2; fail "expected a DL_DIR link to the MIRRORS file, found $n"; }
	grep -q "Failed to fetch URL ctrbake://$host/ctrbake/sample:1.0@sha256:[0-9a-f]*;platform=linux/amd64, attempting MIRRORS" "$WORK/last.log" ||
		{ tail -n 30 "$WORK/last.log" >&2; fail "no upstream failure before MIRRORS"; }
	pass "MIRRORS file:// without BB_NO_NETWORK, registry stopped: the registry fetch failed, BitBake fell back to the mirror"
	BUILD=$saved

	# 3. nothing changed: nothing runs
	bb_expect_ok $recipes
	[ "$(tasks_run)" = 0 ] || { executed >&2; fail "a rebuild with nothing changed ran $(tasks_run) task(s)"; }
	pass "rebuild with nothing changed: 0 tasks run"

	# 4. another digest of the app image (on the mirror): the four bundles holding it re-run
	#    from do_fetch on; the compose bundle, which does not hold it, runs nothing
	bb_expect_ok -R "$WORK/v2.conf" $recipes
	local ran
	ran=$(executed | sort | tr '\n' ' ')
	for r in archive split podman-ro rootfs; do
		echo "$ran" | grep -q "ctrbake-example-$r.bb:do_fetch" || fail "digest change did not re-run the fetch of $r: $ran"
		echo "$ran" | grep -q "ctrbake-example-$r.bb:do_ctrbake_bake" || fail "digest change did not re-run the bake of $r: $ran"
	done
	if echo "$ran" | grep -q "ctrbake-example-compose"; then fail "digest change re-ran the compose bundle: $ran"; fi
	[ "$(tar -xOf "$p/ctrbake-example-archive.tar" ./usr/share/ctrbake/manifest.json | jq -r '.images[0].digest')" = "$(ref sampleV2 | sed 's/.*@//')" ] ||
		fail "the package does not hold the new digest"
	pass "digest change: re-ran $ran"
	bb_expect_ok -R "$WORK/v2.conf" $recipes
	[ "$(tasks_run)" = 0 ] || fail "second build with the new digest ran $(tasks_run) task(s)"
	pass "and nothing the second time"

	# 5. aarch64 target: the arm64 image of the multi-platform index, baked on this x86_64 host
	bb_expect_ok -R "$WORK/arm64.conf" ctrbake-example-archive
	[ "$(tar -xOf "$BUILD/tmp/deploy/packages/aarch64/ctrbake-example-archive.tar" ./usr/share/ctrbake/manifest.json | jq -r '.platform | .os + "/" + .architecture + "/" + .variant')" = linux/arm64/v8 ] ||
		fail "aarch64 bundle is not linux/arm64/v8"
	pass "TARGET_ARCH aarch64: bundle holds linux/arm64/v8"

	# 6. BB_NO_NETWORK and the image in neither DL_DIR nor the mirror
	cat >"$WORK/fresh.conf" <<-EOF
	CTRBAKE_EXAMPLE_APP = "$host/ctrbake/other:1.0@sha256:$(printf 'ab%.0s' $(seq 32))"
	EOF
	if bb -R "$WORK/fresh.conf" -c fetch ctrbake-example-archive; then fail "offline fetch of an image not in DL_DIR succeeded"; fi
	grep -q "Network access disabled through BB_NO_NETWORK.*ctrbake lock + fetch .*ctrbake://$host/ctrbake/other" "$WORK/last.log" ||
		{ tail -n 30 "$WORK/last.log" >&2; fail "no BB_NO_NETWORK message naming the URL"; }
	pass "BB_NO_NETWORK, image not in DL_DIR nor on the mirror: do_fetch fails with: $(grep -o 'Network access disabled through BB_NO_NETWORK.*' "$WORK/last.log" | head -n1 | cut -c1-200)..."

	# 7. a tag without a digest fails at parse time
	echo "CTRBAKE_EXAMPLE_APP = \"$host/ctrbake/sample:1.0\"" >"$WORK/tag.conf"
	if bb -R "$WORK/tag.conf" -p; then fail "a tag without digest parsed"; fi
	grep -q "not pinned by digest" "$WORK/last.log" || { tail -n 30 "$WORK/last.log" >&2; fail "no pin message"; }
	pass "unpinned tag fails at parse time: $(grep -o 'CTRBAKE_IMAGES: not pinned by digest.*' "$WORK/last.log" | head -n1 | cut -c1-140)..."

	# 8. no host path in the signatures of the ctrbake tasks (sstate reuse across machines)
	bb_expect_ok -S none ctrbake-example-archive
	local sig dump
	for task in do_fetch do_unpack do_ctrbake_bake do_install; do
		sig=$(find "$BUILD/tmp/stamps/x86_64" -name "ctrbake-example-archive-1.0-r0.$task.sigdata.*" | head -n 1)
		[ -n "$sig" ] || fail "no sigdata for $task"
		dump=$(cd "$BUILD" && LANG=en_US.UTF-8 "$BITBAKE_DIR/bin/bitbake-dumpsig" "$sig" 2>&1)
		if [ "$task" != do_install ]; then # do_install depends on the images through do_ctrbake_bake's hash
			grep -q "ctrbake://$host/ctrbake/sample:[0-9.]*@sha256:[0-9a-f]*;platform=linux/amd64" <<<"$dump" || { echo "$dump" | head -n 40 >&2; fail "$task signature does not hold the ctrbake:// URL"; }
		fi
		if grep -F -e "$LAYER" -e "$WORK" <<<"$dump" | grep -v '^Task dependencies\|^basewhitelist\|^Variable BB_BASEHASH_IGNORE_VARS' >"$WORK/paths.txt"; then
			head -n 5 "$WORK/paths.txt" >&2; fail "$task signature holds a host path"
		fi
	done
	pass "signatures of do_fetch, do_unpack, do_ctrbake_bake, do_install: no host path (layer, TOPDIR, DL_DIR, mirror); the ctrbake:// URL in fetch, unpack and bake"

	# 9. a mirror whose archive was altered (one byte of a blob): refused, set aside, and
	#    with no other source the fetch fails
	local bad=$WORK/mirror-bad f
	mkdir -p "$bad"
	f=$(basename "$(find "$BUILD/downloads" -maxdepth 1 -name 'ctrbake_*sample_1.0*.tar' | head -n1)")
	[ -n "$f" ] || fail "no sample archive in DL_DIR"
	cp "$mirror/$f" "$bad/$f"
	python3 - "$bad/$f" <<-'PY'
	import sys, tarfile
	path = sys.argv[1]
	with tarfile.open(path) as t:
	    m = [i for i in t.getmembers() if i.name.startswith("blobs/")][-1]
	with open(path, "r+b") as f:
	    f.seek(m.offset_data)
	    b = f.read(1)
	    f.seek(m.offset_data)
	    f.write(bytes([b[0] ^ 0xff]))
	PY
	BUILD=$WORK/build-bad
	new_build "$BUILD" "BB_NO_NETWORK = \"1\"
PREMIRRORS:prepend = \"ctrbake://.*/.* file://$bad/ \""
	if bb -c fetch ctrbake-example-archive; then fail "an altered mirror archive was accepted"; fi
	grep -q "has sha256 .* (damaged or altered)" "$WORK/last.log" || { tail -n 40 "$WORK/last.log" >&2; fail "no digest message for the altered archive"; }
	[ -e "$BUILD/downloads/${f}_bad-digest" ] || fail "the altered archive was not set aside"
	[ ! -e "$BUILD/downloads/$f" ] || fail "the altered archive is still in DL_DIR under its name"
	pass "altered archive on the mirror: refused ($(grep -o 'blob [0-9a-f]\{12\}[0-9a-f]* has sha256 [0-9a-f]\{12\}' "$WORK/last.log" | head -n1)...), set aside as ${f}_bad-digest, fetch failed"
	BUILD=$WORK/build
}

# A build dir for CTRBAKE_BB_USER (bitbake alone, the minimal layer), as $BUILD.
user_build() {
	[ "$(id -u)" = 0 ] || fail "the user checks start as root (registry, user switch)"
	[ -n "$FIXTURES_PID" ] || { rm -f "$WORK/refs.json"; start_fixtures; }
	[ -d "$WORK/meta-min" ] || write_minimal_layer
	BUILD=$WORK/$1
	mkdir -p "$BUILD/conf"
	echo "BBLAYERS = \"$WORK/meta-min $LAYER\"" >"$BUILD/conf/bblayers.conf"
	cat >"$BUILD/conf/local.conf" <<-EOF
	CTRBAKE_EXAMPLE_APP = "$(ref sample)"
	CTRBAKE_EXAMPLE_REGISTRIES = "$(ref host)"
	CTRBAKE_ENGINE_RDEPENDS = ""
	BBMASK = "recipes-examples/images/"
	EOF
	chown -R "$BB_AS" "$BUILD"
	chmod 755 "$WORK"
}

# Every file of the build's TMPDIR belongs to the build user.
all_owned_by_user() {
	local foreign
	foreign=$(find "$BUILD/tmp" ! -user "$BB_AS" | head -n 5)
	[ -z "$foreign" ] || fail "files not owned by $BB_AS after the build: $foreign"
}

# As a non-root user (CTRBAKE_BB_USER) with no sudo at all: the split bundle, a docker
# overlay2 store, is baked by ctrbake's own builder (CTRBAKE_BUILDER defaults to native):
# fetch, bake, install, package, with no CTRBAKE_RUNNER and no privilege.
run_unprivileged() {
	BB_AS=${CTRBAKE_BB_USER:?set CTRBAKE_BB_USER to a non-root user (no sudoers rule needed)}
	user_build build-unprivileged
	if runuser -u "$BB_AS" -- sh -c 'command -v sudo' >/dev/null 2>&1 && runuser -u "$BB_AS" -- sudo -n true 2>/dev/null; then
		fail "$BB_AS can use sudo: this check wants a user without it"
	fi
	bb_expect_ok ctrbake-example-split
	local pkg=$BUILD/tmp/deploy/packages/x86_64/ctrbake-example-split.tar
	pkg_has "$pkg" usr/share/ctrbake/store.sqfs usr/share/ctrbake/manifest.json usr/sbin/ctrbake-device
	[ "$(tar -xOf "$pkg" ./usr/share/ctrbake/manifest.json | jq -r '.engine.version + " " + .storageDriver + " " + (.sourceDateEpoch|tostring)')" = "20.10 overlay2 1700000000" ] ||
		fail "the split bundle was not baked by the native builder for docker 20.10 with SOURCE_DATE_EPOCH"
	all_owned_by_user
	pass "as $BB_AS, no sudo, no CTRBAKE_RUNNER: split bundle fetched, baked by the native builder, installed and packaged; every file in TMPDIR owned by $BB_AS"
	BUILD=$WORK/build
	BB_AS=""
}

# As a non-root user with the engine path (CTRBAKE_BUILDER = "engine"): without a runner the
# bake fails early and says what to set; with CTRBAKE_RUNNER = "sudo -n" (a sudoers rule for
# that user and node must exist, see docs/yocto.md#privileges) the split bundle builds and
# everything in WORKDIR belongs to the user again.
run_runner() {
	BB_AS=${CTRBAKE_BB_USER:?set CTRBAKE_BB_USER to a non-root user with a sudoers rule for node}
	runuser -u "$BB_AS" -- sudo -n "$(command -v node)" -e 'process.exit(process.getuid() === 0 ? 0 : 1)' ||
		fail "sudo -n node does not give $BB_AS root: add the sudoers rule of docs/yocto.md#privileges"
	user_build build-user
	echo 'CTRBAKE_BUILDER = "engine"' >>"$BUILD/conf/local.conf"

	bb_expect_ok -c fetch ctrbake-example-split
	if bb ctrbake-example-split; then fail "the bake ran as $BB_AS without a runner"; fi
	task_log x86_64 ctrbake-example-split do_ctrbake_bake >"$WORK/task.log"
	grep -q "needs root, but BitBake runs as $BB_AS" "$WORK/task.log" || { tail -n 30 "$WORK/last.log" "$WORK/task.log" >&2; fail "no privileges message"; }
	grep -q "ctrbake: error" "$WORK/task.log" && fail "the CLI started before the privileges check"
	pass "as $BB_AS, engine path, without CTRBAKE_RUNNER: do_ctrbake_bake fails early: $(grep -o 'needs root, but BitBake runs as[^(]*' "$WORK/task.log" | head -n1)..."

	echo 'CTRBAKE_RUNNER = "sudo -n"' >>"$BUILD/conf/local.conf"
	bb_expect_ok ctrbake-example-split
	local pkg=$BUILD/tmp/deploy/packages/x86_64/ctrbake-example-split.tar
	pkg_has "$pkg" usr/share/ctrbake/store.sqfs usr/share/ctrbake/manifest.json usr/sbin/ctrbake-device
	[ "$(tar -xOf "$pkg" ./usr/share/ctrbake/manifest.json | jq -r '.sourceDateEpoch')" = 1700000000 ] || fail "SOURCE_DATE_EPOCH lost through sudo"
	all_owned_by_user
	pass "as $BB_AS, engine path, with CTRBAKE_RUNNER = \"sudo -n\": split bundle built, SOURCE_DATE_EPOCH kept, every file in TMPDIR owned by $BB_AS"
	BUILD=$WORK/build
	BB_AS=""
}

run_oecore() {
	: "${CTRBAKE_OECORE_DIR:?set CTRBAKE_OECORE_DIR to an openembedded-core checkout}"
	local oe user
	oe=$(cd "$CTRBAKE_OECORE_DIR" && pwd)
	echo "openembedded-core: $oe commit $(bb_version "$oe") series $(sed -n 's/^LAYERSERIES_CORENAMES = "\(.*\)"/\1/p' "$oe/meta/conf/layer.conf")"
	user=$(id -un)
	if [ "$(id -u)" = 0 ]; then
		user=${CTRBAKE_BB_USER:?OE-core refuses to run as root: set CTRBAKE_BB_USER to a non-root user}
	fi
	as_user() { if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
	local b=$WORK/oe
	mkdir -p "$b"
	chown "$user" "$WORK" "$b"
	as_user bash -c "
		set -e
		cd '$b'
		export BITBAKEDIR='$BITBAKE_DIR'
		. '$oe/oe-init-build-env' build >/dev/null
		cat >>conf/local.conf <<-'EOF'
		CONNECTIVITY_CHECK_URIS = \"\"
		EOF
		# exit status ignored: uninative's download fails without network, the signatures are written
		bitbake -S lockedsigs core-image-minimal >'$WORK/sigs-without.log' 2>&1 || true
		[ -s locked-sigs.inc ] || { tail -n 40 '$WORK/sigs-without.log'; exit 1; }
		mv locked-sigs.inc '$WORK/locked-sigs-without.inc'
		bitbake-layers add-layer '$LAYER' >/dev/null
		bitbake -S lockedsigs core-image-minimal >'$WORK/sigs-with.log' 2>&1 || true
		[ -s locked-sigs.inc ] || { tail -n 40 '$WORK/sigs-with.log'; exit 1; }
		mv locked-sigs.inc '$WORK/locked-sigs-with.inc'
		bitbake-getvar -r ctrbake-example-archive --value SRC_URI 2>/dev/null | tail -n 1 >'$WORK/srcuri.txt'
		for m in ${CTRBAKE_OE_MACHINES:-qemux86-64 qemuarm64 qemuarm}; do
			MACHINE=\$m bitbake-getvar -r ctrbake-example-archive --value CTRBAKE_PLATFORM 2>/dev/null | tail -n 1 | sed \"s|^|\$m: |\"
		done >'$WORK/platforms.txt'
	" || fail "OE-core run failed (see above)"
	if ! diff -u "$WORK/locked-sigs-without.inc" "$WORK/locked-sigs-with.inc" >"$WORK/sigs.diff"; then
		head -n 40 "$WORK/sigs.diff" >&2
		fail "adding the layer changed signatures of core-image-minimal's tasks"
	fi
	pass "OE-core: adding the layer changes none of the $(grep -c ':do_' "$WORK/locked-sigs-with.inc") task signatures of core-image-minimal"
	cat "$WORK/platforms.txt"
	local want
	while read -r m want; do
		if grep -q "^$m: " "$WORK/platforms.txt"; then
			grep -q "^$m: $want$" "$WORK/platforms.txt" || fail "$m: expected $want"
		fi
	done <<-'EOF'
	qemux86-64 linux/amd64
	qemux86 linux/386
	qemuarm64 linux/arm64/v8
	qemuarm linux/arm/v7
	qemuarmv5 linux/arm/v5
	qemuriscv64 linux/riscv64
	EOF
	pass "OE-core: CTRBAKE_PLATFORM from each MACHINE's tune"
	grep -Eq '^ *ctrbake://registry\.example\.com/ctrbake/app:1\.0@sha256:0{64};platform=linux/amd64 *$' "$WORK/srcuri.txt" ||
		fail "OE-core: SRC_URI of ctrbake-example-archive is not its ctrbake:// URL: $(cat "$WORK/srcuri.txt")"
	pass "OE-core: SRC_URI of ctrbake-example-archive (qemux86-64) is $(sed 's/^ *//' "$WORK/srcuri.txt")"
}

case "$WHAT" in
	tasks) run_tasks ;;
	runner) run_runner ;;
	unprivileged) run_unprivileged ;;
	oecore) run_oecore ;;
	all) run_tasks; run_unprivileged; run_runner; run_oecore ;;
	*) echo "usage: $0 [tasks|runner|oecore|all]" >&2; exit 2 ;;
esac
echo "bitbake-check: all checks passed"
