/**
 * SquashFS writers on the same tars, the same compressors, 2 compression jobs each, in one run:
 * builtin (ctrbake's writer, `workers: 2`) vs tar2sqfs (`-j 2`) vs sqfstar (`-processors 2`)
 * reading the tar on stdin, vs mksquashfs (`-processors 2`) reading the tar's tree extracted
 * to a directory once beforehand (mksquashfs cannot read a tar; its time has no tar parsing).
 * Every compressor each tool writes: gzip, zstd, lz4, xz (builtin: not xz), default levels.
 *
 *   npm run bench -- squashfs [--runs 3] [--size-mib 300] [--generated-mib 2048]
 *                             [--inputs realistic,generated] [--compressions gzip,zstd,lz4,xz]
 *                             [--tools builtin,tar2sqfs,sqfstar,mksquashfs] [--json] [--save]
 *
 * Inputs: `realistic`, files of /usr/lib up to 16 MiB each (sorted, deterministic) up to
 * --size-mib, written by GNU tar (PAX); `generated`, devkit/generated-tar.ts's tree (seed 1)
 * of --generated-mib, written to a file once so its generator costs none of the runs.
 * Each run is one command under GNU time (bench/lib/measure.ts): wall time, CPU, peak RSS of
 * the largest process (builtin: a Node process running the built library, dist/). Runs are
 * interleaved (run 1 of every tool and compressor, then run 2, ...), so load changes hit
 * them alike; the table shows the median, the spread ((max - min) / 2 / median) and ratios
 * to tar2sqfs with the same compressor. --save writes the JSON to bench/results/.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { generatedTar, type GeneratedTarStats } from '../devkit/generated-tar.js';
import { pickHostFiles } from '../devkit/host-files.js';
import { timed } from './lib/measure.js';

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const COMPRESSIONS = ['gzip', 'zstd', 'lz4', 'xz'] as const;
type Compression = (typeof COMPRESSIONS)[number];
const TOOLS = ['builtin', 'tar2sqfs', 'sqfstar', 'mksquashfs'] as const;
type Tool = (typeof TOOLS)[number];
const INPUTS = ['realistic', 'generated'] as const;
type InputName = (typeof INPUTS)[number];
/** What each tool writes. */
const WRITES: Record<Tool, readonly Compression[]> = { builtin: ['gzip', 'zstd', 'lz4'], tar2sqfs: COMPRESSIONS, sqfstar: COMPRESSIONS, mksquashfs: COMPRESSIONS };
const JOBS = 2;
/** Files above this are left out of the realistic tar, so no single file dominates it. */
const MAX_FILE = 16 * 1024 * 1024;

interface Args {
  runs: number;
  sizeMiB: number;
  generatedMiB: number;
  inputs: InputName[];
  compressions: Compression[];
  tools: Tool[];
  json: boolean;
  save: boolean;
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T[] {
  const items = (value ?? '').split(',').filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`${flag}: ${item} is not one of ${allowed.join(', ')}`);
  return items as T[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 3, sizeMiB: 300, generatedMiB: 2048, inputs: [...INPUTS], compressions: [...COMPRESSIONS], tools: [...TOOLS], json: false, save: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--save') args.save = true;
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--size-mib') args.sizeMiB = Number(argv[++i]);
    else if (a === '--generated-mib') args.generatedMiB = Number(argv[++i]);
    else if (a === '--inputs') args.inputs = list(argv[++i], INPUTS, a);
    else if (a === '--compressions' || a === '--compression') args.compressions = list(argv[++i], COMPRESSIONS, a);
    else if (a === '--tools') args.tools = list(argv[++i], TOOLS, a);
    else if (a === 'squashfs' || a === '--') continue;
    else throw new Error(`unknown argument ${a}; see the header of bench/squashfs.ts`);
  }
  return args;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The builtin writer in its own Node process (so GNU time sees only it): createSquashfs on the tar file. */
const BUILTIN_CHILD = `
import { createSquashfs } from ${JSON.stringify(join(ROOT, 'dist/index.js'))};
const [tar, out, compression, workers] = process.argv.slice(1);
await createSquashfs({ input: tar, outPath: out, backend: 'builtin', compression, workers: Number(workers), sourceDateEpoch: 0, digest: false });
`;

function command(tool: Tool, compression: Compression, input: { tar: string; dir: string }, out: string): string[] {
  const j = String(JOBS);
  switch (tool) {
    case 'builtin':
      return [process.execPath, '--input-type=module', '-e', BUILTIN_CHILD, input.tar, out, compression, j];
    case 'tar2sqfs':
      return ['sh', '-c', 'exec tar2sqfs --quiet --no-skip -c "$1" -j "$2" -f "$3" < "$0"', input.tar, compression, j, out];
    case 'sqfstar':
      return ['sh', '-c', 'exec sqfstar -quiet -no-progress -comp "$1" -processors "$2" "$3" < "$0"', input.tar, compression, j, out];
    case 'mksquashfs':
      return ['mksquashfs', input.dir, out, '-comp', compression, '-processors', j, '-noappend', '-quiet', '-no-progress'];
  }
}

interface Row {
  input: InputName;
  compression: Compression;
  tool: Tool;
  seconds: number[];
  cpuSeconds: number[];
  peakRssKiB: number[];
  bytes: number;
}

async function prepareInputs(args: Args, work: string): Promise<Record<InputName, { tar: string; dir: string; tarBytes: number; entries: number; what: string }>> {
  const out = {} as Record<InputName, { tar: string; dir: string; tarBytes: number; entries: number; what: string }>;
  for (const name of args.inputs) {
    const tar = join(work, `${name}.tar`);
    let entries: number;
    let what: string;
    if (name === 'realistic') {
      const files = (await pickHostFiles('/usr/lib', args.sizeMiB * 2 ** 20, MAX_FILE)).paths;
      const listFile = join(work, 'files');
      await writeFile(listFile, `${files.map((f) => f.slice(1)).join('\n')}\n`);
      await exec('tar', ['--format=pax', '--no-recursion', '-C', '/', '-cf', tar, '-T', listFile], { maxBuffer: 64 * 2 ** 20 });
      entries = files.length;
      what = `files of /usr/lib (GNU tar, PAX)`;
    } else {
      const stats: GeneratedTarStats = { files: 0, entries: 0, contentBytes: 0 };
      await pipeline(Readable.from(generatedTar({ bytes: args.generatedMiB * 2 ** 20, seed: 1 }, stats)), createWriteStream(tar));
      entries = stats.entries;
      what = `devkit/generated-tar.ts seed 1 (${stats.files} files)`;
    }
    const dir = join(work, `${name}.d`);
    if (args.tools.includes('mksquashfs')) {
      await mkdir(dir);
      await exec('tar', ['--xattrs', '--xattrs-include=*', '--same-owner', '-xpf', tar, '-C', dir]);
    }
    out[name] = { tar, dir, tarBytes: (await stat(tar)).size, entries, what };
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.tools.includes('builtin')) {
    await stat(join(ROOT, 'dist/index.js')).catch(() => {
      throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
    });
  }
  const work = await mkdtemp(join(process.env.CTRBAKE_TMPDIR ?? tmpdir(), 'ctrbake-bench-sqfs-'));
  const loads: number[] = [];
  try {
    const inputs = await prepareInputs(args, work);
    const rows: Row[] = [];
    for (const input of args.inputs)
      for (const compression of args.compressions)
        for (const tool of args.tools) if (WRITES[tool].includes(compression)) rows.push({ input, compression, tool, seconds: [], cpuSeconds: [], peakRssKiB: [], bytes: 0 });
    const started = new Date().toISOString();
    for (let r = 0; r < args.runs; r++) {
      for (const row of rows) {
        const out = join(work, 'out.sqfs');
        await rm(out, { force: true });
        loads.push(loadavg()[0]!);
        const cost = await timed(command(row.tool, row.compression, inputs[row.input], out), { scratch: work });
        row.seconds.push(cost.wallS);
        row.cpuSeconds.push(cost.cpuS);
        row.peakRssKiB.push(cost.peakRssKiB);
        row.bytes = (await stat(out)).size;
        await rm(out, { force: true });
        if (!args.json) process.stderr.write(`run ${r + 1}/${args.runs} ${row.input} ${row.compression} ${row.tool}: ${cost.wallS.toFixed(2)} s, ${(cost.peakRssKiB / 1024).toFixed(0)} MiB\n`);
      }
    }
    const ref = (row: Row): Row | undefined => rows.find((o) => o.input === row.input && o.compression === row.compression && o.tool === 'tar2sqfs');
    const results = rows.map((row) => {
      const t = median(row.seconds);
      const base = ref(row);
      return {
        input: row.input,
        compression: row.compression,
        tool: row.tool,
        medianSeconds: Number(t.toFixed(2)),
        spread: Number(((Math.max(...row.seconds) - Math.min(...row.seconds)) / 2 / t).toFixed(3)),
        cpuSeconds: Number(median(row.cpuSeconds).toFixed(2)),
        imageBytes: row.bytes,
        peakRssMiB: Number((median(row.peakRssKiB) / 1024).toFixed(1)),
        ...(base ? { timeRatioToTar2sqfs: Number((t / median(base.seconds)).toFixed(3)), sizeRatioToTar2sqfs: Number((row.bytes / base.bytes).toFixed(4)) } : {}),
        runsSeconds: row.seconds.map((s) => Number(s.toFixed(2))),
      };
    });
    const tools = await toolVersions();
    const result = {
      started,
      finished: new Date().toISOString(),
      machine: { hostname: hostname(), cpus: cpus().length, cpu: cpus()[0]?.model, memMiB: Math.round(totalmem() / 2 ** 20), kernel: release(), node: process.version, tools },
      load: { min: Math.min(...loads), median: median(loads), max: Math.max(...loads) },
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { what: v.what, tarBytes: v.tarBytes, entries: v.entries }])),
      jobs: JOBS,
      runs: args.runs,
      results,
    };
    if (args.save) {
      const file = join(ROOT, 'bench/results', `squashfs-${started.slice(0, 16).replace(/[-:]/g, '').replace('T', 'T')}Z.json`);
      await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
      process.stderr.write(`saved ${file}\n`);
    }
    if (args.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const lines = [
      `${started} .. ${result.finished}; ${result.machine.cpus} x ${result.machine.cpu}, ${result.machine.memMiB} MiB, kernel ${result.machine.kernel}, Node ${result.machine.node}; ${tools}`,
      `load average (1 min) during the runs: min ${result.load.min.toFixed(1)}, median ${result.load.median.toFixed(1)}, max ${result.load.max.toFixed(1)}; ${JOBS} jobs per tool; median of ${args.runs}, spread = (max - min) / 2 / median`,
      ...Object.entries(result.inputs).map(([k, v]) => `${k}: ${(v.tarBytes / 2 ** 20).toFixed(1)} MiB tar, ${v.entries} entries: ${v.what}`),
      '',
      '| input | comp | tool | time s | spread | x tar2sqfs | image MiB | x tar2sqfs | peak RSS MiB | CPU s |',
      '|---|---|---|---:|---:|---:|---:|---:|---:|---:|',
      ...results.map(
        (r) =>
          `| ${r.input} | ${r.compression} | ${r.tool} | ${r.medianSeconds.toFixed(1)} | ${(r.spread * 100).toFixed(0)} % | ${r.timeRatioToTar2sqfs?.toFixed(2) ?? '-'} | ${(r.imageBytes / 2 ** 20).toFixed(2)} | ${r.sizeRatioToTar2sqfs?.toFixed(4) ?? '-'} | ${r.peakRssMiB.toFixed(0)} | ${r.cpuSeconds.toFixed(1)} |`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function toolVersions(): Promise<string> {
  const first = async (cmd: string, arg: string): Promise<string> => {
    try {
      const { stdout, stderr } = await exec(cmd, [arg]);
      return `${stdout}${stderr}`.split('\n')[0]!.trim();
    } catch (error) {
      return `${cmd}: ${(error as Error).message.split('\n')[0]}`;
    }
  };
  const version = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return [`ctrbake ${version.version}`, await first('tar2sqfs', '--version'), await first('sqfstar', '-version'), await first('mksquashfs', '-version')].join('; ');
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/squashfs: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
