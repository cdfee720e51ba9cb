/**
 * Owner files: which process made a working dir, so a later run can tell the dir of a live
 * process (never touched) from one left by a process that died without its teardown (SIGKILL,
 * OOM killer, power loss of a build VM). The file holds the owner's pid, its start time (clock
 * ticks since boot, /proc/PID/stat field 22, so a reused pid is told apart) and its pid
 * namespace (a pid of another namespace says nothing here).
 */
import { readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const OWNER_FILE = 'owner';

export interface Owner {
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

export async function currentOwner(): Promise<Owner> {
  return {
    pid: process.pid,
    startTime: (await startTimeOf('self')) ?? '',
    pidNamespace: await readlink('/proc/self/ns/pid'),
  };
}

/** Writes DIR/owner naming this process. */
export async function writeOwnerFile(dir: string): Promise<void> {
  await writeFile(join(dir, OWNER_FILE), `${JSON.stringify(await currentOwner())}\n`, { mode: 0o600 });
}

export async function readOwner(dir: string): Promise<Owner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as Partial<Owner>;
    if (typeof parsed.pid !== 'number' || typeof parsed.startTime !== 'string' || typeof parsed.pidNamespace !== 'string') return undefined;
    return { pid: parsed.pid, startTime: parsed.startTime, pidNamespace: parsed.pidNamespace };
  } catch {
    return undefined;
  }
}

/**
 * True only when DIR names an owner in our pid namespace that is gone. No owner file (an older
 * ctrbake, or a dir being created this instant) or a foreign namespace: false, leave it alone.
 */
export async function isOwnerGone(dir: string, self?: Owner): Promise<boolean> {
  const me = self ?? (await currentOwner());
  const owner = await readOwner(dir);
  return owner !== undefined && isGone(owner, me);
}

/**
 * The owner as a name fragment ("PID-STARTTIME-PIDNS"): a dir created with it in its name
 * (mkdtemp) names its owner from the first instant, with no window before an owner file exists.
 */
export function ownerTag(owner: Owner): string {
  return `${owner.pid}-${owner.startTime}-${/\d+/.exec(owner.pidNamespace)?.[0] ?? '0'}`;
}

/** The owner named by a tag that `name` holds after `prefix`; undefined when it holds none. */
export function ownerFromName(name: string, prefix: string, self: Owner): Owner | undefined {
  const match = /^(\d+)-(\d+)-(\d+)-/.exec(name.slice(prefix.length));
  if (!match) return undefined;
  return { pid: Number(match[1]), startTime: match[2]!, pidNamespace: self.pidNamespace.replace(/\d+/, match[3]!) };
}

/** True when the owner is in our pid namespace and is gone (see isOwnerGone). */
export async function isGone(owner: Owner, self: Owner): Promise<boolean> {
  if (owner.pidNamespace !== self.pidNamespace) return false;
  const start = await startTimeOf(owner.pid);
  return start === undefined || start !== owner.startTime;
}
