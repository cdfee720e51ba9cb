/**
 * Tars written by GNU tar (not by ctrbake's fixtures) from a real directory: the kernel
 * mount of each backend's image equals the source directory. Covers what GNU tar emits
 * and the fixtures do not: sparse files (PAX 1.0 and old GNU), a hard link to a symlink,
 * and an empty archive. (GNU tar does not record hard links between devices or fifos.)
 */
import { execFile } from 'node:child_process';
import { link, lutimes, mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSquashfs, type SquashfsBackendName } from '../../src/squashfs/index.js';
import { diffTrees, Mounts, sqfstarRootMtimeIsNow, treeFromDir, withoutRootMtime } from './squashfs-oracle.js';

const exec = promisify(execFile);
const SDE = 1_600_000_000;
const BACKENDS: SquashfsBackendName[] = ['builtin', 'tar2sqfs', 'sqfstar'];

const mounts = new Mounts();
let work: string;
let src: string;
let srcTree: Awaited<ReturnType<typeof treeFromDir>>;
let sqfstarRootIsNow = false;

async function gnuTar(out: string, flags: string[]): Promise<void> {
  await exec('tar', [...flags, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', src, '-cf', out, '.']);
}

beforeAll(async () => {
  sqfstarRootIsNow = await sqfstarRootMtimeIsNow();
  work = await mounts.tempDir();
  src = join(work, 'src');
  await mkdir(join(src, 'dir/sub'), { recursive: true });
  await writeFile(join(src, 'dir/file'), 'file content\n');
  await exec('setfattr', ['-n', 'user.note', '-v', 'hello', join(src, 'dir/file')]);
  await exec('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(src, 'dir/sub')]);
  await exec('mknod', [join(src, 'dir/null'), 'c', '1', '3']);
  await exec('mkfifo', [join(src, 'dir/fifo')]);
  await symlink('file', join(src, 'dir/sym'));
  await link(join(src, 'dir/sym'), join(src, 'dir/sym-link'));
  // Sparse: holes at the start, middle and end, and data straddling a 128 KiB block.
  const fh = await open(join(src, 'sparse'), 'w');
  await fh.write(Buffer.alloc(5000, 'a'), 0, 5000, 1024 * 1024);
  await fh.write(Buffer.alloc(200_000, 'b'), 0, 200_000, 3 * 131072 - 1000);
  await fh.truncate(8 * 1024 * 1024);
  await fh.close();
  await exec('chown', ['-h', '1234:5678', join(src, 'dir/file')]);
  await exec('chmod', ['4750', join(src, 'dir/file')]);
  for (const p of ['dir/file', 'dir/null', 'dir/fifo', 'dir/sym', 'sparse', 'dir/sub', 'dir', '.']) await lutimes(join(src, p), 1_500_000_000, 1_500_000_000);
  srcTree = await treeFromDir(src);
});
afterAll(async () => {
  await mounts.releaseAll();
});

const FORMATS: { name: string; flags: string[]; sparse: boolean }[] = [
  { name: 'pax', flags: ['--format=pax'], sparse: false },
  { name: 'gnu', flags: ['--format=gnu'], sparse: false },
  { name: 'pax --sparse (PAX 1.0 sparse)', flags: ['--format=pax', '--sparse'], sparse: true },
  { name: 'gnu --sparse (old GNU sparse)', flags: ['--format=gnu', '--sparse'], sparse: true },
];

describe.each(FORMATS)('GNU tar $name', ({ name, flags, sparse }) => {
  it.each(BACKENDS)('%s: the mount equals the source directory', async (backend) => {
    const tar = join(work, `${name.replace(/\W+/g, '_')}.tar`);
    await gnuTar(tar, flags);
    const out = join(work, `${backend}-${name.replace(/\W+/g, '_')}.sqfs`);
    if (sparse && backend !== 'builtin') {
      await expect(createSquashfs({ input: tar, outPath: out, backend, sourceDateEpoch: SDE })).rejects.toMatchObject({ code: 'E_TAR_UNSUPPORTED', message: expect.stringMatching(/sparse/) });
      return;
    }
    await createSquashfs({ input: tar, outPath: out, backend, sourceDateEpoch: SDE });
    const actual = await treeFromDir(await mounts.mountSquashfs(out));
    const rootIsNow = backend === 'sqfstar' && sqfstarRootIsNow;
    expect(diffTrees(rootIsNow ? withoutRootMtime(actual) : actual, rootIsNow ? withoutRootMtime(srcTree) : srcTree)).toEqual([]);
  });
});

it.each(BACKENDS)('%s: an empty archive gives an image with an empty root', async (backend) => {
  const empty = join(work, 'empty');
  await mkdir(empty, { recursive: true });
  const tar = join(work, 'empty.tar');
  await exec('tar', ['--format=pax', '-cf', tar, '-T', '/dev/null']);
  const out = join(work, `${backend}-empty.sqfs`);
  await createSquashfs({ input: tar, outPath: out, backend, sourceDateEpoch: SDE });
  const tree = await treeFromDir(await mounts.mountSquashfs(out));
  expect(Object.keys(tree)).toEqual(['/']);
  expect(tree['/']).toMatchObject({ type: 'dir', mode: 0o755, uid: 0, gid: 0 });
  if (!(backend === 'sqfstar' && sqfstarRootIsNow)) expect(tree['/'].mtime).toBe(SDE);
});
