import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { scanLayerTar } from '../../../src/report/scan-layer.js';
import { directoryBytes, direntBytes, symlinkBytes } from '../../../src/report/unpacked-model.js';
import { buildLayer } from '../../../devkit/layers.js';

const B = 4096;
const scan = async (tar: Buffer, blockSize = B) => scanLayerTar(Readable.from([tar]), blockSize);

describe('unpacked model', () => {
  it('dirents: 8 + name rounded to 4; a directory is one block while they fit', () => {
    expect(direntBytes(1)).toBe(12);
    expect(direntBytes(4)).toBe(12);
    expect(direntBytes(5)).toBe(16);
    expect(directoryBytes([], B)).toBe(B);
    // 24 (. and ..) + 253 * 16 = 4072 fits; 24 + 255 * 16 = 4104 > 4084 usable: an htree (index block + leaves at 3/4).
    expect(directoryBytes(Array(253).fill(8), B)).toBe(B);
    expect(directoryBytes(Array(255).fill(8), B)).toBe(3 * B);
  });

  it('symlinks: in the inode below 60 bytes, else a block', () => {
    expect(symlinkBytes(59, B)).toBe(0);
    expect(symlinkBytes(60, B)).toBe(B);
  });
});

describe('scanLayerTar', () => {
  it('counts files rounded to blocks, each dir (named or implied) and the root once, long symlinks; hard links, devices and empty files take nothing', async () => {
    const layer = await buildLayer([
      { type: 'file', path: 'a/one', content: 'x' },
      { type: 'file', path: 'a/full', content: Buffer.alloc(B, 1) },
      { type: 'file', path: 'a/over', content: Buffer.alloc(B + 1, 2) },
      { type: 'file', path: 'a/empty', content: '' },
      { type: 'hardlink', path: 'a/zlink', target: 'a/over' },
      { type: 'symlink', path: 'short', target: 'a/one' },
      { type: 'symlink', path: 'long', target: `/${'x'.repeat(70)}` },
      { type: 'char', path: 'dev/whiteout', major: 0, minor: 0 },
      { type: 'file', path: 'deep/er/still/file', content: 'y' },
    ]);
    const s = await scan(layer.tar);
    // dirs: root, a, dev, deep, deep/er, deep/er/still = 6 blocks; files 1 + 1 + 2 blocks; long symlink 1 block.
    expect(s.directories).toBe(6);
    expect(s.unpackedBytes).toBe((6 + 1 + 1 + 2 + 1 + 1) * B);
    expect(s.files).toBe(5);
    expect(s.fileBytes).toBe(1 + B + B + 1 + 1);
    expect(s.hardlinks).toBe(1);
    expect(s.symlinks).toBe(2);
    expect(s.specials).toBe(1);
    expect(s.tarBytes).toBe(layer.tar.length);
    expect(s.contents.map((c) => c.path).sort()).toEqual(['a/full', 'a/one', 'a/over', 'deep/er/still/file']);
  });

  it('the block size changes the rounding', async () => {
    const layer = await buildLayer([{ type: 'file', path: 'f', content: Buffer.alloc(1000) }]);
    expect((await scan(layer.tar, 1024)).unpackedBytes).toBe(1024 + 1024);
    expect((await scan(layer.tar, 512)).unpackedBytes).toBe(512 + 1024);
  });

  it('hashes contents: equal files have equal sha256', async () => {
    const layer = await buildLayer([
      { type: 'file', path: 'a', content: 'same\n' },
      { type: 'file', path: 'b', content: 'same\n' },
      { type: 'file', path: 'c', content: 'other\n' },
    ]);
    const s = await scan(layer.tar);
    const [a, b, c] = ['a', 'b', 'c'].map((p) => s.contents.find((x) => x.path === p)!.sha256);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads "./"-prefixed names (as docker save writes them); a repeated path counts once, the last entry wins', async () => {
    const p = pack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    const done = new Promise<void>((r) => p.on('end', () => r()));
    p.entry({ name: './', type: 'directory' });
    p.entry({ name: './etc/', type: 'directory' });
    p.entry({ name: './etc/f', type: 'file' }, Buffer.alloc(3 * B));
    p.entry({ name: 'etc/f', type: 'file' }, Buffer.alloc(10));
    p.finalize();
    await done;
    const s = await scan(Buffer.concat(chunks));
    expect(s.directories).toBe(2);
    expect(s.files).toBe(1);
    expect(s.unpackedBytes).toBe(2 * B + B);
  });

  it('a truncated tar is an input error', async () => {
    const layer = await buildLayer([{ type: 'file', path: 'f', content: Buffer.alloc(10_000) }]);
    await expect(scan(layer.tar.subarray(0, 3000))).rejects.toMatchObject({ code: expect.stringMatching(/^E_TAR/) });
  });
});
