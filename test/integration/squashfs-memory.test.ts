/**
 * A 2 GiB+ tar streams through the builtin writer with peak memory under 300 MiB. The tar
 * is generated on the fly and piped into a child process running the built CLI library
 * (dist/), so the child's peak RSS (getrusage) measures the writer and Node only. The data
 * is mostly a repeated 4 KiB block with one random block in eight: fast to compress, but
 * every block still goes through the compressor. The image is then mounted and the large
 * file read back through the kernel and hashed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { contentSha256, tarStream, type TreeEntry } from '../fixtures/tars.js';
import { Mounts } from './squashfs-oracle.js';

const ROOT = resolve(__dirname, '../..');
const LIMIT_MIB = 300;
const BIG = 2 ** 31 + 4096 + 1; // over 2 GiB: past 32-bit offsets, not block-aligned

const mounts = new Mounts();
afterAll(async () => {
  await mounts.releaseAll();
});

const CHILD = `
import { createSquashfs } from ${JSON.stringify(join(ROOT, 'dist/index.js'))};
const result = await createSquashfs({ input: process.stdin, outPath: process.argv[1], backend: 'builtin', compression: 'gzip', level: 1, workers: 2, digest: false });
process.stdout.write(JSON.stringify({ bytes: result.bytes, maxRssKiB: process.resourceUsage().maxRSS }));
`;

describe('builtin writer memory', () => {
  it(`streams a ${(BIG / 2 ** 30).toFixed(2)} GiB tar with peak RSS under ${LIMIT_MIB} MiB`, { timeout: 1_200_000 }, async () => {
    await stat(join(ROOT, 'dist/index.js')).catch(() => {
      throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    });
    const dir = await mounts.tempDir();
    const out = join(dir, 'big.sqfs');
    const big: TreeEntry = { type: 'file', path: 'big', content: { kind: 'mixed', size: BIG, seed: 42, randomEvery: 8 } };
    const entries: TreeEntry[] = [
      { type: 'dir', path: 'd' },
      ...Array.from({ length: 200 }, (_, i): TreeEntry => ({ type: 'file', path: `d/small-${i}`, content: { kind: 'random', size: 1000 + i * 37, seed: i } })),
      big,
    ];
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, out], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res, rej) => {
      child.on('error', rej);
      child.on('close', res);
    });
    await pipeline(Readable.from(tarStream(entries)), child.stdin);
    expect(await exited, stderr).toBe(0);
    const { bytes, maxRssKiB } = JSON.parse(stdout) as { bytes: number; maxRssKiB: number };
    const peakMiB = maxRssKiB / 1024;
    console.log(`builtin writer: ${(BIG / 2 ** 20).toFixed(0)} MiB file -> ${(bytes / 2 ** 20).toFixed(1)} MiB image, peak RSS ${peakMiB.toFixed(1)} MiB`);
    expect(peakMiB).toBeLessThan(LIMIT_MIB);

    const mnt = await mounts.mountSquashfs(out);
    const st = await stat(join(mnt, 'big'));
    expect(st.size).toBe(BIG);
    const hash = createHash('sha256');
    await pipeline(createReadStream(join(mnt, 'big'), { highWaterMark: 1 << 20 }), hash);
    expect(hash.digest('hex')).toBe(contentSha256(big.type === 'file' ? big.content : undefined));
  });
});
