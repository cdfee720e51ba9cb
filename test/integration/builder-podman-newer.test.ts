/**
 * The podman store written by ctrbake's builder (for podman 4.3) under the newest podman that
 * runs here, Debian 13's podman 5.x (test/fixtures/newer-podman.ts; the Debian tree is made
 * once with debootstrap, or CTRBAKE_TEST_TRIXIE_DIR names one): `podman system check`
 * (podman 5's own consistency check, which re-reads every layer against its diff digest) is
 * clean on it and finds a damaged copy; as graphroot and as a read-only additional image
 * store every image is listed with the lock's ids and manifest digests, runs and saves.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import { extractStoreTar } from '../../src/bake/store-tar.js';
import { verifyStore, type VerifyStoreResult } from '../../src/bake/verify-store.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { ensureNewerPodmanTree, startNewerPodman, startNewerPodmanEngine } from '../fixtures/newer-podman.js';
import { setupStoreFixture, type StoreFixture } from './store-setup.js';

let f: StoreFixture;
let storeTar: string;
let verified: VerifyStoreResult;
let tree: string;

beforeAll(async () => {
  tree = await ensureNewerPodmanTree();
  f = await setupStoreFixture();
  const lockPath = join(f.work, 'ctrbake.lock.json');
  await writeFile(lockPath, JSON.stringify(f.lock, null, 2));
  const out = await bake({ lockPath, cacheDir: f.cacheDir, mode: 'store', engine: 'podman', builder: 'native', engineBinary: '/nonexistent/podman', outDir: join(f.work, 'native') });
  storeTar = join(out.outDir, 'store.tar');
  verified = await verifyStore({ outDir: out.outDir, startPodman: startNewerPodmanEngine });
}, 600_000);

afterAll(async () => {
  await f?.dispose();
});

/** The store extracted into a fresh graphroot under /tmp (the fixture binds it inside the tree), optionally damaged. */
async function graphroot(damage?: (root: string) => Promise<void>): Promise<{ root: string; work: string }> {
  const work = await mkdtemp('/tmp/ctrbake-p5-');
  const root = join(work, 'root');
  await mkdir(root);
  await extractStoreTar(storeTar, root);
  if (damage) await damage(root);
  return { root, work };
}

async function systemCheck(root: string, work: string): Promise<string> {
  const podman = await startNewerPodman({ storageDriver: 'overlay', graphroot: root, workDir: work, tree });
  try {
    return (await podman.exec(['system', 'check'])).stdout;
  } catch (error) {
    return `failed: ${(error as Error).message}`;
  } finally {
    await podman.stop();
  }
}

describe('the builder\'s podman store under podman 5', () => {
  it('is served as graphroot and as a read-only additional image store: listed, run, every layer saved', () => {
    expect(Number(verified.engineVersion.split('.')[0]), verified.engineVersion).toBeGreaterThanOrEqual(5);
    for (const images of [verified.images, verified.additionalStore]) {
      const by = new Map((images ?? []).map((i) => [i.reference, i]));
      assertFidelityOutput(by.get(f.images.fidelity)?.output ?? '');
      expect(by.get(f.images.sample)?.output?.trim()).toBe(SAMPLE_OUTPUT);
      expect(by.get(f.images.fidelity)?.savedLayers).toBe(f.images.fidelityImage.layers.length);
    }
  });

  it('podman system check is clean, podman images lists the lock\'s ids and manifest digests', async () => {
    const { root, work } = await graphroot();
    try {
      expect(await systemCheck(root, work)).not.toMatch(/failed|damage/i);
      const podman = await startNewerPodman({ storageDriver: 'overlay', graphroot: root, workDir: work, tree });
      try {
        const listed = JSON.parse((await podman.exec(['images', '--format', 'json'])).stdout) as Array<{ Id: string; Digest: string }>;
        expect(listed.map((i) => `${i.Id} ${i.Digest}`).sort()).toEqual(f.lock.images.map((i) => `${i.config.digest.slice(7)} ${i.manifest.digest}`).sort());
      } finally {
        await podman.stop();
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }, 120_000);

  it('podman system check finds a changed file in a layer', async () => {
    const { root, work } = await graphroot(async (r) => {
      // kept.txt is in the fidelity image's third layer; any change of its bytes breaks the layer's diff digest.
      const found = (await execa('find', [join(r, 'overlay'), '-path', '*/diff/data/kept.txt'])).stdout.split('\n').filter(Boolean);
      expect(found.length).toBe(1);
      await writeFile(found[0]!, 'XXXXX');
    });
    try {
      expect(await systemCheck(root, work)).toMatch(/damage detected/);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }, 120_000);
});
