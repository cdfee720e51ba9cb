/**
 * A vfs layer dir (`vfs/dir/<id>`, the full tree of a layer stack, vfs-tree.ts) as tar
 * entries under a prefix, in name order (GNU tar --sort=name, as the engine path's store.tar),
 * each file's content streamed from the layer blob that holds it. One cursor per blob of the
 * stack reads forward; a file that comes before the cursor's position (a blob not in name
 * order) reopens that blob. Nothing is extracted to disk and no content is held in memory;
 * the cost is one more decompression of each lower blob per layer dir.
 */
import { InputError } from '../errors.js';
import { TarInput, encodeHeader, padding } from '../formats/tar/index.js';
import { canonical } from './diff-writer.js';
import { compareTreePaths, type VfsInode, type VfsTree } from './vfs-tree.js';

function changed(what: string): InputError {
  return new InputError('E_LAYER_CHANGED', `the layer differs on a later read (${what}): the cache blob changed during the bake; run ctrbake fetch again`);
}

class BlobCursor {
  private tar: TarInput | undefined;
  private index = -1;

  constructor(private readonly open: () => AsyncIterable<Uint8Array>) {}

  /** The blob's tar positioned on entry `index`, its content not read yet. */
  async at(index: number): Promise<TarInput> {
    if (this.tar === undefined || index <= this.index) {
      await this.tar?.close();
      this.tar = new TarInput(this.open());
      this.index = -1;
    }
    while (this.index < index) {
      if ((await this.tar.next()) === null) throw changed(`entry ${index} is missing`);
      this.index++;
    }
    return this.tar;
  }

  async close(): Promise<void> {
    await this.tar?.close();
  }
}

/**
 * `blobs[d]` opens the uncompressed blob of the stack's layer at depth d (0: the base layer),
 * the numbering VfsTree gives its files' `layer`.
 */
export async function* writeVfsDir(tree: VfsTree, blobs: ReadonlyArray<() => AsyncIterable<Uint8Array>>, prefix: string): AsyncGenerator<Buffer> {
  const cursors = new Map<number, BlobCursor>();
  const firstName = new Map<VfsInode, string>();
  try {
    for (const path of [...tree.nodes.keys()].sort(compareTreePaths)) {
      const node = tree.nodes.get(path)!;
      const name = path === '' ? prefix : `${prefix}/${path}`;
      const first = firstName.get(node);
      if (first !== undefined) {
        yield encodeHeader(canonical(name, node, { type: 'hardlink', linkname: first, size: 0 }));
        continue;
      }
      firstName.set(node, name);
      yield encodeHeader(canonical(name, node));
      if (node.type !== 'file' || node.size === 0) continue;
      const depth = node.layer!;
      let cursor = cursors.get(depth);
      if (cursor === undefined) cursors.set(depth, (cursor = new BlobCursor(blobs[depth]!)));
      const tar = await cursor.at(node.source!);
      let written = 0;
      for await (const piece of tar.data()) {
        const bytes = piece;
        written += bytes.length;
        if (written > node.size) throw changed(`${path} grew`);
        yield bytes;
      }
      if (written !== node.size) throw changed(`${path} shrank`);
      yield padding(node.size);
    }
  } finally {
    for (const cursor of cursors.values()) await cursor.close();
  }
}
