/**
 * What checking a cache costs, in the same run, on one cache of --size-mib of layer blobs
 * (random bytes: compressed layers do not compress further) spread over 3 images of 4 layers:
 *   - sizes only (checkCacheComplete: stat of every blob, the pre-check that finds truncation);
 *   - sizes + sha256 of every blob (assertCacheComplete: what bake, fetch and fetch --offline do);
 *   - the same again in the same process (bake after the budget check, or `build`: memoized);
 *   - reading the bytes without hashing (cat > /dev/null), the I/O floor.
 * The page cache is warm (the blobs were just written, as right after a fetch).
 *
 *   npm run bench -- cache-verify [--size-mib 300] [--runs 3] [--json]
 */
import { execFile } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { blobPath, ensureCacheLayout } from '../src/fetch/cache.js';
import { assertCacheComplete, checkCacheComplete } from '../src/fetch/complete.js';
import { forgetVerified } from '../src/fetch/integrity.js';
import type { Descriptor, LockedImage } from '../src/formats/index.js';

const exec = promisify(execFile);

function parseArgs(argv: string[]): { sizeMiB: number; runs: number; json: boolean } {
  const args = { sizeMiB: 300, runs: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--size-mib') args.sizeMiB = Number(argv[++i]);
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === 'cache-verify' || a === '--') continue;
    else throw new Error(`unknown argument ${a}; see the header of bench/cache-verify.ts`);
  }
  return args;
}

const digestOf = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function put(cache: string, bytes: Buffer | string, mediaType: string): Promise<Descriptor> {
  const digest = digestOf(bytes);
  await writeFile(blobPath(cache, digest), bytes);
  return { mediaType, digest, size: Buffer.byteLength(bytes) };
}

/** Wall seconds; and this process's CPU seconds (user + system) in `cpu`: on a shared machine, the figure that carries. */
async function seconds(fn: () => Promise<unknown>, cpu?: number[]): Promise<number> {
  const start = process.hrtime.bigint();
  const used = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(used);
  cpu?.push((d.user + d.system) / 1e6);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = await mkdtemp(join(tmpdir(), 'ctrbake-bench-cache-'));
  try {
    const cache = join(dir, 'cache');
    await ensureCacheLayout(cache);
    const layerBytes = Math.floor((args.sizeMiB * 1024 * 1024) / 12);
    const images: LockedImage[] = [];
    for (let i = 0; i < 3; i++) {
      const layers: Descriptor[] = [];
      for (let j = 0; j < 4; j++) layers.push(await put(cache, randomBytes(layerBytes), 'application/vnd.oci.image.layer.v1.tar+gzip'));
      const config = await put(cache, JSON.stringify({ rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, n: i }), 'application/vnd.oci.image.config.v1+json');
      const manifest = await put(cache, JSON.stringify({ schemaVersion: 2, config, layers }), 'application/vnd.oci.image.manifest.v1+json');
      images.push({ reference: `bench/i${i}:1`, registry: 'bench', repository: `i${i}`, tag: '1', indexDigest: manifest.digest, indexMediaType: manifest.mediaType, manifest, config, layers, platform: { os: 'linux', architecture: 'amd64' } });
    }
    const lock = { images };
    const files = images.flatMap((i) => [i.manifest, i.config, ...i.layers].map((d) => blobPath(cache, d.digest)));
    const totalMiB = (12 * layerBytes) / 1024 / 1024;
    const times: Record<string, number[]> = { sizes: [], hash: [], memo: [], read: [] };
    const cpu: Record<string, number[]> = { sizes: [], hash: [], memo: [], read: [] };
    for (let r = 0; r < args.runs; r++) {
      times.read!.push(await seconds(() => exec('sh', ['-c', 'cat "$@" > /dev/null', 'sh', ...files])));
      times.sizes!.push(await seconds(() => checkCacheComplete(cache, lock), cpu.sizes));
      forgetVerified();
      times.hash!.push(await seconds(() => assertCacheComplete(cache, lock), cpu.hash));
      times.memo!.push(await seconds(() => assertCacheComplete(cache, lock), cpu.memo));
    }
    const rows = [
      ['sizes only (checkCacheComplete)', median(times.sizes!), median(cpu.sizes!)],
      ['sizes + sha256 (assertCacheComplete)', median(times.hash!), median(cpu.hash!)],
      ['again in the same process (memoized)', median(times.memo!), median(cpu.memo!)],
      ['read only (cat > /dev/null)', median(times.read!), NaN],
    ] as const;
    if (args.json) {
      console.log(JSON.stringify({ sizeMiB: totalMiB, blobs: files.length, runs: args.runs, cpus: cpus().length, times, cpu }));
      return;
    }
    console.log(`cache: ${totalMiB.toFixed(1)} MiB in ${files.length} blobs (3 images x 4 layers + configs + manifests), warm page cache, median of ${args.runs}`);
    console.log(`load average: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
    console.log(`${'check'.padEnd(40)}${'wall s'.padStart(8)}${'x read'.padStart(8)}${'cpu s'.padStart(8)}${'MiB/cpu s'.padStart(11)}`);
    const read = median(times.read!);
    for (const [name, t, c] of rows) {
      console.log(`${name.padEnd(40)}${t.toFixed(3).padStart(8)}${(t / read).toFixed(2).padStart(8)}${(Number.isNaN(c) ? '-' : c.toFixed(3)).padStart(8)}${(Number.isNaN(c) ? '-' : (totalMiB / c).toFixed(0)).padStart(11)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
