/**
 * bake --mode archive with the private dockerd, from a cache filled by fetch, with the
 * registry stopped. Archives are then loaded into a FRESH private engine and run.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import type { BakeResult } from '../../src/bake/archive.js';
import { readDockerArchive } from '../../src/formats/docker-archive.js';
import { compareTarPaths, indexTarFile } from '../../src/formats/tar/index.js';
import { startDockerd } from '../../src/engine/dockerd.js';
import { mountsUnder } from '../../src/engine/mounts.js';
import { PODMAN_RUN_ARGS, startPodman } from '../../src/engine/podman.js';
import { blobPath } from '../../src/fetch/cache.js';
import type { BakeManifest } from '../../src/formats/index.js';
import { runCleanups } from '../../src/util/cleanup.js';
import { sha256File } from '../../src/util/fs.js';
import { VERSION } from '../../src/version.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { dockerLoad, dockerRun, prepareBakeInputs, readTarHeaders, stagingDirsIn, type BakeInputs } from './bake-archive.helpers.js';
import { execa } from 'execa';

const SDE = 1_700_000_000;

describe('bake --mode archive --engine docker', () => {
  let inputs: BakeInputs;
  let first: BakeResult;
  let second: BakeResult;

  beforeAll(async () => {
    inputs = await prepareBakeInputs();
    // Two bakes of the same lock at once (the registry is already stopped).
    [first, second] = await Promise.all(
      ['out-1', 'out-2'].map((o) =>
        bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: join(inputs.work, o), sourceDateEpoch: SDE }),
      ),
    );
  }, 300_000);
  afterAll(async () => {
    await runCleanups();
    await inputs?.close();
  });

  it('writes OUT/manifest.json that records everything, and archives whose sha256 it lists', async () => {
    const manifest = JSON.parse(await readFile(join(first.outDir, 'manifest.json'), 'utf8')) as BakeManifest;
    expect(manifest).toEqual(first.manifest);
    expect(manifest).toMatchObject({
      manifestVersion: 1,
      ctrbakeVersion: VERSION,
      mode: 'archive',
      engine: { name: 'docker', version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
      storageDriver: 'overlay2',
      archiveFormat: 'docker-archive',
      platform: { os: 'linux', architecture: 'amd64' },
      sourceDateEpoch: SDE,
    });
    const byRef = Object.fromEntries(manifest.images.map((i) => [i.reference, i]));
    for (const [ref, built] of [
      [inputs.images.sample, inputs.images.sampleImage],
      [inputs.images.fidelity, inputs.images.fidelityImage],
    ] as const) {
      const image = byRef[ref]!;
      expect(image, ref).toMatchObject({ digest: built.manifest.digest, imageId: built.config.digest, platform: { os: 'linux', architecture: 'amd64' } });
      expect(image.layers).toEqual(built.layers.map((l, n) => ({ ...l, diffId: built.diffIds[n] })));
      expect(manifest.outputs.map((o) => o.path)).toContain(image.archive);
    }
    expect(manifest.outputs).toHaveLength(2);
    for (const o of manifest.outputs) {
      const file = join(first.outDir, o.path);
      expect(await sha256File(file)).toBe(o.sha256);
      expect((await stat(file)).size).toBe(o.size);
    }
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it('gives byte-identical archives for two bakes of the same lock (run at the same time)', () => {
    expect(second.manifest.outputs).toEqual(first.manifest.outputs);
    expect(second.manifest).toEqual(first.manifest);
  });

  it('normalizes the outer tar: sorted, mtime = SOURCE_DATE_EPOCH, owner 0/0 without names, no PAX times', async () => {
    for (const o of first.manifest.outputs) {
      const headers = await readTarHeaders(join(first.outDir, o.path));
      expect(headers.length).toBeGreaterThan(3);
      for (const h of headers) {
        expect(h, h.name).toMatchObject({ mtime: SDE, uid: 0, gid: 0, uname: '', gname: '' });
        expect(Object.keys(h.pax ?? {}).filter((k) => /time/.test(k)), h.name).toEqual([]);
      }
      const names = headers.map((h) => h.name.replace(/\/$/, ''));
      expect(names).toEqual([...names].sort(compareTarPaths));
    }
  });

  it('archives load into a fresh private dockerd and run with --network none: every fidelity property intact', async () => {
    const d = await startDockerd({ storageDriver: 'overlay2' });
    try {
      for (const image of first.manifest.images) await dockerLoad(d, join(first.outDir, image.archive!));
      const fidelity = first.manifest.images.find((i) => i.reference === inputs.images.fidelity)!;
      expect((await d.docker.getImage(inputs.images.fidelity).inspect()).Id).toBe(fidelity.imageId);
      assertFidelityOutput(await dockerRun(d, inputs.images.fidelity));
      expect(await dockerRun(d, inputs.images.sample)).toBe(`${SAMPLE_OUTPUT}\n`);
    } finally {
      await d.stop();
    }
  });

  it('linux/arm64 from the multi-platform index: the archive holds the arm64 config and layers', async () => {
    const out = join(inputs.work, 'arm64');
    const result = await bake({ lockPath: inputs.lockArm64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: out, sourceDateEpoch: SDE });
    const arm = inputs.images.multiArm64;
    expect(result.manifest.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(result.manifest.images).toMatchObject([{ reference: inputs.images.multi, digest: arm.manifest.digest, imageId: arm.config.digest }]);
    const archive = join(out, result.manifest.images[0]!.archive!);
    const [saved, ...rest] = await readDockerArchive(archive, await indexTarFile(archive));
    expect(rest).toEqual([]);
    expect(`sha256:${createHash('sha256').update(saved!.configBytes).digest('hex')}`).toBe(arm.config.digest);
    expect(saved!.config).toMatchObject({ os: 'linux', architecture: 'arm64', rootfs: { diff_ids: arm.diffIds } });
    expect(saved!.repoTags).toEqual([inputs.images.multi]);
    // The layers in the archive are the arm64 ones (not the amd64 busybox layer).
    const fh = await readFile(archive);
    const layerHashes = saved!.layers.map((l) => `sha256:${createHash('sha256').update(fh.subarray(l.offset, l.offset + l.size)).digest('hex')}`);
    expect(layerHashes).toEqual(arm.diffIds);
    expect(layerHashes).not.toContain(inputs.images.multiAmd64.diffIds[0]);
  });

  it('oci-archive: a real OCI layout that skopeo reads and a fresh podman loads and runs', async () => {
    const out = join(inputs.work, 'oci');
    const result = await bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: out, archiveFormat: 'oci-archive', sourceDateEpoch: SDE });
    expect(result.manifest.archiveFormat).toBe('oci-archive');
    const sample = result.manifest.images.find((i) => i.reference === inputs.images.sample)!;
    const archive = join(out, sample.archive!);
    expect(archive.endsWith('.oci.tar')).toBe(true);
    const names = (await indexTarFile(archive)).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['oci-layout', 'index.json', `blobs/sha256/${sample.imageId.slice(7)}`]));
    const inspected = JSON.parse((await execa('skopeo', ['inspect', '--raw', `oci-archive:${archive}`])).stdout) as { config: { digest: string }; layers: { digest: string }[] };
    expect(inspected.config.digest).toBe(sample.imageId);
    expect(inspected.layers.map((l) => l.digest)).toEqual(sample.layers.map((l) => l.diffId));
    const p = await startPodman({ storageDriver: 'overlay' });
    try {
      await p.exec(['pull', `oci-archive:${archive}`]);
      expect((await p.exec(['image', 'inspect', '--format', '{{.Id}}', inputs.images.sample])).stdout).toBe(sample.imageId.slice(7));
      expect((await p.exec(['run', '--rm', ...PODMAN_RUN_ARGS, inputs.images.sample])).stdout).toBe(SAMPLE_OUTPUT);
    } finally {
      await p.stop();
    }
  });

  it('E_CACHE_MISS names the image and says to run ctrbake fetch; no OUT, no staging dir', async () => {
    const cache = join(inputs.work, 'partial-cache');
    await cp(inputs.cacheDir, cache, { recursive: true });
    const missingLayer = inputs.images.fidelityImage.layers.at(-1)!.digest;
    await rm(blobPath(cache, missingLayer));
    const out = join(inputs.work, 'miss');
    const error = await bake({ lockPath: inputs.lockAmd64, cacheDir: cache, mode: 'archive', engine: 'docker', outDir: out }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_CACHE_MISS' });
    expect((error as Error).message).toContain(inputs.images.fidelity);
    expect((error as Error).message).toContain(missingLayer);
    expect((error as Error).message).toContain(`${blobPath(cache, missingLayer)} is missing`);
    expect((error as Error).message).toContain(`ctrbake fetch --lock ${inputs.lockAmd64} --cache ${cache}`);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it('E_CACHE_DAMAGED when a cached config was changed (same size): found by its sha256 before any engine starts', async () => {
    const cache = join(inputs.work, 'tampered-cache');
    await cp(inputs.cacheDir, cache, { recursive: true });
    const configFile = blobPath(cache, inputs.images.sampleImage.config.digest);
    const original = await readFile(configFile, 'utf8');
    const changed = original.replace('ctrbake test fixture', 'ctrbake test fixturE');
    expect(changed).not.toBe(original);
    await writeFile(configFile, changed);
    const out = join(inputs.work, 'tampered');
    await expect(bake({ lockPath: inputs.lockAmd64, cacheDir: cache, mode: 'archive', engine: 'docker', outDir: out })).rejects.toMatchObject({
      code: 'E_CACHE_DAMAGED',
      message: expect.stringContaining(`config ${inputs.images.sampleImage.config.digest}: ${configFile}: its bytes hash to sha256:`),
    });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it('E_WRONG_PLATFORM when the engine reports another platform than the lock', async () => {
    const lock = JSON.parse(await readFile(inputs.lockAmd64, 'utf8')) as { platform: unknown };
    lock.platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    const lockPath = join(inputs.work, 'lying.lock.json');
    await writeFile(lockPath, JSON.stringify(lock));
    const out = join(inputs.work, 'wrong');
    await expect(bake({ lockPath, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: out })).rejects.toMatchObject({
      code: 'E_WRONG_PLATFORM',
      message: expect.stringMatching(/linux\/amd64 in docker, the lock is for linux\/arm64/),
    });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it('E_ENGINE_MISSING when dockerd is not installed; nothing left', async () => {
    const out = join(inputs.work, 'no-engine');
    await expect(
      bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: out, engineBinary: '/nonexistent/dockerd' }),
    ).rejects.toMatchObject({ code: 'E_ENGINE_MISSING', message: expect.stringContaining('docker.io') });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it('OUT on an overlayfs (as in a build container): overlay2 says to use vfs, vfs bakes the same archives', async () => {
    const base = join(inputs.work, 'ovl');
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(base, d), { recursive: true });
    const merged = join(base, 'merged');
    await execa('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${join(base, 'lower')},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, merged]);
    try {
      const out = join(merged, 'OUT');
      await expect(bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: out, sourceDateEpoch: SDE })).rejects.toMatchObject({
        code: 'E_ENGINE_START',
        message: expect.stringContaining('use the vfs storage driver'),
      });
      await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await stagingDirsIn(merged)).toEqual([]);
      const result = await bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', storageDriver: 'vfs', outDir: out, sourceDateEpoch: SDE });
      expect(result.manifest.outputs).toEqual(first.manifest.outputs);
      expect(await mountsUnder([merged])).toEqual([merged]);
    } finally {
      await execa('umount', [merged]);
    }
  });

  it('replaces a previous bake output as a whole, and refuses one that holds a file it did not write', async () => {
    const out = join(inputs.work, 'replace');
    await cp(first.outDir, out, { recursive: true });
    // layers.json is written next to a manifest by `report --write-layers`: part of an output, not of the new one.
    await writeFile(join(out, 'layers.json'), '{}');
    const result = await bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', storageDriver: 'vfs', outDir: out, sourceDateEpoch: SDE });
    await expect(stat(join(out, 'layers.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(result.manifest.storageDriver).toBe('vfs');
    // vfs or overlay2 in the baking engine: the same archives.
    expect(result.manifest.outputs).toEqual(first.manifest.outputs);

    await writeFile(join(out, 'notes.txt'), 'a file of the user');
    const manifestBefore = await readFile(join(out, 'manifest.json'));
    await expect(bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: out, sourceDateEpoch: SDE, force: true })).rejects.toMatchObject({ code: 'E_OUTPUT_NOT_OURS' });
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('a file of the user');
    expect(await readFile(join(out, 'manifest.json'))).toEqual(manifestBefore);
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });
});
