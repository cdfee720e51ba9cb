/**
 * A SquashFS image as an overlayfs lower layer: a layer with whiteouts (char 0/0) and an
 * opaque directory (trusted.overlay.opaque=y) over a base layer. The merged view through
 * the images (every backend) must equal the merged view through the same layers written
 * out as plain directories (the kernel is the oracle for overlay semantics), and writes
 * through the overlay land in the upper directory only.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, link, lutimes, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSquashfs, type SquashfsBackendName } from '../../src/squashfs/index.js';
import { contentChunks, DEFAULT_MTIME, tarStream, type TreeEntry } from '../fixtures/tars.js';
import { diffTrees, Mounts, treeFromDir, withoutRootMtime } from './squashfs-oracle.js';

const exec = promisify(execFile);
const SDE = 1_600_000_000;

const BASE: TreeEntry[] = [
  { type: 'dir', path: 'etc' },
  { type: 'file', path: 'etc/keep', content: Buffer.from('kept from base') },
  { type: 'file', path: 'etc/removed', content: Buffer.from('whited out by the layer') },
  { type: 'dir', path: 'opaque' },
  { type: 'file', path: 'opaque/hidden', content: Buffer.from('hidden by the opaque dir') },
  { type: 'dir', path: 'opaque/sub' },
  { type: 'file', path: 'opaque/sub/also-hidden', content: Buffer.from('also hidden') },
  { type: 'dir', path: 'gone-dir' },
  { type: 'file', path: 'gone-dir/x', content: Buffer.from('under a whited-out dir') },
  { type: 'dir', path: 'merged' },
  { type: 'file', path: 'merged/from-base', content: Buffer.from('base') },
];

const LAYER: TreeEntry[] = [
  { type: 'dir', path: 'etc' },
  { type: 'chardev', path: 'etc/removed', major: 0, minor: 0, mode: 0o000 },
  { type: 'file', path: 'etc/added', content: Buffer.from('added by the layer'), uid: 1000, gid: 1000 },
  { type: 'dir', path: 'opaque', xattrs: { 'trusted.overlay.opaque': 'y' } },
  { type: 'file', path: 'opaque/visible', content: Buffer.from('only this is visible') },
  { type: 'chardev', path: 'gone-dir', major: 0, minor: 0, mode: 0o000 },
  { type: 'dir', path: 'merged' },
  { type: 'file', path: 'merged/from-layer', content: Buffer.from('layer'), mode: 0o4755 },
];

/** Writes entries as a real directory tree (as root: owners, devices, trusted xattrs). */
async function materialize(root: string, entries: TreeEntry[]): Promise<void> {
  await mkdir(root, { recursive: true });
  const dirs: [string, number][] = [];
  for (const e of entries) {
    const p = join(root, e.path);
    switch (e.type) {
      case 'dir':
        await mkdir(p, { recursive: true });
        break;
      case 'file':
        await writeFile(p, Buffer.concat([...contentChunks(e.content)]));
        break;
      case 'symlink':
        await symlink(e.target, p);
        break;
      case 'hardlink':
        await link(join(root, e.target), p);
        continue;
      case 'chardev':
      case 'blockdev':
        await exec('mknod', [p, e.type === 'chardev' ? 'c' : 'b', String(e.major), String(e.minor)]);
        break;
      case 'fifo':
        await exec('mkfifo', [p]);
        break;
    }
    await chown(p, e.uid ?? 0, e.gid ?? 0).catch(() => exec('chown', ['-h', `${e.uid ?? 0}:${e.gid ?? 0}`, p]));
    if (e.type !== 'symlink') await chmod(p, e.mode ?? (e.type === 'dir' ? 0o755 : 0o644));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) await exec('setfattr', ['-h', '-n', k, '-v', `0x${Buffer.from(v).toString('hex')}`, p]);
    if (e.type === 'dir') dirs.push([p, e.mtime ?? DEFAULT_MTIME]);
    else await lutimes(p, e.mtime ?? DEFAULT_MTIME, e.mtime ?? DEFAULT_MTIME);
  }
  // Directory mtimes last (writing inside a directory changes its mtime).
  for (const [p, t] of dirs.reverse()) await lutimes(p, t, t);
  await lutimes(root, SDE, SDE);
}

const mounts = new Mounts();
let work: string;
let reference: Awaited<ReturnType<typeof treeFromDir>>;

beforeAll(async () => {
  work = await mounts.tempDir();
  await materialize(join(work, 'plain-base'), BASE);
  await materialize(join(work, 'plain-layer'), LAYER);
  const { merged } = await mounts.mountOverlay(`${join(work, 'plain-layer')}:${join(work, 'plain-base')}`);
  reference = await treeFromDir(merged);
});
afterAll(async () => {
  await mounts.releaseAll();
});

describe('SquashFS images as overlayfs lower layers', () => {
  it('the reference overlay over plain directories hides what the layer whites out', () => {
    expect(reference['/etc/removed']).toBeUndefined();
    expect(reference['/gone-dir']).toBeUndefined();
    expect(Object.keys(reference).filter((p) => p.startsWith('/opaque'))).toEqual(['/opaque', '/opaque/visible']);
    expect(reference['/merged/from-base']).toBeDefined();
    expect(reference['/merged/from-layer']).toBeDefined();
  });

  it.each(['builtin', 'tar2sqfs', 'sqfstar'] as SquashfsBackendName[])('%s: the overlay over the images equals the overlay over plain directories; writes go to the upper only', async (backend) => {
    const base = join(work, `${backend}-base.sqfs`);
    const layer = join(work, `${backend}-layer.sqfs`);
    await createSquashfs({ input: tarStream(BASE), outPath: base, backend, sourceDateEpoch: SDE });
    await createSquashfs({ input: tarStream(LAYER), outPath: layer, backend, sourceDateEpoch: SDE });
    const baseMnt = await mounts.mountSquashfs(base);
    const layerMnt = await mounts.mountSquashfs(layer);
    const layerTree = await treeFromDir(layerMnt);
    expect(layerTree['/etc/removed']).toMatchObject({ type: 'chardev', rdev: [0, 0] });
    expect(layerTree['/opaque'].xattrs).toEqual({ 'trusted.overlay.opaque': '79' });
    const { merged, upper } = await mounts.mountOverlay(`${layerMnt}:${baseMnt}`);
    const actual = await treeFromDir(merged);
    // The merged root's mtime is the (fresh) upper directory's, in both overlays.
    expect(diffTrees(withoutRootMtime(actual), withoutRootMtime(reference))).toEqual([]);
    await writeFile(join(merged, 'etc/new'), 'written on the device');
    await rm(join(merged, 'etc/keep'));
    expect((await readdir(join(upper, 'etc'))).sort()).toEqual(['keep', 'new']);
    expect(await treeFromDir(layerMnt)).toEqual(layerTree);
  });
});
