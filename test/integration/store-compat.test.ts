/**
 * Engine-version compatibility: a store baked by the host's dockerd 20.10 (Debian 12),
 * extracted into a fresh data-root, served by the newest dockerd that runs here (Debian 13's
 * docker.io, 26.x, from a debootstrap tree; see devkit/newer-dockerd.ts): every image
 * listed, runs with --network none and shows every fidelity property, `docker save` re-reads
 * every layer. overlay2 and vfs. The same for a podman 4.3 store (Debian 12) under Debian 13's
 * podman 5.x, as its graphroot and as a read-only additional image store.
 * docs/engine-compat.md records the result.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bakeStore, type BakeStoreResult } from '../../src/bake/store.js';
import { verifyStore, type StartVerifyDocker, type VerifiedImage, type VerifyStoreResult } from '../../src/bake/verify-store.js';
import { ensureNewerDockerdTree, startNewerDockerd } from '../../devkit/newer-dockerd.js';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import { ensureNewerPodmanTree, startNewerPodmanEngine } from '../fixtures/newer-podman.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { setupStoreFixture, type StoreFixture } from './store-setup.js';

const DRIVERS = ['overlay2', 'vfs'] as const;

const startNewer: StartVerifyDocker = async (dataRoot, storageDriver) => dockerEngine({ ...(await startNewerDockerd({ dataRoot, storageDriver })), storageDriver });

const PODMAN_DRIVERS = ['overlay', 'vfs'] as const;

let f: StoreFixture;
const baked = {} as Record<(typeof DRIVERS)[number], BakeStoreResult>;
const verified = {} as Record<(typeof DRIVERS)[number], VerifyStoreResult>;
const podmanBaked = {} as Record<(typeof PODMAN_DRIVERS)[number], BakeStoreResult>;
const podmanVerified = {} as Record<(typeof PODMAN_DRIVERS)[number], VerifyStoreResult>;

beforeAll(async () => {
  // Builds the Debian 13 tree on a fresh machine (debootstrap from the Debian mirror: minutes).
  await ensureNewerDockerdTree();
  await ensureNewerPodmanTree();
  f = await setupStoreFixture();
  for (const driver of DRIVERS) {
    baked[driver] = await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'docker', storageDriver: driver, outDir: join(f.work, driver) });
    verified[driver] = await verifyStore({ outDir: baked[driver].outDir, startDocker: startNewer });
  }
  for (const driver of PODMAN_DRIVERS) {
    podmanBaked[driver] = await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'podman', storageDriver: driver, outDir: join(f.work, `podman-${driver}`) });
    podmanVerified[driver] = await verifyStore({ outDir: podmanBaked[driver].outDir, startPodman: startNewerPodmanEngine });
  }
}, 1_200_000);

function checkImages(images: readonly VerifiedImage[] | undefined): void {
  const fidelity = images?.find((i) => i.reference === f.images.fidelity);
  const sample = images?.find((i) => i.reference === f.images.sample);
  assertFidelityOutput(fidelity?.output ?? '');
  expect(sample?.output?.trim()).toBe(SAMPLE_OUTPUT);
  expect(fidelity?.savedLayers).toBe(f.images.fidelityImage.layers.length);
  expect(sample?.savedLayers).toBe(f.images.sampleImage.layers.length);
}

afterAll(async () => {
  await f?.dispose();
});

describe.each(DRIVERS)('a docker 20.10 %s store under Debian 13\'s dockerd', (driver) => {
  it('was baked by 20.10 and is served by a newer major version', () => {
    expect(baked[driver].manifest.engine.version).toMatch(/^20\.10\./);
    const newer = Number(verified[driver].engineVersion.split('.')[0]);
    expect(newer, verified[driver].engineVersion).toBeGreaterThanOrEqual(26);
  });

  it('lists every image, runs it with --network none with every fidelity property, saves every layer', () => {
    const images = verified[driver].images;
    const fidelity = images.find((i) => i.reference === f.images.fidelity);
    const sample = images.find((i) => i.reference === f.images.sample);
    assertFidelityOutput(fidelity?.output ?? '');
    expect(sample?.output?.trim()).toBe(SAMPLE_OUTPUT);
    expect(fidelity?.savedLayers).toBe(f.images.fidelityImage.layers.length);
    expect(sample?.savedLayers).toBe(f.images.sampleImage.layers.length);
    expect(fidelity?.digestReferences).toEqual([`${f.images.registry}/ctrbake/fidelity@${f.images.fidelityImage.manifest.digest}`]);
  });
});

describe.each(PODMAN_DRIVERS)('a podman 4.3 %s store under Debian 13\'s podman', (driver) => {
  it('was baked by 4.3 and is served by podman 5 or later', () => {
    expect(podmanBaked[driver].manifest.engine.version).toMatch(/^4\.3\./);
    expect(Number(podmanVerified[driver].engineVersion.split('.')[0]), podmanVerified[driver].engineVersion).toBeGreaterThanOrEqual(5);
  });

  it('as its graphroot: lists, runs with every fidelity property, saves every layer', () => {
    checkImages(podmanVerified[driver].images);
  });

  it('as a read-only additional image store: the same', () => {
    checkImages(podmanVerified[driver].additionalStore);
  });
});
