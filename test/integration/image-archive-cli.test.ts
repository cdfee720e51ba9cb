/**
 * `ctrbake image-archive` as the BitBake fetcher runs it (bin/ctrbake.js, dist/): one JSON
 * result object per action, exit 1 with E_IMAGE_ARCHIVE_INVALID for a damaged archive,
 * exit 2 with E_USAGE for a missing flag.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { imageArchiveFixture } from '../fixtures/image-archive.js';

const BIN = resolve(import.meta.dirname, '../../bin/ctrbake.js');

async function cli(args: string[]): Promise<{ exitCode: number; last: Record<string, unknown> }> {
  const r = await execa(process.execPath, [BIN, 'image-archive', ...args, '--json'], { reject: false });
  const lines = String(r.stdout).trim().split('\n');
  return { exitCode: r.exitCode ?? -1, last: JSON.parse(lines.at(-1)!) as Record<string, unknown> };
}

describe('ctrbake image-archive', () => {
  it('write, verify, unpack, merge-locks: one JSON result each; a flipped byte: exit 1, E_IMAGE_ARCHIVE_INVALID naming the blob', async () => {
    const f = await imageArchiveFixture();
    const archive = join(f.dir, 'img.tar');
    const target = ['--reference', f.target.reference, '--platform', f.target.platform];
    expect(await cli(['write', '-a', archive, ...target, '--lock', f.lockPath, '--cache', f.cache])).toMatchObject({
      exitCode: 0,
      last: { action: 'write', archive, ...f.target },
    });
    expect(await cli(['verify', '-a', archive, ...target])).toMatchObject({ exitCode: 0, last: { action: 'verify', archive, ...f.target, blobs: 3 } });
    const dest = join(f.dir, 'dest');
    const unpacked = await cli(['unpack', '-a', archive, ...target, '--dest', dest]);
    expect(unpacked).toMatchObject({ exitCode: 0, last: { action: 'unpack', blobs: 3, lock: expect.stringMatching(/\/dest\/locks\/ctrbake_.*\.tar\.lock\.json$/) } });
    const merged = join(f.dir, 'merged.json');
    expect(await cli(['merge-locks', '-o', merged, String(unpacked.last.lock)])).toMatchObject({ exitCode: 0, last: { action: 'merge-locks', lock: merged, images: 1 } });
    expect(JSON.parse(await readFile(merged, 'utf8'))).toEqual(f.lock);

    const bytes = await readFile(archive);
    const layerHex = f.lock.images[0]!.layers[0]!.digest.slice(7);
    const at = bytes.indexOf(Buffer.from('layer bytes'));
    bytes[at] ^= 1;
    await writeFile(archive, bytes);
    const bad = await cli(['verify', '-a', archive, ...target]);
    expect(bad.exitCode).toBe(1);
    expect(bad.last).toMatchObject({ type: 'error', code: 'E_IMAGE_ARCHIVE_INVALID', message: expect.stringContaining(`img.tar: blob blobs/sha256/${layerHex} has sha256`) });
  }, 60_000);

  it('a missing flag: exit 2, E_USAGE naming it', async () => {
    const r = await cli(['verify', '-a', 'x.tar', '--platform', 'linux/amd64']);
    expect(r.exitCode).toBe(2);
    expect(r.last).toMatchObject({ type: 'error', code: 'E_USAGE', message: expect.stringContaining('needs --reference') });
  });
});
