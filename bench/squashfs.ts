/**
 * SquashFS backends on the same tar and the same compressor, in the same run:
 * builtin (2 workers) vs tar2sqfs (-j 2) vs sqfstar (-processors 2), all through
 * createSquashfs (so the host tools include ctrbake's validating pass), plus plain
 * tar2sqfs reading the file itself, to show what that pass costs, and (gzip) builtin with
 * `--gzip-impl canonical` (canonical zlib through pako: smaller, slower) next to its default
 * (node:zlib).
 *
 *   npm run bench -- squashfs [--size-mib 300] [--runs 3] [--compression gzip] [--json]
 *
 * The tar: files of /usr/lib up to 16 MiB each (sorted, deterministic) up to --size-mib, written by GNU tar
 * (PAX). Times are wall clock, median of --runs; ratios are to builtin (time ratio > 1:
 * slower than builtin; size ratio > 1: larger than builtin). A second table splits each image
 * into data blocks, fragment blocks and tables (devkit/squashfs-reader.ts layout()).
 */
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, hostname, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createSquashfs, type SquashfsBackendName, type SquashfsCompression } from '../src/squashfs/index.js';
import { SquashfsReader, type SquashfsLayout } from '../devkit/squashfs-reader.js';
import { pickHostFiles } from '../devkit/host-files.js';

const exec = promisify(execFile);

interface Args {
  sizeMiB: number;
  runs: number;
  compression: SquashfsCompression;
  json: boolean;
  source: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { sizeMiB: 300, runs: 3, compression: 'gzip', json: false, source: '/usr/lib' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--size-mib') args.sizeMiB = Number(argv[++i]);
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--compression') args.compression = argv[++i] as SquashfsCompression;
    else if (a === '--source') args.source = argv[++i];
    else if (a === 'squashfs' || a === '--') continue;
    else throw new Error(`unknown argument ${a}; see the header of bench/squashfs.ts`);
  }
  return args;
}

/** Files above this are left out, so no single file dominates the input. */
const MAX_FILE = 16 * 1024 * 1024;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timeIt(fn: () => Promise<number>): Promise<{ seconds: number; bytes: number }> {
  const start = process.hrtime.bigint();
  const bytes = await fn();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, bytes };
}

async function plainTar2sqfs(tar: string, out: string, compression: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('tar2sqfs', ['--quiet', '--no-skip', '-c', compression, '-j', '2', '-f', out], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar2sqfs exited ${code}`))));
    createReadStream(tar).pipe(child.stdin);
  });
  return (await stat(out)).size;
}

/** Data blocks, fragment blocks and tables of an image; null where the reader cannot (xz). */
async function layoutOf(path: string): Promise<SquashfsLayout | null> {
  try {
    const reader = await SquashfsReader.open(path);
    try {
      return reader.layout();
    } finally {
      reader.close();
    }
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const work = await mkdtemp(join(process.env.CTRBAKE_TMPDIR ?? tmpdir(), 'ctrbake-bench-'));
  try {
    const files = (await pickHostFiles(args.source, args.sizeMiB * 1024 * 1024, MAX_FILE)).paths;
    const list = join(work, 'files');
    await writeFile(list, `${files.map((f) => f.slice(1)).join('\n')}\n`);
    const tar = join(work, 'input.tar');
    await exec('tar', ['--format=pax', '--no-recursion', '-C', '/', '-cf', tar, '-T', list], { maxBuffer: 64 * 1024 * 1024 });
    const tarBytes = (await stat(tar)).size;
    const contenders: { name: string; run: (out: string) => Promise<number> }[] = [
      ...(['builtin', 'tar2sqfs', 'sqfstar'] as SquashfsBackendName[]).map((backend) => ({
        name: backend,
        run: async (out: string) =>
          (await createSquashfs({ input: tar, outPath: out, backend, compression: args.compression, workers: 2, sourceDateEpoch: 0, digest: false })).bytes,
      })),
      { name: 'tar2sqfs (plain, no validating pass)', run: (out: string) => plainTar2sqfs(tar, out, args.compression) },
      // builtin's smaller, slower gzip: canonical zlib (pako) instead of node:zlib (Chromium's zlib).
      ...(args.compression === 'gzip'
        ? [
            {
              name: 'builtin, --gzip-impl canonical',
              run: async (out: string) =>
                (await createSquashfs({ input: tar, outPath: out, backend: 'builtin', compression: 'gzip', gzipImplementation: 'canonical', workers: 2, sourceDateEpoch: 0, digest: false })).bytes,
            },
          ]
        : []),
    ];
    const rows: { name: string; seconds: number[]; bytes: number; layout: SquashfsLayout | null }[] = contenders.map((c) => ({ name: c.name, seconds: [], bytes: 0, layout: null }));
    // Interleave the contenders run by run, so load changes hit them alike.
    for (let r = 0; r < args.runs; r++) {
      for (const [i, c] of contenders.entries()) {
        const out = join(work, `out-${i}.sqfs`);
        await rm(out, { force: true });
        const { seconds, bytes } = await timeIt(() => c.run(out));
        rows[i].seconds.push(seconds);
        rows[i].bytes = bytes;
        rows[i].layout = await layoutOf(out);
        await rm(out, { force: true });
        if (!args.json) process.stderr.write(`run ${r + 1}/${args.runs} ${c.name}: ${seconds.toFixed(2)} s\n`);
      }
    }
    const base = rows[0];
    const baseTime = median(base.seconds);
    const result = {
      date: new Date().toISOString(),
      machine: { hostname: hostname(), cpus: cpus().length, cpu: cpus()[0]?.model, memMiB: Math.round(totalmem() / 2 ** 20), kernel: release(), node: process.version },
      input: { source: args.source, tarBytes, entries: files.length },
      compression: args.compression,
      runs: args.runs,
      results: rows.map((r) => {
        const t = median(r.seconds);
        return {
          name: r.name,
          medianSeconds: Number(t.toFixed(3)),
          throughputMiBps: Number((tarBytes / 2 ** 20 / t).toFixed(1)),
          imageBytes: r.bytes,
          timeRatioToBuiltin: Number((t / baseTime).toFixed(3)),
          sizeRatioToBuiltin: Number((r.bytes / base.bytes).toFixed(4)),
          layout: r.layout,
        };
      }),
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const lines = [
      `input: ${(tarBytes / 2 ** 20).toFixed(1)} MiB tar of ${args.source} (${files.length} entries), ${args.compression}, median of ${args.runs}`,
      `${'backend'.padEnd(40)}${'time s'.padStart(9)}${'MiB/s'.padStart(9)}${'image MiB'.padStart(11)}${'time/builtin'.padStart(14)}${'size/builtin'.padStart(14)}`,
      ...result.results.map(
        (r) =>
          `${r.name.padEnd(40)}${r.medianSeconds.toFixed(2).padStart(9)}${r.throughputMiBps.toFixed(1).padStart(9)}${(r.imageBytes / 2 ** 20).toFixed(2).padStart(11)}${r.timeRatioToBuiltin.toFixed(3).padStart(14)}${r.sizeRatioToBuiltin.toFixed(4).padStart(14)}`,
      ),
    ];
    lines.push(
      '',
      `where the bytes go (stored bytes; the difference to builtin in parentheses)`,
      `${'backend'.padEnd(40)}${'data blocks'.padStart(22)}${'fragment blocks'.padStart(22)}${'tables'.padStart(18)}`,
      ...result.results.map((r) => {
        const l = r.layout;
        const b = base.layout;
        if (!l || !b) return `${r.name.padEnd(40)}${'(not readable)'.padStart(22)}`;
        const cell = (v: number, w: number, ref: number): string => `${v} (${v - ref >= 0 ? '+' : ''}${v - ref})`.padStart(w);
        return `${r.name.padEnd(40)}${cell(l.dataBlocks, 22, b.dataBlocks)}${cell(l.fragmentBlocks, 22, b.fragmentBlocks)}${cell(l.metadata, 18, b.metadata)}`;
      }),
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/squashfs: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
