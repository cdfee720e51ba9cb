import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveFileName, imageTag } from '../../../src/bake/archive.js';
import { stageOutput } from '../../../src/util/staged-output.js';
import type { LockedImage } from '../../../src/formats.js';
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
    expect(pendingCleanups()).toContain(`bake staging ${staged.staging}`);
    await writeFile(join(staged.outTmp, 'manifest.json'), '{}');
    await staged.commit();
    expect(await readdir(out)).toEqual(['manifest.json']);
    expect(await readFile(join(out, 'manifest.json'), 'utf8')).toBe('{}');
    expect(await readdir(join(parent, 'nested'))).toEqual(['OUT']);
    expect(pendingCleanups()).not.toContain(`bake staging ${staged.staging}`);
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

describe('archive names', () => {
  const image = (over: Partial<LockedImage>): LockedImage =>
    ({ reference: 'x', registry: '127.0.0.1:5000', repository: 'ctrbake/sample', tag: '1.0', manifest: { digest: `sha256:${'a'.repeat(64)}` }, ...over }) as LockedImage;

  it('tags by registry/repository:tag, and not at all for digest-only references', () => {
    expect(imageTag(image({}))).toBe('127.0.0.1:5000/ctrbake/sample:1.0');
    expect(imageTag(image({ tag: null }))).toBeUndefined();
  });

  it('flattens the reference into a file name, unique within a bake', () => {
    const taken = new Set<string>();
    expect(archiveFileName(image({}), 'docker-archive', taken)).toBe('127.0.0.1_5000_ctrbake_sample_1.0.tar');
    expect(archiveFileName(image({}), 'docker-archive', taken)).toBe('127.0.0.1_5000_ctrbake_sample_1.0-2.tar');
    expect(archiveFileName(image({ registry: 'docker.io', repository: 'library/busybox', tag: null }), 'oci-archive', taken)).toBe(`docker.io_library_busybox_sha256_${'a'.repeat(64)}.oci.tar`);
  });
});
