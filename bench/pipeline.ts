/**
 * The whole pipeline against the ways people do this today, on the same images and target, in
 * one run (issue 9). Images: bench/lib/image-set.ts (three images sharing a base layer, real
 * ELF files, text and compressed data), pushed to a local registry (docker-registry on
 * 127.0.0.1); everything below pulls from that registry: "network" here is loopback.
 *
 *   npm run bench -- pipeline [--runs 3] [--scale 1] [--json | --json-out FILE] [--only a,b,...]
 *                             [--boot-runs N] [--boots a,b,... | --no-boot]
 *
 * Pipelines (ids):
 *   store       ctrbake fetch -> bake --mode store --squashfs (overlay2; builtin SquashFS writer, gzip)
 *   store-vfs   the same with --storage-driver vfs (the seed article's layout, overlay-vfs)
 *   archive     ctrbake fetch -> bake --mode archive (one docker-archive per image; not compressed)
 *   article     private dockerd (vfs) -> docker pull each image -> stop -> GNU tar of the
 *               data-root -> mksquashfs of the data-root (gzip, all cores): the seed article's scripts
 *   skopeo      skopeo copy to docker-archive (fetch) -> private dockerd (vfs) docker load ->
 *               stop -> GNU tar of the data-root -> tar2sqfs -c gzip -j nproc
 *   lower-bound read + gunzip every unique layer blob once, gzip level 9 in 128 KiB blocks on
 *               all cores (bench/lib/lower-bound.mjs): no engine, no filesystem
 *
 * "fetch" = from the registry into a local cache; "bake" = from that cache to the output the
 * device ships. The article's `docker pull` does both at once: its whole time is its bake time
 * (and it has no separate fetch). Times: wall clock, median of --runs; CPU = user+sys of every
 * process of the step; peak RSS = the largest single process (see bench/lib/measure.ts). The
 * second bake runs once after the measured runs, on the same output and inputs.
 *
 * Then, on the outputs of the last run (same images, same run), the device side: first and
 * second boot of the simulated device (bench/lib/boot.ts, devkit/device.ts) for each
 * loader layout: time to the first running container and KiB written to the data partition,
 * ratios to the archive layout of the same engine. Boot cases (--boots, default all):
 *   archive      docker, `archive` output        overlay-vfs   docker, `store-vfs` output
 *   split        docker, `store` output          copy          docker, `store` output
 *   podman-archive, podman-ro   podman bakes of the same cache (library calls, not timed)
 *   article      the article's tar of its vfs data-root extracted into the rootfs at build time
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, freemem, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { bake } from '../src/bake/bake.js';
import type { BakeOptions } from '../src/bake/options.js';
import { startDockerd, type RunningDockerd } from '../src/engine/dockerd.js';
import { resolveLock } from '../src/lock/resolve.js';
import { startRegistry } from '../devkit/registry.js';
import { buildImageSet, pushImageSet, type BenchImageSet } from './lib/image-set.js';
import { measureBoots, type BootCase, type BootSummary } from './lib/boot.js';
import { addCost, median, procCost, timed, ZERO, type StepCost } from './lib/measure.js';

const ROOT = join(import.meta.dirname, '..');
const CTRBAKE = ['node', join(ROOT, 'bin', 'ctrbake.js')];
const PIPELINES = ['store', 'store-vfs', 'archive', 'article', 'skopeo', 'lower-bound'] as const;
type PipelineId = (typeof PIPELINES)[number];
const BOOTS = ['archive', 'overlay-vfs', 'split', 'copy', 'podman-archive', 'podman-ro', 'article'] as const;
type BootId = (typeof BOOTS)[number];
/** The pipeline whose output each boot case boots (podman cases: that pipeline's fetch cache). */
const BOOT_FROM: Record<BootId, PipelineId> = {
  archive: 'archive',
  'overlay-vfs': 'store-vfs',
  split: 'store',
  copy: 'store',
  'podman-archive': 'store',
  'podman-ro': 'store',
  article: 'article',
};

interface Args {
  runs: number;
  scale: number;
  json: boolean;
  only: PipelineId[];
  /** Runs per boot case (default: --runs). */
  bootRuns?: number;
  boots: BootId[];
  /** Also write the --json document to this file (and print the table). */
  jsonOut?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 3, scale: 1, json: false, only: [...PIPELINES], boots: [...BOOTS] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--scale') args.scale = Number(argv[++i]);
    else if (a === '--json-out') args.jsonOut = argv[++i]!;
    else if (a === '--only') args.only = argv[++i]!.split(',') as PipelineId[];
    else if (a === '--boot-runs') args.bootRuns = Number(argv[++i]);
    else if (a === '--boots') args.boots = argv[++i]!.split(',').filter(Boolean) as BootId[];
    else if (a === '--no-boot') args.boots = [];
    else if (a === 'pipeline' || a === '--') continue;
    else throw new Error(`unknown argument ${a}; see the header of bench/pipeline.ts`);
  }
  if (!Number.isInteger(args.runs) || args.runs < 1) throw new Error('--runs must be a positive integer');
  for (const id of args.only) if (!PIPELINES.includes(id)) throw new Error(`--only: unknown pipeline ${id}; use ${PIPELINES.join(',')}`);
  for (const id of args.boots) if (!BOOTS.includes(id)) throw new Error(`--boots: unknown boot case ${id}; use ${BOOTS.join(',')}`);
  if (args.bootRuns !== undefined && (!Number.isInteger(args.bootRuns) || args.bootRuns < 1)) throw new Error('--boot-runs must be a positive integer');
  // A boot case needs its pipeline's output; --only without it drops the case.
  args.boots = args.boots.filter((b) => args.only.includes(BOOT_FROM[b]));
  if (args.boots.length > 0 && process.getuid?.() !== 0) throw new Error('the boot cases need root (loop devices, mounts); run as root or pass --no-boot');
  return args;
}

interface RunResult {
  fetch: StepCost;
  bake: StepCost;
  /** Sub-steps of bake, for the notes. */
  steps: Record<string, StepCost>;
  outputBytes: number;
}

interface Context {
  set: BenchImageSet;
  refs: string[];
  registryHost: string;
  lockPath: string;
  work: string;
  scratch: string;
  env: NodeJS.ProcessEnv;
}

async function dirBytes(path: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(path, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

async function fileBytes(path: string): Promise<number> {
  return (await stat(path)).size;
}

const ctr = (ctx: Context, args: string[]) => timed([...CTRBAKE, ...args], { scratch: ctx.scratch, env: ctx.env });

async function ctrbakeFetch(ctx: Context, cache: string): Promise<StepCost> {
  return ctr(ctx, ['fetch', '--lock', ctx.lockPath, '--cache', cache, '--insecure-registry', ctx.registryHost, '--fetcher', 'skopeo']);
}

/** ctrbake store (+ squashfs): returns the costs; `dir` keeps cache and OUT for the second bake. */
async function runStore(ctx: Context, dir: string, driver: 'overlay2' | 'vfs'): Promise<RunResult> {
  const cache = join(dir, 'cache');
  const out = join(dir, 'out');
  const fetch = await ctrbakeFetch(ctx, cache);
  const bake = await ctr(ctx, ['bake', '--lock', ctx.lockPath, '--cache', cache, '--mode', 'store', '--storage-driver', driver, '--squashfs', '-o', out]);
  return { fetch, bake, steps: { 'bake --mode store --squashfs': bake }, outputBytes: await fileBytes(join(out, 'store.sqfs')) };
}

async function secondStore(ctx: Context, dir: string, driver: 'overlay2' | 'vfs'): Promise<StepCost> {
  await secondInProcess(ctx, dir, { mode: 'store', storageDriver: driver, squashfs: {} });
  return ctr(ctx, ['bake', '--lock', ctx.lockPath, '--cache', join(dir, 'cache'), '--mode', 'store', '--storage-driver', driver, '--squashfs', '-o', join(dir, 'out')]);
}

/**
 * The same up-to-date bake through the library, in this process (modules already loaded):
 * what the check itself costs, without Node's start and the CLI's imports.
 */
const inProcessSecond = new Map<string, number>();
async function secondInProcess(ctx: Context, dir: string, options: Pick<BakeOptions, 'mode' | 'storageDriver' | 'squashfs'>): Promise<void> {
  const start = process.hrtime.bigint();
  const r = await bake({ lockPath: ctx.lockPath, cacheDir: join(dir, 'cache'), outDir: join(dir, 'out'), sourceDateEpoch: 1_600_000_000, ...options });
  if (r.upToDate !== true) throw new Error(`the in-process second bake of ${dir} was not up to date`);
  inProcessSecond.set(dir, Number(process.hrtime.bigint() - start) / 1e9);
}

async function runArchive(ctx: Context, dir: string): Promise<RunResult> {
  const cache = join(dir, 'cache');
  const out = join(dir, 'out');
  const fetch = await ctrbakeFetch(ctx, cache);
  const bake = await ctr(ctx, ['bake', '--lock', ctx.lockPath, '--cache', cache, '--mode', 'archive', '-o', out]);
  return { fetch, bake, steps: { 'bake --mode archive': bake }, outputBytes: await dirBytes(join(out, 'archives')) };
}

async function secondArchive(ctx: Context, dir: string): Promise<StepCost> {
  await secondInProcess(ctx, dir, { mode: 'archive' });
  return ctr(ctx, ['bake', '--lock', ctx.lockPath, '--cache', join(dir, 'cache'), '--mode', 'archive', '-o', join(dir, 'out')]);
}

/** A private dockerd (vfs) as the alternatives use it; its cost is read from /proc at stop. */
async function withDockerd<T>(ctx: Context, dataRoot: string, network: 'host' | 'none', fn: (d: RunningDockerd) => Promise<T>): Promise<{ value: T; daemon: StepCost }> {
  const start = process.hrtime.bigint();
  const d = await startDockerd({ storageDriver: 'vfs', dataRoot, keepDataRoot: true, network, ...(network === 'host' ? { insecureRegistries: [ctx.registryHost] } : {}) });
  try {
    const value = await fn(d);
    const [a, b] = await Promise.all([procCost(d.pid), procCost(d.containerdPid)]);
    await d.stop();
    const wallS = Number(process.hrtime.bigint() - start) / 1e9;
    return { value, daemon: { wallS, cpuS: a.cpuS + b.cpuS, peakRssKiB: Math.max(a.peakRssKiB, b.peakRssKiB) } };
  } finally {
    await d.stop();
  }
}

const dockerCli = (ctx: Context, d: RunningDockerd, args: string[]) => timed(['docker', '-H', `unix://${d.socketPath}`, ...args], { scratch: ctx.scratch });

/** Daemon wall time covers the client calls made inside it; their CPU and RSS are added. */
function daemonStep(daemon: StepCost, clients: StepCost[]): StepCost {
  return clients.reduce((acc, c) => ({ wallS: acc.wallS, cpuS: acc.cpuS + c.cpuS, peakRssKiB: Math.max(acc.peakRssKiB, c.peakRssKiB) }), daemon);
}

async function tarAndSquash(ctx: Context, dataRoot: string, dir: string, tool: 'mksquashfs' | 'tar2sqfs'): Promise<Record<string, StepCost>> {
  const tarPath = join(dir, 'data-root.tar');
  const sqfs = join(dir, 'out.sqfs');
  const tar = await timed(['tar', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', dataRoot, '-cf', tarPath, '.'], { scratch: ctx.scratch });
  const squash =
    tool === 'mksquashfs'
      ? await timed(['mksquashfs', dataRoot, sqfs, '-noappend', '-comp', 'gzip', '-no-progress', '-quiet'], { scratch: ctx.scratch })
      : await timed(['sh', '-c', `exec tar2sqfs -q -f -c gzip -j ${availableParallelism()} "$1" < "$2"`, 'sh', sqfs, tarPath], { scratch: ctx.scratch });
  return { 'GNU tar data-root': tar, [tool]: squash };
}

async function runArticle(ctx: Context, dir: string): Promise<RunResult> {
  const dataRoot = join(dir, 'data-root');
  const { value: pulls, daemon } = await withDockerd(ctx, dataRoot, 'host', async (d) => {
    const costs: StepCost[] = [];
    for (const ref of ctx.refs) costs.push(await dockerCli(ctx, d, ['pull', '-q', ref]));
    return costs;
  });
  const pull = daemonStep(daemon, pulls);
  const rest = await tarAndSquash(ctx, dataRoot, dir, 'mksquashfs');
  const bake = Object.values(rest).reduce(addCost, pull);
  return { fetch: ZERO, bake, steps: { 'dockerd + docker pull': pull, ...rest }, outputBytes: await fileBytes(join(dir, 'out.sqfs')) };
}

/** The article's second run in the same build dir: the data-root is still there, pull finds every image. */
async function secondArticle(ctx: Context, dir: string): Promise<StepCost> {
  const r = await runArticle(ctx, dir);
  return r.bake;
}

async function skopeoFetch(ctx: Context, dir: string): Promise<{ cost: StepCost; archives: string[] }> {
  const archives: string[] = [];
  let cost = ZERO;
  await mkdir(join(dir, 'archives'), { recursive: true });
  for (const [i, ref] of ctx.refs.entries()) {
    const archive = join(dir, 'archives', `${i}.tar`);
    await rm(archive, { force: true });
    cost = addCost(cost, await timed(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `docker-archive:${archive}:${ref}`], { scratch: ctx.scratch }));
    archives.push(archive);
  }
  return { cost, archives };
}

async function skopeoBake(ctx: Context, dir: string, archives: string[]): Promise<{ bake: StepCost; steps: Record<string, StepCost> }> {
  const dataRoot = join(dir, 'data-root');
  await rm(dataRoot, { recursive: true, force: true });
  const { value: loads, daemon } = await withDockerd(ctx, dataRoot, 'none', async (d) => {
    const costs: StepCost[] = [];
    for (const a of archives) costs.push(await dockerCli(ctx, d, ['load', '-q', '-i', a]));
    return costs;
  });
  const load = daemonStep(daemon, loads);
  const rest = await tarAndSquash(ctx, dataRoot, dir, 'tar2sqfs');
  return { bake: Object.values(rest).reduce(addCost, load), steps: { 'dockerd + docker load': load, ...rest } };
}

async function runSkopeo(ctx: Context, dir: string): Promise<RunResult> {
  const { cost: fetch, archives } = await skopeoFetch(ctx, dir);
  const { bake, steps } = await skopeoBake(ctx, dir, archives);
  return { fetch, bake, steps, outputBytes: await fileBytes(join(dir, 'out.sqfs')) };
}

async function secondSkopeo(ctx: Context, dir: string): Promise<StepCost> {
  return (await skopeoBake(ctx, dir, ctx.refs.map((_, i) => join(dir, 'archives', `${i}.tar`)))).bake;
}

async function runLowerBound(ctx: Context): Promise<RunResult> {
  const r = await timed(['node', join(ROOT, 'bench', 'lib', 'lower-bound.mjs'), ...ctx.set.uniqueLayers.map((l) => l.path)], { scratch: ctx.scratch, stdout: 'capture' });
  const { outputBytes } = JSON.parse(r.stdout) as { outputBytes: number };
  return { fetch: ZERO, bake: r, steps: {}, outputBytes };
}

interface Summary {
  id: PipelineId;
  fetch: StepCost;
  bake: StepCost;
  total: StepCost;
  steps: Record<string, StepCost>;
  outputBytes: number;
  secondBake?: StepCost;
  /** ctrbake only: the second bake as a library call in an already running process. */
  secondBakeInProcessS?: number;
  runs: RunResult[];
}

/**
 * The device side on the last run's outputs. The podman cases bake the same cache with podman
 * first (library calls; their time is logged, not part of the pipeline table).
 */
async function runBoots(ctx: Context, args: Args, lastDir: Map<PipelineId, string>, archiveBytes: number): Promise<{ summaries: BootSummary[]; podmanBakeS: Record<string, number>; dataSizeMiB: number }> {
  const out = (id: PipelineId) => join(lastDir.get(id)!, 'out', 'manifest.json');
  const podmanBakeS: Record<string, number> = {};
  const podmanBake = async (mode: 'archive' | 'store'): Promise<string> => {
    const outDir = join(ctx.work, `podman-${mode}`);
    const start = process.hrtime.bigint();
    await bake({
      lockPath: ctx.lockPath,
      cacheDir: join(lastDir.get('store')!, 'cache'),
      outDir,
      mode,
      engine: 'podman',
      sourceDateEpoch: 1_600_000_000,
      ...(mode === 'store' ? { storageDriver: 'overlay', squashfs: {} } : {}),
    });
    podmanBakeS[mode] = Number(process.hrtime.bigint() - start) / 1e9;
    log(`  podman bake --mode ${mode}: ${podmanBakeS[mode]!.toFixed(1)} s`);
    return join(outDir, 'manifest.json');
  };
  const cases: BootCase[] = [];
  for (const b of args.boots) {
    switch (b) {
      case 'archive':
        cases.push({ id: 'docker archive', engine: 'docker', layout: 'archive', manifestPath: out('archive'), from: 'archive' });
        break;
      case 'overlay-vfs':
        cases.push({ id: 'docker overlay-vfs', engine: 'docker', layout: 'overlay-vfs', manifestPath: out('store-vfs'), from: 'store-vfs' });
        break;
      case 'split':
        cases.push({ id: 'docker split', engine: 'docker', layout: 'split', manifestPath: out('store'), from: 'store' });
        break;
      case 'copy':
        cases.push({ id: 'docker copy', engine: 'docker', layout: 'copy', manifestPath: out('store'), from: 'store' });
        break;
      case 'article':
        cases.push({ id: 'article: data-root in rootfs', engine: 'docker', layout: 'rootfs-dataroot', dataRootTar: join(lastDir.get('article')!, 'data-root.tar'), from: 'article' });
        break;
      case 'podman-archive':
        log('podman bake (archive) for the podman boot cases');
        cases.push({ id: 'podman archive', engine: 'podman', layout: 'archive', manifestPath: await podmanBake('archive'), from: 'podman-bake' });
        break;
      case 'podman-ro':
        log('podman bake (store) for the podman boot cases');
        cases.push({ id: 'podman podman-ro', engine: 'podman', layout: 'podman-ro', manifestPath: await podmanBake('store'), from: 'podman-bake' });
        break;
    }
  }
  // Room for the archive layout's free-space check (twice the archives) plus the loaded
  // layers; the same size for every case. A sparse file: its size costs nothing.
  const dataSizeMiB = Math.ceil((2.5 * archiveBytes + 2 * ctx.set.uniqueUnpackedBytes) / 2 ** 20) + 256;
  const summaries = await measureBoots(cases, { runs: args.bootRuns ?? args.runs, image: ctx.refs[0]!, dataSizeMiB, work: ctx.work, log });
  return { summaries, podmanBakeS, dataSizeMiB };
}

function medianCost(costs: StepCost[]): StepCost {
  return { wallS: median(costs.map((c) => c.wallS)), cpuS: median(costs.map((c) => c.cpuS)), peakRssKiB: median(costs.map((c) => c.peakRssKiB)) };
}

const args = parseArgs(process.argv.slice(2));
const startedAt = new Date().toISOString();
const loadAtStart = loadavg();
const log = (m: string) => process.stderr.write(`[pipeline] ${m}\n`);
const work = await mkdtemp('/var/tmp/ctrbake-bench-pipeline-');
const registry = await startRegistry();
const results: Summary[] = [];
let boots: Awaited<ReturnType<typeof runBoots>> | undefined;
let setInfo: BenchImageSet;
try {
  log('building / reusing the image set');
  const set = await buildImageSet(args.scale);
  setInfo = set;
  const refs = await pushImageSet(set, registry.host);
  const lockPath = join(work, 'ctrbake.lock.json');
  await resolveLock({ references: refs, platform: 'linux/amd64', output: lockPath, insecureRegistries: [registry.host] });
  const scratch = join(work, 'scratch');
  await mkdir(scratch);
  const ctx: Context = { set, refs, registryHost: registry.host, lockPath, work, scratch, env: { ...process.env, SOURCE_DATE_EPOCH: '1600000000' } };
  log(`${set.images.length} images, ${set.uniqueLayers.length} unique layers, ${(set.uniqueUnpackedBytes / 2 ** 20).toFixed(0)} MiB unique unpacked, ${(set.unpackedBytes / 2 ** 20).toFixed(0)} MiB unpacked over all images`);

  const RUNNERS: Record<PipelineId, { run: (dir: string) => Promise<RunResult>; second?: (dir: string) => Promise<StepCost> }> = {
    store: { run: (d) => runStore(ctx, d, 'overlay2'), second: (d) => secondStore(ctx, d, 'overlay2') },
    'store-vfs': { run: (d) => runStore(ctx, d, 'vfs'), second: (d) => secondStore(ctx, d, 'vfs') },
    archive: { run: (d) => runArchive(ctx, d), second: (d) => secondArchive(ctx, d) },
    article: { run: (d) => runArticle(ctx, d), second: (d) => secondArticle(ctx, d) },
    skopeo: { run: (d) => runSkopeo(ctx, d), second: (d) => secondSkopeo(ctx, d) },
    'lower-bound': { run: () => runLowerBound(ctx) },
  };
  const perId = new Map<PipelineId, RunResult[]>();
  const lastDir = new Map<PipelineId, string>();
  // Interleaved (run 1 of every pipeline, then run 2, ...) so that load from other work on
  // the machine spreads over all of them.
  for (let r = 0; r < args.runs; r++) {
    for (const id of args.only) {
      const dir = join(work, `${id}-${r}`);
      await mkdir(dir);
      log(`run ${r + 1}/${args.runs}: ${id}`);
      const res = await RUNNERS[id].run(dir);
      log(`  fetch ${res.fetch.wallS.toFixed(1)} s, bake ${res.bake.wallS.toFixed(1)} s (cpu ${res.bake.cpuS.toFixed(1)} s), peak ${(res.bake.peakRssKiB / 1024).toFixed(0)} MiB, output ${(res.outputBytes / 2 ** 20).toFixed(1)} MiB`);
      perId.set(id, [...(perId.get(id) ?? []), res]);
      const previous = lastDir.get(id);
      if (previous) await rm(previous, { recursive: true, force: true });
      lastDir.set(id, dir);
    }
  }
  for (const id of args.only) {
    const runs = perId.get(id)!;
    const second = RUNNERS[id].second;
    let secondBake: StepCost | undefined;
    if (second) {
      log(`second bake, nothing changed: ${id}`);
      secondBake = await second(lastDir.get(id)!);
      log(`  ${secondBake.wallS.toFixed(2)} s (cpu ${secondBake.cpuS.toFixed(2)} s)`);
    }
    const stepNames = Object.keys(runs[0]!.steps);
    const fetch = medianCost(runs.map((x) => x.fetch));
    const bake = medianCost(runs.map((x) => x.bake));
    results.push({
      id,
      fetch,
      bake,
      total: medianCost(runs.map((x) => addCost(x.fetch, x.bake))),
      steps: Object.fromEntries(stepNames.map((n) => [n, medianCost(runs.map((x) => x.steps[n]!))])),
      outputBytes: median(runs.map((x) => x.outputBytes)),
      ...(secondBake ? { secondBake } : {}),
      ...(inProcessSecond.has(lastDir.get(id)!) ? { secondBakeInProcessS: inProcessSecond.get(lastDir.get(id)!)! } : {}),
      runs,
    });
  }
  if (args.boots.length > 0) {
    const archive = results.find((r) => r.id === 'archive');
    boots = await runBoots(ctx, args, lastDir, archive?.outputBytes ?? setInfo.unpackedBytes);
  }
} finally {
  await registry.close();
  await rm(work, { recursive: true, force: true });
}

const machine = {
  started: startedAt,
  date: new Date().toISOString(),
  /** 1, 5, 15 min load averages at the start and the end of the run. */
  loadAverage: { start: loadAtStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) },
  cpus: availableParallelism(),
  memGiB: +(totalmem() / 2 ** 30).toFixed(1),
  freeGiB: +(freemem() / 2 ** 30).toFixed(1),
  kernel: release(),
};
const ref = results.find((r) => r.id === 'store') ?? results[0]!;
const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
const imageSet = {
  images: setInfo!.images.map((i) => i.repository),
  uniqueLayers: setInfo!.uniqueLayers.length,
  compressedBytes: setInfo!.uniqueLayers.reduce((a, l) => a + l.size, 0),
  uniqueUnpackedBytes: setInfo!.uniqueUnpackedBytes,
  unpackedBytes: setInfo!.unpackedBytes,
};
{
  const withRatios = results.map((r) => ({
    ...r,
    ratiosToLowerBound: (() => {
      const lb = results.find((x) => x.id === 'lower-bound');
      return lb ? { bakeWall: ratio(r.bake.wallS, lb.bake.wallS), bakeCpu: ratio(r.bake.cpuS, lb.bake.cpuS) } : undefined;
    })(),
    ratiosToCtrbakeStore: { bakeWall: ratio(r.bake.wallS, ref.bake.wallS), bakeCpu: ratio(r.bake.cpuS, ref.bake.cpuS), totalWall: ratio(r.total.wallS, ref.total.wallS), peakRss: ratio(r.bake.peakRssKiB, ref.bake.peakRssKiB), output: ratio(r.outputBytes, ref.outputBytes) },
  }));
  const bootDoc = boots
    ? { runs: args.bootRuns ?? args.runs, image: 'the first image of the set, --rm, no network', init: 'systemd', dataPartitionMiB: boots.dataSizeMiB, podmanBakeS: boots.podmanBakeS, cases: boots.summaries }
    : undefined;
  const doc = `${JSON.stringify({ bench: 'pipeline', args, runs: args.runs, machine, imageSet, reference: ref.id, results: withRatios, ...(bootDoc ? { boot: bootDoc } : {}) }, null, 2)}\n`;
  if (args.jsonOut) await writeFile(args.jsonOut, doc);
  if (args.json) process.stdout.write(doc);
}
if (!args.json) {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log(`pipeline bench, ${machine.date}, ${machine.cpus} cpus, ${machine.memGiB} GiB, kernel ${machine.kernel}; median of ${args.runs}`);
  console.log(`images: ${imageSet.images.join(', ')}; ${imageSet.uniqueLayers} unique layers, ${mib(imageSet.compressedBytes)} MiB gzip, ${mib(imageSet.uniqueUnpackedBytes)} MiB unique unpacked, ${mib(imageSet.unpackedBytes)} MiB over all images`);
  console.log(`ratios are to ctrbake ${ref.id} (x > 1: more than ctrbake)`);
  console.log('pipeline      fetch s  bake s  x     bake cpu s  x     fetch+bake s  x     peak RSS MiB  x     output MiB  x      2nd bake s  (cpu s)');
  for (const r of results) {
    console.log(
      [
        r.id.padEnd(12),
        r.fetch.wallS.toFixed(1).padStart(7),
        r.bake.wallS.toFixed(1).padStart(7),
        ratio(r.bake.wallS, ref.bake.wallS).toFixed(2).padStart(5),
        r.bake.cpuS.toFixed(1).padStart(10),
        ratio(r.bake.cpuS, ref.bake.cpuS).toFixed(2).padStart(5),
        r.total.wallS.toFixed(1).padStart(12),
        ratio(r.total.wallS, ref.total.wallS).toFixed(2).padStart(5),
        (r.bake.peakRssKiB / 1024).toFixed(0).padStart(12),
        ratio(r.bake.peakRssKiB, ref.bake.peakRssKiB).toFixed(2).padStart(5),
        mib(r.outputBytes).padStart(10),
        ratio(r.outputBytes, ref.outputBytes).toFixed(3).padStart(6),
        (r.secondBake ? r.secondBake.wallS.toFixed(2) : '-').padStart(11),
        (r.secondBake ? `(${r.secondBake.cpuS.toFixed(2)})` : '').padStart(8),
      ].join(' '),
    );
  }
  const lb = results.find((r) => r.id === 'lower-bound');
  if (lb) console.log(`\nctrbake ${ref.id} bake vs the lower bound: ${ratio(ref.bake.wallS, lb.bake.wallS).toFixed(2)}x wall, ${ratio(ref.bake.cpuS, lb.bake.cpuS).toFixed(2)}x cpu`);
  for (const r of results) if (r.secondBakeInProcessS !== undefined) console.log(`second bake of ${r.id} as a library call (no process start): ${r.secondBakeInProcessS.toFixed(3)} s`);
  console.log('\nsteps (median wall s / cpu s / peak RSS MiB):');
  for (const r of results) {
    for (const [name, c] of Object.entries(r.steps)) console.log(`  ${r.id.padEnd(12)} ${name.padEnd(24)} ${c.wallS.toFixed(1).padStart(7)} ${c.cpuS.toFixed(1).padStart(7)} ${(c.peakRssKiB / 1024).toFixed(0).padStart(6)}`);
  }
  if (boots) {
    const x = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
    console.log(`\nfirst boot on the simulated device, same outputs (last run), median of ${args.bootRuns ?? args.runs}; data partition ${boots.dataSizeMiB} MiB ext4; ratios to the archive layout of the same engine`);
    console.log('case                          from         1st container s  x archive  written MiB  x archive  boot s   2nd boot: container s  written MiB');
    for (const b of boots.summaries) {
      console.log(
        [
          b.id.padEnd(29),
          b.from.padEnd(11),
          (b.first.firstContainerMs / 1000).toFixed(2).padStart(16),
          x(b.ratiosToArchive?.firstContainerMs, 2).padStart(10),
          (b.first.writtenKiB / 1024).toFixed(1).padStart(12),
          x(b.ratiosToArchive?.writtenKiB, 3).padStart(10),
          (b.first.bootMs / 1000).toFixed(2).padStart(7),
          (b.second.firstContainerMs / 1000).toFixed(2).padStart(22),
          (b.second.writtenKiB / 1024).toFixed(1).padStart(12),
        ].join(' '),
      );
    }
    for (const [mode, s] of Object.entries(boots.podmanBakeS)) console.log(`podman bake --mode ${mode} for the podman cases (library call, once): ${s.toFixed(1)} s`);
  }
  console.log(`load average (1/5/15 min): ${machine.loadAverage.start.join(' ')} at the start, ${machine.loadAverage.end.join(' ')} at the end`);
}
