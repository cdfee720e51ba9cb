import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recoverStagedOutputs, stageOutput } from '../../../src/util/staged-output.js';
import { pendingCleanups } from '../../../src/util/cleanup.js';

describe('stageOutput', () => {
  let parent: string;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'ctrbake-stage-'));
  });
  afterEach(() => rm(parent, { recursive: true, force: true }));

  it.each([
    ['a missing OUT', async () => undefined],
    ['an empty OUT', async (out: string) => mkdir(out)],
    ['an OUT with older content', async (out: string) => {
      await mkdir(out);
      await writeFile(join(out, 'stale'), 'x');
    }],
  ])('commit replaces %s as a whole and leaves no staging dir', async (_what, prepare) => {
    const out = join(parent, 'nested', 'OUT');
    await mkdir(join(parent, 'nested'));
    await prepare(out);
    const staged = await stageOutput(out);
    expect(pendingCleanups()).toContain(`output staging ${staged.staging}`);
    await writeFile(join(staged.outTmp, 'manifest.json'), '{}');
    await staged.commit();
    expect(await readdir(out)).toEqual(['manifest.json']);
    expect(await readFile(join(out, 'manifest.json'), 'utf8')).toBe('{}');
    expect(await readdir(join(parent, 'nested'))).toEqual(['OUT']);
    expect(pendingCleanups()).not.toContain(`output staging ${staged.staging}`);
  });

  it('discard removes everything and leaves an existing OUT untouched', async () => {
    const out = join(parent, 'OUT');
    await mkdir(out);
    await writeFile(join(out, 'keep'), 'old');
    const staged = await stageOutput(out);
    await writeFile(join(staged.outTmp, 'half'), 'x');
    await staged.discard();
    await staged.discard();
    expect((await readdir(parent)).sort()).toEqual(['OUT']);
    expect(await readdir(out)).toEqual(['keep']);
  });
});


/** A pid that ran and exited. */
async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  return child.pid!;
}

describe('an interrupted commit', () => {
  let parent: string;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'ctrbake-stage-'));
  });
  afterEach(() => rm(parent, { recursive: true, force: true }));

  async function oldOut(): Promise<string> {
    const out = join(parent, 'OUT');
    await mkdir(out);
    await writeFile(join(out, 'manifest.json'), 'old');
    return out;
  }

  it('after the staging dir was discarded (SIGINT cleanup): E_INTERRUPTED, OUT as it was', async () => {
    const out = await oldOut();
    const staged = await stageOutput(out);
    await writeFile(join(staged.outTmp, 'manifest.json'), 'new');
    void staged.discard();
    await expect(staged.commit()).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
    expect(await readFile(join(out, 'manifest.json'), 'utf8')).toBe('old');
  });

  it('with the abort signal raised: its reason, OUT as it was', async () => {
    const out = await oldOut();
    const controller = new AbortController();
    const staged = await stageOutput(out, { signal: controller.signal });
    await writeFile(join(staged.outTmp, 'manifest.json'), 'new');
    controller.abort(new Error('SIGTERM'));
    await expect(staged.commit()).rejects.toThrow('SIGTERM');
    await staged.discard();
    expect(await readFile(join(out, 'manifest.json'), 'utf8')).toBe('old');
    expect(await readdir(parent)).toEqual(['OUT']);
  });
});

describe('recoverStagedOutputs (a run killed with SIGKILL)', () => {
  let parent: string;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'ctrbake-recover-'));
  });
  afterEach(() => rm(parent, { recursive: true, force: true }));

  /** A staging dir as a killed run leaves it, at one of the commit's steps. */
  async function leftOver(name: string, opts: { owner: 'dead' | 'live' | 'none'; marker: boolean; out?: string; old?: string }): Promise<string> {
    const ns = /\d+/.exec(await readlink('/proc/self/ns/pid'))![0];
    const tag =
      opts.owner === 'dead'
        ? `${await deadPid()}-1-${ns}-`
        : opts.owner === 'live'
          ? `1-${(await readFile('/proc/1/stat', 'utf8')).split(') ')[1]!.split(' ')[19]}-${ns}-`
          : '';
    const dir = join(parent, `.OUT.ctrbake-${tag}${name}`);
    await mkdir(dir);
    if (opts.marker) await writeFile(join(dir, 'committing'), 'x');
    for (const [sub, content] of [['out', opts.out], ['old', opts.old]] as const) {
      if (content === undefined) continue;
      await mkdir(join(dir, sub));
      await writeFile(join(dir, sub, 'manifest.json'), content);
    }
    return dir;
  }

  it.each([
    ['between the renames (OUT moved away, new complete)', { marker: true, out: 'new', old: 'old' }, false, 'new', 'new'],
    ['between the renames of a first bake', { marker: true, out: 'new' }, false, 'new', 'new'],
    ['after both renames', { marker: true, old: 'old' }, true, 'none', 'current'],
    ['before the commit (out/ half written)', { marker: false, out: 'half' }, true, 'none', 'current'],
  ])('killed %s: OUT is complete again and the staging dir is gone', async (_when, state, outExists, restored, expected) => {
    const out = join(parent, 'OUT');
    if (outExists) {
      await mkdir(out);
      await writeFile(join(out, 'manifest.json'), 'current');
    }
    const dir = await leftOver('a', { owner: 'dead', ...state });
    expect(await recoverStagedOutputs(out)).toEqual([{ staging: dir, restored }]);
    expect(await readFile(join(out, 'manifest.json'), 'utf8')).toBe(expected);
    expect(await readdir(parent)).toEqual(['OUT']);
  });

  it('never touches the staging dir of a live process or one that names no owner', async () => {
    const out = join(parent, 'OUT');
    const live = await leftOver('live', { owner: 'live', marker: true, out: 'new' });
    const unowned = await leftOver('none', { owner: 'none', marker: true, out: 'new' });
    expect(await recoverStagedOutputs(out)).toEqual([]);
    expect((await readdir(parent)).sort()).toEqual([live, unowned].map((d) => d.slice(parent.length + 1)).sort());
  });

  it('keeps a dir whose release fails (a mount left)', async () => {
    const out = join(parent, 'OUT');
    const dir = await leftOver('a', { owner: 'dead', marker: false, out: 'half' });
    expect(await recoverStagedOutputs(out, async () => false)).toEqual([]);
    expect(await readdir(parent)).toEqual([dir.slice(parent.length + 1)]);
  });
});
