/**
 * bake --mode archive with the private podman, from a cache filled by fetch, with the
 * registry stopped. Archives are loaded into a FRESH private podman and run.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BakeResult } from '../../src/bake/archive.js';
import { bake } from '../../src/bake/bake.js';
import { readDockerArchive } from '../../src/formats/docker-archive.js';
import { indexTarFile } from '../../src/formats/tar/index.js';
import { PODMAN_RUN_ARGS, startPodman } from '../../src/engine/podman.js';
import { runCleanups } from '../../src/util/cleanup.js';
import { sha256File } from '../../src/util/fs.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { prepareBakeInputs, readTarHeaders, stagingDirsIn, type BakeInputs } from './bake-archive.helpers.js';

const SDE = 1_650_000_000;

describe('bake --mode archive --engine podman', () => {
  let inputs: BakeInputs;
  let first: BakeResult;
  let second: BakeResult;

  beforeAll(async () => {
    inputs = await prepareBakeInputs();
    [first, second] = await Promise.all(
      ['out-1', 'out-2'].map((o) =>
        bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'podman', outDir: join(inputs.work, o), sourceDateEpoch: SDE }),
      ),
    );
  }, 300_000);
  afterAll(async () => {
    await runCleanups();
    await inputs?.close();
  });

  it('records podman, its version and driver in OUT/manifest.json; sha256 of each archive listed', async () => {
    expect(first.manifest).toMatchObject({
      mode: 'archive',
      engine: { name: 'podman', version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
      storageDriver: 'overlay',
      archiveFormat: 'docker-archive',
      sourceDateEpoch: SDE,
    });
    expect(first.manifest.images.map((i) => i.imageId).sort()).toEqual([inputs.images.sampleImage.config.digest, inputs.images.fidelityImage.config.digest].sort());
    for (const o of first.manifest.outputs) {
      expect(await sha256File(join(first.outDir, o.path))).toBe(o.sha256);
      expect((await stat(join(first.outDir, o.path))).size).toBe(o.size);
      for (const h of await readTarHeaders(join(first.outDir, o.path))) expect(h, h.name).toMatchObject({ mtime: SDE, uid: 0, gid: 0 });
    }
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it('gives byte-identical archives for two bakes of the same lock (run at the same time)', () => {
    expect(second.manifest.outputs).toEqual(first.manifest.outputs);
  });

  it('archives load into a fresh private podman and run: every fidelity property intact', async () => {
    const p = await startPodman({ storageDriver: 'overlay' });
    try {
      for (const image of first.manifest.images) await p.exec(['pull', `docker-archive:${join(first.outDir, image.archive!)}`]);
      assertFidelityOutput((await p.exec(['run', '--rm', ...PODMAN_RUN_ARGS, inputs.images.fidelity])).stdout);
      expect((await p.exec(['run', '--rm', ...PODMAN_RUN_ARGS, inputs.images.sample])).stdout).toBe(SAMPLE_OUTPUT);
    } finally {
      await p.stop();
    }
  });

  it('linux/arm64 from the multi-platform index: the archive holds the arm64 config and layers', async () => {
    const out = join(inputs.work, 'arm64');
    const result = await bake({ lockPath: inputs.lockArm64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'podman', storageDriver: 'vfs', outDir: out });
    const arm = inputs.images.multiArm64;
    expect(result.manifest.storageDriver).toBe('vfs');
    expect(result.manifest.images).toMatchObject([{ imageId: arm.config.digest, digest: arm.manifest.digest }]);
    const archive = join(out, result.manifest.images[0]!.archive!);
    const [saved] = await readDockerArchive(archive, await indexTarFile(archive));
    expect(`sha256:${createHash('sha256').update(saved!.configBytes).digest('hex')}`).toBe(arm.config.digest);
    expect(saved!.config).toMatchObject({ architecture: 'arm64', rootfs: { diff_ids: arm.diffIds } });
    const bytes = await readFile(archive);
    expect(saved!.layers.map((l) => `sha256:${createHash('sha256').update(bytes.subarray(l.offset, l.offset + l.size)).digest('hex')}`)).toEqual(arm.diffIds);
  });

  it('E_ENGINE_MISSING when podman is not installed; nothing left', async () => {
    const out = join(inputs.work, 'no-engine');
    await expect(
      bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'podman', outDir: out, engineBinary: '/nonexistent/podman' }),
    ).rejects.toMatchObject({ code: 'E_ENGINE_MISSING', message: expect.stringContaining('apt-get install podman') });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });
});
