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
import { rm } from 'node:fs/promises';
import { buildImageSet, pushImageSet, type BenchImageSet } from '../../bench/lib/image-set.js';
import { SimDevice } from '../../devkit/device.js';
import { bakeInto, LAYOUT_CASES, loaderInto, prepareOfflineCache, type LayoutCase } from '../../devkit/device-setup.js';

export type SizeModelCase = LayoutCase;
export const SIZE_MODEL_CASES = LAYOUT_CASES;

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
  const c = await prepareOfflineCache({
    prefix: 'ctrbake-size-model',
    push: (registry) => pushImageSet(set, registry.host),
    locks: (refs) => ({ images: { references: refs, platform: 'linux/amd64' } }),
  });
  const baked = new Map<string, Promise<string>>();
  return {
    set,
    work: c.work,
    lockPath: c.lockPaths.images,
    cacheDir: c.cacheDir,
    bake(k) {
      const key = `${k.engine}-${k.mode}-${k.storageDriver ?? ''}`;
      if (!baked.has(key)) {
        const options = { engine: k.engine, ...(k.storageDriver ? { storageDriver: k.storageDriver } : {}), ...(k.mode === 'store' ? { squashfs: {} } : {}) };
        baked.set(key, bakeInto(c.work, { lockPath: c.lockPaths.images, cacheDir: c.cacheDir, mode: k.mode, ...options }));
      }
      return baked.get(key)!;
    },
    async firstBoot(k, manifestPath, inspect) {
      const overlay = await loaderInto(c.work, manifestPath, { layout: k.layout, init: 'systemd' });
      // Room for the archive layout's free-space check (twice the archives) and the layers;
      // at least 512 MiB, so mkfs.ext4 picks 4 KiB blocks (the model's default) and not the
      // 1 KiB blocks of its "small" type.
      const dataSizeMiB = Math.max(600, Math.ceil((4 * set.unpackedBytes) / 2 ** 20) + 128);
      const d = await SimDevice.create({ overlayDir: overlay, dataSizeMiB });
      let undo: (() => void) | undefined;
      try {
        // The first step that runs a process comes after the data partition is mounted.
        const boot = await d.boot({ init: 'systemd', onStep: () => (undo ??= capDirtyPages(d.image)) });
        if (boot.failure) throw new Error(`${k.id}: the first boot failed at ${boot.failure.name}: ${boot.failure.stderr ?? ''}`);
        // The engine answers a first command (podman initialises its graphroot then).
        const listed = k.engine === 'docker' ? await d.docker(['images']) : await d.podman(['images']);
        if (listed.exitCode !== 0) throw new Error(`${k.id}: the engine did not list its images: ${String(listed.all)}`);
        await inspect?.(d);
        undo?.();
        undo = undefined;
        await d.shutdown();
        if (d.lastBootKiB === undefined || !Number.isFinite(d.lastBootKiB)) throw new Error(`${k.id}: no write count for the first boot`);
        return d.lastBootKiB;
      } finally {
        undo?.();
        await d.dispose();
        await rm(overlay, { recursive: true, force: true });
      }
    },
    dispose: c.dispose,
  };
}
