/**
 * The reader against images written by tar2sqfs (squashfs-tools-ng), so it is checked
 * against a writer that is not ours.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SquashfsReader } from '../../../devkit/squashfs-reader.js';
import { buildTar, randomBytesSeeded } from './tar-builder.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctrbake-sqfs-reader-'));
  try {
    execFileSync('sh', ['-c', 'command -v tar2sqfs']);
  } catch {
    throw new Error('tar2sqfs is missing: install squashfs-tools-ng (scripts/install-deps.sh)');
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const big = randomBytesSeeded(300_000, 11);
const tar = buildTar([
  { name: 'd/', type: 'dir', mode: 0o750, uid: 3, gid: 4, mtime: 1_000_000 },
  { name: 'd/big', content: big, pax: { 'SCHILY.xattr.user.k': 'value', 'SCHILY.xattr.trusted.t': Buffer.alloc(40, 7) } },
  { name: 'd/small', content: Buffer.from('small'), mode: 0o2755 },
  { name: 'd/hard', type: 'hardlink', linkname: 'd/small' },
  { name: 'd/sym', type: 'symlink', linkname: 'small' },
  { name: 'd/tty', type: 'chardev', devmajor: 4, devminor: 1 },
  { name: 'd/p', type: 'fifo' },
  { name: 'zeros', content: Buffer.alloc(400_000) },
]);

describe.each(['gzip', 'zstd', 'lz4'])('reading a tar2sqfs %s image', (compression) => {
  let reader: SquashfsReader;
  beforeAll(async () => {
    const tarPath = join(dir, `in-${compression}.tar`);
    const image = join(dir, `${compression}.sqfs`);
    writeFileSync(tarPath, tar);
    execFileSync('sh', ['-c', `tar2sqfs -q -f -c ${compression} -b 65536 ${image} < ${tarPath}`]);
    reader = await SquashfsReader.open(image);
  });
  afterAll(() => reader.close());

  it('lists entries with their metadata', () => {
    const entries = new Map(reader.list().map((e) => [e.path, e]));
    expect(entries.get('d')).toMatchObject({ type: 'dir', mode: 0o750, uid: 3, gid: 4, mtime: 1_000_000 });
    expect(entries.get('d/big')).toMatchObject({ type: 'file', size: 300_000 });
    expect(entries.get('d/big')!.xattrs).toEqual({ 'user.k': Buffer.from('value'), 'trusted.t': Buffer.alloc(40, 7) });
    expect(entries.get('d/small')).toMatchObject({ type: 'file', mode: 0o2755, nlink: 2 });
    expect(entries.get('d/hard')!.inodeNumber).toBe(entries.get('d/small')!.inodeNumber);
    expect(entries.get('d/sym')).toMatchObject({ type: 'symlink', linkTarget: 'small' });
    expect(entries.get('d/tty')).toMatchObject({ type: 'chardev', rdev: { major: 4, minor: 1 } });
    expect(entries.get('d/p')).toMatchObject({ type: 'fifo' });
    expect(reader.superblock.blockSize).toBe(65536);
  });

  it('reads file content block by block', () => {
    expect(reader.readFile('d/big').equals(big)).toBe(true);
    expect(reader.readFile('d/hard').toString()).toBe('small');
    const blocks = [...reader.fileBlocks('zeros')];
    expect(blocks.length).toBe(7);
    expect(Buffer.concat(blocks).equals(Buffer.alloc(400_000))).toBe(true);
  });
});
