import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { mountsUnder, unmountUnder } from '../../../src/engine/mounts.js';
import { OWNER_FILE, sweepOrphanedEngineDirs } from '../../../src/engine/orphans.js';
import { makeEnginePrivateDir } from '../../../src/engine/private-dir.js';
import { descendantsOf, isRunning, processesMentioning, terminateProcess } from '../../../src/engine/processes.js';

/** A pid that ran and exited: nobody holds it (until the kernel wraps around). */
async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  return child.pid!;
}

describe('sweepOrphanedEngineDirs', () => {
  let base: string | undefined;
  const started: number[] = [];
  afterEach(async () => {
    for (const pid of started.splice(0)) {
      for (const child of await descendantsOf(pid)) await terminateProcess(child.pid, 2_000);
      await terminateProcess(pid, 2_000);
    }
    if (base) {
      await unmountUnder([base]);
      await rm(base, { recursive: true, force: true });
    }
  });

  /** A private dir as a killed ctrbake leaves it: owner file, a process naming it (with a child), a mount. */
  async function orphanedDir(name: string, owner: object | undefined): Promise<{ dir: string; pid: number }> {
    const dir = join(base!, name);
    await mkdir(join(dir, 'x', 'mnt'), { recursive: true });
    if (owner) await writeFile(join(dir, OWNER_FILE), JSON.stringify(owner));
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'x', 'mnt')]);
    // $0 names the dir, as dockerd's --exec-root or containerd's --config do; sleep is its child.
    const proc = execa('sh', ['-c', 'sleep 300; exit 0', join(dir, 'x')], { detached: true, reject: false, stdio: 'ignore' });
    started.push(proc.pid!);
    for (let i = 0; i < 100 && (await processesMentioning(dir)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    return { dir, pid: proc.pid! };
  }

  it('ends the processes (and their children) of a dead owner, unmounts and removes its dir; live, foreign and unowned dirs stay', async () => {
    base = await mkdtemp(join(tmpdir(), 'ctrbake-orphans-'));
    const ns = await readlink('/proc/self/ns/pid');
    // (makeEnginePrivateDir sweeps first: made before the orphans, so this sweep is the one tested.)
    const live = await makeEnginePrivateDir('ctrbake-d-', base);
    const dead = await orphanedDir('ctrbake-d-dead', { pid: await deadPid(), startTime: '1', pidNamespace: ns });
    // pid reuse: the pid is alive (ours) but started at another time: still an orphan.
    const reused = await orphanedDir('ctrbake-p-reused', { pid: process.pid, startTime: '1', pidNamespace: ns });
    const foreign = await orphanedDir('ctrbake-d-foreign', { pid: await deadPid(), startTime: '1', pidNamespace: 'pid:[1]' });
    const unowned = await orphanedDir('ctrbake-d-unowned', undefined);
    const notOurs = join(base, 'other-dir');
    await mkdir(notOurs);
    const deadChildren = await processesMentioning(dead.dir);

    const removed = await sweepOrphanedEngineDirs([base]);

    expect(removed.sort()).toEqual([dead.dir, reused.dir].sort());
    expect(await isRunning(dead.pid)).toBe(false);
    expect(await isRunning(reused.pid)).toBe(false);
    for (const p of deadChildren) expect(await isRunning(p.pid)).toBe(false);
    expect(await mountsUnder([dead.dir, reused.dir])).toEqual([]);
    expect((await readdir(base)).sort()).toEqual(['ctrbake-d-foreign', 'ctrbake-d-unowned', live.slice(base.length + 1), 'other-dir'].sort());
    expect(await isRunning(foreign.pid)).toBe(true);
    expect(await isRunning(unowned.pid)).toBe(true);
    expect(await mountsUnder([foreign.dir])).toHaveLength(1);
    const owner = JSON.parse(await readFile(join(live, OWNER_FILE), 'utf8')) as { pid: number; pidNamespace: string };
    expect(owner).toMatchObject({ pid: process.pid, pidNamespace: ns });
  });

  it('makeEnginePrivateDir sweeps its base first', async () => {
    base = await mkdtemp(join(tmpdir(), 'ctrbake-orphans-'));
    const dead = await orphanedDir('ctrbake-d-dead', { pid: await deadPid(), startTime: '1', pidNamespace: await readlink('/proc/self/ns/pid') });
    const fresh = await makeEnginePrivateDir('ctrbake-d-', base);
    expect(await readdir(base)).toEqual([fresh.slice(base.length + 1)]);
    expect(await isRunning(dead.pid)).toBe(false);
  });
});
