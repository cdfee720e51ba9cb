/**
 * The one setup of the loader tests, the store tests, the size-model test and the boot
 * benches: images pushed to a local registry, locked and fetched into one cache, then the
 * registry closed (every bake after it is offline); bakes and loader outputs from that cache;
 * simulated devices (devkit/device.ts) that are all disposed together.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bake } from '../src/bake/bake.js';
import { fetchImages } from '../src/fetch/index.js';
import { resolveLock } from '../src/lock/index.js';
import type { EngineName, LockFile } from '../src/formats/index.js';
import { generateLoader, type LoaderLayout, type LoaderOptions } from '../src/loader/index.js';
import { SimDevice, type Boot, type InitStyle } from './device.js';
import { pushFixtureImages, type FixtureImages } from './fixture-images.js';
import { startRegistry, type TestRegistry } from './registry.js';

export const INITS = ['systemd', 'sysvinit', 'busybox'] as const;

/**
 * The layouts a device test file runs under one init style. With CTRBAKE_DEVICE_MATRIX=full
 * (`npm run test:devices`, `npm run test:soak`): every layout under every init style. By
 * default (`npm test`): one layout per init style along a diagonal, so each layout and each
 * init style still boots in every file, and `shift` moves the diagonal so a file's second
 * group of cases (e.g. the power cuts) pairs them differently from its first.
 */
export function layoutsUnder<L extends string>(init: InitStyle, layouts: readonly L[], shift = 0): L[] {
  if (process.env.CTRBAKE_DEVICE_MATRIX === 'full') return [...layouts];
  const at = INITS.indexOf(init);
  return layouts.filter((_, i) => (i + shift) % INITS.length === at);
}

/** The device's prepare step (before the engine) under each init style. */
export function prepareStep(init: InitStyle): string {
  return { systemd: 'service:ctrbake-prepare.service', sysvinit: 'init:S19ctrbake', busybox: 'init:S59ctrbake' }[init];
}

/** The archive layout's load step (after the engine) under each init style. */
export function loadStep(init: InitStyle): string {
  return { systemd: 'service:ctrbake-load.service', sysvinit: 'init:S21ctrbake-load', busybox: 'init:S61ctrbake-load' }[init];
}

/** What every step of a boot wrote to stderr. */
export function bootLog(boot: Boot): string {
  return boot.steps.map((s) => s.stderr ?? '').join('\n');
}

/** One loader layout with the bake it needs. */
export interface LayoutCase {
  /** "docker split", "podman archive", ... */
  id: string;
  engine: EngineName;
  layout: LoaderLayout;
  mode: 'archive' | 'store';
  storageDriver?: 'overlay2' | 'vfs' | 'overlay';
}

/** Every layout of both engines, each with the storage driver its store is baked for. */
export const LAYOUT_CASES: readonly LayoutCase[] = [
  { id: 'docker archive', engine: 'docker', layout: 'archive', mode: 'archive' },
  { id: 'docker overlay-vfs', engine: 'docker', layout: 'overlay-vfs', mode: 'store', storageDriver: 'vfs' },
  { id: 'docker split', engine: 'docker', layout: 'split', mode: 'store', storageDriver: 'overlay2' },
  { id: 'docker copy', engine: 'docker', layout: 'copy', mode: 'store', storageDriver: 'overlay2' },
  { id: 'podman archive', engine: 'podman', layout: 'archive', mode: 'archive' },
  { id: 'podman podman-ro', engine: 'podman', layout: 'podman-ro', mode: 'store', storageDriver: 'overlay' },
];

export interface LockSpec {
  references: string[];
  platform: string;
}

/** Locks (written as WORK/NAME.lock.json) and the cache they were fetched into. */
export interface OfflineCache<T, K extends string> {
  pushed: T;
  /** Scratch dir of the setup; removed by dispose(). */
  work: string;
  cacheDir: string;
  lockPaths: Record<K, string>;
  locks: Record<K, LockFile>;
  dispose(): Promise<void>;
}

/** Pushes with `push`, locks every `locks` entry, fetches each into one cache, closes the registry. */
export async function prepareOfflineCache<T, K extends string>(options: {
  prefix: string;
  push: (registry: TestRegistry) => Promise<T>;
  locks: (pushed: T) => Record<K, LockSpec>;
}): Promise<OfflineCache<T, K>> {
  const work = await mkdtemp(`/tmp/${options.prefix}-`);
  const registry = await startRegistry();
  try {
    const pushed = await options.push(registry);
    const insecureRegistries = [registry.host];
    const cacheDir = join(work, 'cache');
    const lockPaths = {} as Record<K, string>;
    const locks = {} as Record<K, LockFile>;
    for (const [name, spec] of Object.entries(options.locks(pushed)) as [K, LockSpec][]) {
      lockPaths[name] = join(work, `${name}.lock.json`);
      ({ lock: locks[name] } = await resolveLock({ ...spec, output: lockPaths[name], insecureRegistries }));
      await fetchImages({ lockPath: lockPaths[name], cacheDir, fetcher: 'skopeo', insecureRegistries });
    }
    return { pushed, work, cacheDir, lockPaths, locks, dispose: () => rm(work, { recursive: true, force: true }) };
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  } finally {
    await registry.close();
  }
}

/** Numbers the OUT and overlay dirs (new paths: bake writes OUT itself). */
let seq = 0;

/** Bakes into WORK/out-N; returns OUT/manifest.json. */
export async function bakeInto(work: string, options: Omit<Parameters<typeof bake>[0], 'outDir'>): Promise<string> {
  const outDir = join(work, `out-${++seq}`);
  await bake({ ...options, outDir });
  return join(outDir, 'manifest.json');
}

/** Runs `ctrbake loader` (library) into a new dir under WORK; returns it. */
export async function loaderInto(work: string, manifestPath: string, options: Omit<LoaderOptions, 'manifestPath' | 'outDir'>): Promise<string> {
  const outDir = join(work, `overlay-${++seq}`);
  await generateLoader({ manifestPath, outDir, ...options });
  return outDir;
}

/** The simulated devices of a test file or bench: created on demand, disposed together. */
export class Devices {
  private readonly list: SimDevice[] = [];

  async create(overlayDir: string, dataSizeMiB = 96): Promise<SimDevice> {
    const d = await SimDevice.create({ overlayDir, dataSizeMiB });
    this.list.push(d);
    return d;
  }

  async disposeAll(): Promise<void> {
    for (const d of this.list.splice(0)) await d.dispose();
  }
}

/**
 * The loader tests' images: two locks for linux/amd64 (A: sample + fidelity; B: fidelity +
 * multi, i.e. an OTA that removes sample and adds multi), fetched into one cache.
 */
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
  const c = await prepareOfflineCache({
    prefix: 'ctrbake-loader-test',
    push: pushFixtureImages,
    locks: (images) => ({
      a: { references: [images.sample, images.fidelity], platform: 'linux/amd64' },
      b: { references: [images.fidelity, images.multi], platform: 'linux/amd64' },
    }),
  });
  return {
    images: c.pushed,
    work: c.work,
    lockA: c.lockPaths.a,
    lockB: c.lockPaths.b,
    cacheDir: c.cacheDir,
    bake: (lock, mode, options = {}) => bakeInto(c.work, { lockPath: lock === 'A' ? c.lockPaths.a : c.lockPaths.b, cacheDir: c.cacheDir, mode, ...options }),
    loader: (manifestPath, options) => loaderInto(c.work, manifestPath, options),
    dispose: c.dispose,
  };
}
