/**
 * A small SquashFS 4.0 reader (gzip and zstd images): lists every entry with its metadata
 * and reads file content. Used by unit tests and by `report`; it is never the only oracle
 * for the writer (the kernel and squashfs-tools check images too).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { loadZstd } from '../src/squashfs/writer/compressor.js';

export type SquashfsEntryType = 'file' | 'dir' | 'symlink' | 'blockdev' | 'chardev' | 'fifo' | 'socket';

export interface SquashfsEntry {
  /** Path from the root without a leading slash ('' is the root), UTF-8 decoded. */
  path: string;
  type: SquashfsEntryType;
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** File size, symlink target length, or directory listing size (+3) as stored. */
  size: number;
  nlink: number;
  inodeNumber: number;
  xattrs: Record<string, Buffer>;
  linkTarget?: string;
  rdev?: { major: number; minor: number };
  /** Bytes a sparse file does not store (extended file inodes). */
  sparseBytes?: number;
}

export interface SquashfsSuperblock {
  inodes: number;
  mkfsTime: number;
  blockSize: number;
  fragments: number;
  compression: number;
  flags: number;
  ids: number;
  rootInode: bigint;
  bytesUsed: number;
  idTableStart: number;
  xattrIdTableStart: bigint;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  lookupTableStart: bigint;
}

interface InodeInfo extends Omit<SquashfsEntry, 'path' | 'xattrs'> {
  xattrId: number;
  dir?: { startBlock: number; offset: number; fileSize: number };
  file?: { start: number; fragment: number; fragmentOffset: number; blocks: number[] };
}

const TYPES: SquashfsEntryType[] = ['dir', 'file', 'symlink', 'blockdev', 'chardev', 'fifo', 'socket'];
const XATTR_PREFIX = ['user.', 'trusted.', 'security.'];
const NO_FRAGMENT = 0xffffffff;

export class SquashfsReaderError extends Error {}

/** Where an image's bytes go (bench and size tests). */
export interface SquashfsLayout {
  /** Superblock bytes_used: the image without its padding. */
  bytesUsed: number;
  /** Stored bytes of file blocks (the data area less the fragment blocks). */
  dataBlocks: number;
  fragmentBlocks: number;
  /** Everything after the data area: inode, directory, fragment, export, id and xattr tables. */
  metadata: number;
}

/** Decodes one raw LZ4 block (the format SquashFS stores) of at most `max` bytes. */
export function decodeLz4Block(src: Buffer, max: number): Buffer {
  const out = Buffer.allocUnsafe(max);
  let s = 0;
  let d = 0;
  const fail = (): never => {
    throw new SquashfsReaderError('corrupt LZ4 block');
  };
  while (s < src.length) {
    const token = src[s++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (s >= src.length) fail();
        b = src[s++]!;
        literals += b;
      } while (b === 255);
    }
    if (s + literals > src.length || d + literals > max) fail();
    src.copy(out, d, s, s + literals);
    s += literals;
    d += literals;
    if (s >= src.length) break;
    if (s + 2 > src.length) fail();
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > d) fail();
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= src.length) fail();
        b = src[s++]!;
        length += b;
      } while (b === 255);
    }
    if (d + length > max) fail();
    for (let i = 0; i < length; i++, d++) out[d] = out[d - offset]!;
  }
  return out.subarray(0, d);
}

class Cursor {
  private buf: Buffer = Buffer.alloc(0);
  constructor(
    private readonly reader: SquashfsReader,
    private block: number,
    private offset: number,
  ) {}

  read(n: number): Buffer {
    while (this.buf.length < n) {
      const { data, next } = this.reader.metadataBlock(this.block);
      const part = data.subarray(this.offset);
      this.buf = this.buf.length === 0 ? part : Buffer.concat([this.buf, part]);
      this.block = next;
      this.offset = 0;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

export class SquashfsReader {
  readonly superblock: SquashfsSuperblock;
  private readonly cache = new Map<number, { data: Buffer; next: number }>();
  private ids: number[] = [];
  private fragments: Array<{ start: number; size: number }> = [];
  private xattrIds: Array<{ ref: bigint; count: number }> = [];
  private xattrTableStart = 0;
  private zstd: ((data: Uint8Array) => Uint8Array) | undefined;
  private lz4 = false;

  private constructor(private readonly fd: number) {
    const sb = this.readAt(0, 96);
    if (sb.readUInt32LE(0) !== 0x73717368) throw new SquashfsReaderError('not a SquashFS image (bad magic)');
    if (sb.readUInt16LE(28) !== 4) throw new SquashfsReaderError('not a SquashFS 4.x image');
    this.superblock = {
      inodes: sb.readUInt32LE(4),
      mkfsTime: sb.readUInt32LE(8),
      blockSize: sb.readUInt32LE(12),
      fragments: sb.readUInt32LE(16),
      compression: sb.readUInt16LE(20),
      flags: sb.readUInt16LE(24),
      ids: sb.readUInt16LE(26),
      rootInode: sb.readBigUInt64LE(32),
      bytesUsed: Number(sb.readBigUInt64LE(40)),
      idTableStart: Number(sb.readBigUInt64LE(48)),
      xattrIdTableStart: sb.readBigUInt64LE(56),
      inodeTableStart: Number(sb.readBigUInt64LE(64)),
      directoryTableStart: Number(sb.readBigUInt64LE(72)),
      fragmentTableStart: Number(sb.readBigUInt64LE(80)),
      lookupTableStart: sb.readBigUInt64LE(88),
    };
  }

  static async open(path: string): Promise<SquashfsReader> {
    const fd = openSync(path, 'r');
    try {
      const reader = new SquashfsReader(fd);
      const compression = reader.superblock.compression;
      if (compression === 6) {
        const zstd = await loadZstd();
        reader.zstd = (d) => zstd.decompress(d);
      } else if (compression === 5) {
        reader.lz4 = true;
      } else if (compression !== 1) {
        throw new SquashfsReaderError(`compression id ${compression} is not supported by this reader (gzip, zstd and lz4 are)`);
      }
      reader.loadTables();
      return reader;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private readAt(pos: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, pos + done);
      if (n === 0) throw new SquashfsReaderError(`unexpected end of image at ${pos + done}`);
      done += n;
    }
    return buf;
  }

  private decompress(data: Buffer): Buffer {
    if (this.lz4) return decodeLz4Block(data, Math.max(this.superblock.blockSize, 8192));
    return this.zstd ? Buffer.from(this.zstd(data)) : inflateSync(data);
  }

  /** The metadata block at absolute offset `pos`: its bytes and the offset of the next one. */
  metadataBlock(pos: number): { data: Buffer; next: number } {
    let hit = this.cache.get(pos);
    if (!hit) {
      const header = this.readAt(pos, 2).readUInt16LE(0);
      const size = header & 0x7fff;
      const raw = this.readAt(pos + 2, size);
      const data = header & 0x8000 ? raw : this.decompress(raw);
      if (data.length > 8192) throw new SquashfsReaderError(`metadata block at ${pos} too large`);
      hit = { data, next: pos + 2 + size };
      this.cache.set(pos, hit);
    }
    return hit;
  }

  private readTable(indexStart: number, entryBytes: number, count: number): Buffer {
    const blocks = Math.ceil((count * entryBytes) / 8192);
    const index = this.readAt(indexStart, blocks * 8);
    const parts: Buffer[] = [];
    for (let i = 0; i < blocks; i++) parts.push(this.metadataBlock(Number(index.readBigUInt64LE(i * 8))).data);
    return Buffer.concat(parts).subarray(0, count * entryBytes);
  }

  /** Splits the image by kind (the tables follow the data area in images of every backend). */
  layout(): SquashfsLayout {
    const sb = this.superblock;
    let dataStart = 96;
    if (sb.flags & 0x400) dataStart += 2 + (this.readAt(96, 2).readUInt16LE(0) & 0x7fff);
    const fragmentBlocks = this.fragments.reduce((n, f) => n + (f.size & 0xffffff), 0);
    return { bytesUsed: sb.bytesUsed, dataBlocks: sb.inodeTableStart - dataStart - fragmentBlocks, fragmentBlocks, metadata: sb.bytesUsed - sb.inodeTableStart };
  }

  private loadTables(): void {
    const sb = this.superblock;
    const ids = this.readTable(sb.idTableStart, 4, sb.ids);
    for (let i = 0; i < sb.ids; i++) this.ids.push(ids.readUInt32LE(i * 4));
    if (sb.fragments > 0) {
      const frags = this.readTable(sb.fragmentTableStart, 16, sb.fragments);
      for (let i = 0; i < sb.fragments; i++) this.fragments.push({ start: Number(frags.readBigUInt64LE(i * 16)), size: frags.readUInt32LE(i * 16 + 8) });
    }
    if (sb.xattrIdTableStart !== 0xffffffffffffffffn) {
      const header = this.readAt(Number(sb.xattrIdTableStart), 16);
      this.xattrTableStart = Number(header.readBigUInt64LE(0));
      const count = header.readUInt32LE(8);
      const table = this.readTable(Number(sb.xattrIdTableStart) + 16, 16, count);
      for (let i = 0; i < count; i++) this.xattrIds.push({ ref: table.readBigUInt64LE(i * 16), count: table.readUInt32LE(i * 16 + 8) });
    }
  }

  private inode(ref: bigint): InodeInfo {
    const c = new Cursor(this, this.superblock.inodeTableStart + Number(ref >> 16n), Number(ref & 0xffffn));
    const h = c.read(16);
    const rawType = h.readUInt16LE(0);
    const extended = rawType > 7;
    const type = TYPES[(extended ? rawType - 7 : rawType) - 1];
    if (type === undefined) throw new SquashfsReaderError(`bad inode type ${rawType}`);
    const info: InodeInfo = {
      type,
      mode: h.readUInt16LE(2),
      uid: this.ids[h.readUInt16LE(4)]!,
      gid: this.ids[h.readUInt16LE(6)]!,
      mtime: h.readUInt32LE(8),
      inodeNumber: h.readUInt32LE(12),
      size: 0,
      nlink: 1,
      xattrId: 0xffffffff,
    };
    const bs = this.superblock.blockSize;
    if (type === 'dir') {
      if (!extended) {
        const d = c.read(16);
        info.nlink = d.readUInt32LE(4);
        info.size = d.readUInt16LE(8);
        info.dir = { startBlock: d.readUInt32LE(0), offset: d.readUInt16LE(10), fileSize: info.size };
      } else {
        const d = c.read(24);
        info.nlink = d.readUInt32LE(0);
        info.size = d.readUInt32LE(4);
        info.dir = { startBlock: d.readUInt32LE(8), offset: d.readUInt16LE(18), fileSize: info.size };
        info.xattrId = d.readUInt32LE(20);
      }
    } else if (type === 'file') {
      let start: number;
      let fragment: number;
      let fragmentOffset: number;
      if (!extended) {
        const d = c.read(16);
        start = d.readUInt32LE(0);
        fragment = d.readUInt32LE(4);
        fragmentOffset = d.readUInt32LE(8);
        info.size = d.readUInt32LE(12);
      } else {
        const d = c.read(40);
        start = Number(d.readBigUInt64LE(0));
        info.size = Number(d.readBigUInt64LE(8));
        info.sparseBytes = Number(d.readBigUInt64LE(16));
        info.nlink = d.readUInt32LE(24);
        fragment = d.readUInt32LE(28);
        fragmentOffset = d.readUInt32LE(32);
        info.xattrId = d.readUInt32LE(36);
      }
      const count = fragment === NO_FRAGMENT ? Math.ceil(info.size / bs) : Math.floor(info.size / bs);
      const list = c.read(count * 4);
      const blocks: number[] = [];
      for (let i = 0; i < count; i++) blocks.push(list.readUInt32LE(i * 4));
      info.file = { start, fragment, fragmentOffset, blocks };
    } else if (type === 'symlink') {
      const d = c.read(8);
      info.nlink = d.readUInt32LE(0);
      info.size = d.readUInt32LE(4);
      info.linkTarget = c.read(info.size).toString('utf8');
      if (extended) info.xattrId = c.read(4).readUInt32LE(0);
    } else if (type === 'blockdev' || type === 'chardev') {
      const d = c.read(extended ? 12 : 8);
      info.nlink = d.readUInt32LE(0);
      const dev = d.readUInt32LE(4);
      info.rdev = { major: (dev >>> 8) & 0xfff, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
      if (extended) info.xattrId = d.readUInt32LE(8);
    } else {
      const d = c.read(extended ? 8 : 4);
      info.nlink = d.readUInt32LE(0);
      if (extended) info.xattrId = d.readUInt32LE(4);
    }
    return info;
  }

  private xattrs(id: number): Record<string, Buffer> {
    const out: Record<string, Buffer> = {};
    if (id === 0xffffffff) return out;
    const entry = this.xattrIds[id];
    if (!entry) throw new SquashfsReaderError(`bad xattr id ${id}`);
    const c = new Cursor(this, this.xattrTableStart + Number(entry.ref >> 16n), Number(entry.ref & 0xffffn));
    for (let i = 0; i < entry.count; i++) {
      const h = c.read(4);
      const type = h.readUInt16LE(0);
      const name = XATTR_PREFIX[type & 0xff] + c.read(h.readUInt16LE(2)).toString('utf8');
      const vsize = c.read(4).readUInt32LE(0);
      let value = Buffer.from(c.read(vsize));
      if (type & 0x100) {
        const ref = value.readBigUInt64LE(0);
        const oc = new Cursor(this, this.xattrTableStart + Number(ref >> 16n), Number(ref & 0xffffn));
        value = Buffer.from(oc.read(oc.read(4).readUInt32LE(0)));
      }
      out[name] = value;
    }
    return out;
  }

  private listing(dir: NonNullable<InodeInfo['dir']>): Array<{ name: string; ref: bigint }> {
    const out: Array<{ name: string; ref: bigint }> = [];
    const c = new Cursor(this, this.superblock.directoryTableStart + dir.startBlock, dir.offset);
    let left = dir.fileSize - 3;
    while (left > 0) {
      const h = c.read(12);
      const count = h.readUInt32LE(0) + 1;
      const block = BigInt(h.readUInt32LE(4));
      left -= 12;
      for (let i = 0; i < count; i++) {
        const e = c.read(8);
        const nameLength = e.readUInt16LE(6) + 1;
        const name = c.read(nameLength).toString('utf8');
        out.push({ name, ref: (block << 16n) | BigInt(e.readUInt16LE(0)) });
        left -= 8 + nameLength;
      }
    }
    return out;
  }

  private withXattrs(path: string, info: InodeInfo): SquashfsEntry & { info: InodeInfo } {
    const { xattrId, dir: _dir, file: _file, ...rest } = info;
    return { path, ...rest, xattrs: this.xattrs(xattrId), info };
  }

  /** Every entry, depth first, directories before their contents, names in stored order. */
  list(): SquashfsEntry[] {
    const out: SquashfsEntry[] = [];
    const walk = (path: string, ref: bigint): void => {
      const info = this.inode(ref);
      const { info: _i, ...entry } = this.withXattrs(path, info);
      out.push(entry);
      if (info.dir) for (const child of this.listing(info.dir)) walk(path === '' ? child.name : `${path}/${child.name}`, child.ref);
    };
    walk('', this.superblock.rootInode);
    return out;
  }

  private lookup(path: string): InodeInfo {
    let info = this.inode(this.superblock.rootInode);
    for (const part of path.split('/').filter((p) => p !== '')) {
      if (!info.dir) throw new SquashfsReaderError(`${path}: not a directory on the way`);
      const child = this.listing(info.dir).find((e) => e.name === part);
      if (!child) throw new SquashfsReaderError(`${path}: no such entry`);
      info = this.inode(child.ref);
    }
    return info;
  }

  /** Metadata of one entry. */
  stat(path: string): SquashfsEntry {
    const { info: _i, ...entry } = this.withXattrs(path, this.lookup(path));
    return entry;
  }

  /** The whole content of a regular file (tests and small files; use fileBlocks for big ones). */
  readFile(path: string): Buffer {
    return Buffer.concat([...this.fileBlocks(path)]);
  }

  /** A regular file's content, one block (or the fragment tail) at a time. */
  *fileBlocks(path: string): Generator<Buffer> {
    const info = this.lookup(path);
    if (!info.file) throw new SquashfsReaderError(`${path}: not a regular file`);
    const bs = this.superblock.blockSize;
    let pos = info.file.start;
    let left = info.size;
    for (const word of info.file.blocks) {
      const want = Math.min(bs, left);
      if (word === 0) {
        yield Buffer.alloc(want);
      } else {
        const length = word & 0xffffff;
        const raw = this.readAt(pos, length);
        const data = word & (1 << 24) ? raw : this.decompress(raw);
        if (data.length !== want) throw new SquashfsReaderError(`${path}: block holds ${data.length} bytes, expected ${want}`);
        yield data;
        pos += length;
      }
      left -= want;
    }
    if (left > 0) {
      const frag = this.fragments[info.file.fragment];
      if (!frag) throw new SquashfsReaderError(`${path}: bad fragment index ${info.file.fragment}`);
      const length = frag.size & 0xffffff;
      const raw = this.readAt(frag.start, length);
      const data = frag.size & (1 << 24) ? raw : this.decompress(raw);
      if (info.file.fragmentOffset + left > data.length) throw new SquashfsReaderError(`${path}: tail beyond its fragment block`);
      yield data.subarray(info.file.fragmentOffset, info.file.fragmentOffset + left);
    }
  }
}
