/**
 * Writes everything after the data area: inode table, directory table, fragment table,
 * id table, xattr table, then the superblock at offset 0.
 *
 * Inodes are numbered and written in one deterministic order (TableWriter.number): every
 * directory's entries sorted byte-wise and numbered together, after its subdirectories'
 * entries (children before their directory, whose listing needs their references; the
 * root comes last). A hard-linked inode is written where it is first met.
 */
import { writeSync } from 'node:fs';
import {
  ByteBuilder,
  INVALID_TABLE,
  InodeType,
  METADATA_SIZE,
  MetadataWriter,
  NO_XATTR,
  SQUASHFS_MAGIC,
  SUPERBLOCK_SIZE,
  SuperFlags,
  type SyncCompress,
} from './metadata.js';
import type { BlockWords } from './data.js';
import type { Node } from './tree.js';
import { XattrTable } from './xattr.js';

const DIR_MAX_ENTRIES = 256;
const U32_LIMIT = 0x1_0000_0000;

export interface TablesInput {
  fd: number;
  /** First byte after the data area. */
  start: number;
  root: Node;
  blockSize: number;
  compressionId: number;
  compress: SyncCompress;
  fragments: Array<{ start: number; sizeWord: number }>;
  /** The size words of the files' blocks (FileData.firstBlock/blockCount index it). */
  blockWords: BlockWords;
  mkfsTime: number;
  /** Superblock flags the caller adds (compressor options present). */
  extraFlags: number;
}

export interface TablesResult {
  bytesUsed: number;
  inodes: number;
  xattrsDropped: number;
}

const BASIC_TYPE: Record<Node['kind'], number> = {
  dir: InodeType.Dir,
  file: InodeType.File,
  symlink: InodeType.Symlink,
  blockdev: InodeType.BlockDev,
  chardev: InodeType.CharDev,
  fifo: InodeType.Fifo,
  socket: InodeType.Socket,
};

type Sorted = Array<[string, Node]>;

class TableWriter {
  private readonly inodes: MetadataWriter;
  private readonly dirs: MetadataWriter;
  private readonly ids = new Map<number, number>();
  readonly xattrs = new XattrTable();
  private readonly sorted = new Map<Node, Sorted>();
  private nextNumber = 1;
  private readonly b = new ByteBuilder(4096);

  constructor(private readonly input: TablesInput) {
    this.inodes = new MetadataWriter(input.compress);
    this.dirs = new MetadataWriter(input.compress);
  }

  private idIndex(id: number): number {
    let index = this.ids.get(id);
    if (index === undefined) {
      index = this.ids.size;
      if (index >= 65536) throw new Error('more than 65536 distinct uids/gids: SquashFS cannot store them');
      this.ids.set(id, index);
    }
    return index;
  }

  private sortedChildren(dir: Node): Sorted {
    let list = this.sorted.get(dir);
    if (!list) {
      // Names are binary strings: the default (UTF-16 code unit) order is the byte order.
      const children = dir.children!;
      list = [...children.keys()].sort().map((name): [string, Node] => [name, children.get(name)!]);
      this.sorted.set(dir, list);
    }
    return list;
  }

  /**
   * Numbers every inode; the inode table is written in number order. A directory's
   * subdirectories are numbered first (depth first, byte order), then its own entries, in
   * byte order, one after the other; the root comes last. So a directory's children have
   * consecutive numbers and neighbouring inodes: its listing needs fewer headers and the
   * table compresses better (the order tar2sqfs writes). A hard-linked inode is numbered
   * where it is first met. Returns the nodes in number order, each with its parent.
   */
  number(root: Node): Array<{ node: Node; parent: Node | null }> {
    const order: Array<{ node: Node; parent: Node | null }> = [];
    // Each frame visits the directory's subdirectories (index i), then numbers its entries.
    const stack: Array<{ dir: Node; i: number }> = [{ dir: root, i: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const list = this.sortedChildren(top.dir);
      while (top.i < list.length && list[top.i]![1].kind !== 'dir') top.i++;
      if (top.i < list.length) {
        stack.push({ dir: list[top.i++]![1], i: 0 });
        continue;
      }
      for (const [, child] of list) {
        if (child.number !== 0) continue;
        child.number = this.nextNumber++;
        order.push({ node: child, parent: top.dir });
      }
      stack.pop();
    }
    root.number = this.nextNumber++;
    order.push({ node: root, parent: null });
    return order;
  }

  writeAll(order: Array<{ node: Node; parent: Node | null }>): void {
    const rootParent = order.length + 1;
    for (const { node, parent } of order) {
      if (node.kind !== 'dir') {
        node.ref = this.writeInode(node);
        continue;
      }
      node.ref = this.writeDir(node, this.sorted.get(node)!, parent === null ? rootParent : parent.number);
      this.sorted.delete(node);
    }
  }

  private header(b: ByteBuilder, node: Node, type: number): void {
    b.u16(type)
      .u16(node.mode & 0o7777)
      .u16(this.idIndex(node.uid))
      .u16(this.idIndex(node.gid))
      .u32(Math.min(Math.max(node.mtime, 0), U32_LIMIT - 1))
      .u32(node.number);
  }

  private writeInode(node: Node): number {
    const b = this.b;
    b.reset();
    const xattr = this.xattrs.add(node.xattrs);
    // Basic inodes of every type but regular files carry nlink; only xattrs need extended ones.
    const extended = xattr !== NO_XATTR || (node.kind === 'file' && node.links > 1);
    switch (node.kind) {
      case 'file': {
        const data = node.data!;
        const blocks = this.input.blockWords.slice(data.firstBlock, data.blockCount);
        const start = data.blockCount > 0 ? data.start : 0;
        if (!extended && data.sparseBytes === 0 && start < U32_LIMIT && data.size < U32_LIMIT) {
          this.header(b, node, InodeType.File);
          b.u32(start).u32(data.fragment).u32(data.fragmentOffset).u32(data.size);
        } else {
          this.header(b, node, InodeType.LFile);
          b.u64(start).u64(data.size).u64(data.sparseBytes).u32(node.links).u32(data.fragment).u32(data.fragmentOffset).u32(xattr);
        }
        for (const word of blocks) b.u32(word);
        break;
      }
      case 'symlink': {
        const target = Buffer.from(node.target!, 'latin1');
        this.header(b, node, extended ? InodeType.LSymlink : InodeType.Symlink);
        b.u32(node.links).u32(target.length).bytes(target);
        if (extended) b.u32(xattr);
        break;
      }
      case 'chardev':
      case 'blockdev':
        this.header(b, node, BASIC_TYPE[node.kind] + (extended ? 7 : 0));
        b.u32(node.links).u32(node.rdev!);
        if (extended) b.u32(xattr);
        break;
      case 'fifo':
      case 'socket':
        this.header(b, node, BASIC_TYPE[node.kind] + (extended ? 7 : 0));
        b.u32(node.links);
        if (extended) b.u32(xattr);
        break;
      case 'dir':
        throw new Error('internal: writeInode on a directory');
    }
    const ref = this.inodes.ref();
    this.inodes.write(b.result());
    return ref;
  }

  private writeDir(dir: Node, list: Sorted, parent: number): number {
    const dirs = this.dirs;
    const listingBlock = dirs.blockStart;
    const listingOffset = dirs.blockOffset;
    const listingStart = dirs.uncompressedLength;
    const index: Array<{ index: number; start: number; name: Buffer }> = [];
    let lastIndexed = listingStart;
    let subdirs = 0;
    const b = new ByteBuilder(4096);
    let i = 0;
    while (i < list.length) {
      const first = list[i]![1];
      const inodeBlock = Math.floor(first.ref / 65536);
      const base = first.number;
      let j = i;
      while (j < list.length && j - i < DIR_MAX_ENTRIES) {
        const node = list[j]![1];
        const delta = node.number - base;
        if (Math.floor(node.ref / 65536) !== inodeBlock || delta > 32767 || delta < -32768) break;
        j++;
      }
      // Index a header about every 8 KiB of listing (only large directories get an index;
      // any header may be indexed, the kernel then scans from it).
      if (dirs.uncompressedLength - lastIndexed >= METADATA_SIZE) {
        index.push({ index: dirs.uncompressedLength - listingStart, start: dirs.blockStart, name: Buffer.from(list[i]![0], 'latin1') });
        lastIndexed = dirs.uncompressedLength;
      }
      b.reset();
      b.u32(j - i - 1).u32(inodeBlock).u32(base);
      for (let k = i; k < j; k++) {
        const [name, node] = list[k]!;
        const nameBytes = Buffer.from(name, 'latin1');
        if (node.kind === 'dir') subdirs++;
        b.u16(node.ref % 65536)
          .i16(node.number - base)
          .u16(BASIC_TYPE[node.kind])
          .u16(nameBytes.length - 1)
          .bytes(nameBytes);
      }
      dirs.write(b.result());
      i = j;
    }
    const fileSize = dirs.uncompressedLength - listingStart + 3;
    const xattr = this.xattrs.add(dir.xattrs);
    b.reset();
    if (xattr === NO_XATTR && index.length === 0 && fileSize <= 0xffff) {
      this.header(b, dir, InodeType.Dir);
      b.u32(listingBlock)
        .u32(2 + subdirs)
        .u16(fileSize)
        .u16(listingOffset)
        .u32(parent);
    } else {
      this.header(b, dir, InodeType.LDir);
      b.u32(2 + subdirs)
        .u32(fileSize)
        .u32(listingBlock)
        .u32(parent)
        .u16(index.length)
        .u16(listingOffset)
        .u32(xattr);
      for (const entry of index) b.u32(entry.index).u32(entry.start).u32(entry.name.length - 1).bytes(entry.name);
    }
    const ref = this.inodes.ref();
    this.inodes.write(b.result());
    return ref;
  }

  finishInodes(): Buffer[] {
    return this.inodes.finish();
  }

  finishDirs(): Buffer[] {
    return this.dirs.finish();
  }

  get inodeTableSize(): number {
    return this.inodes.size;
  }

  get dirTableSize(): number {
    return this.dirs.size;
  }

  idList(): number[] {
    return [...this.ids.keys()];
  }
}

/** Metadata blocks holding `entries`, then the u64 index of their starts. */
function lookupTable(entries: Buffer, start: number, compress: SyncCompress): { parts: Buffer[]; indexStart: number; size: number } {
  const writer = new MetadataWriter(compress);
  const starts: number[] = [];
  for (let at = 0; at < entries.length; at += METADATA_SIZE) {
    starts.push(start + writer.blockStart);
    writer.write(entries.subarray(at, at + METADATA_SIZE));
  }
  const parts = writer.finish();
  const index = new ByteBuilder(starts.length * 8 + 8);
  for (const s of starts) index.u64(s);
  const indexBytes = index.result();
  return { parts: [...parts, indexBytes], indexStart: start + writer.size, size: writer.size + indexBytes.length };
}

export function writeTables(input: TablesInput): TablesResult {
  const { fd, root } = input;
  const tw = new TableWriter(input);
  const order = tw.number(root);
  const inodeCount = order.length;
  tw.writeAll(order);

  const out: Buffer[] = [];
  let pos = input.start;
  const inodeTableStart = pos;
  out.push(...tw.finishInodes());
  pos += tw.inodeTableSize;
  const dirTableStart = pos;
  out.push(...tw.finishDirs());
  pos += tw.dirTableSize;

  const fragEntries = new ByteBuilder(input.fragments.length * 16 + 16);
  for (const f of input.fragments) fragEntries.u64(f.start).u32(f.sizeWord).u32(0);
  const frag = lookupTable(fragEntries.result(), pos, input.compress);
  out.push(...frag.parts);
  pos += frag.size;

  const idEntries = new ByteBuilder();
  for (const id of tw.idList()) idEntries.u32(id);
  const ids = lookupTable(idEntries.result(), pos, input.compress);
  out.push(...ids.parts);
  pos += ids.size;

  let xattrTableStart = INVALID_TABLE;
  if (tw.xattrs.count > 0) {
    const x = tw.xattrs.build(pos, input.compress);
    out.push(...x.parts);
    pos += x.size;
    xattrTableStart = BigInt(x.tableStart);
  }
  const bytesUsed = pos;

  let at = input.start;
  for (const part of out) {
    let done = 0;
    while (done < part.length) done += writeSync(fd, part, done, part.length - done, at + done);
    at += part.length;
  }

  const flags = SuperFlags.Duplicates | SuperFlags.AlwaysFragments | (tw.xattrs.count === 0 ? SuperFlags.NoXattrs : 0) | input.extraFlags;
  const sb = new ByteBuilder(SUPERBLOCK_SIZE);
  sb.u32(SQUASHFS_MAGIC)
    .u32(inodeCount)
    .u32(input.mkfsTime)
    .u32(input.blockSize)
    .u32(input.fragments.length)
    .u16(input.compressionId)
    .u16(Math.log2(input.blockSize))
    .u16(flags)
    .u16(tw.idList().length)
    .u16(4)
    .u16(0)
    .u64(root.ref)
    .u64(bytesUsed)
    .u64(ids.indexStart)
    .u64(xattrTableStart)
    .u64(inodeTableStart)
    .u64(dirTableStart)
    .u64(frag.indexStart)
    .u64(INVALID_TABLE);
  const sbBytes = sb.result();
  writeSync(fd, sbBytes, 0, sbBytes.length, 0);
  return { bytesUsed, inodes: inodeCount, xattrsDropped: tw.xattrs.dropped };
}
