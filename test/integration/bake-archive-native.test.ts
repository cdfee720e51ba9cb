/**
 * bake --mode archive --builder native: ctrbake writes the archives from the cache's blobs,
 * no engine. Proven against the real engines: a private dockerd 20.10 and podman 4.3 load
 * every archive, list the lock's image ids, digests and tags, run the fidelity image, and
 * `docker save` round-trips to the diff ids; skopeo reads the OCI archives with the lock's
 * manifest digest; the engine path on the same blobs is the oracle (docs/builder.md).
 * The registry is stopped for every bake.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { cp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BakeResult } from '../../src/bake/archive.js';
import { bake } from '../../src/bake/bake.js';
import { startDockerd, type RunningDockerd } from '../../src/engine/dockerd.js';
import { PODMAN_RUN_ARGS, startPodman } from '../../src/engine/podman.js';
import { blobPath } from '../../src/fetch/cache.js';
import { fetchImages } from '../../src/fetch/fetch.js';
import { readDockerArchive } from '../../src/formats/docker-archive.js';
import type { ArchiveFormat, BakeManifest, LockFile } from '../../src/formats/index.js';
import { indexTarFile } from '../../src/formats/tar/index.js';
import { resolveLock } from '../../src/lock/resolve.js';
import { runCleanups } from '../../src/util/cleanup.js';
import { silentReporter } from '../../src/util/reporter.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { dockerLoad, dockerRun, prepareBakeInputs, stagingDirsIn, type BakeInputs } from './bake-archive.helpers.js';

const SDE = 1_700_000_000;
const FORMATS: ArchiveFormat[] = ['docker-archive', 'oci-archive'];

/** The sha256 of every layer `docker save` writes for `ref`, in order. */
async function savedDiffIds(d: RunningDockerd, ref: string, file: string): Promise<string[]> {
  await pipeline((await d.docker.getImage(ref).get()) as NodeJS.ReadableStream, createWriteStream(file));
  const [saved] = await readDockerArchive(file, await indexTarFile(file));
  const bytes = await readFile(file);
  return saved!.layers.map((l) => `sha256:${createHash('sha256').update(bytes.subarray(l.offset, l.offset + l.size)).digest('hex')}`);
}

describe('bake --mode archive --builder native', () => {
  let inputs: BakeInputs;
  /** multi, linux/amd64: resolved from an index, on this host's platform (engines pick it). */
  let lockMulti: string;
  let lockMultiContent: LockFile;
  const baked = new Map<string, BakeResult>();
  /** A copy of the cache with the busybox layer only uncompressed under its diff id (as an engine fetcher stores it), baked as docker-archive. */
  let uncompressedCache: string;
  let uncompressed: BakeResult;
  const uncompressedImage = () => inputs.lockAmd64Content.images.find((i) => i.config.digest === inputs.images.sampleImage.config.digest)!;
  const nativeBake = (format: ArchiveFormat, out: string, lockPath = inputs.lockAmd64, engine: 'docker' | 'podman' = 'docker') =>
    bake({ lockPath, cacheDir: inputs.cacheDir, mode: 'archive', engine, builder: 'native', archiveFormat: format, outDir: join(inputs.work, out), sourceDateEpoch: SDE });

  beforeAll(async () => {
    inputs = await prepareBakeInputs();
    await inputs.registry.start();
    lockMulti = join(inputs.work, 'multi-amd64.lock.json');
    lockMultiContent = (await resolveLock({ references: [inputs.images.multi], platform: 'linux/amd64', output: lockMulti, insecureRegistries: [inputs.registry.host] })).lock;
    await fetchImages({ lockPath: lockMulti, cacheDir: inputs.cacheDir, fetcher: 'skopeo', insecureRegistries: [inputs.registry.host] });
    await inputs.registry.stop();
    for (const format of FORMATS) {
      baked.set(format, await nativeBake(format, `${format}-1`));
      baked.set(`${format}-multi`, await nativeBake(format, `${format}-multi`, lockMulti, 'podman'));
    }
    uncompressedCache = join(inputs.work, 'engine-cache');
    await cp(inputs.cacheDir, uncompressedCache, { recursive: true });
    const layer = uncompressedImage().layers[0]!;
    await execa('sh', ['-c', `gzip -dc < '${blobPath(uncompressedCache, layer.digest)}' > '${blobPath(uncompressedCache, inputs.images.sampleImage.diffIds[0]!)}'`]);
    await rm(blobPath(uncompressedCache, layer.digest));
    uncompressed = await bake({ lockPath: inputs.lockAmd64, cacheDir: uncompressedCache, mode: 'archive', builder: 'native', outDir: join(inputs.work, 'unc-docker'), sourceDateEpoch: SDE });
  }, 300_000);
  afterAll(async () => {
    await runCleanups();
    await inputs?.close();
  });

  it('records the images as the engine path does, engine version "native"; byte-identical in another dir', async () => {
    for (const format of FORMATS) {
      const first = baked.get(format)!;
      expect(first.manifest).toMatchObject({ mode: 'archive', engine: { name: 'docker', version: 'native' }, storageDriver: 'overlay2', archiveFormat: format, sourceDateEpoch: SDE });
      const byRef = Object.fromEntries(first.manifest.images.map((i) => [i.reference, i]));
      for (const built of [inputs.images.sampleImage, inputs.images.fidelityImage]) {
        const image = Object.values(byRef).find((i) => i.imageId === built.config.digest)!;
        expect(image).toMatchObject({ digest: built.manifest.digest, layers: built.layers.map((l, n) => ({ ...l, diffId: built.diffIds[n] })) });
      }
      const again = await nativeBake(format, `${format}-again`);
      expect(again.manifest.outputs, format).toEqual(first.manifest.outputs);
      expect(again.manifest.images).toEqual(first.manifest.images);
    }
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it('copies the blobs unchanged: each archive holds exactly the lock\'s config, layers (and for OCI manifest and index) under their digests', async () => {
    for (const [key, lock] of [['', inputs.lockAmd64Content], ['-multi', lockMultiContent]] as const) {
      for (const format of FORMATS) {
        const result = baked.get(`${format}${key}`)!;
        for (const [i, image] of lock.images.entries()) {
          const archive = join(result.outDir, result.manifest.images[i]!.archive!);
          const entries = await indexTarFile(archive);
          const blobs = entries.filter((e) => e.name.startsWith('blobs/sha256/') && e.type === 'file').map((e) => `sha256:${e.name.slice(13)}`);
          const expected = [image.config.digest, ...image.layers.map((l) => l.digest)];
          if (format === 'oci-archive') expected.push(image.manifest.digest, ...(image.indexDigest !== image.manifest.digest ? [image.indexDigest] : []));
          expect(blobs.sort(), `${format} ${image.reference}`).toEqual([...new Set(expected)].sort());
          const bytes = await readFile(archive);
          for (const e of entries.filter((x) => x.name.startsWith('blobs/sha256/') && x.type === 'file')) {
            expect(bytes.subarray(e.offset, e.offset + e.size).equals(await readFile(blobPath(inputs.cacheDir, `sha256:${e.name.slice(13)}`))), e.name).toBe(true);
          }
          const names = entries.map((e) => e.name);
          expect(names.includes('index.json') && names.includes('oci-layout'), format).toBe(format === 'oci-archive');
          expect(names).toContain('manifest.json');
        }
      }
    }
  });

  it('skopeo reads every OCI archive with the lock\'s manifest and config digests', async () => {
    for (const [key, lock] of [['', inputs.lockAmd64Content], ['-multi', lockMultiContent]] as const) {
      const result = baked.get(`oci-archive${key}`)!;
      for (const [i, image] of lock.images.entries()) {
        const archive = join(result.outDir, result.manifest.images[i]!.archive!);
        const raw = (await execa('skopeo', ['inspect', '--raw', `oci-archive:${archive}`])).stdout;
        const top = image.indexDigest !== image.manifest.digest ? image.indexDigest : image.manifest.digest;
        expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`, image.reference).toBe(top);
        const inspected = JSON.parse((await execa('skopeo', ['inspect', '--override-os', 'linux', '--override-arch', 'amd64', `oci-archive:${archive}`])).stdout) as { Digest: string; Layers: string[] };
        // The digest of what the tag resolves to, as a pull by tag reports it: the index, or the manifest itself.
        expect(inspected.Digest).toBe(image.indexDigest);
        expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));
      }
    }
  });

  it('a fresh private dockerd 20.10 loads every native archive (image id, tag), runs the fidelity image; docker save gives the same layers as from the engine path\'s archives', async () => {
    const engine = await bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: join(inputs.work, 'engine'), sourceDateEpoch: SDE });
    const native = baked.get('docker-archive')!;
    // The oracle: same images recorded, same file names; other bytes by design (the engine
    // path's archive holds the layers gunzipped, as docker save writes them).
    const strip = (m: BakeManifest) => m.images.map(({ archive: _archive, ...rest }) => rest);
    expect(strip(native.manifest)).toEqual(strip(engine.manifest));
    expect(native.manifest.images.map((i) => i.archive)).toEqual(engine.manifest.images.map((i) => i.archive));
    expect(native.manifest.outputs.map((o) => o.sha256)).not.toEqual(engine.manifest.outputs.map((o) => o.sha256));
    const d = await startDockerd({ storageDriver: 'overlay2' });
    try {
      const saved = new Map<string, string[][]>();
      const runs: [string, BakeResult][] = [['engine', engine], ...FORMATS.map((f) => [f, baked.get(f)!] as [string, BakeResult]), ['uncompressed', uncompressed]];
      for (const [name, result] of runs) {
        for (const image of result.manifest.images) await dockerLoad(d, join(result.outDir, image.archive!));
        const layers: string[][] = [];
        for (const image of result.manifest.images) {
          const inspected = await d.docker.getImage(image.reference).inspect();
          expect(inspected.Id, `${name} ${image.reference}`).toBe(image.imageId);
          expect(inspected.RepoTags).toEqual([image.reference]);
          layers.push(await savedDiffIds(d, image.reference, join(inputs.work, `saved-${name}.tar`)));
          expect(layers.at(-1)).toEqual(image.layers.map((l) => l.diffId));
        }
        saved.set(name, layers);
        // Containers of the native archives' images (the saves above already prove every layer's bytes).
        if (name === 'docker-archive' || name === 'oci-archive') assertFidelityOutput(await dockerRun(d, inputs.images.fidelity));
        if (name === 'docker-archive') expect(await dockerRun(d, inputs.images.sample)).toBe(`${SAMPLE_OUTPUT}\n`);
        for (const image of result.manifest.images) await d.docker.getImage(image.reference).remove({ force: true });
      }
      for (const name of saved.keys()) expect(saved.get(name), name).toEqual(saved.get('engine'));
    } finally {
      await d.stop();
    }
  }, 240_000);

  it('a fresh podman 4.3 loads every archive (image id, tag; OCI: the lock\'s digest) and runs the fidelity image and the index-resolved one', async () => {
    const p = await startPodman({ storageDriver: 'overlay' });
    try {
      for (const format of FORMATS) {
        for (const key of ['', '-multi']) {
          const result = baked.get(`${format}${key}`)!;
          for (const image of result.manifest.images) {
            await p.exec(['load', '-i', join(result.outDir, image.archive!)]);
            const [id, digest, tags] = (await p.exec(['image', 'inspect', '--format', '{{.Id}} {{.Digest}} {{json .RepoTags}}', image.reference])).stdout.trim().split(' ');
            expect(`sha256:${id}`, image.reference).toBe(image.imageId);
            expect(JSON.parse(tags!)).toEqual([image.reference]);
            // As a pull by tag: the digest of the index the tag resolved to, or of the manifest.
            if (format === 'oci-archive') expect(digest, image.reference).toBe(image.indexDigest);
          }
        }
        assertFidelityOutput((await p.exec(['run', '--rm', ...PODMAN_RUN_ARGS, inputs.images.fidelity])).stdout);
        expect((await p.exec(['run', '--rm', ...PODMAN_RUN_ARGS, inputs.images.multi])).stdout.trim()).toBe('amd64');
        await p.exec(['rmi', '--all', '--force']);
      }
    } finally {
      await p.stop();
    }
  }, 240_000);

  it('a cache filled before fetch kept the index: OCI archive refused with E_CACHE_MISS naming the index and the fetch; docker-archive bakes; fetch adds the index alone', async () => {
    const cache = join(inputs.work, 'old-cache');
    await cp(inputs.cacheDir, cache, { recursive: true });
    const index = lockMultiContent.images[0]!.indexDigest;
    await rm(blobPath(cache, index));
    const run = (format: ArchiveFormat, out: string) =>
      bake({ lockPath: lockMulti, cacheDir: cache, mode: 'archive', builder: 'native', archiveFormat: format, outDir: join(inputs.work, out), sourceDateEpoch: SDE });
    const error = (await run('oci-archive', 'old-oci').catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe('E_CACHE_MISS');
    expect(error.message).toContain(`its image index ${index}`);
    expect(error.message).toContain(`ctrbake fetch --lock ${lockMulti} --cache ${cache} --fetcher skopeo`);
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
    await run('docker-archive', 'old-docker');
    // The registry down: the otherwise complete cache stays usable, the missing index is an event, not an error.
    const events: Record<string, unknown>[] = [];
    const offline = await fetchImages({ lockPath: lockMulti, cacheDir: cache, insecureRegistries: [inputs.registry.host], retry: { retries: 0 }, reporter: { ...silentReporter, event: (e: Record<string, unknown>) => events.push(e) } });
    expect(offline).toMatchObject({ fetcher: null, blobsFetched: 0, images: [{ indexCached: false }] });
    expect(events.filter((e) => e.event === 'fetch.index-not-cached')).toMatchObject([{ digest: index, message: expect.stringContaining('run ctrbake fetch again with the registry reachable') }]);
    await inputs.registry.start();
    try {
      const fetched = await fetchImages({ lockPath: lockMulti, cacheDir: cache, insecureRegistries: [inputs.registry.host] });
      expect(fetched).toMatchObject({ fetcher: null, blobsFetched: 1, images: [{ indexCached: true, manifestCached: true }] });
    } finally {
      await inputs.registry.stop();
    }
    const oci = await run('oci-archive', 'old-oci');
    expect(oci.manifest.outputs).toEqual(baked.get('oci-archive-multi')!.manifest.outputs);
  });

  it('a cache whose layers an engine fetcher stored uncompressed: docker-archive holds them as cached (loaded above), OCI archive says what is missing', async () => {
    const layer = uncompressedImage().layers[0]!;
    const diffId = inputs.images.sampleImage.diffIds[0]!;
    const names = (await indexTarFile(join(uncompressed.outDir, uncompressed.manifest.images[0]!.archive!))).map((e) => e.name);
    expect(names).toContain(`blobs/sha256/${diffId.slice(7)}`);
    expect(names).not.toContain(`blobs/sha256/${layer.digest.slice(7)}`);
    const error = await bake({ lockPath: inputs.lockAmd64, cacheDir: uncompressedCache, mode: 'archive', builder: 'native', archiveFormat: 'oci-archive', outDir: join(inputs.work, 'unc-oci') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_CACHE_MISS', message: expect.stringContaining(`layer 0 ${layer.digest} as the registry serves it (only its uncompressed form ${diffId} is cached`) });
  });
});
