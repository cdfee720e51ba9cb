import { lstat, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unmountUnder } from './mounts.js';
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

export const OWNER_FILE = 'owner';
const ORPHAN_DIR = /^ctrbake-[dp]-/;

interface Owner {
  pid: number;
  startTime: string;
  pidNamespace: string;
}

async function startTimeOf(pid: number | 'self'): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the last ')': state is field 3, starttime field 22 -> index 19.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function currentOwner(): Promise<Owner> {
  return {
    pid: process.pid,
    startTime: (await startTimeOf('self')) ?? '',
    pidNamespace: await readlink('/proc/self/ns/pid'),
  };
}

/** Writes DIR/owner naming this process. Call before any engine process starts. */
export async function writeOwnerFile(dir: string): Promise<void> {
  await writeFile(join(dir, OWNER_FILE), `${JSON.stringify(await currentOwner())}\n`, { mode: 0o600 });
}

async function readOwner(dir: string): Promise<Owner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as Partial<Owner>;
    if (typeof parsed.pid !== 'number' || typeof parsed.startTime !== 'string' || typeof parsed.pidNamespace !== 'string') return undefined;
    return { pid: parsed.pid, startTime: parsed.startTime, pidNamespace: parsed.pidNamespace };
  } catch {
    return undefined;
  }
}

async function isOrphan(dir: string, self: Owner): Promise<boolean> {
  const owner = await readOwner(dir);
  if (!owner || owner.pidNamespace !== self.pidNamespace) return false;
  const start = await startTimeOf(owner.pid);
  return start === undefined || start !== owner.startTime;
}

/** dockerd and podman first (they shut down their children cleanly), containerd last. */
function stopOrder(argv0: string): number {
  if (/containerd-shim/.test(argv0)) return 1;
  if (/containerd$/.test(argv0)) return 2;
  return 0;
}

async function stopEverythingNaming(dir: string): Promise<void> {
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
      if (!(await isOrphan(dir, self))) continue;
      await stopEverythingNaming(dir);
      if ((await unmountUnder([dir])).length > 0) continue;
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      removed.push(dir);
    }
  }
  return removed;
}
