/**
 * Debian trees holding newer engines than the host's, for engine-compatibility tests: one tree
 * per suite, made with `debootstrap --variant=minbase --include=PACKAGES SUITE DIR` and reused
 * between runs (the engines run from it after `pivot_root`, see newer-dockerd.ts).
 *
 *   trixie (Debian 13): dockerd 26.1, containerd 1.7, podman 5.4, crun 1.21   (~47 s here)
 *   sid:                dockerd 28.5, containerd 2.1, podman 5.8              (~70 s here)
 *
 * Where: CTRBAKE_TEST_<SUITE>_DIR (e.g. CTRBAKE_TEST_SID_DIR), else
 * CTRBAKE_TEST_DEBIAN_TREES/debian-<suite> (default /var/cache/ctrbake-test). Built under
 * `flock DIR.lock` (parallel test files wait for one build) into DIR.partial, renamed into
 * place when complete: a tree that exists is whole. sid moves: the versions a run used are
 * the ones the engines report, and the results table records them.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export const DEBIAN_SUITES = ['trixie', 'sid'] as const;
export type DebianSuite = (typeof DEBIAN_SUITES)[number];

/** Every engine the tests run from a tree, so one tree per suite serves them all. */
export const DEBIAN_TREE_PACKAGES: readonly string[] = ['docker.io', 'podman', 'containerd', 'runc', 'crun', 'iptables', 'ca-certificates'];
/** Present once the debootstrap run completed (the tree is renamed into place last). */
const TREE_BINARIES = ['usr/sbin/dockerd', 'usr/bin/podman', 'usr/bin/containerd'];
/** Mount points the engines' namespaces use inside a tree. */
const MOUNT_DIRS = ['.oldroot', 'ctrbake', 'ctrbake-data'];

const DEBIAN_MIRROR = process.env.CTRBAKE_TEST_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

export function debianTreePath(suite: DebianSuite): string {
  const own = process.env[`CTRBAKE_TEST_${suite.toUpperCase()}_DIR`];
  if (own) return own;
  return join(process.env.CTRBAKE_TEST_DEBIAN_TREES ?? '/var/cache/ctrbake-test', `debian-${suite}`);
}

export async function requireBinary(name: string, pkg: string): Promise<void> {
  const r = await execa('sh', ['-c', `command -v ${name}`], { reject: false });
  if (r.exitCode !== 0) throw new Error(`test prerequisite missing: ${name} (Debian package ${pkg}); run scripts/install-deps.sh as root`);
}

const BUILD_SCRIPT = [
  'set -e',
  'T="$1"; P="$2"; MIRROR="$3"; PKGS="$4"; SUITE="$5"; shift 5',
  'done_already=1',
  'for b in "$@"; do [ -x "$T/$b" ] || done_already=0; done',
  '[ "$done_already" = 1 ] && exit 0',
  '[ -e "$T" ] && { echo "$T exists but lacks $* (a tree from an older fixture?): remove it and run again" >&2; exit 1; }',
  'rm -rf "$P"',
  'debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$P" "$MIRROR" > "$P.log" 2>&1 || { tail -n 30 "$P.log" >&2; exit 1; }',
  'mv "$P" "$T"',
].join('\n');

/**
 * Returns the suite's tree, building it when absent (needs root, debootstrap and the Debian
 * mirror; about a minute). Fails with the debootstrap log tail when the build fails.
 */
export async function ensureDebianTree(suite: DebianSuite, tree = debianTreePath(suite)): Promise<string> {
  if (!TREE_BINARIES.every((b) => existsSync(join(tree, b)))) {
    await requireBinary('debootstrap', 'debootstrap');
    await requireBinary('flock', 'util-linux');
    await mkdir(join(tree, '..'), { recursive: true });
    const r = await execa('flock', [`${tree}.lock`, 'sh', '-c', BUILD_SCRIPT, 'sh', tree, `${tree}.partial`, DEBIAN_MIRROR, DEBIAN_TREE_PACKAGES.join(','), suite, ...TREE_BINARIES], {
      reject: false,
    });
    if (r.exitCode !== 0) throw new Error(`building the Debian ${suite} tree ${tree} failed (debootstrap, mirror ${DEBIAN_MIRROR}):\n${r.stderr}`);
  }
  for (const dir of MOUNT_DIRS) await mkdir(join(tree, dir), { recursive: true });
  return tree;
}
