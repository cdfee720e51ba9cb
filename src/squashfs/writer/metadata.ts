/**
 * SquashFS 4.0 on-disk constants and the metadata block writer.
 *
 * Metadata (inodes, directories, fragment/id/xattr tables) lives in blocks of at most
 * 8 KiB uncompressed, each preceded by a 2-byte header: the stored length, with bit 15 set
 * when the block is stored uncompressed. A reference to a position in a metadata table is
 * `(start of the block on disk, relative to the table) << 16 | offset inside the block`.
 */

export const SQUASHFS_MAGIC = 0x73717368;
export const SUPERBLOCK_SIZE = 96;
export const METADATA_SIZE = 8192;
export const METADATA_UNCOMPRESSED = 0x8000;
/** In a data block size word: the block is stored uncompressed. */
export const DATA_UNCOMPRESSED = 1 << 24;
export const INVALID_FRAGMENT = 0xffffffff;
export const NO_XATTR = 0xffffffff;
export const INVALID_TABLE = 0xffffffffffffffffn;

export const enum InodeType {
  Dir = 1,
  File = 2,
  Symlink = 3,
  BlockDev = 4,
  CharDev = 5,
  Fifo = 6,
  Socket = 7,
  LDir = 8,
  LFile = 9,
  LSymlink = 10,
  LBlockDev = 11,
  LCharDev = 12,
  LFifo = 13,
  LSocket = 14,
}

export const enum SuperFlags {
  NoFragments = 0x10,
  AlwaysFragments = 0x20,
  Duplicates = 0x40,
  Exportable = 0x80,
  NoXattrs = 0x200,
  CompressorOptions = 0x400,
}

export const XATTR_PREFIXES: ReadonlyArray<[string, number]> = [
  ['user.', 0],
  ['trusted.', 1],
  ['security.', 2],
];
export const XATTR_VALUE_OOL = 0x100;

/** Little-endian byte builder that grows as needed. */
export class ByteBuilder {
  private buf: Buffer;
  length = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.length);
    this.length += 2;
    return this;
  }

  i16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16LE(v, this.length);
    this.length += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.length);
    this.length += 4;
    return this;
  }

  u64(v: number | bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }
}

export type SyncCompress = (data: Buffer) => Buffer | null;

/**
 * Writes a metadata table: bytes go in, full 8 KiB blocks are compressed at once, so the
 * on-disk start of the current block (and so any reference) is always known.
 */
export class MetadataWriter {
  private readonly out: Buffer[] = [];
  /** Compressed bytes emitted so far (= on-disk start of the current block). */
  private emitted = 0;
  private readonly current = Buffer.allocUnsafe(METADATA_SIZE);
  private used = 0;
  /** Uncompressed bytes written so far. */
  uncompressedLength = 0;

  constructor(private readonly compress: SyncCompress) {}

  /** Reference of the next byte written. */
  ref(): number {
    return this.emitted * 65536 + this.used;
  }

  /** On-disk start (relative to the table) of the block holding the next byte. */
  get blockStart(): number {
    return this.emitted;
  }

  get blockOffset(): number {
    return this.used;
  }

  write(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const n = Math.min(METADATA_SIZE - this.used, data.length - at);
      data.copy(this.current, this.used, at, at + n);
      this.used += n;
      at += n;
      this.uncompressedLength += n;
      if (this.used === METADATA_SIZE) this.flushBlock();
    }
  }

  private flushBlock(): void {
    if (this.used === 0) return;
    const raw = this.current.subarray(0, this.used);
    const packed = this.compress(raw);
    const header = Buffer.allocUnsafe(2);
    if (packed !== null && packed.length < raw.length) {
      header.writeUInt16LE(packed.length, 0);
      this.out.push(header, packed);
      this.emitted += 2 + packed.length;
    } else {
      header.writeUInt16LE(raw.length | METADATA_UNCOMPRESSED, 0);
      this.out.push(header, Buffer.from(raw));
      this.emitted += 2 + raw.length;
    }
    this.used = 0;
  }

  /** Flushes the last partial block and returns the table's bytes and block starts. */
  finish(): Buffer[] {
    this.flushBlock();
    return this.out;
  }

  /** On-disk size after finish(). */
  get size(): number {
    return this.emitted;
  }
}
