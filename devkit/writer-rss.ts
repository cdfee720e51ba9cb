/**
 * Peak memory of the builtin SquashFS writer alone: a child Node process runs the built
 * library (dist/) on a tar piped into its stdin, and reports its own peak RSS (getrusage
 * ru_maxrss), so neither the tar's producer nor the test runner counts.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const ROOT = resolve(import.meta.dirname, '..');

export interface WriterRssOptions {
  compression?: 'gzip' | 'zstd' | 'lz4';
  level?: number;
  workers?: number;
  blockSize?: number;
}

export interface WriterRssResult {
  /** Image bytes. */
  bytes: number;
  inodes: number;
  maxRssKiB: number;
  wallS: number;
}

const CHILD = `
import { writeSquashfsFromTar } from ${JSON.stringify(join(ROOT, 'dist/squashfs/writer/index.js'))};
const options = JSON.parse(process.argv[2]);
const result = await writeSquashfsFromTar(process.stdin, process.argv[1], options);
process.stdout.write(JSON.stringify({ bytes: result.bytes, inodes: result.inodes, maxRssKiB: process.resourceUsage().maxRSS }));
`;

/** Writes `tar` into `out` with the builtin writer in a child process; its peak RSS. */
export async function writerRss(tar: AsyncIterable<Uint8Array>, out: string, options: WriterRssOptions = {}): Promise<WriterRssResult> {
  await stat(join(ROOT, 'dist/squashfs/writer/index.js')).catch(() => {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  });
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, out, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const exited = new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', res);
  });
  await pipeline(Readable.from(tar), child.stdin);
  const code = await exited;
  if (code !== 0) throw new Error(`the writer's child process exited with ${code}: ${stderr}`);
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  return { ...(JSON.parse(stdout) as Omit<WriterRssResult, 'wallS'>), wallS };
}
