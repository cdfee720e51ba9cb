/**
 * Shared setup of the loader tests: the fixture images in a local registry, two locks for
 * linux/amd64 (A: sample + fidelity; B: fidelity + multi, i.e. an OTA that removes sample and
 * adds multi), fetched into one cache; then the registry is closed: bakes are offline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bake } from '../src/bake/bake.js';
import { fetchImages } from '../src/fetch/index.js';
import { resolveLock } from '../src/lock/index.js';
import type { EngineName } from '../src/formats/index.js';
import { generateLoader, type LoaderOptions } from '../src/loader/index.js';
import type { InitStyle } from './device.js';
import { pushFixtureImages, type FixtureImages } from './fixture-images.js';
import { startRegistry } from './registry.js';

export const INITS = ['systemd', 'sysvinit', 'busybox'] as const;

/** The device's prepare step (before the engine) under each init style. */
export function prepareStep(init: InitStyle): string {
  return { systemd: 'service:ctrbake-prepare.service', sysvinit: 'init:S19ctrbake', busybox: 'init:S59ctrbake' }[init];
}

/** The archive layout's load step (after the engine) under each init style. */
export function loadStep(init: InitStyle): string {
  return { systemd: 'service:ctrbake-load.service', sysvinit: 'init:S21ctrbake-load', busybox: 'init:S61ctrbake-load' }[init];
}

export interface LoaderFixture {
  images: FixtureImages;
  work: string;
  lockA: string;
  lockB: string;
  cacheDir: string;
  /** Bakes a lock; returns OUT/manifest.json. */
  bake(lock: 'A' | 'B', mode: 'archive' | 'store', options?: { engine?: EngineName; storageDriver?: string }): Promise<string>;
  /** Runs `ctrbake loader` (library) into a new dir; returns it. */
  loader(manifestPath: string, options: Omit<LoaderOptions, 'manifestPath' | 'outDir'>): Promise<string>;
  dispose(): Promise<void>;
}

export async function setupLoaderFixture(): Promise<LoaderFixture> {
  const work = await mkdtemp('/tmp/ctrbake-loader-test-');
  const registry = await startRegistry();
  let n = 0;
  try {
    const images = await pushFixtureImages(registry);
    const insecureRegistries = [registry.host];
    const lockA = join(work, 'a.lock.json');
    const lockB = join(work, 'b.lock.json');
    await resolveLock({ references: [images.sample, images.fidelity], platform: 'linux/amd64', output: lockA, insecureRegistries });
    await resolveLock({ references: [images.fidelity, images.multi], platform: 'linux/amd64', output: lockB, insecureRegistries });
    const cacheDir = join(work, 'cache');
    await fetchImages({ lockPath: lockA, cacheDir, fetcher: 'skopeo', insecureRegistries });
    await fetchImages({ lockPath: lockB, cacheDir, fetcher: 'skopeo', insecureRegistries });
    return {
      images,
      work,
      lockA,
      lockB,
      cacheDir,
      async bake(lock, mode, options = {}) {
        const outDir = join(work, `out-${++n}`);
        await bake({ lockPath: lock === 'A' ? lockA : lockB, cacheDir, mode, outDir, ...options });
        return join(outDir, 'manifest.json');
      },
      async loader(manifestPath, options) {
        const outDir = join(work, `overlay-${++n}`);
        await generateLoader({ manifestPath, outDir, ...options });
        return outDir;
      },
      dispose: () => rm(work, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  } finally {
    await registry.close();
  }
}
