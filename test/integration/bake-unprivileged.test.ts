/**
 * `ctrbake bake` of a docker overlay2 store, with no flag naming the builder, needs neither
 * root nor an engine: the built CLI run as root with an empty PATH (no dockerd, no tool at
 * all), then as user nobody (setpriv, no groups, another umask) in another directory, and once
 * more later in a third one, gives byte-identical OUT: store.tar, store.sqfs and manifest.json.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupStoreFixture, type StoreFixture } from './store-setup.js';

const CLI = resolve(import.meta.dirname, '../../bin/ctrbake.js');
const SDE = '1700000000';
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

let f: StoreFixture;
let lockPath: string;

beforeAll(async () => {
  f = await setupStoreFixture();
  lockPath = join(f.work, 'ctrbake.lock.json');
  await writeFile(lockPath, JSON.stringify(f.lock, null, 2));
  // The work dir is root's 0700 mkdtemp: nobody may read the lock and the cache, and nothing more.
  await execa('chmod', ['-R', 'a+rX', f.work]);
}, 600_000);

afterAll(async () => {
  await f?.dispose();
});

/** sha256 of every file of OUT, by name. */
async function digests(out: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const name of (await readdir(out)).sort()) result[name] = createHash('sha256').update(await readFile(join(out, name))).digest('hex');
  return result;
}

/** The CLI's bake, --json, with the environment of a bare build: no PATH, no HOME, SOURCE_DATE_EPOCH fixed. */
async function bakeAs(user: 'root' | 'nobody', out: string, umask: string): Promise<{ events: string[] }> {
  const args = ['bake', '--json', '--lock', lockPath, '--cache', f.cacheDir, '--mode', 'store', '--squashfs', '-o', out];
  const node = [process.execPath, CLI, ...args];
  const command = user === 'root' ? node : ['/usr/bin/setpriv', ...NOBODY, ...node];
  const env = { PATH: '/nonexistent', HOME: '/nonexistent', SOURCE_DATE_EPOCH: SDE, LANG: 'C' };
  const run = await execa('/bin/sh', ['-c', `umask ${umask} && exec "$@"`, 'sh', ...command], { env, extendEnv: false, reject: false });
  expect(run.exitCode, `${user}: ${run.stderr}\n${run.stdout}`).toBe(0);
  const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event?: string; type?: string });
  expect(lines.at(-1)?.type).toBe('result');
  return { events: lines.flatMap((l) => (l.event ? [l.event] : [])) };
}

describe('a store bake without root and without an engine', () => {
  it('as root with no PATH, as nobody elsewhere, and again later: the same bytes in OUT', async () => {
    const rootOut = join(f.work, 'root', 'out');
    await mkdir(join(f.work, 'root'));
    const asRoot = await bakeAs('root', rootOut, '022');
    expect(asRoot.events).not.toContain('engine.started');

    const nobodyParent = join(f.work, 'a-longer-directory-name-for-nobody');
    await mkdir(nobodyParent);
    await chmod(nobodyParent, 0o777);
    const asNobody = await bakeAs('nobody', join(nobodyParent, 'out'), '077');
    expect(asNobody.events).not.toContain('engine.started');

    const laterParent = join(f.work, 'later');
    await mkdir(laterParent);
    await chmod(laterParent, 0o777);
    // A second apart at least: any wall-clock time that leaked into OUT would show.
    await new Promise((r) => setTimeout(r, 1100));
    await bakeAs('nobody', join(laterParent, 'elsewhere'), '002');

    const expected = await digests(rootOut);
    expect(Object.keys(expected)).toEqual(['manifest.json', 'store.sqfs', 'store.tar']);
    expect(await digests(join(nobodyParent, 'out'))).toEqual(expected);
    expect(await digests(join(laterParent, 'elsewhere'))).toEqual(expected);
    const manifest = JSON.parse(await readFile(join(rootOut, 'manifest.json'), 'utf8')) as { engine: { version: string }; sourceDateEpoch: number };
    expect(manifest).toMatchObject({ engine: { name: 'docker', version: '20.10' }, storageDriver: 'overlay2', sourceDateEpoch: Number(SDE) });
  }, 300_000);

  it('as nobody, --builder engine says it needs root (the engine path starts a dockerd), and writes no OUT', async () => {
    const parent = join(f.work, 'engine-as-nobody');
    await mkdir(parent);
    await chmod(parent, 0o777);
    const args = ['bake', '--lock', lockPath, '--cache', f.cacheDir, '--mode', 'store', '--builder', 'engine', '-o', join(parent, 'out')];
    const run = await execa('/usr/bin/setpriv', [...NOBODY, process.execPath, CLI, ...args], { env: { PATH: process.env.PATH, HOME: '/nonexistent' }, extendEnv: false, reject: false });
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/run as root/);
    expect(await readdir(parent)).toEqual([]);
  }, 120_000);
});
