/**
 * The builder against its oracle on seeded random layer stacks (devkit/random-layers.ts:
 * whiteouts, opaque dirs, hard links within and across layers, xattrs incl.
 * security.capability, setuid, devices, long and non-UTF-8 names, empty layers, deletes of
 * what an earlier layer added). Each random image is pushed to a local registry, locked and
 * fetched; the engine path (dockerd 20.10) and `--builder native` bake the same blobs, for
 * overlay2 and vfs; every tree and metadata file must be equal (builder-store.helpers.ts mask).
 *
 * `npm test` runs CTRBAKE_ORACLE_COUNT=1 image (all in one lock: one engine run per driver);
 * more with e.g. `CTRBAKE_ORACLE_COUNT=20 npx vitest run test/integration/builder-oracle-random.test.ts`.
 * The seed is printed; CTRBAKE_ORACLE_SEED=<seed> replays a run.
 *
 * CTRBAKE_ORACLE_BENCH=1 also bakes the realistic bench set (bench/lib/image-set.ts: three
 * images on one Debian base, ~441 MB unpacked, built offline from this machine's files) by
 * both paths and compares them: overlay2, and vfs with CTRBAKE_ORACLE_BENCH=vfs (minutes).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import { bakeStore } from '../../src/bake/store.js';
import { fetchImages } from '../../src/fetch/index.js';
import type { LockFile } from '../../src/formats/index.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from '../../src/formats/media-types.js';
import { resolveLock } from '../../src/lock/index.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushBlob, pushManifest } from '../../src/registry/push.js';
import { sha256 } from '../../devkit/layers.js';
import { randomLayerStack } from '../../devkit/random-layers.js';
import { startRegistry } from '../../devkit/registry.js';
import { buildImageSet, pushImageSet } from '../../bench/lib/image-set.js';
import { readStoreTree, storeDifferences } from './builder-store.helpers.js';

const SEED = process.env.CTRBAKE_ORACLE_SEED ? Number(process.env.CTRBAKE_ORACLE_SEED) : Math.floor(Math.random() * 2 ** 31);
const COUNT = Number(process.env.CTRBAKE_ORACLE_COUNT ?? 1);

let work: string;
let lock: LockFile;
let lockPath: string;
let cacheDir: string;

/** Pushes one random image (docker v2s2, gzip layers) as REPO:TAG; returns its reference. */
async function pushRandomImage(client: RegistryClient, host: string, seed: number, index: number): Promise<string> {
  const tars = randomLayerStack(seed);
  const layers = tars.map((tar) => ({ tar, gz: gzipSync(tar) }));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2020-09-13T12:26:40Z',
      config: { Cmd: ['/nothing'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l.tar)) },
      history: layers.map((_, i) => ({ created: '2020-09-13T12:26:40Z', created_by: `random layer ${i} of seed ${seed}` })),
    }),
  );
  const repo = { registry: host, repository: `ctrbake/random${index}` };
  for (const l of layers) await pushBlob(client, repo, l.gz);
  await pushBlob(client, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: DOCKER_LAYER_GZIP, digest: sha256(l.gz), size: l.gz.length })),
    }),
  );
  await pushManifest(client, repo, 'seeded', manifest, DOCKER_MANIFEST);
  return `${host}/${repo.repository}:seeded`;
}

beforeAll(async () => {
  console.log(`builder oracle, random layer stacks: CTRBAKE_ORACLE_SEED=${SEED} CTRBAKE_ORACLE_COUNT=${COUNT}`);
  work = await mkdtemp('/tmp/ctrbake-oracle-random-');
  const registry = await startRegistry();
  try {
    const client = await RegistryClient.create({ insecureRegistries: [registry.host], retry: { retries: 1, initialDelayMs: 100 } });
    const references: string[] = [];
    for (let i = 0; i < COUNT; i++) references.push(await pushRandomImage(client, registry.host, SEED + i, i));
    lockPath = join(work, 'ctrbake.lock.json');
    cacheDir = join(work, 'cache');
    ({ lock } = await resolveLock({ references, platform: 'linux/amd64', output: lockPath, insecureRegistries: [registry.host] }));
    await fetchImages({ lockPath, cacheDir, fetcher: 'skopeo', insecureRegistries: [registry.host] });
  } finally {
    await registry.close();
  }
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe(`builder vs engine path on ${COUNT} random layer stack(s) (seed ${SEED})`, () => {
  it.each(['overlay2', 'vfs'] as const)('%s: every layer tree and metadata file equal', async (storageDriver) => {
    const engineOut = (await bakeStore({ lock, cacheDir, engine: 'docker', storageDriver, outDir: join(work, `engine-${storageDriver}`) })).outDir;
    const nativeOut = (await bake({ lockPath, cacheDir, mode: 'store', builder: 'native', storageDriver, engineBinary: '/nonexistent/dockerd', outDir: join(work, `native-${storageDriver}`) })).outDir;
    const differences = storeDifferences(await readStoreTree(join(engineOut, 'store.tar')), await readStoreTree(join(nativeOut, 'store.tar')));
    if (differences.length > 0) await writeFile(join('/tmp', `ctrbake-oracle-random-${SEED}-${storageDriver}.txt`), differences.join('\n'));
    expect(differences.slice(0, 20), `seed ${SEED}: replay with CTRBAKE_ORACLE_SEED=${SEED} CTRBAKE_ORACLE_COUNT=${COUNT}`).toEqual([]);
  }, 600_000);
});

const BENCH = process.env.CTRBAKE_ORACLE_BENCH;

describe.runIf(BENCH)('builder vs engine path on the realistic bench set (CTRBAKE_ORACLE_BENCH)', () => {
  it.each((BENCH === 'vfs' ? ['overlay2', 'vfs'] : ['overlay2']) as Array<'overlay2' | 'vfs'>)('%s: every layer tree and metadata file equal', async (storageDriver) => {
    const dir = await mkdtemp('/var/tmp/ctrbake-oracle-bench-');
    try {
      const set = await buildImageSet();
      const registry = await startRegistry();
      const benchLock = join(dir, 'ctrbake.lock.json');
      const benchCache = join(dir, 'cache');
      let benchLockFile: LockFile;
      try {
        const references = await pushImageSet(set, registry.host);
        ({ lock: benchLockFile } = await resolveLock({ references, platform: 'linux/amd64', output: benchLock, insecureRegistries: [registry.host] }));
        await fetchImages({ lockPath: benchLock, cacheDir: benchCache, fetcher: 'skopeo', insecureRegistries: [registry.host] });
      } finally {
        await registry.close();
      }
      const engineOut = (await bakeStore({ lock: benchLockFile, cacheDir: benchCache, engine: 'docker', storageDriver, outDir: join(dir, 'engine') })).outDir;
      const nativeOut = (await bake({ lockPath: benchLock, cacheDir: benchCache, mode: 'store', builder: 'native', storageDriver, engineBinary: '/nonexistent/dockerd', outDir: join(dir, 'native') })).outDir;
      const differences = storeDifferences(await readStoreTree(join(engineOut, 'store.tar')), await readStoreTree(join(nativeOut, 'store.tar')));
      if (differences.length > 0) await writeFile(join('/tmp', `ctrbake-oracle-bench-${storageDriver}.txt`), differences.join('\n'));
      expect(differences.slice(0, 20)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 3_600_000);
});
