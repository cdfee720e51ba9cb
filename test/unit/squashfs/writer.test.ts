import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SquashfsReader, type SquashfsEntry, type SquashfsLayout } from '../../../devkit/squashfs-reader.js';
import { createCompressor } from '../../../src/squashfs/writer/compressor.js';
import { writeSquashfsFromTar, type SquashfsCompression, type SquashfsWriteOptions } from '../../../src/squashfs/writer/index.js';
import { buildTar, randomBytesSeeded, type TestEntry } from './tar-builder.js';

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctrbake-sqfs-unit-'));
  for (const tool of ['unsquashfs', 'rdsquashfs', 'tar']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`${tool} is missing: install squashfs-tools, squashfs-tools-ng and tar (scripts/install-deps.sh)`);
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fresh(name: string): string {
  const sub = join(dir, `${name}-${counter++}`);
  execFileSync('mkdir', ['-p', sub]);
  return sub;
}

async function build(tar: Buffer, options: SquashfsWriteOptions = {}): Promise<{ image: string; reader: SquashfsReader; entries: Map<string, SquashfsEntry> }> {
  const image = join(fresh('img'), 'out.sqfs');
  await writeSquashfsFromTar(Readable.from([tar]), image, options);
  const reader = await SquashfsReader.open(image);
  return { image, reader, entries: new Map(reader.list().map((e) => [e.path, e])) };
}

const BS = 4096;
const SIZES = [0, 1, BS - 1, BS, BS + 1, 2 * BS, 3 * BS - 1, 5 * BS + 7];

function fullTree(): TestEntry[] {
  const entries: TestEntry[] = [
    { name: './', type: 'dir', mode: 0o755, mtime: 1_600_000_000 },
    { name: './etc/', type: 'dir', mode: 0o750, uid: 0, gid: 4 },
    { name: './etc/setuid', mode: 0o4755, content: Buffer.from('#!/bin/sh\n'), uid: 1000, gid: 1000, mtime: 1_500_000_000 },
    { name: './etc/sticky/', type: 'dir', mode: 0o1777 },
    { name: './etc/link', type: 'symlink', linkname: '../target/does/not/exist' },
    { name: './etc/hard', type: 'hardlink', linkname: './etc/setuid' },
    { name: 'etc/hard2', type: 'hardlink', linkname: 'etc/setuid' },
    { name: './dev/null', type: 'chardev', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: './dev/big', type: 'blockdev', devmajor: 259, devminor: 300000, mode: 0o660 },
    { name: './dev/sda1', type: 'blockdev', devmajor: 8, devminor: 1, mode: 0o640, gid: 6 },
    { name: './run/fifo', type: 'fifo', mode: 0o600 },
    { name: './whiteout', type: 'chardev', devmajor: 0, devminor: 0, mode: 0 },
    { name: `./long/${'n'.repeat(200)}/${'m'.repeat(150)}`, content: Buffer.from('deep') },
    { name: './utf8/héllo wörld ✓', content: Buffer.from('unicode') },
  ];
  for (const size of SIZES) entries.push({ name: `./sizes/f${size}`, content: randomBytesSeeded(size, size + 1) });
  return entries;
}

describe.each<SquashfsCompression>(['gzip', 'zstd', 'lz4'])('round trip with %s', (compression) => {
  let image: string;
  let reader: SquashfsReader;
  let entries: Map<string, SquashfsEntry>;
  const tree = fullTree();

  beforeAll(async () => {
    ({ image, reader, entries } = await build(buildTar(tree), { compression, blockSize: BS, sourceDateEpoch: 1234 }));
  });
  afterAll(() => reader.close());

  it('keeps every entry type with its metadata', () => {
    expect(entries.get('')).toMatchObject({ type: 'dir', mode: 0o755, mtime: 1_600_000_000 });
    expect(entries.get('etc')).toMatchObject({ type: 'dir', mode: 0o750, uid: 0, gid: 4 });
    expect(entries.get('etc/setuid')).toMatchObject({ type: 'file', mode: 0o4755, uid: 1000, gid: 1000, mtime: 1_500_000_000, nlink: 3 });
    expect(entries.get('etc/sticky')).toMatchObject({ type: 'dir', mode: 0o1777 });
    expect(entries.get('etc/link')).toMatchObject({ type: 'symlink', linkTarget: '../target/does/not/exist' });
    expect(entries.get('dev/null')).toMatchObject({ type: 'chardev', rdev: { major: 1, minor: 3 }, mode: 0o666 });
    expect(entries.get('dev/big')).toMatchObject({ type: 'blockdev', rdev: { major: 259, minor: 300000 } });
    expect(entries.get('run/fifo')).toMatchObject({ type: 'fifo', mode: 0o600 });
    expect(entries.get('whiteout')).toMatchObject({ type: 'chardev', rdev: { major: 0, minor: 0 }, mode: 0 });
    expect(reader.readFile(`long/${'n'.repeat(200)}/${'m'.repeat(150)}`).toString()).toBe('deep');
    expect(reader.readFile('utf8/héllo wörld ✓').toString()).toBe('unicode');
  });

  it('gives hard links one inode', () => {
    const numbers = ['etc/setuid', 'etc/hard', 'etc/hard2'].map((p) => entries.get(p)!.inodeNumber);
    expect(new Set(numbers).size).toBe(1);
    expect(entries.get('etc/hard')).toMatchObject({ nlink: 3, mode: 0o4755 });
  });

  it('creates implicit parents 0755 root with SOURCE_DATE_EPOCH', () => {
    for (const p of ['dev', 'run', 'long', 'sizes', 'utf8']) expect(entries.get(p)).toMatchObject({ type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1234 });
    expect(reader.superblock.mkfsTime).toBe(1234);
  });

  it('counts directory links as 2 + subdirectories', () => {
    expect(entries.get('')!.nlink).toBe(2 + 6);
    expect(entries.get('etc')!.nlink).toBe(3);
  });

  it.each(SIZES)('reads back a %i-byte file across block and fragment boundaries', (size) => {
    expect(reader.readFile(`sizes/f${size}`).equals(randomBytesSeeded(size, size + 1))).toBe(true);
  });

  it('is listed the same by unsquashfs and rdsquashfs', () => {
    const lln = execFileSync('unsquashfs', ['-lln', image], { encoding: 'utf8' });
    expect(lln).toMatch(/-rwsr-xr-x 1000\/1000\s+10 \S+ \S+ squashfs-root\/etc\/setuid/);
    expect(lln).toMatch(/crw-rw-rw- 0\/0\s+1,\s+3 .*squashfs-root\/dev\/null/);
    // unsquashfs -lln prints major = rdev >> 8 (no large-minor decoding): check a small one.
    expect(lln).toMatch(/brw-r----- 0\/6\s+8,\s+1 .*squashfs-root\/dev\/sda1/);
    expect(lln).toMatch(/prw------- .*squashfs-root\/run\/fifo/);
    expect(lln).toMatch(/drwxrwxrwt .*squashfs-root\/etc\/sticky/);
    expect(lln).toContain('squashfs-root/etc/link -> ../target/does/not/exist');
    const rd = execFileSync('rdsquashfs', ['-l', '/sizes', image], { encoding: 'utf8' });
    for (const size of SIZES) expect(rd).toContain(`f${size}`);
    for (const size of [BS + 1, 5 * BS + 7]) {
      const out = execFileSync('rdsquashfs', ['-c', `/sizes/f${size}`, image], { maxBuffer: 1 << 24 });
      expect(out.equals(randomBytesSeeded(size, size + 1))).toBe(true);
    }
  });
});

describe('xattrs', () => {
  const big = Buffer.alloc(3000, 0xab);
  const binary = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x3d, 0x0a, 0x00]);
  let entries: Map<string, SquashfsEntry>;
  let image: string;

  beforeAll(async () => {
    const tar = buildTar([
      { name: 'a', content: Buffer.from('a'), pax: { 'SCHILY.xattr.user.small': 'v', 'SCHILY.xattr.security.capability': binary, 'SCHILY.xattr.user.big': big } },
      { name: 'b', content: Buffer.from('b'), pax: { 'SCHILY.xattr.user.big': big, 'SCHILY.xattr.trusted.overlay.opaque': 'y' } },
      { name: 'c', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } },
      { name: 'd', type: 'symlink', linkname: 'a', pax: { 'LIBARCHIVE.xattr.user.b64': Buffer.from('aGVsbG8=') } },
      { name: 'e', content: Buffer.from('e'), pax: { 'SCHILY.xattr.user.small': 'v', 'SCHILY.xattr.security.capability': binary, 'SCHILY.xattr.user.big': big } },
    ]);
    ({ entries, image } = await build(tar));
  });

  it('keeps user, trusted and security xattrs, binary and large values', () => {
    expect(entries.get('a')!.xattrs).toEqual({ 'user.small': Buffer.from('v'), 'security.capability': binary, 'user.big': big });
    expect(entries.get('b')!.xattrs).toEqual({ 'user.big': big, 'trusted.overlay.opaque': Buffer.from('y') });
    expect(entries.get('c')!.xattrs).toEqual({ 'trusted.overlay.opaque': Buffer.from('y') });
    expect(entries.get('d')!.xattrs).toEqual({ 'user.b64': Buffer.from('hello') });
    expect(entries.get('e')!.xattrs).toEqual(entries.get('a')!.xattrs);
  });

  it('stores a repeated large value once (out of line)', () => {
    // Three files carry the 3000-byte value; with sharing the image holds it about once.
    const size = readFileSync(image).length;
    expect(size).toBeLessThan(4096 * 2);
    const out = execFileSync('rdsquashfs', ['-x', '/b', image], { encoding: 'utf8' });
    expect(out).toContain('trusted.overlay.opaque=y');
  });
});

describe('data layout', () => {
  it('stores identical files once and reports the bytes saved', async () => {
    const data = randomBytesSeeded(300_000, 7);
    const small = randomBytesSeeded(100, 8);
    const { reader, image } = await build(
      buildTar([
        { name: 'one', content: data },
        { name: 'small1', content: small },
        { name: 'two', content: data },
        { name: 'small2', content: small },
      ]),
    );
    expect(reader.readFile('two').equals(data)).toBe(true);
    expect(reader.readFile('small2').equals(small)).toBe(true);
    expect(readFileSync(image).length).toBeLessThan(300_000 + 16_384);
    reader.close();
    const result = await writeSquashfsFromTar(Readable.from([buildTar([{ name: 'one', content: data }, { name: 'two', content: data }])]), join(fresh('dup'), 'x.sqfs'));
    expect(result.duplicatesSaved).toBe(300_000);
    expect(result.dataBytesIn).toBe(600_000);
    // The duplicate came last: its rewound blocks must not survive past the tables.
    const bytes = readFileSync(result.path);
    const used = Number(bytes.readBigUInt64LE(40));
    expect(bytes.length).toBe(Math.ceil(used / 4096) * 4096);
    expect(bytes.length).toBe(result.bytes);
    expect(bytes.subarray(used).every((b) => b === 0)).toBe(true);
  });

  it('stores all-zero blocks as sparse', async () => {
    const content = Buffer.concat([randomBytesSeeded(1000, 3), Buffer.alloc(1 << 20), randomBytesSeeded(5000, 4)]);
    const { reader, image, entries } = await build(buildTar([{ name: 'holes', content }]));
    expect(reader.readFile('holes').equals(content)).toBe(true);
    expect(entries.get('holes')!.sparseBytes).toBeGreaterThanOrEqual(6 * 131072);
    expect(readFileSync(image).length).toBeLessThan(200_000);
    expect(execFileSync('rdsquashfs', ['-c', '/holes', image], { maxBuffer: 1 << 24 }).equals(content)).toBe(true);
    reader.close();
  });

  it('reads GNU and PAX (0.0, 0.1, 1.0) sparse tars written by GNU tar', async () => {
    const src = fresh('sparse-src');
    const file = join(src, 'sparse');
    writeFileSync(file, 'start');
    // Many data segments: old GNU sparse headers need extension blocks past 4.
    const segments = Array.from({ length: 12 }, (_, i) => `dd if=/dev/urandom of=${file} bs=1k count=${i + 1} seek=${300 * (i + 1)} conv=notrunc status=none`);
    execFileSync('sh', ['-c', `${segments.join(' && ')} && truncate -s 8M ${file}`]);
    const expected = readFileSync(file);
    const variants = [['--format=gnu'], ['--format=pax', '--sparse-version=0.0'], ['--format=pax', '--sparse-version=0.1'], ['--format=pax', '--sparse-version=1.0']];
    for (const flags of variants) {
      const tar = execFileSync('tar', ['--sparse', ...flags, '-C', src, '-cf', '-', 'sparse'], { maxBuffer: 1 << 26 });
      expect(tar.length).toBeLessThan(1 << 20);
      const { reader } = await build(tar);
      expect(reader.readFile('sparse').equals(expected)).toBe(true);
      reader.close();
    }
  });

  it('builds a directory index for a large directory', async () => {
    const many: TestEntry[] = [];
    for (let i = 0; i < 3000; i++) many.push({ name: `big/entry-with-a-fairly-long-name-${String(i).padStart(5, '0')}`, content: Buffer.from(String(i)) });
    const { reader, image, entries } = await build(buildTar(many));
    expect(entries.size).toBe(3002);
    expect(entries.get('big')!.size).toBeGreaterThan(65536);
    expect(reader.readFile('big/entry-with-a-fairly-long-name-02999').toString()).toBe('2999');
    const out = execFileSync('unsquashfs', ['-cat', image, 'big/entry-with-a-fairly-long-name-01234'], { encoding: 'utf8' });
    expect(out).toBe('1234');
    reader.close();
  });

  it('reads tar-stream archives (PAX long names, GNU-style names)', async () => {
    const p = pack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    const longName = `x/${'y'.repeat(120)}/z`;
    p.entry({ name: longName, mode: 0o640, uid: 12, gid: 34, mtime: new Date(1_650_000_000_000) }, 'long');
    p.entry({ name: 'sym', type: 'symlink', linkname: `t/${'q'.repeat(150)}` });
    p.finalize();
    await new Promise<void>((resolve) => p.on('end', () => resolve()));
    const { reader, entries } = await build(Buffer.concat(chunks));
    expect(entries.get(longName)).toMatchObject({ mode: 0o640, uid: 12, gid: 34, mtime: 1_650_000_000 });
    expect(reader.readFile(longName).toString()).toBe('long');
    expect(entries.get('sym')!.linkTarget).toBe(`t/${'q'.repeat(150)}`);
    reader.close();
  });
});

describe('edge cases', () => {
  it('turns an empty archive into an image with an empty root', async () => {
    const { entries, reader } = await build(Buffer.alloc(1024), { sourceDateEpoch: 99 });
    expect([...entries.keys()]).toEqual(['']);
    expect(entries.get('')).toMatchObject({ type: 'dir', mode: 0o755, mtime: 99, nlink: 2 });
    reader.close();
  });

  it('takes the root attributes from a "./" entry that comes last', async () => {
    const { entries, reader } = await build(buildTar([{ name: 'a/b', content: Buffer.from('b') }, { name: '.', type: 'dir', mode: 0o700, uid: 5, gid: 6 }]));
    expect(entries.get('')).toMatchObject({ mode: 0o700, uid: 5, gid: 6 });
    expect(entries.get('a')).toMatchObject({ mode: 0o755, uid: 0 });
    reader.close();
  });

  it('keeps non-UTF-8 names byte for byte', async () => {
    const raw = Buffer.from([0x6e, 0xe9, 0xff, 0x2e, 0x74]);
    const tar = buildTar([{ name: 'x', rawName: raw, content: Buffer.from('latin1') }]);
    const image = join(fresh('latin1'), 'x.sqfs');
    await writeSquashfsFromTar(Readable.from([tar]), image);
    const out = execFileSync('unsquashfs', ['-lln', image]);
    expect(out.includes(Buffer.concat([Buffer.from('squashfs-root/'), raw]))).toBe(true);
  });
});

describe('gzip implementations', () => {
  // Real machine code and text, as in a container layer: the Node binary and this test file.
  const sample = Buffer.concat([readFileSync(process.execPath).subarray(1 << 20, (1 << 20) + 100_000), readFileSync(__filename).subarray(0, 31_072)]);

  it('canonical: each block is what the system zlib writes (python3 zlib, level 9, window 15, memLevel 8)', async () => {
    const compressor = await createCompressor('gzip', 9, 1, 'canonical');
    try {
      const script = 'import sys, zlib\nc = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY)\nd = sys.stdin.buffer.read()\nsys.stdout.buffer.write(c.compress(d) + c.flush())';
      for (const data of [sample, sample.subarray(0, 8192)]) {
        const system = execFileSync('python3', ['-c', script], { input: data });
        expect(compressor.compressSync(data)).toEqual(system);
        const block = await compressor.compress(Buffer.from(data), data.length);
        expect(block.compressed).toBe(true);
        expect(block.data).toEqual(system);
      }
    } finally {
      await compressor.close();
    }
  });

  it('node: node:zlib blocks round-trip, larger than canonical ones', async () => {
    const tar = buildTar([{ name: 'bin', content: sample }]);
    const canonical = await build(tar, { blockSize: 131072, gzipImplementation: 'canonical' });
    // node is the default
    const node = await build(tar, { blockSize: 131072 });
    expect(node.reader.readFile('bin')).toEqual(sample);
    expect(canonical.reader.readFile('bin')).toEqual(sample);
    const stored = (l: SquashfsLayout): number => l.dataBlocks + l.fragmentBlocks;
    expect(stored(canonical.reader.layout())).toBeLessThan(stored(node.reader.layout()));
    canonical.reader.close();
    node.reader.close();
  });
});

describe('zstd', () => {
  const sample = Buffer.concat([readFileSync(process.execPath).subarray(2 << 20, (2 << 20) + 100_000), readFileSync(__filename).subarray(0, 31_072)]);

  it('each block is what the system libzstd 1.5.4 writes at level 15 (python3 ctypes; the libzstd tar2sqfs links here)', async () => {
    const script = [
      'import ctypes, sys',
      "lib = ctypes.CDLL('libzstd.so.1')",
      'lib.ZSTD_compress.restype = ctypes.c_size_t',
      'v = lib.ZSTD_versionNumber()',
      'if v != 10504: sys.exit("libzstd %d: this test compares with 1.5.4, the version inside @foxglove/wasm-zstd" % v)',
      'd = sys.stdin.buffer.read()',
      'out = ctypes.create_string_buffer(len(d) + 1024)',
      'n = lib.ZSTD_compress(out, len(d) + 1024, d, len(d), int(sys.argv[1]))',
      'sys.stdout.buffer.write(out.raw[:n])',
    ].join('\n');
    const compressor = await createCompressor('zstd', 15, 1);
    try {
      for (const data of [sample, sample.subarray(0, 8192)]) {
        const system = execFileSync('python3', ['-c', script, '15'], { input: data });
        expect(system.length).toBeGreaterThan(0);
        expect(compressor.compressSync(data)).toEqual(system);
        const block = await compressor.compress(Buffer.from(data), data.length);
        expect(block.compressed).toBe(true);
        expect(block.data).toEqual(system);
      }
    } finally {
      await compressor.close();
    }
  });
});

describe('reproducibility', () => {
  it('writes the same bytes for the same tar, whatever the worker count', async () => {
    const entries = fullTree();
    for (let i = 0; i < 40; i++) entries.push({ name: `r/f${i}`, content: randomBytesSeeded(1000 * i + 17, i) });
    const tar = buildTar(entries);
    const images = [];
    for (const workers of [1, 2, 4]) {
      const path = join(fresh('repro'), 'r.sqfs');
      await writeSquashfsFromTar(Readable.from([tar]), path, { workers, blockSize: BS, compression: 'zstd' });
      images.push(readFileSync(path));
    }
    expect(images[1]!.equals(images[0]!)).toBe(true);
    expect(images[2]!.equals(images[0]!)).toBe(true);
  });
});

describe('bad input', () => {
  const ok = { name: 'ok', content: Buffer.from('ok') };
  const truncated = buildTar([ok, { name: 'big', content: Buffer.alloc(10_000, 1) }]).subarray(0, 3000);
  const badChecksum = buildTar([ok]);
  badChecksum[0] = 0x41;

  it.each<[string, Buffer, string]>([
    ['a .. component', buildTar([ok, { name: 'a/../../etc/passwd', content: Buffer.from('x') }]), 'E_TAR_UNSAFE_PATH'],
    ['a plain ..', buildTar([{ name: '..', type: 'dir' }]), 'E_TAR_UNSAFE_PATH'],
    ['an absolute path', buildTar([{ name: '/etc/passwd', content: Buffer.from('x') }]), 'E_TAR_UNSAFE_PATH'],
    ['a duplicate file', buildTar([ok, { name: './ok', content: Buffer.from('again') }]), 'E_TAR_DUPLICATE'],
    ['a duplicate directory', buildTar([{ name: 'd/', type: 'dir' }, { name: './d', type: 'dir' }]), 'E_TAR_DUPLICATE'],
    ['a file under a file', buildTar([ok, { name: 'ok/inner', content: Buffer.from('x') }]), 'E_TAR_UNSAFE_PATH'],
    ['a root that is not a directory', buildTar([{ name: './', content: Buffer.from('x') }]), 'E_TAR_UNSUPPORTED'],
    ['an xattr outside user/trusted/security', buildTar([{ name: 'f', pax: { 'SCHILY.xattr.system.posix_acl_access': 'x' } }]), 'E_TAR_UNSUPPORTED'],
    ['a name component over 256 bytes', buildTar([{ name: `d/${'n'.repeat(257)}` }]), 'E_TAR_UNSUPPORTED'],
    ['a multi-volume entry', buildTar([{ name: 'm', flag: 'M' }]), 'E_TAR_UNSUPPORTED'],
    ['a hard link to a later path', buildTar([{ name: 'l', type: 'hardlink', linkname: 'ok' }, ok]), 'E_TAR_BAD_LINK'],
    ['a hard link outside', buildTar([ok, { name: 'l', type: 'hardlink', linkname: '../ok' }]), 'E_TAR_BAD_LINK'],
    ['a hard link to a directory', buildTar([{ name: 'd', type: 'dir' }, { name: 'l', type: 'hardlink', linkname: 'd' }]), 'E_TAR_BAD_LINK'],
    ['a stream cut inside data', truncated, 'E_TAR_TRUNCATED'],
    ['a stream without an end marker', buildTar([ok], false), 'E_TAR_TRUNCATED'],
    ['an empty stream', Buffer.alloc(0), 'E_TAR_TRUNCATED'],
    ['a bad header checksum', badChecksum, 'E_TAR_CORRUPT'],
    ['a malformed percent escape in a LIBARCHIVE xattr name', buildTar([{ name: 'f', pax: { 'LIBARCHIVE.xattr.user.%zz': 'eA==' } }]), 'E_TAR_CORRUPT'],
  ])('refuses %s with %s... and leaves no file', async (_what, tar, code) => {
    const out = fresh('bad');
    await expect(writeSquashfsFromTar(Readable.from([tar]), join(out, 'x.sqfs'))).rejects.toMatchObject({ code });
    expect(readdirSync(out)).toEqual([]);
  });

  it.each<[string, SquashfsWriteOptions]>([
    ['a block size not a power of 2', { blockSize: 100_000 }],
    ['a block size too large', { blockSize: 2 << 20 }],
    ['xz', { compression: 'xz' }],
    ['an lz4 level', { compression: 'lz4', level: 9 }],
    ['a gzip level of 12', { level: 12 }],
    ['an unknown gzip implementation', { gzipImplementation: 'fast' as SquashfsWriteOptions['gzipImplementation'] }],
  ])('refuses %s with E_SQUASHFS_OPTIONS', async (_what, options) => {
    const out = fresh('opt');
    await expect(writeSquashfsFromTar(Readable.from([buildTar([ok])]), join(out, 'x.sqfs'), options)).rejects.toMatchObject({
      code: 'E_SQUASHFS_OPTIONS',
    });
    expect(readdirSync(out)).toEqual([]);
  });

  it('destroys the input stream when it refuses the tar', async () => {
    const stream = Readable.from([buildTar([{ name: '../x' }], false), Buffer.alloc(1 << 20)]);
    await expect(writeSquashfsFromTar(stream, join(fresh('destroy'), 'x.sqfs'))).rejects.toMatchObject({ code: 'E_TAR_UNSAFE_PATH' });
    expect(stream.destroyed).toBe(true);
  });

  it('stops inside a large file on abort', async () => {
    const out = fresh('abort-file');
    const controller = new AbortController();
    const head = buildTar([{ name: 'huge', content: Buffer.alloc(64 << 20, 1) }], false).subarray(0, 1024);
    async function* endless(): AsyncGenerator<Buffer> {
      yield head;
      for (let i = 0; ; i++) {
        if (i === 20) controller.abort(new Error('abort inside the file'));
        yield Buffer.alloc(65536, 1);
      }
    }
    await expect(writeSquashfsFromTar(endless(), join(out, 'x.sqfs'), { signal: controller.signal })).rejects.toThrow('abort inside the file');
    expect(readdirSync(out)).toEqual([]);
  });

  it('stops on abort and leaves no file', async () => {
    const out = fresh('abort');
    const controller = new AbortController();
    async function* slow(): AsyncGenerator<Buffer> {
      yield buildTar([ok], false);
      controller.abort(new Error('stop now'));
      yield buildTar([{ name: 'more', content: Buffer.alloc(100) }]);
    }
    await expect(writeSquashfsFromTar(slow(), join(out, 'x.sqfs'), { signal: controller.signal })).rejects.toThrow('stop now');
    expect(readdirSync(out)).toEqual([]);
  });
});
