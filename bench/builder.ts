/**
 * `npm run bench -- builder [--scale 1] [--runs 3] [--only ID,...] [--json]`
 *
 * ctrbake's own builder against the engine path and against the lower bound, same cache,
 * same run, interleaved (run 1 of every contender, then run 2, ...), as root (the engine
 * path starts a private dockerd). Inputs: bench/lib/image-set.ts's realistic image set,
 * pushed to a local registry, locked and fetched once. Each contender is one entry of
 * CONTENDERS, in a group; the table gives median wall time, CPU, peak RSS (largest single
 * process, GNU time) and output size, and each contender's time over its group's baseline.
 *   store:   bake --mode store --squashfs (native, the default) | --builder engine |
 *            the lower bound: every unique layer gunzipped once, piped into tar2sqfs -j 2
 *   archive: bake --mode archive (the engine path today) | a plain copy of the blobs
 *            (the native archive writer, when it exists, is one more entry here)
 * Goals (issue 14): store native <= 1.15x the lower bound, >= 2x faster than the engine
 * path, peak RSS <= 256 MiB; archive native near copy speed.
 */
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { resolveLock } from '../src/lock/resolve.js';
import { blobPath } from '../src/fetch/cache.js';
import { startRegistry } from '../devkit/registry.js';
import { buildImageSet, pushImageSet } from './lib/image-set.js';
import { median, timed, type StepCost } from './lib/measure.js';

const ROOT = join(import.meta.dirname, '..');
const CTRBAKE = [process.execPath, join(ROOT, 'bin', 'ctrbake.js')];

interface Args {
  scale: number;
  runs: number;
  only?: string[];
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { scale: 1, runs: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--scale') args.scale = Number(argv[++i]);
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--only') args.only = argv[++i]!.split(',');
    else if (a === '--json') args.json = true;
    else if (a !== '--') throw new Error(`bench builder: unknown argument ${a} (--scale N --runs N --only ID,... --json)`);
  }
  return args;
}

interface Ctx {
  lockPath: string;
  cacheDir: string;
  /** Unique layer blobs of the lock, as cached. */
  layerBlobs: string[];
  scratch: string;
  env: NodeJS.ProcessEnv;
}

type Measured = StepCost & { outputBytes: number };

interface Contender {
  id: string;
  group: 'store' | 'archive';
  /** The group's reference: the other contenders' time ratios are over it. */
  baseline?: true;
  run: (ctx: Ctx, dir: string) => Promise<Measured>;
}

async function sizeOf(paths: string[]): Promise<number> {
  let total = 0;
  for (const p of paths) total += (await stat(p)).size;
  return total;
}

function bakeWith(mode: 'store' | 'archive', extra: string[], outputs: (out: string) => Promise<number>): Contender['run'] {
  return async (ctx, dir) => {
    const out = join(dir, 'out');
    const args = ['bake', '--lock', ctx.lockPath, '--cache', ctx.cacheDir, '--mode', mode, ...(mode === 'store' ? ['--squashfs'] : []), ...extra, '-o', out];
    const cost = await timed([...CTRBAKE, ...args], { scratch: ctx.scratch, env: ctx.env });
    return { ...cost, outputBytes: await outputs(out) };
  };
}

const storeSqfs = (out: string) => sizeOf([join(out, 'store.sqfs')]);
const archives = async (out: string) => {
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { outputs: Array<{ size: number }> };
  return manifest.outputs.reduce((n, o) => n + o.size, 0);
};

const CONTENDERS: Contender[] = [
  { id: 'store: native builder', group: 'store', run: bakeWith('store', [], storeSqfs) },
  { id: 'store: engine path', group: 'store', run: bakeWith('store', ['--builder', 'engine'], storeSqfs) },
  {
    id: 'store: lower bound (gunzip | tar2sqfs -j 2)',
    group: 'store',
    baseline: true,
    run: async (ctx, dir) => {
      const script = 'i=0; for b; do i=$((i+1)); gzip -dc "$b" | tar2sqfs -j 2 -q -f "$OUT/$i.sqfs"; done';
      const cost = await timed(['sh', '-c', script, 'sh', ...ctx.layerBlobs], { scratch: ctx.scratch, env: { ...ctx.env, OUT: dir } });
      return { ...cost, outputBytes: await sizeOf(ctx.layerBlobs.map((_, i) => join(dir, `${i + 1}.sqfs`))) };
    },
  },
  { id: 'archive: engine path', group: 'archive', run: bakeWith('archive', [], archives) },
  {
    id: 'archive: plain copy of the blobs',
    group: 'archive',
    baseline: true,
    run: async (ctx, dir) => {
      const cost = await timed(['cp', ...ctx.layerBlobs, dir], { scratch: ctx.scratch, env: ctx.env });
      return { ...cost, outputBytes: await sizeOf(ctx.layerBlobs) };
    },
  },
];

const args = parseArgs(process.argv.slice(2));
const chosen = CONTENDERS.filter((c) => !args.only || args.only.some((o) => c.id.startsWith(o)));
const log = (m: string) => process.stderr.write(`[builder] ${m}\n`);
const loadAtStart = loadavg()[0]!;
const work = await mkdtemp('/var/tmp/ctrbake-bench-builder-');
const registry = await startRegistry();
const results = new Map<string, Measured[]>();
try {
  const set = await buildImageSet(args.scale);
  const refs = await pushImageSet(set, registry.host);
  const lockPath = join(work, 'ctrbake.lock.json');
  await resolveLock({ references: refs, platform: 'linux/amd64', output: lockPath, insecureRegistries: [registry.host] });
  const cacheDir = join(work, 'cache');
  const scratch = join(work, 'scratch');
  await mkdir(scratch);
  const env = { ...process.env, SOURCE_DATE_EPOCH: '1600000000' };
  await timed([...CTRBAKE, 'fetch', '--lock', lockPath, '--cache', cacheDir, '--insecure-registry', registry.host], { scratch, env });
  const lock = JSON.parse(await readFile(lockPath, 'utf8')) as { images: Array<{ layers: Array<{ digest: string }> }> };
  const layerBlobs = [...new Set(lock.images.flatMap((i) => i.layers.map((l) => l.digest)))].map((d) => blobPath(cacheDir, d));
  const ctx: Ctx = { lockPath, cacheDir, layerBlobs, scratch, env };
  log(`${set.images.length} images, ${layerBlobs.length} unique layers (${((await sizeOf(layerBlobs)) / 2 ** 20).toFixed(0)} MiB compressed, ${(set.uniqueUnpackedBytes / 2 ** 20).toFixed(0)} MiB unpacked)`);
  for (let r = 0; r < args.runs; r++) {
    for (const c of chosen) {
      const dir = join(work, `run-${r}-${results.size}-${c.group}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      const m = await c.run(ctx, dir);
      log(`run ${r + 1}/${args.runs} ${c.id}: ${m.wallS.toFixed(1)} s, cpu ${m.cpuS.toFixed(1)} s, peak ${(m.peakRssKiB / 1024).toFixed(0)} MiB, ${(m.outputBytes / 2 ** 20).toFixed(1)} MiB`);
      results.set(c.id, [...(results.get(c.id) ?? []), m]);
      await rm(dir, { recursive: true, force: true });
    }
  }
} finally {
  await registry.close();
  await rm(work, { recursive: true, force: true });
}

const rows = chosen.map((c) => {
  const runs = results.get(c.id) ?? [];
  const base = CONTENDERS.find((b) => b.group === c.group && b.baseline && results.has(b.id));
  const wallS = median(runs.map((m) => m.wallS));
  const baseWall = base ? median(results.get(base.id)!.map((m) => m.wallS)) : NaN;
  return {
    id: c.id,
    group: c.group,
    wallS,
    cpuS: median(runs.map((m) => m.cpuS)),
    peakRssMiB: median(runs.map((m) => m.peakRssKiB)) / 1024,
    outputMiB: median(runs.map((m) => m.outputBytes)) / 2 ** 20,
    overBaseline: wallS / baseWall,
    perRunS: runs.map((m) => Number(m.wallS.toFixed(2))),
  };
});
const machine = { cpus: availableParallelism(), loadAtStart, loadAtEnd: loadavg()[0]!, date: new Date().toISOString(), node: process.version };
if (args.json) {
  process.stdout.write(`${JSON.stringify({ machine, scale: args.scale, runs: args.runs, rows })}\n`);
} else {
  const pad = (s: string, n: number) => s.padEnd(n);
  const num = (x: number, n: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-').padStart(n);
  console.log(`builder bench, scale ${args.scale}, median of ${args.runs}, ${machine.cpus} CPUs, load ${machine.loadAtStart.toFixed(1)} -> ${machine.loadAtEnd.toFixed(1)}`);
  console.log(`${pad('contender', 46)}${'wall s'.padStart(9)}${'cpu s'.padStart(9)}${'peak MiB'.padStart(10)}${'out MiB'.padStart(10)}${'/baseline'.padStart(11)}`);
  for (const r of rows) console.log(`${pad(r.id, 46)}${num(r.wallS, 9)}${num(r.cpuS, 9)}${num(r.peakRssMiB, 10, 0)}${num(r.outputMiB, 10, 1)}${num(r.overBaseline, 11, 3)}   runs: ${r.perRunS.join(' / ')}`);
  const native = rows.find((r) => r.id === 'store: native builder');
  const engine = rows.find((r) => r.id === 'store: engine path');
  if (native && engine) console.log(`store: engine path / native builder = ${(engine.wallS / native.wallS).toFixed(2)}x`);
}
