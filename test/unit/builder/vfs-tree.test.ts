/**
 * Layer stack -> vfs layer dirs, as dockerd 20.10's vfs driver leaves them (DirCopy of the
 * parent, then UnpackLayer): hand-made layers, each rule of src/builder/vfs-tree.ts checked
 * on the tree and on what vfs-writer.ts writes (read back, content included).
 */
import { describe, expect, it } from 'vitest';
import { scanLayer } from '../../../src/builder/layer-scan.js';
import { VfsTree } from '../../../src/builder/vfs-tree.js';
import { writeVfsDir } from '../../../src/builder/vfs-writer.js';
import { tarBuffer, type TreeEntry } from '../../fixtures/tars.js';
import { SDE, chunksOf, readEntries, scan } from './layer.helpers.js';

/** The vfs trees of a stack of layers (base first) and the layers' tars. */
async function stack(layers: TreeEntry[][]): Promise<{ trees: VfsTree[]; tars: Buffer[] }> {
  const trees: VfsTree[] = [];
  const tars: Buffer[] = [];
  for (const entries of layers) {
    const tar = await tarBuffer(entries);
    const tree = trees.length ? trees.at(-1)!.child() : VfsTree.base(SDE);
    await scanLayer(chunksOf(tar), { flavour: 'tar-split-0.11.1', sourceDateEpoch: SDE }, tree);
    tree.finish();
    trees.push(tree);
    tars.push(tar);
  }
  return { trees, tars };
}

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');

describe('vfs layer dirs (DirCopy + UnpackLayer)', () => {
  it('copies the parent tree with only security.capability of its xattrs, keeping modes, owners, times and regular-file hard links', async () => {
    const { trees } = await stack([
      [
        { type: 'file', path: 'cap', mode: 0o4755, uid: 7, gid: 8, mtime: 1234, xattrs: { 'security.capability': CAP, 'user.k': 'v' }, content: Buffer.from('x') },
        // A hard link's header applies its metadata to the inode (createTarFile on the link), its
        // Lchown drops security.capability: the header carries the xattrs again.
        { type: 'hardlink', path: 'cap2', target: 'cap', mode: 0o4755, uid: 7, gid: 8, mtime: 1234, xattrs: { 'security.capability': CAP } },
      ],
      [{ type: 'file', path: 'new', content: Buffer.from('y') }],
    ]);
    const [base, top] = [trees[0]!, trees[1]!];
    expect(base.nodes.get('cap')!.xattrs.size).toBe(2);
    expect(top.nodes.get('cap')).toMatchObject({ mode: 0o4755, uid: 7, gid: 8, mtime: 1234, layer: 0 });
    expect([...top.nodes.get('cap')!.xattrs.keys()]).toEqual(['security.capability']);
    expect(top.nodes.get('cap')).toBe(top.nodes.get('cap2'));
    expect(top.nodes.get('cap')).not.toBe(base.nodes.get('cap'));
  });

  it('removes what a .wh. whiteout names (subtree too), silently when it is absent, and writes no marker', async () => {
    const { trees } = await stack([
      [{ type: 'dir', path: 'd' }, { type: 'file', path: 'd/f' }, { type: 'dir', path: 'e' }, { type: 'file', path: 'e/g' }],
      [{ type: 'file', path: 'd/.wh.f' }, { type: 'file', path: '.wh.e' }, { type: 'file', path: '.wh.absent' }],
    ]);
    expect([...trees[1]!.nodes.keys()].sort()).toEqual(['', 'd']);
    // d's content changed without an entry for d: the bake's time.
    expect(trees[1]!.nodes.get('d')!.mtime).toBe(SDE);
  });

  it('clears an opaque dir of what earlier layers put there, keeping what this layer unpacked before the marker', async () => {
    const { trees } = await stack([
      [{ type: 'dir', path: 'o' }, { type: 'file', path: 'o/old' }, { type: 'dir', path: 'o/sub' }, { type: 'file', path: 'o/sub/old' }],
      [{ type: 'dir', path: 'o', mtime: 99 }, { type: 'dir', path: 'o/sub' }, { type: 'file', path: 'o/early' }, { type: 'file', path: 'o/.wh..wh..opq' }, { type: 'file', path: 'o/late' }],
    ]);
    expect([...trees[1]!.nodes.keys()].filter((p) => p.startsWith('o')).sort()).toEqual(['o', 'o/early', 'o/late', 'o/sub']);
    expect(trees[1]!.nodes.get('o')!.mtime).toBe(99);
  });

  it('makes missing parents 0600 root:root, applies the root entry (its mtime is the bake\'s), and counts every header size as the layer size', async () => {
    const tar = await tarBuffer([{ type: 'file', path: 'a/b/c', content: Buffer.from('12345') }, { type: 'file', path: '.wh.x', content: Buffer.from('ab') }], { root: { mode: 0o700, uid: 3, mtime: 77 } });
    const tree = VfsTree.base(SDE);
    const scanned = await scanLayer(chunksOf(tar), { flavour: 'tar-split-0.11.1', sourceDateEpoch: SDE }, tree);
    tree.finish();
    expect(tree.nodes.get('a')).toMatchObject({ type: 'dir', mode: 0o600, uid: 0, gid: 0, mtime: SDE });
    expect(tree.nodes.get('')).toMatchObject({ mode: 0o700, uid: 3, mtime: SDE });
    expect(scanned.size).toBe(7);
  });

  it('writes each dir in name order with every file content from the blob that holds it, hard links as links', async () => {
    const { trees, tars } = await stack([
      [{ type: 'file', path: 'z', content: Buffer.from('from base') }, { type: 'hardlink', path: 'y', target: 'z' }],
      [{ type: 'file', path: 'a', content: Buffer.from('from top') }, { type: 'symlink', path: 'l', target: 'z' }],
    ]);
    async function* withEnd(): AsyncGenerator<Buffer> {
      yield* writeVfsDir(trees[1]!, tars.map((t) => () => chunksOf(t)), 'vfs/dir/x');
      yield Buffer.alloc(1024);
    }
    const read = await readEntries(withEnd());
    expect(read.map((r) => [r.entry.name, r.entry.type, r.content.toString()])).toEqual([
      ['vfs/dir/x/', 'dir', ''],
      ['vfs/dir/x/a', 'file', 'from top'],
      ['vfs/dir/x/l', 'symlink', ''],
      ['vfs/dir/x/y', 'file', 'from base'],
      ['vfs/dir/x/z', 'hardlink', ''],
    ]);
  });

  it.each<[string, TreeEntry[]]>([
    ['a file under a symlink', [{ type: 'symlink', path: 's', target: 'd' }, { type: 'file', path: 's/f' }]],
    ['an AUFS hard-link source', [{ type: 'file', path: '.wh..wh.plnk/123.456' }]],
    ['a hard link leaving the root', [{ type: 'hardlink', path: 'h', target: '../etc/passwd' }]],
  ])('refuses %s', async (_what, entries) => {
    await expect(stack([entries])).rejects.toMatchObject({ code: expect.stringMatching(/^E_LAYER_/) });
  });

  it('refuses a hard link entry with a non-zero size (overlay2 and vfs alike): Go reads no data after it', async () => {
    const tar = await tarBuffer([{ type: 'file', path: 't', content: Buffer.from('x') }, { type: 'hardlink', path: 'h', target: 't' }]);
    // Patch the hard link header's size field to 1 (and its checksum).
    const at = tar.indexOf(Buffer.from('h\0'));
    tar.write('00000000001\0', at + 124, 'latin1');
    tar.fill(' ', at + 148, at + 156);
    let sum = 0;
    for (let i = at; i < at + 512; i++) sum += tar[i]!;
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
    await expect(scan(tar)).rejects.toMatchObject({ code: 'E_LAYER_UNSUPPORTED', message: expect.stringMatching(/hardlink with a non-zero size/) });
  });
});
