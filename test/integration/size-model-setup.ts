/**
 * Setup of the size-model test (size-model.test.ts): the benchmark's realistic image set
 * (bench/lib/image-set.ts: three images on one shared base layer, each with its own
 * application and config layers; real ELF files, text and compressed data) at a given scale,
 * pushed to a local registry, locked and fetched once; then baked per layout and booted on
 * the simulated device (devkit/device.ts), counting what the first boot wrote to the
 * data partition (ext4 lifetime_write_kbytes after a sync at shutdown).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bake } from '../../src/bake/bake.js';
import { fetchImages } from '../../src/fetch/index.js';
import type { EngineName } from '../../src/formats/index.js';
import { generateLoader, type LoaderLayout } from '../../src/loader/index.js';
import { resolveLock } from '../../src/lock/index.js';
import { buildImageSet, pushImageSet, type BenchImageSet } from '../../bench/lib/image-set.js';
import { SimDevice } from '../../devkit/device.js';
import { startRegistry } from '../../devkit/registry.js';

export interface SizeModelCase {
  /** "docker split", "podman archive", ... */
  id: string;
  engine: EngineName;
  layout: LoaderLayout;
  mode: 'archive' | 'store';
  storageDriver?: 'overlay2' | 'vfs' | 'overlay';
}

export const SIZE_MODEL_CASES: readonly SizeModelCase[] = [
  { id: 'docker archive', engine: 'docker', layout: 'archive', mode: 'archive' },
  { id: 'docker overlay-vfs', engine: 'docker', layout: 'overlay-vfs', mode: 'store', storageDriver: 'vfs' },
  { id: 'docker split', engine: 'docker', layout: 'split', mode: 'store', storageDriver: 'overlay2' },
  { id: 'docker copy', engine: 'docker', layout: 'copy', mode: 'store', storageDriver: 'overlay2' },
  { id: 'podman archive', engine: 'podman', layout: 'archive', mode: 'archive' },
  { id: 'podman podman-ro', engine: 'podman', layout: 'podman-ro', mode: 'store', storageDriver: 'overlay' },
];

export interface SizeModelFixture {
  set: BenchImageSet;
  work: string;
  lockPath: string;
  cacheDir: string;
  /** Bakes the case (once per engine/mode/driver); returns OUT/manifest.json. */
  bake(c: SizeModelCase): Promise<string>;
  /** Generates the loader for the case, boots a fresh device once and returns KiB written. */
  firstBoot(c: SizeModelCase, manifestPath: string, inspect?: (d: SimDevice) => Promise<void>): Promise<number>;
  dispose(): Promise<void>;
}

/** Dirty page cap of the data partition: what a device with little RAM holds before writing back. */
export const DEVICE_DIRTY_BYTES = 16 * 1024 * 1024;

/**
 * On this 24 GiB host the kernel would keep hundreds of MiB of a boot's writes in the page
 * cache, and files removed within ~30 s (docker load's staging) would never reach the disk;
 * a device with little RAM writes them. So the data partition's loop device gets a strict
 * dirty limit (its bdi's max_bytes + strict_limit) while the device runs; returns the undo,
 * which must run before the loop device is detached (the setting stays with the loop device).
 */
function capDirtyPages(image: string): () => void {
  const loop = execFileSync('losetup', ['-j', image], { encoding: 'utf8' }).split(':')[0]!.trim();
  if (!loop.startsWith('/dev/loop')) throw new Error(`no loop device for ${image}`);
  const dev = execFileSync('lsblk', ['-dno', 'MAJ:MIN', loop], { encoding: 'utf8' }).trim();
  const bdi = `/sys/class/bdi/${dev}`;
  const ratio = readFileSync(`${bdi}/max_ratio`, 'utf8').trim();
  const strict = readFileSync(`${bdi}/strict_limit`, 'utf8').trim();
  writeFileSync(`${bdi}/max_bytes`, String(DEVICE_DIRTY_BYTES));
  writeFileSync(`${bdi}/strict_limit`, '1');
  return () => {
    writeFileSync(`${bdi}/strict_limit`, strict);
    writeFileSync(`${bdi}/max_ratio`, ratio);
  };
}

export async function setupSizeModelFixture(scale: number): Promise<SizeModelFixture> {
  const set = await buildImageSet(scale);
  const work = await mkdtemp('/tmp/ctrbake-size-model-');
  const registry = await startRegistry();
  try {
    const refs = await pushImageSet(set, registry.host);
    const insecureRegistries = [registry.host];
    const lockPath = join(work, 'images.lock.json');
    await resolveLock({ references: refs, platform: 'linux/amd64', output: lockPath, insecureRegistries });
    const cacheDir = join(work, 'cache');
    await fetchImages({ lockPath, cacheDir, fetcher: 'skopeo', insecureRegistries });
    const baked = new Map<string, string>();
    let n = 0;
    return {
      set,
      work,
      lockPath,
      cacheDir,
      async bake(c) {
        const key = `${c.engine}-${c.mode}-${c.storageDriver ?? ''}`;
        const done = baked.get(key);
        if (done) return done;
        const outDir = join(work, `out-${key}`);
        await bake({ lockPath, cacheDir, mode: c.mode, outDir, engine: c.engine, ...(c.storageDriver ? { storageDriver: c.storageDriver } : {}), ...(c.mode === 'store' ? { squashfs: {} } : {}) });
        baked.set(key, join(outDir, 'manifest.json'));
        return join(outDir, 'manifest.json');
      },
      async firstBoot(c, manifestPath, inspect) {
        const overlay = join(work, `overlay-${++n}`);
        await generateLoader({ manifestPath, outDir: overlay, layout: c.layout, init: 'systemd' });
        // Room for the archive layout's free-space check (twice the archives) and the layers;
        // at least 512 MiB, so mkfs.ext4 picks 4 KiB blocks (the model's default) and not the
        // 1 KiB blocks of its "small" type.
        const dataSizeMiB = Math.max(600, Math.ceil((4 * set.unpackedBytes) / 2 ** 20) + 128);
        const d = await SimDevice.create({ overlayDir: overlay, dataSizeMiB });
        let undo: (() => void) | undefined;
        try {
          // The first step that runs a process comes after the data partition is mounted.
          const boot = await d.boot({ init: 'systemd', onStep: () => (undo ??= capDirtyPages(d.image)) });
          if (boot.failure) throw new Error(`${c.id}: the first boot failed at ${boot.failure.name}: ${boot.failure.stderr ?? ''}`);
          // The engine answers a first command (podman initialises its graphroot then).
          const listed = c.engine === 'docker' ? await d.docker(['images']) : await d.podman(['images']);
          if (listed.exitCode !== 0) throw new Error(`${c.id}: the engine did not list its images: ${String(listed.all)}`);
          await inspect?.(d);
          undo?.();
          undo = undefined;
          await d.shutdown();
          if (d.lastBootKiB === undefined || !Number.isFinite(d.lastBootKiB)) throw new Error(`${c.id}: no write count for the first boot`);
          return d.lastBootKiB;
        } finally {
          undo?.();
          await d.dispose();
          await rm(overlay, { recursive: true, force: true });
        }
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
