import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { unmountUnder } from './mounts.js';
import { currentOwner, isOwnerGone } from '../util/owner.js';
import { descendantsOf, processesMentioning, signalProcess, terminateProcess } from './processes.js';

/**
 * Private engine dirs (/tmp/ctrbake-d-*, ctrbake-p-*) left by a ctrbake that died without its
 * teardown (SIGKILL, OOM killer, power loss of a build VM). Each dir holds an `owner` file
 * written before any engine process starts: the owner's pid, its start time (clock ticks since
 * boot, /proc/PID/stat field 22, so a reused pid is told apart) and its pid namespace. A dir is an
 * orphan only when that namespace is ours and that exact process is gone; then what still names
 * the dir on its command line (dockerd, containerd, shims, podman, conmon) was started by a
 * ctrbake run, and is ended, its mounts undone and the dir removed. Dirs without an owner file
 * (an older ctrbake, or one being created this instant) and dirs of live or foreign owners are
 * never touched.
 */

export { OWNER_FILE, writeOwnerFile } from '../util/owner.js';
const ORPHAN_DIR = /^ctrbake-[dp]-/;

/** dockerd and podman first (they shut down their children cleanly), containerd last. */
function stopOrder(argv0: string): number {
  if (/containerd-shim/.test(argv0)) return 1;
  if (/containerd$/.test(argv0)) return 2;
  return 0;
}

export async function stopEverythingNaming(dir: string): Promise<void> {
  const procs = (await processesMentioning(dir)).filter((p) => p.pid !== process.pid);
  procs.sort((a, b) => stopOrder(a.argv[0] ?? '') - stopOrder(b.argv[0] ?? ''));
  for (const p of procs) {
    // Containers under a shim are not named on their command line: they go with their parent.
    for (const child of (await descendantsOf(p.pid)).reverse()) if (child.pid !== process.pid) signalProcess(child.pid, 'SIGKILL');
    await terminateProcess(p.pid, 10_000);
  }
}

/**
 * Stops and removes the orphaned private engine dirs under `bases`; returns the dirs removed.
 * A dir whose mounts cannot all be undone is left in place (removing it would descend into them).
 */
export async function sweepOrphanedEngineDirs(bases: readonly string[]): Promise<string[]> {
  const self = await currentOwner();
  const removed: string[] = [];
  for (const base of new Set(bases)) {
    let names: string[];
    try {
      names = await readdir(base);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => ORPHAN_DIR.test(n)).sort()) {
      const dir = join(base, name);
      try {
        if (!(await lstat(dir)).isDirectory()) continue;
      } catch {
        continue;
      }
      if (!(await isOwnerGone(dir, self))) continue;
      await stopEverythingNaming(dir);
      if ((await unmountUnder([dir])).length > 0) continue;
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      removed.push(dir);
    }
  }
  return removed;
}
