/**
 * `ctrbake fetch --fetcher docker|podman`: pulls by digest in a private engine and stores the
 * config and the uncompressed layers under their diff_ids; bake finds them with resolveLayerBlob.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobPath, checkCacheComplete, resolveLayerBlob } from '../../src/fetch/index.js';
import type { LockFile } from '../../src/formats/index.js';
import { pushFixtureImages, type FixtureImages } from '../fixtures/images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import { cacheBlobs, fixtureLock, processesNaming, runCli, startCli, waitFor, writeLock } from './fetch-helpers.js';

let work: string;
let registry: TestRegistry;
let images: FixtureImages;
let lock: LockFile;
let lockPath: string;
let authRegistry: TestRegistry;
let authLockPath: string;
let authLock: LockFile;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ctrbake-fetch-engines-'));
  registry = await startRegistry();
  images = await pushFixtureImages(registry);
  lock = fixtureLock(images);
  lockPath = await writeLock(join(work, 'ctrbake.lock.json'), lock);
  authRegistry = await startRegistry({ auth: true });
  authLock = fixtureLock(await pushFixtureImages(authRegistry));
  authLockPath = await writeLock(join(work, 'auth.lock.json'), authLock);
});

afterAll(async () => {
  await registry?.close();
  await authRegistry?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The cache holds, for every image, the config and each layer uncompressed under its diff_id. */
async function expectEngineCache(cache: string, l: LockFile, fx: FixtureImages, manifestCached: boolean): Promise<void> {
  const { digests, wrong } = await cacheBlobs(cache);
  expect(wrong).toEqual([]);
  const built = [fx.sampleImage, fx.fidelityImage, fx.multiArm64];
  const expected = new Set<string>();
  for (const [i, image] of l.images.entries()) {
    expected.add(image.config.digest);
    if (manifestCached) expected.add(image.manifest.digest);
    // The index is read by ctrbake's registry client for every fetcher.
    if (image.indexDigest !== image.manifest.digest) expected.add(image.indexDigest);
    for (const [j, layer] of image.layers.entries()) {
      const diffId = built[i]!.diffIds[j]!;
      expected.add(diffId);
      const found = await resolveLayerBlob(cache, layer, diffId);
      expect(found).toMatchObject({ digest: diffId, asPublished: false, compressed: false });
    }
  }
  expect(digests).toEqual(expected);
  const status = await checkCacheComplete(cache, l);
  expect(status.complete).toBe(true);
  expect(status.images.map((s) => s.manifestCached)).toEqual(l.images.map(() => manifestCached));
  expect(await readdir(join(cache, 'tmp'))).toEqual([]);
}

describe.each([
  ['docker', false],
  ['podman', true],
] as const)('fetch with %s', (fetcher, manifestCached) => {
  it('pulls by digest in a private engine, stores config and diff_id layers; a rerun with the registry stopped fetches nothing, and bake works offline from it', async () => {
    const cache = join(work, `${fetcher}-plain`);
    const run = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--fetcher', fetcher, '--insecure-registry', registry.host, '--json']);
    expect(run.error).toBeUndefined();
    expect(run.result).toMatchObject({ fetcher });
    await expectEngineCache(cache, lock, images, manifestCached);
    // The arm64 image came from the multi-platform index: its config says arm64.
    const arm = JSON.parse(await readFile(blobPath(cache, lock.images[2]!.config.digest), 'utf8')) as { architecture: string };
    expect(arm.architecture).toBe('arm64');

    await registry.stop();
    try {
      const again = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--fetcher', fetcher, '--insecure-registry', registry.host, '--json', '--retries', '0']);
      expect(again.error).toBeUndefined();
      expect(again.result).toMatchObject({ fetcher: null, blobsFetched: 0 });
      // The cache contract: bake finds the uncompressed layers under their diff_ids, offline.
      // (The test lock mixes platforms; bake checks them, so bake the linux/amd64 images.)
      const amd64 = await writeLock(join(work, `${fetcher}-amd64.lock.json`), { ...lock, images: lock.images.slice(0, 2) });
      const baked = await runCli(['bake', '--lock', amd64, '--cache', cache, '--mode', 'archive', '--offline', '-o', join(work, `${fetcher}-out`), '--json']);
      expect(baked.error).toBeUndefined();
      expect(baked.exitCode).toBe(0);
    } finally {
      await registry.start();
    }
  });

  it('uses --authfile for a registry with auth; refused without it; the password appears nowhere', async () => {
    const cache = join(work, `${fetcher}-auth`);
    const { password } = authRegistry.auth!;
    const refused = await runCli(['fetch', '--lock', authLockPath, '--cache', cache, '--fetcher', fetcher, '--insecure-registry', authRegistry.host, '--json', '--retries', '0']);
    expect(refused.error?.code).toBe('E_AUTH_REFUSED');
    const ok = await runCli(['fetch', '--lock', authLockPath, '--cache', cache, '--fetcher', fetcher, '--authfile', authRegistry.authfile!, '--insecure-registry', authRegistry.host, '--json']);
    expect(ok.error).toBeUndefined();
    expect(ok.result).toMatchObject({ fetcher });
    expect(refused.stdout + refused.stderr + ok.stdout + ok.stderr).not.toContain(password);
    const grep = await execa('grep', ['-r', '-l', '-F', password, cache], { reject: false });
    expect(grep.exitCode, `files in the cache holding the password: ${grep.stdout}`).toBe(1);
  });

  it('E_DIGEST_MISMATCH for a lock whose layer digest was edited; nothing enters blobs/', async () => {
    const first = lock.images[0]!;
    const edited: LockFile = { ...lock, images: [{ ...first, layers: [{ ...first.layers[0]!, digest: lock.images[1]!.layers[1]!.digest }] }] };
    const path = await writeLock(join(work, `${fetcher}-edited.lock.json`), edited);
    const cache = join(work, `${fetcher}-edited`);
    const run = await runCli(['fetch', '--lock', path, '--cache', cache, '--fetcher', fetcher, '--insecure-registry', registry.host, '--json', '--retries', '0']);
    expect(run.error?.code).toBe('E_DIGEST_MISMATCH');
    expect((await cacheBlobs(cache)).digests.size).toBe(0);
  });
});

describe('a docker fetch killed with SIGKILL', () => {
  it('the next fetch stops the private dockerd the killed run left running, then completes', async () => {
    const cache = join(work, 'docker-killed');
    const child = startCli(['fetch', '--lock', lockPath, '--cache', cache, '--fetcher', 'docker', '--insecure-registry', registry.host, '--json']);
    const engineUp = await waitFor(async () => (await processesNaming(cache)).some((l) => l.includes('dockerd')), 60_000);
    expect(engineUp, 'the private dockerd did not start within 60 s').toBe(true);
    child.kill('SIGKILL');
    await child;
    const orphans = await processesNaming(cache);
    // The daemon is detached: it outlives a SIGKILLed ctrbake (if it ever dies with it, so much the better).
    const privateDir = /--exec-root (\S+)\/x\b/.exec(orphans.join('\n'))?.[1];
    expect((await cacheBlobs(cache)).wrong).toEqual([]);

    const rerun = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--fetcher', 'docker', '--insecure-registry', registry.host, '--json']);
    expect(rerun.error).toBeUndefined();
    expect(await processesNaming(cache)).toEqual([]);
    if (privateDir) {
      expect(await processesNaming(privateDir)).toEqual([]);
      await expect(stat(privateDir)).rejects.toThrow(/ENOENT/);
    }
    await expectEngineCache(cache, lock, images, false);
  });
});
