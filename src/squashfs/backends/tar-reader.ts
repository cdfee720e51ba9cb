/**
 * A streaming tar reader (ustar, GNU, PAX) for the validating pass in front of the host
 * tools. It decodes headers into `TarEntry` values and hands out each entry's data as
 * chunks, without buffering entries in memory.
 *
 * Names and link targets are kept as "binary strings" (latin1, one char per byte), so
 * non-UTF-8 names survive a decode/encode round trip byte for byte.
 */
import { InputError } from '../../errors.js';
import { truncatedError } from '../errors.js';

export const BLOCK = 512;
/** Refuse PAX headers and GNU long names larger than this: they are read into memory. */
const MAX_META_SIZE = 16 * 1024 * 1024;

/** Same code as the builtin writer's tar input uses for a malformed stream. */
export const E_TAR_CORRUPT = 'E_TAR_CORRUPT';
export const E_TAR_UNSUPPORTED = 'E_TAR_UNSUPPORTED';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo';

export interface TarEntry {
  /** Raw name from the archive (binary string), before normalising. */
  name: string;
  type: TarEntryType;
  /** Permission bits incl. setuid/setgid/sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  /** Bytes of data that follow the header in the archive. */
  size: number;
  /** Symlink target or hard link target (binary string). */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes, name -> value, from SCHILY.xattr.* or LIBARCHIVE.xattr.*. */
  xattrs: Map<string, Buffer>;
  /** The entry uses a GNU or PAX sparse encoding. */
  sparse: boolean;
}

/** Reads exact byte counts from an async iterable of chunks. */
export class ChunkReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private current: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes handed out so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.current.length === 0) {
      if (this.done) return false;
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        return false;
      }
      const chunk = next.value;
      this.current = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    return true;
  }

  /** Exactly `n` bytes, or fewer only when the stream ended. */
  async read(n: number): Promise<Buffer> {
    if (this.current.length >= n) {
      const out = this.current.subarray(0, n);
      this.current = this.current.subarray(n);
      this.position += n;
      return out;
    }
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n && (await this.fill())) {
      const take = this.current.subarray(0, Math.min(n - have, this.current.length));
      this.current = this.current.subarray(take.length);
      parts.push(take);
      have += take.length;
    }
    this.position += have;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
  }

  /** Yields the next `n` bytes as they arrive (no copies); throws if the stream ends first. */
  async *stream(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw truncatedError(`${what} ends ${left} bytes early`);
      const take = this.current.subarray(0, Math.min(left, this.current.length));
      this.current = this.current.subarray(take.length);
      this.position += take.length;
      left -= take.length;
      yield take;
    }
  }

  /** Discards everything left (so a writing process never sees EPIPE). */
  async drain(): Promise<void> {
    this.current = Buffer.alloc(0);
    while (!this.done) {
      const next = await this.iterator.next();
      if (next.done) this.done = true;
      else this.position += next.value.byteLength;
    }
  }

  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.iterator.return?.();
    }
  }
}

function badHeader(message: string, offset: number): InputError {
  return new InputError(E_TAR_CORRUPT, `invalid tar header at byte ${offset}: ${message}; the input is not a valid tar stream`, {
    details: { offset },
  });
}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('latin1');
}

/** Octal (space/NUL terminated) or GNU base-256 number field. */
function parseNumber(block: Buffer, start: number, length: number, what: string, offset: number): number {
  const field = block.subarray(start, start + length);
  if (field[0] === 0x80 || field[0] === 0xff) {
    if (field[0] === 0xff) throw badHeader(`negative ${what}`, offset);
    let value = 0;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    if (!Number.isSafeInteger(value)) throw badHeader(`${what} too large`, offset);
    return value;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ ]+/, '').replace(/\0.*$/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw badHeader(`${what} field ${JSON.stringify(text)} is not an octal number`, offset);
  return parseInt(text, 8);
}

function checksumOk(block: Buffer, offset: number): boolean {
  const stored = parseNumber(block, 148, 8, 'checksum', offset);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** PAX extended header records; values are Buffers (xattr values may be binary). */
export function parsePaxRecords(data: Buffer, offset: number): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // trailing NUL padding written by some tools
    const space = data.indexOf(0x20, pos);
    if (space === -1) throw badHeader('PAX record without a length', offset);
    const length = Number(data.subarray(pos, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= space - pos + 1 || pos + length > data.length) {
      throw badHeader('PAX record with a bad length', offset);
    }
    const record = data.subarray(space + 1, pos + length);
    if (record[record.length - 1] !== 0x0a) throw badHeader('PAX record not ended by a newline', offset);
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw badHeader('PAX record without "="', offset);
    records.set(record.subarray(0, eq).toString('latin1'), record.subarray(eq + 1, record.length - 1));
    pos += length;
  }
  return records;
}

function paxNumber(value: Buffer, what: string, offset: number): number {
  const text = value.toString('latin1');
  if (!/^-?\d+(\.\d*)?$/.test(text)) throw badHeader(`PAX ${what} ${JSON.stringify(text)} is not a number`, offset);
  return Math.floor(Number(text));
}

/** Decodes LIBARCHIVE.xattr names (percent-encoded) into binary strings. */
function percentDecode(name: string): string {
  return name.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  S: 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'chardev',
  '4': 'blockdev',
  '5': 'dir',
  '6': 'fifo',
};

/**
 * Reads entries one at a time. After `next()` returns an entry, the caller must consume
 * its data with `data()` (or `skipData()`) before calling `next()` again.
 */
export class TarReader {
  private readonly reader: ChunkReader;
  private global = new Map<string, Buffer>();
  private pending: TarEntry | null = null;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.reader = new ChunkReader(source);
  }

  get position(): number {
    return this.reader.position;
  }

  private async readBlock(what: string): Promise<Buffer> {
    const block = await this.reader.read(BLOCK);
    if (block.length < BLOCK) {
      throw truncatedError(block.length === 0 ? `the stream ends ${what} (no end-of-archive marker)` : `the stream ends inside ${what}`);
    }
    return block;
  }

  private async readMeta(size: number, what: string, offset: number): Promise<Buffer> {
    if (size > MAX_META_SIZE) throw badHeader(`${what} of ${size} bytes is larger than ${MAX_META_SIZE}`, offset);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const data = await this.reader.read(padded);
    if (data.length < padded) throw truncatedError(`the stream ends inside ${what}`);
    return data.subarray(0, size);
  }

  /** The next entry, or null at the end-of-archive marker. */
  async next(): Promise<TarEntry | null> {
    if (this.pending) throw new Error('TarReader.next() called before the previous entry data was consumed');
    if (this.ended) return null;
    let pax: Map<string, Buffer> | null = null;
    let longName: string | null = null;
    let longLink: string | null = null;
    for (;;) {
      const offset = this.reader.position;
      const block = await this.readBlock(pax || longName !== null || longLink !== null ? 'after an extended header' : 'before an entry header');
      if (isZeroBlock(block)) {
        if (pax || longName !== null || longLink !== null) throw badHeader('end-of-archive marker right after an extended header', offset);
        this.ended = true;
        await this.reader.drain();
        return null;
      }
      if (!checksumOk(block, offset)) throw badHeader('checksum mismatch', offset);
      const typeflag = String.fromCharCode(block[156]);
      const size = parseNumber(block, 124, 12, 'size', offset);
      if (typeflag === 'x' || typeflag === 'g') {
        const records = parsePaxRecords(await this.readMeta(size, 'a PAX header', offset), offset);
        if (typeflag === 'g') {
          for (const [k, v] of records) this.global.set(k, v);
        } else {
          pax = new Map([...(pax ?? []), ...records]);
        }
        continue;
      }
      if (typeflag === 'L' || typeflag === 'K') {
        const raw = await this.readMeta(size, 'a GNU long name', offset);
        const nul = raw.indexOf(0);
        const value = raw.subarray(0, nul === -1 ? raw.length : nul).toString('latin1');
        if (typeflag === 'L') longName = value;
        else longLink = value;
        continue;
      }
      const type = TYPES[typeflag];
      if (!type) {
        throw new InputError(
          E_TAR_UNSUPPORTED,
          `tar entry ${JSON.stringify(cString(block, 0, 100))} has type ${JSON.stringify(typeflag)}, which a SquashFS image cannot hold; remove it from the tar`,
          { details: { offset, typeflag } },
        );
      }
      const magic = block.subarray(257, 263).toString('latin1');
      const ustar = magic === 'ustar\0';
      const prefix = ustar ? cString(block, 345, 155) : '';
      const headerName = cString(block, 0, 100);
      const merged = new Map([...this.global, ...(pax ?? [])]);
      const entry: TarEntry = {
        name: longName ?? (prefix ? `${prefix}/${headerName}` : headerName),
        type,
        mode: parseNumber(block, 100, 8, 'mode', offset) & 0o7777,
        uid: parseNumber(block, 108, 8, 'uid', offset),
        gid: parseNumber(block, 116, 8, 'gid', offset),
        mtime: parseNumber(block, 136, 12, 'mtime', offset),
        size,
        linkname: longLink ?? cString(block, 157, 100),
        devmajor: type === 'chardev' || type === 'blockdev' ? parseNumber(block, 329, 8, 'devmajor', offset) : 0,
        devminor: type === 'chardev' || type === 'blockdev' ? parseNumber(block, 337, 8, 'devminor', offset) : 0,
        xattrs: new Map(),
        sparse: typeflag === 'S',
      };
      for (const [key, value] of merged) {
        if (key === 'path') entry.name = value.toString('latin1');
        else if (key === 'linkpath') entry.linkname = value.toString('latin1');
        else if (key === 'size') entry.size = paxNumber(value, 'size', offset);
        else if (key === 'uid') entry.uid = paxNumber(value, 'uid', offset);
        else if (key === 'gid') entry.gid = paxNumber(value, 'gid', offset);
        else if (key === 'mtime') entry.mtime = paxNumber(value, 'mtime', offset);
        else if (key.startsWith('GNU.sparse.')) entry.sparse = true;
        else if (key.startsWith('SCHILY.xattr.')) entry.xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
      }
      for (const [key, value] of merged) {
        if (!key.startsWith('LIBARCHIVE.xattr.')) continue;
        const name = percentDecode(key.slice('LIBARCHIVE.xattr.'.length));
        // SCHILY and LIBARCHIVE records often both describe one xattr: SCHILY (raw bytes) wins.
        if (!entry.xattrs.has(name)) entry.xattrs.set(name, Buffer.from(value.toString('latin1'), 'base64'));
      }
      if (entry.sparse) {
        const sparseName = merged.get('GNU.sparse.name');
        if (sparseName) entry.name = sparseName.toString('latin1');
      }
      this.pending = entry;
      return entry;
    }
  }

  /** The current entry's data, then its padding is skipped. */
  async *data(): AsyncGenerator<Buffer> {
    const entry = this.pending;
    if (!entry) throw new Error('TarReader.data() without a current entry');
    yield* this.reader.stream(entry.size, `the data of ${JSON.stringify(displayName(entry.name))}`);
    const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    for await (const _ of this.reader.stream(pad, `the padding of ${JSON.stringify(displayName(entry.name))}`));
    this.pending = null;
  }

  async skipData(): Promise<void> {
    for await (const _ of this.data());
  }

  async close(): Promise<void> {
    await this.reader.close();
  }
}

/** A binary-string name as readable text for messages. */
export function displayName(name: string): string {
  return Buffer.from(name, 'latin1').toString('utf8');
}
