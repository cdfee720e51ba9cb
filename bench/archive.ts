/**
 * Archive bake: ctrbake's builder (`--builder native`) against the engine path and the copy
 * floor, on the benchmark image set (bench/lib/image-set.ts), same run, interleaved:
 *   - copy:               `cp` of every blob an archive holds (the floor: "copy speed");
 *   - gunzip:             `gzip -dc` of every layer blob to a file (what writing docker save's
 *                         uncompressed layers would add on top of the copy);
 *   - native docker-archive / native oci-archive: `bake --mode archive --builder native`;
 *   - engine docker-archive: `bake --mode archive` with a private dockerd (load, save, normalize).
 * Then what a device pays: `docker load` into a fresh private dockerd of the native archives
 * (compressed layers) against the engine path's (uncompressed layers), and their sizes.
 * Everything runs in process or as child processes on this machine; root for dockerd.
 *
 *   npm run bench -- archive [--scale 0.3] [--runs 3] [--json]
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bake } from '../src/bake/bake.js';
import { startDockerd } from '../src/engine/dockerd.js';
import { blobPath } from '../src/fetch/cache.js';
import { fetchImages } from '../src/fetch/fetch.js';
import type { ArchiveFormat, BakeManifest } from '../src/formats/index.js';
import { resolveLock } from '../src/lock/resolve.js';
import { startRegistry } from '../devkit/registry.js';
import { buildImageSet, pushImageSet } from './lib/image-set.js';
import { median, wall } from './lib/measure.js';

const exec = promisify(execFile);

function parseArgs(argv: string[]): { scale: number; runs: number; json: boolean } {
  const args = { scale: 0.3, runs: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--scale') args.scale = Number(argv[++i]);
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === 'archive' || a === '--') continue;
    else throw new Error(`unknown argument ${a}; see the header of bench/archive.ts`);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const work = await mkdtemp('/var/tmp/ctrbake-bench-archive-');
const registry = await startRegistry();
const log = (m: string) => process.stderr.write(`bench archive: ${m}\n`);
try {
  const set = await buildImageSet(args.scale);
  const refs = await pushImageSet(set, registry.host);
  const lockPath = join(work, 'lock.json');
  const { lock } = await resolveLock({ references: refs, platform: 'linux/amd64', output: lockPath, insecureRegistries: [registry.host] });
  const cacheDir = join(work, 'cache');
  await fetchImages({ lockPath, cacheDir, fetcher: 'skopeo', insecureRegistries: [registry.host] });
  await registry.stop();
  const layerBlobs = [...new Set(lock.images.flatMap((i) => i.layers.map((l) => l.digest)))].map((d) => blobPath(cacheDir, d));
  const archiveBlobs = lock.images.flatMap((i) => [i.config.digest, ...i.layers.map((l) => l.digest)]).map((d) => blobPath(cacheDir, d));
  log(`${lock.images.length} images, ${layerBlobs.length} unique layers`);

  let n = 0;
  const out = () => join(work, `out-${n++}`);
  const bakeWith = (builder: 'native' | 'engine', archiveFormat: ArchiveFormat) => async () => {
    const dir = out();
    const result = await bake({ lockPath, cacheDir, mode: 'archive', builder, archiveFormat, outDir: dir, sourceDateEpoch: 1_600_000_000, force: true });
    return result.manifest;
  };
  const contenders: Record<string, () => Promise<unknown>> = {
    copy: async () => {
      const dir = out();
      await mkdir(dir);
      await exec('cp', [...archiveBlobs, dir]).catch(async () => {
        // The same blob twice (a shared layer) is fine for cp only once per name: copy one by one.
        for (const [i, b] of archiveBlobs.entries()) await exec('cp', [b, join(dir, `${i}`)]);
      });
    },
    gunzip: async () => {
      const dir = out();
      await mkdir(dir);
      for (const [i, b] of layerBlobs.entries()) await exec('sh', ['-c', `gzip -dc < '${b}' > '${join(dir, String(i))}'`]);
    },
    'native docker-archive': bakeWith('native', 'docker-archive'),
    'native oci-archive': bakeWith('native', 'oci-archive'),
    'engine docker-archive': bakeWith('engine', 'docker-archive'),
  };
  const times = new Map<string, number[]>(Object.keys(contenders).map((k) => [k, []]));
  const manifests = new Map<string, BakeManifest>();
  for (let run = 0; run < args.runs; run++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const { wallS, value } = await wall(fn);
      times.get(name)!.push(wallS);
      if (value) manifests.set(name, value as BakeManifest);
      log(`run ${run + 1}: ${name} ${wallS.toFixed(2)} s`);
      for (const e of await readdir(work)) if (e.startsWith('out-')) await rm(join(work, e), { recursive: true, force: true });
    }
  }
  // The device side: docker load of the last native and engine archives (baked again, kept).
  const loads = new Map<string, { wallS: number[]; bytes: number }>();
  const kept = { native: await bakeWith('native', 'docker-archive')(), engine: await bakeWith('engine', 'docker-archive')() };
  const keptDirs = { native: join(work, `out-${n - 2}`), engine: join(work, `out-${n - 1}`) };
  for (let run = 0; run < args.runs; run++) {
    for (const name of ['native', 'engine'] as const) {
      const d = await startDockerd({ storageDriver: 'overlay2' });
      try {
        let bytes = 0;
        const { wallS } = await wall(async () => {
          for (const image of kept[name].images) {
            const file = join(keptDirs[name], image.archive!);
            bytes += (await stat(file)).size;
            await d.docker.loadImage(file).then((s) => new Promise((res, rej) => d.docker.modem.followProgress(s, (e: Error | null) => (e ? rej(e) : res(undefined)))));
          }
        });
        const entry = loads.get(name) ?? { wallS: [], bytes };
        entry.wallS.push(wallS);
        loads.set(name, entry);
        log(`run ${run + 1}: docker load ${name} ${wallS.toFixed(2)} s`);
      } finally {
        await d.stop();
      }
    }
  }
  const copy = median(times.get('copy')!);
  const rows = [...times].map(([name, t]) => ({ name, medianS: median(t), spreadS: Math.max(...t) - Math.min(...t), perCopy: median(t) / copy }));
  const loadRows = [...loads].map(([name, l]) => ({ name, medianS: median(l.wallS), archiveMiB: l.bytes / 2 ** 20, perNative: median(l.wallS) / median(loads.get('native')!.wallS) }));
  const machine = { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version, date: new Date().toISOString() };
  if (args.json) {
    console.log(JSON.stringify({ bench: 'archive', args, machine, rows, loads: loadRows }, null, 2));
  } else {
    console.log(`${lock.images.length} images, ${layerBlobs.length} unique layers; median of ${args.runs}; ${machine.date}, load ${machine.loadavg.map((x) => x.toFixed(1)).join(' ')}`);
    console.log('bake                         time s   spread s   time/copy');
    for (const r of rows) console.log(`${r.name.padEnd(28)} ${r.medianS.toFixed(2).padStart(6)} ${r.spreadS.toFixed(2).padStart(10)} ${r.perCopy.toFixed(2).padStart(11)}`);
    console.log('docker load (fresh dockerd)  time s   archives MiB   time/native');
    for (const r of loadRows) console.log(`${r.name.padEnd(28)} ${r.medianS.toFixed(2).padStart(6)} ${r.archiveMiB.toFixed(1).padStart(14)} ${r.perNative.toFixed(2).padStart(13)}`);
  }
} finally {
  await registry.close();
  await rm(work, { recursive: true, force: true });
}
