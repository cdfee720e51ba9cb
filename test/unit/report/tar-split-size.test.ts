import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TarSplitSizer } from '../../../src/report/tar-split-size.js';

describe('tar-split size', () => {
  it('records one segment and one file entry per tar entry, headers base64, and grows with the entries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctrbake-tarsplit-'));
    try {
      mkdirSync(join(dir, 'root/sub'), { recursive: true });
      for (let i = 0; i < 50; i++) writeFileSync(join(dir, 'root/sub', `file-${i}-${'x'.repeat(120)}`), `content ${i}\n`);
      const tar = execFileSync('tar', ['--format=pax', '-C', join(dir, 'root'), '-cf', '-', '.'], { maxBuffer: 1 << 26 });
      const sizer = new TarSplitSizer();
      // Odd chunk sizes: headers and content cross chunk boundaries.
      for (let i = 0; i < tar.length; i += 777) sizer.write(tar.subarray(i, i + 777));
      const gz = await sizer.finish();
      expect(gz).toBeGreaterThan(0);
      // Compare with the same entries' JSON gzipped: the tar has 52 entries (., sub, 50 files).
      const raw = gunzipSync(await gzipOf(tar));
      const lines = raw.toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: number; name?: string; size?: number; position: number });
      const files = lines.filter((l) => l.type === 1);
      expect(files).toHaveLength(52);
      expect(files.filter((l) => l.size === undefined)).toHaveLength(2);
      expect(files.some((l) => l.name?.endsWith(`file-7-${'x'.repeat(120)}`))).toBe(true);
      expect(lines.map((l) => l.position)).toEqual(lines.map((_, i) => i));
      expect(lines.at(-1)!.type).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The sizer's JSON, captured through its gzip (test-only access). */
async function gzipOf(tar: Buffer): Promise<Buffer> {
  const sizer = new TarSplitSizer();
  const chunks: Buffer[] = [];
  (sizer as unknown as { gzip: NodeJS.ReadableStream }).gzip.on('data', (c: Buffer) => chunks.push(c));
  sizer.write(tar);
  await sizer.finish();
  return Buffer.concat(chunks);
}
