/**
 * Layer -> overlay2 diff tree, as dockerd's untar leaves it: hand-made layers, each rule
 * of src/builder/diff-tree.ts checked on what the builder writes (the diff entries read back).
 */
import { describe, expect, it } from 'vitest';
import { tarBuffer, type TreeEntry } from '../../fixtures/tars.js';
import { SDE, diffEntries, scan, type ReadEntry } from './layer.helpers.js';

async function diffOf(entries: TreeEntry[], options: Parameters<typeof tarBuffer>[1] = {}): Promise<Map<string, ReadEntry>> {
  const layer = await tarBuffer(entries, options);
  const read = await diffEntries(layer, await scan(layer));
  return new Map(read.map((r) => [r.entry.name.replace(/^diff\//, '').replace(/\/$/, ''), r]));
}

describe('layer conversion (moby untar, overlay whiteouts)', () => {
  it('turns a .wh. whiteout into a char 0/0 device, mode 0000, with the header owner, and writes no .wh. file', async () => {
    const diff = await diffOf([{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/.wh.passwd', uid: 12, gid: 34 }]);
    const wh = diff.get('etc/passwd')!.entry;
    expect({ type: wh.type, major: wh.devmajor, minor: wh.devminor, mode: wh.mode, uid: wh.uid, gid: wh.gid, mtime: wh.mtime }).toEqual({
      type: 'chardev', major: 0, minor: 0, mode: 0, uid: 12, gid: 34, mtime: SDE,
    });
    expect(diff.has('etc/.wh.passwd')).toBe(false);
  });

  it('turns .wh..wh..opq into trusted.overlay.opaque=y on its directory, keeping the directory metadata', async () => {
    const diff = await diffOf([
      { type: 'dir', path: 'var', mode: 0o750, uid: 5, gid: 6, mtime: 1234 },
      { type: 'file', path: 'var/.wh..wh..opq' },
      { type: 'file', path: 'var/new', content: Buffer.from('x') },
    ]);
    const dir = diff.get('var')!.entry;
    expect(dir.xattrs.get('trusted.overlay.opaque')?.toString()).toBe('y');
    expect({ mode: dir.mode, uid: dir.uid, gid: dir.gid, mtime: dir.mtime }).toEqual({ mode: 0o750, uid: 5, gid: 6, mtime: 1234 });
    expect([...diff.keys()].some((k) => k.includes('.wh.'))).toBe(false);
  });

  it('creates implied parent directories 0755 root:root, and merges a later entry for the same directory', async () => {
    const diff = await diffOf([
      { type: 'file', path: 'a/b/c', content: Buffer.from('c'), uid: 9 },
      { type: 'dir', path: 'a/b', mode: 0o700, uid: 7, gid: 8, mtime: 42, xattrs: { 'user.k': 'v' } },
    ]);
    const a = diff.get('a')!.entry;
    expect({ type: a.type, mode: a.mode, uid: a.uid, gid: a.gid, mtime: a.mtime }).toEqual({ type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: SDE });
    const b = diff.get('a/b')!.entry;
    expect({ mode: b.mode, uid: b.uid, gid: b.gid, mtime: b.mtime, x: b.xattrs.get('user.k')?.toString() }).toEqual({ mode: 0o700, uid: 7, gid: 8, mtime: 42, x: 'v' });
    expect(diff.get('a/b/c')!.content.toString()).toBe('c');
  });

  it('carries owners, setuid modes, devices, fifos, symlinks and xattrs (security.capability, trusted.*)', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const diff = await diffOf([
      { type: 'file', path: 'bin/ping', mode: 0o4755, uid: 0, gid: 0, content: Buffer.from('ping'), xattrs: { 'security.capability': cap } },
      { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
      { type: 'blockdev', path: 'dev/sda', major: 8, minor: 0, mode: 0o660, gid: 6 },
      { type: 'fifo', path: 'run/pipe', mode: 0o600, uid: 1000 },
      { type: 'symlink', path: 'bin/sh', target: '/bin/busybox', xattrs: { 'trusted.t': Buffer.from([0, 1, 255]) } },
    ]);
    const ping = diff.get('bin/ping')!.entry;
    expect(ping.mode).toBe(0o4755);
    expect(ping.xattrs.get('security.capability')).toEqual(cap);
    expect(diff.get('dev/null')!.entry).toMatchObject({ type: 'chardev', devmajor: 1, devminor: 3, mode: 0o666 });
    expect(diff.get('dev/sda')!.entry).toMatchObject({ type: 'blockdev', devmajor: 8, devminor: 0, gid: 6 });
    expect(diff.get('run/pipe')!.entry).toMatchObject({ type: 'fifo', mode: 0o600, uid: 1000 });
    const sh = diff.get('bin/sh')!.entry;
    expect(sh).toMatchObject({ type: 'symlink', linkname: '/bin/busybox', mode: 0o777 });
    expect(sh.xattrs.get('trusted.t')).toEqual(Buffer.from([0, 1, 255]));
  });

  it('keeps hard links as one inode: the content once, the other names as links, the link header applied to the inode', async () => {
    const diff = await diffOf([
      { type: 'file', path: 'z/orig', content: Buffer.from('shared'), mode: 0o644, mtime: 10 },
      { type: 'hardlink', path: 'a/link', target: 'z/orig', mode: 0o600, uid: 3, gid: 4, mtime: 20 },
    ]);
    // The first name in the layer holds the content; the other is a hard link to it.
    const holder = diff.get('z/orig')!;
    expect(holder.entry).toMatchObject({ type: 'file', mode: 0o600, uid: 3, gid: 4, mtime: 20 });
    expect(holder.content.toString()).toBe('shared');
    expect(diff.get('a/link')!.entry).toMatchObject({ type: 'hardlink', linkname: 'diff/z/orig' });
  });

  it('drops the inode\'s security.capability at a hard link (the engine\'s Lchown on it), keeping the link header\'s xattrs', async () => {
    const diff = await diffOf([
      { type: 'file', path: 'orig', content: Buffer.from('x'), xattrs: { 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'), 'user.a': 'kept' } },
      { type: 'hardlink', path: 'link', target: 'orig', xattrs: { 'user.b': 'added' } },
    ]);
    expect([...diff.get('orig')!.entry.xattrs.keys()].sort()).toEqual(['user.a', 'user.b']);
  });

  it('records the size the engine records: non-directories, each inode once, symlinks by target length', async () => {
    const layer = await tarBuffer([
      { type: 'file', path: 'f', content: Buffer.alloc(1000, 1) },
      { type: 'hardlink', path: 'g', target: 'f' },
      { type: 'symlink', path: 's', target: 'twelve-bytes' },
      { type: 'chardev', path: 'c', major: 1, minor: 1 },
      { type: 'dir', path: 'd' },
    ]);
    expect((await scan(layer)).size).toBe(1012);
  });

  it('writes the diff in the layer order, a missing parent just before its first child', async () => {
    const layer = await tarBuffer([
      { type: 'file', path: 'b/x/1', content: Buffer.from('1') },
      { type: 'dir', path: 'a' },
      { type: 'dir', path: 'b/x', mode: 0o711 },
      { type: 'file', path: 'a/.wh.old' },
    ]);
    const names = (await diffEntries(layer, await scan(layer))).map((r) => r.entry.name);
    expect(names).toEqual(['diff/b/', 'diff/b/x/', 'diff/b/x/1', 'diff/a/', 'diff/a/old']);
  });

  it('skips the root entry and replaces a whiteout device by a later real entry of that name', async () => {
    const diff = await diffOf([{ type: 'file', path: '.wh.x' }, { type: 'file', path: 'x', content: Buffer.from('back') }], { root: { mode: 0o700 } });
    expect(diff.get('x')!.entry.type).toBe('file');
    expect(diff.get('x')!.content.toString()).toBe('back');
    expect([...diff.keys()]).toEqual(['x']);
  });

  it.each<[string, TreeEntry[], string]>([
    ['the same name twice', [{ type: 'file', path: 'a' }, { type: 'file', path: 'a' }], 'E_LAYER_DUPLICATE'],
    ['a name and its ./ twin', [{ type: 'file', path: 'a' }, { type: 'dir', path: './a' }], 'E_LAYER_DUPLICATE'],
    ['a whiteout of a name the layer created', [{ type: 'file', path: 'a' }, { type: 'file', path: '.wh.a' }], 'E_LAYER_INVALID'],
    ['a hard link to a name the layer lacks', [{ type: 'hardlink', path: 'a', target: 'missing' }], 'E_LAYER_INVALID'],
    ['a name leaving the root', [{ type: 'file', path: '../evil' }], 'E_LAYER_INVALID'],
    ['an entry under a file', [{ type: 'file', path: 'a' }, { type: 'file', path: 'a/b' }], 'E_LAYER_INVALID'],
  ])('refuses %s, as the engine does', async (_what, entries, code) => {
    const layer = await tarBuffer(entries);
    await expect(scan(layer)).rejects.toMatchObject({ code });
  });
});
