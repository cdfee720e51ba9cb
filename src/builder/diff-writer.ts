/**
 * Pass 2 over one layer: its unpacked diff tree (DiffTree from pass 1) as tar entries
 * under a prefix (e.g. "overlay2/<id>/diff/"), content streamed from the layer as it goes
 * by, never buffered. Order, deterministic for a given layer:
 *   1. directories, sorted by name (parents first)
 *   2. symlinks, devices and fifos, sorted
 *   3. regular files in the layer's order (each inode once, under its smallest live path)
 *   4. the other paths of multiply-linked inodes, sorted, as hard links to that path
 */
import { InputError } from '../errors.js';
import type { DiffTree, Inode } from './diff-tree.js';
import { TarInput, encodeHeader, padding, type CanonicalEntry } from './tar-codec.js';

const MAX_MTIME = 2 ** 32 - 1;

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function canonical(path: string, node: Inode, overrides: Partial<CanonicalEntry> = {}): CanonicalEntry {
  return {
    path,
    type: node.type,
    mode: node.mode,
    uid: node.uid,
    gid: node.gid,
    size: node.type === 'file' ? node.size : 0,
    linkname: node.linkname,
    devmajor: node.devmajor,
    devminor: node.devminor,
    xattrs: node.xattrs,
    mtime: Math.min(Math.max(node.mtime, 0), MAX_MTIME),
    ...overrides,
  };
}

/** Inode -> its live paths, sorted. */
function pathsByInode(tree: DiffTree): Map<Inode, string[]> {
  const out = new Map<Inode, string[]>();
  for (const path of [...tree.nodes.keys()].sort(byName)) {
    const node = tree.nodes.get(path)!;
    const list = out.get(node);
    if (list) list.push(path);
    else out.set(node, [path]);
  }
  return out;
}

export async function* writeDiffEntries(tree: DiffTree, layer: AsyncIterable<Uint8Array>, prefix: string): AsyncGenerator<Buffer> {
  const byInode = pathsByInode(tree);
  const holders = [...byInode].map(([node, paths]) => ({ node, path: paths[0]! }));
  for (const { node, path } of holders.filter((h) => h.node.type === 'dir').sort((a, b) => byName(a.path, b.path))) {
    yield encodeHeader(canonical(prefix + path, node));
  }
  for (const { node, path } of holders.filter((h) => h.node.type !== 'dir' && h.node.type !== 'file').sort((a, b) => byName(a.path, b.path))) {
    yield encodeHeader(canonical(prefix + path, node));
  }
  const bySource = new Map<number, { node: Inode; path: string }>();
  for (const holder of holders) if (holder.node.source !== undefined) bySource.set(holder.node.source, holder);
  if (bySource.size > 0) {
    const tar = new TarInput(layer);
    try {
      for (let index = 0; bySource.size > 0; index++) {
        const entry = await tar.next();
        if (entry === null) throw new InputError('E_LAYER_CHANGED', 'the layer ended early on its second read: the cache blob changed during the bake; run ctrbake fetch again');
        const holder = bySource.get(index);
        if (holder === undefined) continue;
        bySource.delete(index);
        if (entry.size !== holder.node.size) throw new InputError('E_LAYER_CHANGED', 'the layer differs on its second read: the cache blob changed during the bake; run ctrbake fetch again');
        yield encodeHeader(canonical(prefix + holder.path, holder.node));
        for await (const piece of tar.data()) yield Buffer.from(piece);
        yield padding(holder.node.size);
      }
    } finally {
      await tar.close();
    }
  }
  const links: Array<{ path: string; target: string; node: Inode }> = [];
  for (const [node, paths] of byInode) for (const path of paths.slice(1)) links.push({ path, target: paths[0]!, node });
  for (const link of links.sort((a, b) => byName(a.path, b.path))) {
    yield encodeHeader(canonical(prefix + link.path, link.node, { type: 'hardlink', linkname: prefix + link.target, size: 0 }));
  }
}
