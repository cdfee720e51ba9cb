/**
 * Shared setup of the bake-archive tests: a registry with the fixture images, locks for
 * linux/amd64 (sample + fidelity) and linux/arm64 (multi), fetched with skopeo into one cache,
 * then the registry is STOPPED: every bake in these tests runs with no registry at all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchImages } from '../../src/fetch/fetch.js';
import type { LockFile } from '../../src/formats.js';
import { resolveLock } from '../../src/lock/resolve.js';
import { pushFixtureImages, type FixtureImages } from '../fixtures/fixture-images.js';
import { startRegistry, type TestRegistry } from '../fixtures/registry.js';

export interface BakeInputs {
  work: string;
  cacheDir: string;
  images: FixtureImages;
  registry: TestRegistry;
  /** sample + fidelity, linux/amd64 */
  lockAmd64: string;
  lockAmd64Content: LockFile;
  /** multi, linux/arm64 */
  lockArm64: string;
  lockArm64Content: LockFile;
  close(): Promise<void>;
}

export async function prepareBakeInputs(): Promise<BakeInputs> {
  const work = await mkdtemp(join(tmpdir(), 'ctrbake-bake-test-'));
  const registry = await startRegistry();
  try {
    const images = await pushFixtureImages(registry);
    const insecureRegistries = [registry.host];
    const lockAmd64 = join(work, 'amd64.lock.json');
    const lockArm64 = join(work, 'arm64.lock.json');
    const a = await resolveLock({ references: [images.sample, images.fidelity], platform: 'linux/amd64', output: lockAmd64, insecureRegistries });
    const b = await resolveLock({ references: [images.multi], platform: 'linux/arm64', output: lockArm64, insecureRegistries });
    const cacheDir = join(work, 'cache');
    await fetchImages({ lockPath: lockAmd64, cacheDir, fetcher: 'skopeo', insecureRegistries });
    await fetchImages({ lockPath: lockArm64, cacheDir, fetcher: 'skopeo', insecureRegistries });
    await registry.stop();
    return {
      work,
      cacheDir,
      images,
      registry,
      lockAmd64,
      lockAmd64Content: a.lock,
      lockArm64,
      lockArm64Content: b.lock,
      async close() {
        await registry.close();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await registry.close();
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}
