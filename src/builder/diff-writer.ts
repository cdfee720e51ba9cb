/**
 * Pass 2 over one layer: its unpacked diff tree (DiffTree from pass 1) as tar entries
 * under a prefix (e.g. "overlay2/<id>/diff/"), content streamed from the layer as it goes
 * by, never buffered. Entries come in the layer's own order, each path once, with its
 * final metadata, where the entry that created it was (missing parents just before their
 * first child): a depth-first layer stays depth-first, so GNU tar extracting store.tar sets
 * directory mtimes after their content, as it does for the engine path's sorted tar. The
 * second and later names of an inode are hard links to the first.
 */
import { InputError } from '../errors.js';
import type { Inode } from './diff-tree.js';
import { DiffTree, parentOf } from './diff-tree.js';
import { TarInput, encodeHeader, padding, type TarHeader } from '../formats/tar/index.js';

const MAX_MTIME = 2 ** 32 - 1;

/** A store tar entry of a diff node; a directory's name ends in "/", as GNU tar writes it. */
export function canonical(path: string, node: Inode, overrides: Partial<TarHeader> = {}): TarHeader {
  const type = overrides.type ?? node.type;
  return {
    path: type === 'dir' && !path.endsWith('/') ? `${path}/` : path,
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

export async function* writeDiffEntries(tree: DiffTree, layer: AsyncIterable<Uint8Array>, prefix: string): AsyncGenerator<Buffer> {
  const emitted = new Set<string>();
  const firstPath = new Map<Inode, string>();
  function* ancestors(path: string): Generator<Buffer> {
    const missing: string[] = [];
    for (let at = parentOf(path); at !== '' && !emitted.has(at); at = parentOf(at)) missing.unshift(at);
    for (const dir of missing) {
      emitted.add(dir);
      yield encodeHeader(canonical(prefix + dir, tree.nodes.get(dir)!));
    }
  }
  const tar = new TarInput(layer);
  try {
    for (let index = 0; ; index++) {
      const entry = await tar.next();
      if (entry === null) break;
      const { path, kind } = DiffTree.pathOf(entry);
      if (kind === 'root') continue;
      // An opaque marker may be what implied its directory: that directory goes here.
      if (kind === 'opaque') yield* ancestors(path);
      if (kind === 'opaque' || tree.origins.get(path) !== index) continue;
      const node = tree.nodes.get(path)!;
      yield* ancestors(path);
      emitted.add(path);
      const first = firstPath.get(node);
      if (first !== undefined) {
        yield encodeHeader(canonical(prefix + path, node, { type: 'hardlink', linkname: prefix + first, size: 0 }));
        continue;
      }
      firstPath.set(node, path);
      if (node.type !== 'file') {
        yield encodeHeader(canonical(prefix + path, node));
        continue;
      }
      if (node.source !== index) {
        throw new InputError('E_LAYER_UNSUPPORTED', `layer entry ${JSON.stringify(entry.name)}: a hard link whose target the same layer replaced afterwards; use --builder engine for this image`);
      }
      if (entry.size !== node.size) throw new InputError('E_LAYER_CHANGED', 'the layer differs on its second read: the cache blob changed during the bake; run ctrbake fetch again');
      yield encodeHeader(canonical(prefix + path, node));
      for await (const piece of tar.data()) yield Buffer.from(piece);
      yield padding(node.size);
    }
  } finally {
    await tar.close();
  }
  const left = [...tree.nodes.keys()].filter((p) => !emitted.has(p));
  if (left.length > 0) throw new InputError('E_LAYER_CHANGED', `the layer differs on its second read (${left.length} path(s) not found again): the cache blob changed during the bake; run ctrbake fetch again`);
}

/** The store's own entries (dirs, small files): owner root, mtime SOURCE_DATE_EPOCH, canonical names. */
export interface StoreEntryWriters {
  node: (type: Inode['type'], mode: number) => Inode;
  dir: (path: string, mode: number, xattrs?: Map<string, Buffer>) => Buffer;
  file: (path: string, mode: number, content: Buffer) => Generator<Buffer>;
}

export function storeEntryWriters(sourceDateEpoch: number): StoreEntryWriters {
  const node = (type: Inode['type'], mode: number): Inode => ({ type, mode, uid: 0, gid: 0, mtime: sourceDateEpoch, xattrs: new Map(), linkname: '', devmajor: 0, devminor: 0, size: 0 });
  const dir = (path: string, mode: number, xattrs?: Map<string, Buffer>): Buffer => encodeHeader(canonical(path, { ...node('dir', mode), ...(xattrs ? { xattrs } : {}) }));
  function* file(path: string, mode: number, content: Buffer): Generator<Buffer> {
    yield encodeHeader(canonical(path, { ...node('file', mode), size: content.length }));
    yield content;
    yield padding(content.length);
  }
  return { node, dir, file };
}
