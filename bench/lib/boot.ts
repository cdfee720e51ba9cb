/**
 * First and second boot of the simulated device (devkit/device.ts) for each loader
 * layout, on outputs the bench baked: time from power-on (namespace, data partition mount) to
 * the first container's exit, and KiB written to the data partition by that boot (ext4
 * lifetime_write_kbytes, counted after a sync at shutdown, so it includes what the first
 * container wrote and was flushed). The second boot is the same device powered on again with
 * nothing changed. Each run starts from a fresh device (new rootfs copy, new data partition).
 *
 * Besides the loader layouts, `rootfs-dataroot` boots a device whose engine data-root is a
 * directory of the rootfs itself, filled at build time from a tar of a data-root: the seed
 * article's device side (its tar of the vfs data-root extracted into the rootfs). Its boot
 * writes to the rootfs, not to the data partition, so its "written" column is 0 by
 * construction: what it writes lands on the rootfs and is not counted here.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { SimDevice } from '../../devkit/device.js';
import { generateLoader, type LoaderLayout } from '../../src/loader/index.js';
import { median } from './measure.js';

export interface BootCase {
  /** Row name, e.g. "docker split". */
  id: string;
  engine: 'docker' | 'podman';
  /** Which engine layout the case measures against: the archive case of the same engine is the ratio base. */
  layout: LoaderLayout | 'rootfs-dataroot';
  /** Loader layouts: OUT/manifest.json of the bake. */
  manifestPath?: string;
  /** rootfs-dataroot: a tar of a vfs data-root (the article's `GNU tar data-root` output). */
  dataRootTar?: string;
  /** Where the bake came from, for the notes (pipeline id). */
  from: string;
}

export interface BootSample {
  /** Power-on to the end of the boot steps (engine up, loader done). */
  bootMs: number;
  /** Power-on to the first container's exit. */
  firstContainerMs: number;
  writtenKiB: number;
}

export interface BootRun {
  first: BootSample;
  second: BootSample;
}

export interface BootSummary {
  id: string;
  engine: 'docker' | 'podman';
  layout: string;
  from: string;
  first: BootSample;
  second: BootSample;
  runs: BootRun[];
  /** Ratios to the archive layout of the same engine (first boot). */
  ratiosToArchive?: { firstContainerMs: number; writtenKiB: number };
}

export interface BootBenchOptions {
  runs: number;
  /** The image to run (a reference the device knows), with --rm and no network. */
  image: string;
  dataSizeMiB: number;
  work: string;
  log: (message: string) => void;
}

/** The device for one case: a loader overlay, or the article's data-root in the rootfs. */
async function prepareOverlay(c: BootCase, work: string): Promise<string> {
  const outDir = join(work, `overlay-${c.id.replace(/[^a-z0-9]+/gi, '-')}`);
  if (c.layout === 'rootfs-dataroot') {
    await mkdir(join(outDir, 'etc', 'docker'), { recursive: true });
    await mkdir(join(outDir, 'etc', 'systemd', 'system'), { recursive: true });
    // Outside the data partition's mount point (/var/lib): the store is part of the rootfs.
    await writeFile(join(outDir, 'etc', 'docker', 'daemon.json'), `${JSON.stringify({ 'data-root': '/opt/docker', 'storage-driver': 'vfs' })}\n`);
    return outDir;
  }
  await generateLoader({ manifestPath: c.manifestPath!, outDir, layout: c.layout, init: 'systemd' });
  return outDir;
}

async function bootOnce(d: SimDevice, c: BootCase, options: BootBenchOptions): Promise<BootSample> {
  const start = process.hrtime.bigint();
  const boot = await d.boot({ init: 'systemd' });
  if (boot.failure) throw new Error(`${c.id}: boot failed at ${boot.failure.name}: ${boot.failure.stderr ?? ''}`);
  const bootMs = Number(process.hrtime.bigint() - start) / 1e6;
  const r = await d.runImage([options.image]);
  if (r.exitCode !== 0) throw new Error(`${c.id}: the first container failed: ${String(r.all)}`);
  const firstContainerMs = Number(process.hrtime.bigint() - start) / 1e6;
  await d.shutdown();
  return { bootMs, firstContainerMs, writtenKiB: d.lastBootKiB ?? NaN };
}

async function runCase(c: BootCase, overlay: string, options: BootBenchOptions): Promise<BootRun> {
  const d = await SimDevice.create({ overlayDir: overlay, dataSizeMiB: options.dataSizeMiB });
  try {
    if (c.layout === 'rootfs-dataroot') {
      // Build time: GNU tar keeps owners, modes and xattrs, as the article's image recipe would.
      await mkdir(d.path('/opt/docker'), { recursive: true });
      await execa('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', d.path('/opt/docker'), '-xf', c.dataRootTar!]);
    }
    const first = await bootOnce(d, c, options);
    const second = await bootOnce(d, c, options);
    return { first, second };
  } finally {
    await d.dispose();
  }
}

function medianSample(samples: BootSample[]): BootSample {
  return {
    bootMs: median(samples.map((s) => s.bootMs)),
    firstContainerMs: median(samples.map((s) => s.firstContainerMs)),
    writtenKiB: median(samples.map((s) => s.writtenKiB)),
  };
}

/** Runs every case `runs` times, interleaved (run 1 of each, then run 2, ...). */
export async function measureBoots(cases: readonly BootCase[], options: BootBenchOptions): Promise<BootSummary[]> {
  const work = await mkdtemp(join(options.work, 'boot-'));
  try {
    const overlays = new Map<string, string>();
    for (const c of cases) {
      options.log(`loader overlay: ${c.id} (${c.from})`);
      overlays.set(c.id, await prepareOverlay(c, work));
    }
    const perCase = new Map<string, BootRun[]>();
    for (let r = 0; r < options.runs; r++) {
      for (const c of cases) {
        options.log(`boot run ${r + 1}/${options.runs}: ${c.id}`);
        const run = await runCase(c, overlays.get(c.id)!, options);
        options.log(
          `  first boot: container after ${run.first.firstContainerMs.toFixed(0)} ms, ${run.first.writtenKiB} KiB written; second: ${run.second.firstContainerMs.toFixed(0)} ms, ${run.second.writtenKiB} KiB`,
        );
        perCase.set(c.id, [...(perCase.get(c.id) ?? []), run]);
      }
    }
    const summaries: BootSummary[] = cases.map((c) => {
      const runs = perCase.get(c.id)!;
      return { id: c.id, engine: c.engine, layout: c.layout, from: c.from, first: medianSample(runs.map((x) => x.first)), second: medianSample(runs.map((x) => x.second)), runs };
    });
    for (const s of summaries) {
      const base = summaries.find((x) => x.engine === s.engine && x.layout === 'archive');
      if (base) s.ratiosToArchive = { firstContainerMs: s.first.firstContainerMs / base.first.firstContainerMs, writtenKiB: s.first.writtenKiB / base.first.writtenKiB };
    }
    return summaries;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
