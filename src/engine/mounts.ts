import { readFile } from 'node:fs/promises';
import { runProgram } from '../util/process.js';

/**
 * Mount bookkeeping for engine teardown: engines leave overlay, shm and bind mounts under
 * their private directories (dockerd's overlay2 `merged`, podman's self-bind of `overlay/`,
 * container `shm`). We read the kernel's view, never a cached list, and unmount deepest first.
 */

/** Decodes the octal escapes (\040 for space, \011, \012, \134) mountinfo uses in paths. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Mount points of the current mount namespace, as /proc/self/mountinfo lists them. */
export async function listMountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length > 4) points.push(unescapeMountPath(fields[4]!));
  }
  return points;
}

function isUnder(path: string, dir: string): boolean {
  const base = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return path === base || path.startsWith(`${base}/`);
}

/** Mount points at or under any of `dirs`, deepest first. */
export async function mountsUnder(dirs: readonly string[]): Promise<string[]> {
  const points = (await listMountPoints()).filter((p) => dirs.some((d) => isUnder(p, d)));
  // A path can be mounted several times (stacked): keep duplicates, one umount each.
  return points.sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
}

/**
 * Unmounts everything at or under `dirs`, deepest first; a plain umount first, a lazy one
 * (`umount -l`) as the last resort for a busy mount. Mount points in `keep` (those that were
 * there before the engine started, e.g. a caller's filesystem mounted at the data-root) stay.
 * Returns what could not be unmounted.
 */
export async function unmountUnder(dirs: readonly string[], keep: ReadonlySet<string> = new Set()): Promise<string[]> {
  const ours = async () => (await mountsUnder(dirs)).filter((p) => !keep.has(p));
  for (let round = 0; round < 5; round++) {
    const points = await ours();
    if (points.length === 0) return [];
    const lazy = round >= 2;
    for (const point of points) {
      await runProgram('umount', lazy ? ['-l', point] : [point]);
    }
  }
  return ours();
}
