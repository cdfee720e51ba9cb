import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { resolveSquashfsOptions } from '../../../src/squashfs/index.js';
import { normalizeTarPath, TarNormalizer, type NormalizeOptions } from '../../../src/squashfs/backends/tar-normalize.js';
import { TarInput } from '../../../src/formats/tar/index.js';
import { parseSqfstarVersion, sqfstarIgnoresRootOptions, sqfstarVersionSupported } from '../../../src/squashfs/backends/sqfstar.js';
import { tarBuffer, type TarOptions, type TreeEntry } from '../../fixtures/tars.js';

describe('normalizeTarPath', () => {
  it.each([
    ['a', 'a'],
    ['./a', 'a'],
    ['././a//b/', 'a/b'],
    ['a/./b', 'a/b'],
    ['.', ''],
    ['./', ''],
    ['', ''],
    ['..', null],
    ['a/../b', null],
    ['../a', null],
    ['/a', null],
    ['...', '...'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeTarPath(input)).toBe(expected);
  });
});

describe('sqfstar version', () => {
  it.each([
    ['sqfstar version 4.5.1 (2022/03/17)', [4, 5, 1], true, true],
    ['sqfstar version 4.6 (2023/03/25)', [4, 6, 0], true, false],
    ['sqfstar version 4.7.2-git', [4, 7, 2], true, false],
    ['sqfstar version 4.4 (2019/08/29)', [4, 4, 0], false, true],
  ])('%s', (output, version, supported, ignoresRoot) => {
    expect(parseSqfstarVersion(output)).toEqual(version);
    expect(sqfstarVersionSupported(version)).toBe(supported);
    expect(sqfstarIgnoresRootOptions(version)).toBe(ignoresRoot);
  });
  it('no version', () => {
    expect(parseSqfstarVersion('mksquashfs version 4.5')).toBeNull();
  });
});

async function normalize(entries: TreeEntry[], tarOptions: TarOptions = {}, options: Partial<NormalizeOptions> = {}): Promise<Buffer> {
  const input = await tarBuffer(entries, tarOptions);
  const n = new TarNormalizer(Readable.from([input]), { backend: 'test', explicitParents: false, omitRoot: false, refuseSparse: true, defaultMtime: 7, ...options });
  const chunks: Buffer[] = [];
  for await (const c of n.output()) chunks.push(c);
  return Buffer.concat(chunks);
}

async function readAll(tar: Buffer) {
  const r = new TarInput(Readable.from([tar]));
  const out = [];
  for (let e = await r.next(); e; e = await r.next()) {
    const data: Buffer[] = [];
    for await (const c of r.data()) data.push(c);
    out.push({ ...e, data: Buffer.concat(data).toString('latin1'), xattrs: Object.fromEntries([...e.xattrs].map(([k, v]) => [k, v.toString('hex')])) });
  }
  return out;
}

describe('TarNormalizer canonical stream', () => {
  it('normalises names, drops owner names, decodes LIBARCHIVE xattrs, keeps binary values', async () => {
    const long = `${'d'.repeat(120)}/f`;
    const out = await normalize(
      [
        { type: 'file', path: 'a', content: Buffer.from('hello'), uid: 5, gid: 6, uname: 'daemon', gname: 'daemon', xattrs: { 'user.b': Buffer.from([0, 10, 61, 255]) } },
        { type: 'file', path: long, content: Buffer.from('x') },
        { type: 'hardlink', path: 'h', target: long },
      ],
      { prefix: './', longNames: 'gnu', xattrEncoding: 'libarchive' },
    );
    const entries = await readAll(out);
    expect(entries.map((e) => [e.name, e.type, e.linkname])).toEqual([
      ['a', 'file', ''],
      [long, 'file', ''],
      ['h', 'hardlink', long],
    ]);
    expect(entries[0]).toMatchObject({ uid: 5, gid: 6, data: 'hello', xattrs: { 'user.b': '000a3dff' } });
    // No owner names anywhere in the canonical stream.
    expect(out.includes(Buffer.from('daemon'))).toBe(false);
  });

  it('writes explicit parents (0755, root, default mtime) when asked', async () => {
    const entries = await readAll(await normalize([{ type: 'file', path: 'a/b/c', content: Buffer.from('x'), uid: 3 }], {}, { explicitParents: true }));
    expect(entries.map((e) => [e.name, e.type, e.mode, e.uid, e.mtime])).toEqual([
      ['a/', 'dir', 0o755, 0, 7],
      ['a/b/', 'dir', 0o755, 0, 7],
      ['a/b/c', 'file', 0o644, 3, 1_700_000_000],
    ]);
  });

  it.each([
    [[{ type: 'file', path: 'f', xattrs: { 'system.posix_acl_access': 'x' } }] as TreeEntry[], 'E_TAR_UNSUPPORTED'],
    [[{ type: 'file', path: 'f' }, { type: 'file', path: 'f' }] as TreeEntry[], 'E_TAR_DUPLICATE'],
    [[{ type: 'file', path: '../f' }] as TreeEntry[], 'E_TAR_UNSAFE_PATH'],
    [[{ type: 'hardlink', path: 'l', target: 'x' }] as TreeEntry[], 'E_TAR_BAD_LINK'],
  ])('refuses %j with %s', async (entries, code) => {
    await expect(normalize(entries)).rejects.toMatchObject({ code });
  });
});

describe('resolveSquashfsOptions', () => {
  it('reads SOURCE_DATE_EPOCH only when no value is given', () => {
    expect(resolveSquashfsOptions({}, { SOURCE_DATE_EPOCH: '42' }).sourceDateEpoch).toBe(42);
    expect(resolveSquashfsOptions({ sourceDateEpoch: 5 }, { SOURCE_DATE_EPOCH: '42' }).sourceDateEpoch).toBe(5);
    expect(resolveSquashfsOptions({}, {})).toMatchObject({ backend: 'builtin', compression: 'gzip', blockSize: 131072, sourceDateEpoch: 0 });
  });
  it.each([
    [{ blockSize: 3000 }],
    [{ blockSize: 2 * 1024 * 1024 }],
    [{ level: 10 }],
    [{ compression: 'brotli' as never }],
    [{ backend: 'mksquashfs' as never }],
    [{ workers: 0 }],
  ])('refuses %j as a usage error', (options) => {
    expect(() => resolveSquashfsOptions(options, {})).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
  it.each([
    ['131072', 131072],
    ['128K', 131072],
    [' 64KiB ', 65536],
    ['1M', 1048576],
    [8192, 8192],
  ])('block size %j (the CLI passes --block-size as typed) is %i bytes', (blockSize, bytes) => {
    expect(resolveSquashfsOptions({ blockSize }, {}).blockSize).toBe(bytes);
  });
  it.each([['12Q'], [''], ['1.5M']])('block size %j is no size: E_SQUASHFS_OPTIONS naming the flag and the units, before any other check', (blockSize) => {
    expect(() => resolveSquashfsOptions({ blockSize, compression: 'xz' }, {})).toThrow(
      expect.objectContaining({ code: 'E_SQUASHFS_OPTIONS', exitCode: 2, message: `--block-size ${JSON.stringify(blockSize)} is not a size: use bytes, or K/M (e.g. 131072, 128K, 1M)` }),
    );
  });
});
