/**
 * The project's one streaming tar decoder: ustar, GNU (long names and links, old GNU
 * sparse) and PAX (local and global headers, SCHILY/LIBARCHIVE xattrs, PAX sparse 0.0, 0.1
 * and 1.0). Pull-based: the caller asks for the next entry and then reads its content, so
 * backpressure reaches the input stream and nothing is buffered whole.
 *
 * Users: the builtin SquashFS writer reads the logical content (`content()`, holes as
 * numbers); the validating pass of the host-tool backends, the report, and the readers of
 * saved archives read the stored bytes (`data()`, `skipData()`) and check `sparse`;
 * `file-index.ts` lists a tar file's entries with their data offsets.
 *
 * Names and link targets are "binary strings" (latin1, one char per byte): non-UTF-8 names
 * survive byte for byte, and comparing two such strings with `<` is a byte-wise comparison,
 * which is the order SquashFS directories need.
 */
import { corruptError as corrupt, E_TAR_CORRUPT, E_TAR_UNSUPPORTED, truncatedError, unsupportedError as unsupported } from './errors.js';

export const BLOCK = 512;
/** PAX headers and GNU long names are read into memory: refuse absurd ones. */
const MAX_META_SIZE = 16 * 1024 * 1024;

export { E_TAR_CORRUPT, E_TAR_UNSUPPORTED };

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo';

export interface TarEntry {
  /** Raw name (binary string) before normalising. */
  name: string;
  type: TarEntryType;
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  /** Logical file size (the real size for sparse files). */
  size: number;
  /** Symlink or hard link target (binary string). */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** xattr name (binary string) -> value, from SCHILY.xattr.* / LIBARCHIVE.xattr.*. */
  xattrs: Map<string, Buffer>;
  /** For sparse entries: the data segments [offset, length], sorted; holes read as zeros. */
  sparseMap?: Array<[number, number]>;
  /** The entry uses a GNU or PAX sparse encoding (typeflag S or GNU.sparse.* records). */
  sparse: boolean;
}

/** A binary-string name as readable text for messages. */
export function displayName(name: string): string {
  return Buffer.from(name, 'latin1').toString('utf8');
}

/** A piece of file content: bytes, or a run of that many zero bytes (a hole). */
export type ContentPiece = Buffer | number;

/**
 * What the decoder reads from: exact reads, streamed reads and skips, counting bytes.
 * `ByteSource` reads a stream front to back; `indexTarFile` passes one that seeks in a file,
 * so skipping a layer costs nothing.
 */
export interface ByteReader {
  readonly consumed: number;
  /** Exactly n bytes, or null at a clean end of input (nothing left). */
  read(n: number, what: string): Promise<Buffer | null>;
  readExact(n: number, what: string): Promise<Buffer>;
  /** Yields exactly n bytes (views valid until the next call). */
  stream(n: number, what: string): AsyncGenerator<Buffer>;
  skip(n: number, what: string): Promise<void>;
  close(): Promise<void>;
  /** Reads past the rest of the input (after the end-of-archive marker). */
  drain(): Promise<void>;
}

/** Exact reads over an async iterable of chunks, without copying where it can. */
class ByteSource implements ByteReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private current: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes consumed from the input so far. */
  consumed = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const value = next.value;
      if (value.length === 0) continue;
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.current = this.current.length === 0 ? chunk : Buffer.concat([this.current, chunk]);
      return true;
    }
  }

  /** Exactly n bytes, or null at a clean end of input (nothing left). */
  async read(n: number, what: string): Promise<Buffer | null> {
    while (this.current.length < n) {
      if (!(await this.pull())) {
        if (this.current.length === 0) return null;
        throw truncatedError(`the input ends inside ${what}`);
      }
    }
    const out = this.current.subarray(0, n);
    this.current = this.current.subarray(n);
    this.consumed += n;
    return out;
  }

  async readExact(n: number, what: string): Promise<Buffer> {
    const out = await this.read(n, what);
    if (out === null) throw truncatedError(`the input ends before ${what}`);
    return out;
  }

  /** Yields exactly n bytes as views into the input chunks (valid until the next call). */
  async *stream(n: number, what: string): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.current.length === 0 && !(await this.pull())) throw truncatedError(`the input ends inside ${what}`);
      const k = Math.min(n, this.current.length);
      const out = this.current.subarray(0, k);
      this.current = this.current.subarray(k);
      this.consumed += k;
      n -= k;
      yield out;
    }
  }

  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.stream(n, what)) void _;
  }

  /** Stops reading: lets the source release itself (a Readable is destroyed). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.iterator.return?.();
  }

  /** Drains the rest of the input (after the end-of-archive marker). */
  async drain(): Promise<void> {
    while (await this.pull()) {
      this.consumed += this.current.length;
      this.current = Buffer.alloc(0);
    }
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('latin1', start, end === -1 || end > start + length ? start + length : end);
}

/** Octal (NUL/space padded) or GNU base-256 numeric field. */
function numeric(buf: Buffer, start: number, length: number, field: string): number {
  const first = buf[start]!;
  if (first & 0x80) {
    if (first === 0xff) throw corrupt(`negative ${field} in a header`);
    let value = first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + buf[start + i]!;
    return value;
  }
  const text = buf.toString('latin1', start, start + length).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw corrupt(`bad ${field} field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function verifyChecksum(header: Buffer): void {
  const stored = numeric(header, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed) throw corrupt('header checksum mismatch');
}

/** PAX records: key (binary string) -> raw value bytes. */
function parsePax(data: Buffer, into: Map<string, Buffer>): void {
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    if (space === -1) throw corrupt('bad PAX record');
    const length = parseInt(data.toString('latin1', pos, space), 10);
    if (!Number.isFinite(length) || length <= space - pos + 1 || pos + length > data.length) throw corrupt('bad PAX record length');
    const record = data.subarray(space + 1, pos + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw corrupt('PAX record without "="');
    const key = record.toString('latin1', 0, eq);
    const value = Buffer.from(record.subarray(eq + 1));
    if (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes') {
      // PAX sparse 0.0 repeats these two keys in order: fold them into a 0.1-style map.
      const map = into.get('GNU.sparse.map');
      into.set('GNU.sparse.map', map ? Buffer.concat([map, Buffer.from(','), value]) : value);
    } else {
      into.set(key, value);
    }
    pos += length;
  }
}

function paxNumber(value: Buffer, key: string): number {
  const text = value.toString('latin1');
  if (!/^-?\d+(\.\d*)?$/.test(text)) throw corrupt(`bad PAX ${key} ${JSON.stringify(text)}`);
  return Math.floor(Number(text));
}

/** utf-8 bytes of a PAX string value as a binary string (names in PAX are UTF-8). */
function paxString(value: Buffer): string {
  return value.toString('latin1');
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'chardev',
  '4': 'blockdev',
  '5': 'dir',
  '6': 'fifo',
  S: 'file',
  D: 'dir',
};

function isByteReader(input: AsyncIterable<Uint8Array> | ByteReader): input is ByteReader {
  return typeof (input as ByteReader).readExact === 'function';
}

export class TarInput {
  private readonly source: ByteReader;
  private readonly globalPax = new Map<string, Buffer>();
  /** Stored bytes of the current entry not read yet (plus padding). */
  private pendingData = 0;
  private pendingPadding = 0;
  private current: TarEntry | null = null;
  private finished = false;

  constructor(input: AsyncIterable<Uint8Array> | ByteReader) {
    this.source = isByteReader(input) ? input : new ByteSource(input);
  }

  get bytesConsumed(): number {
    return this.source.consumed;
  }

  /** Same as `bytesConsumed`. */
  get position(): number {
    return this.source.consumed;
  }

  /** Releases the input when giving up before its end. */
  async close(): Promise<void> {
    await this.source.close();
  }

  /** The next entry, or null after the end-of-archive marker. Unread content is skipped. */
  async next(): Promise<TarEntry | null> {
    if (this.finished) return null;
    if (this.pendingData > 0 || this.pendingPadding > 0) {
      await this.source.skip(this.pendingData + this.pendingPadding, 'the data of an entry');
      this.pendingData = 0;
      this.pendingPadding = 0;
    }
    this.current = null;
    const pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const header = await this.source.read(BLOCK, 'a tar header');
      if (header === null) throw truncatedError('no end-of-archive marker (two zero blocks) was found');
      if (header.every((b) => b === 0)) {
        this.finished = true;
        await this.source.drain();
        return null;
      }
      verifyChecksum(header);
      const flag = String.fromCharCode(header[156]!);
      const stored = numeric(header, 124, 12, 'size');
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (stored > MAX_META_SIZE) throw corrupt(`a ${flag} header of ${stored} bytes`);
        const data = await this.source.readExact(stored, 'a PAX or GNU long-name header');
        await this.source.readExact(padding(stored), 'header padding');
        if (flag === 'x') parsePax(data, pax);
        else if (flag === 'g') parsePax(data, this.globalPax);
        else if (flag === 'L') longName = cString(data, 0, data.length);
        else longLink = cString(data, 0, data.length);
        continue;
      }
      if (flag === 'V' || flag === 'N' || flag === 'M') {
        if (flag !== 'V') throw unsupported(`GNU entry type ${flag} (multi-volume archive)`);
        await this.source.skip(stored + padding(stored), 'a volume header');
        continue;
      }
      const type = TYPES[flag];
      if (type === undefined) throw unsupported(`entry type ${JSON.stringify(flag)} of ${JSON.stringify(cString(header, 0, 100))}`);
      return this.decode(header, flag, type, stored, mergePax(this.globalPax, pax), longName, longLink);
    }
  }

  private async decode(
    header: Buffer,
    flag: string,
    type: TarEntryType,
    stored: number,
    pax: Map<string, Buffer>,
    longName: string | undefined,
    longLink: string | undefined,
  ): Promise<TarEntry> {
    const magic = header.toString('latin1', 257, 265);
    let name = cString(header, 0, 100);
    if (magic.startsWith('ustar\0') && header[345] !== 0) name = `${cString(header, 345, 155)}/${name}`;
    if (longName !== undefined) name = longName;
    let linkname = longLink ?? cString(header, 157, 100);
    const entry: TarEntry = {
      name,
      type,
      mode: numeric(header, 100, 8, 'mode') & 0o7777,
      uid: numeric(header, 108, 8, 'uid'),
      gid: numeric(header, 116, 8, 'gid'),
      mtime: numeric(header, 136, 12, 'mtime'),
      size: stored,
      linkname,
      devmajor: type === 'chardev' || type === 'blockdev' ? numeric(header, 329, 8, 'devmajor') : 0,
      devminor: type === 'chardev' || type === 'blockdev' ? numeric(header, 337, 8, 'devminor') : 0,
      xattrs: new Map(),
      sparse: flag === 'S',
    };
    for (const [key, value] of pax) {
      if (key.startsWith('GNU.sparse.')) entry.sparse = true;
      if (key === 'path') entry.name = paxString(value);
      else if (key === 'linkpath') linkname = entry.linkname = paxString(value);
      else if (key === 'size') entry.size = stored = paxNumber(value, key);
      else if (key === 'uid') entry.uid = paxNumber(value, key);
      else if (key === 'gid') entry.gid = paxNumber(value, key);
      else if (key === 'mtime') entry.mtime = paxNumber(value, key);
      else if (key === 'SCHILY.devmajor') entry.devmajor = paxNumber(value, key);
      else if (key === 'SCHILY.devminor') entry.devminor = paxNumber(value, key);
      else if (key.startsWith('SCHILY.xattr.')) entry.xattrs.set(key.slice(13), value);
      else if (key.startsWith('LIBARCHIVE.xattr.')) {
        let decoded: string;
        try {
          decoded = decodeURIComponent(Buffer.from(key.slice(17), 'latin1').toString('utf8'));
        } catch {
          throw corrupt(`a PAX record ${JSON.stringify(key)} has a malformed percent escape`);
        }
        const xname = Buffer.from(decoded, 'utf8').toString('latin1');
        entry.xattrs.set(xname, Buffer.from(value.toString('latin1'), 'base64'));
      }
    }
    this.current = entry;
    this.pendingData = stored;
    this.pendingPadding = padding(stored);
    if (type === 'dir' || type === 'hardlink' || type === 'symlink' || type === 'chardev' || type === 'blockdev' || type === 'fifo') {
      entry.size = 0;
      return entry;
    }
    if (flag === 'S') await this.readOldGnuSparse(header, entry);
    else if (pax.has('GNU.sparse.major') || pax.has('GNU.sparse.map') || pax.has('GNU.sparse.size')) await this.readPaxSparse(pax, entry);
    return entry;
  }

  private async readOldGnuSparse(header: Buffer, entry: TarEntry): Promise<void> {
    const map: Array<[number, number]> = [];
    const take = (block: Buffer, start: number, count: number): void => {
      for (let i = 0; i < count; i++) {
        const at = start + i * 24;
        if (block[at] === 0) return;
        map.push([numeric(block, at, 12, 'sparse offset'), numeric(block, at + 12, 12, 'sparse length')]);
      }
    };
    take(header, 386, 4);
    let extended = header[482] !== 0;
    entry.size = numeric(header, 483, 12, 'sparse real size');
    while (extended) {
      const block = await this.source.readExact(BLOCK, 'a GNU sparse header');
      take(block, 0, 21);
      extended = block[504] !== 0;
    }
    entry.sparseMap = checkSparseMap(map, entry.size, this.pendingData);
  }

  private async readPaxSparse(pax: Map<string, Buffer>, entry: TarEntry): Promise<void> {
    const major = pax.get('GNU.sparse.major')?.toString('latin1');
    const name = pax.get('GNU.sparse.name');
    if (name) entry.name = paxString(name);
    const real = pax.get('GNU.sparse.realsize') ?? pax.get('GNU.sparse.size');
    if (real) entry.size = paxNumber(real, 'GNU.sparse.realsize');
    const numbers: number[] = [];
    if (major === '1') {
      // Sparse 1.0: the map is at the start of the data, decimal lines, padded to a block.
      let text = '';
      let mapBytes = 0;
      let needed = -1;
      while (needed < 0 || numbers.length < needed * 2 + 1) {
        const block = await this.source.readExact(BLOCK, 'a PAX sparse map');
        mapBytes += BLOCK;
        text += block.toString('latin1');
        const lines = text.split('\n');
        text = lines.pop() ?? '';
        for (const line of lines) {
          if (!/^\d+$/.test(line)) throw corrupt('bad PAX sparse map');
          numbers.push(Number(line));
          if (numbers.length === 1) needed = numbers[0]!;
          if (needed >= 0 && numbers.length === needed * 2 + 1) break;
        }
        if (mapBytes > MAX_META_SIZE) throw corrupt('PAX sparse map too large');
      }
      numbers.shift();
      this.pendingData -= mapBytes;
      if (this.pendingData < 0) throw corrupt('PAX sparse map larger than the entry');
    } else {
      const map = pax.get('GNU.sparse.map');
      if (!map) throw corrupt('PAX sparse entry without a map');
      for (const part of map.toString('latin1').split(',')) {
        if (!/^\d+$/.test(part)) throw corrupt('bad GNU.sparse.map');
        numbers.push(Number(part));
      }
    }
    if (numbers.length % 2 !== 0) throw corrupt('odd sparse map');
    const map: Array<[number, number]> = [];
    for (let i = 0; i < numbers.length; i += 2) map.push([numbers[i]!, numbers[i + 1]!]);
    entry.sparseMap = checkSparseMap(map, entry.size, this.pendingData);
  }

  /**
   * The current entry's logical content, in order: bytes (views valid until the next
   * iteration) and holes (numbers of zero bytes). Must be read completely or not at all.
   */
  async *content(): AsyncGenerator<ContentPiece> {
    const entry = this.current;
    if (entry === null) throw new Error('content() without a current entry');
    const what = `the data of ${JSON.stringify(entry.name)}`;
    if (entry.sparseMap === undefined) {
      const n = this.pendingData;
      this.pendingData = 0;
      yield* this.source.stream(n, what);
    } else {
      let at = 0;
      for (const [offset, length] of entry.sparseMap) {
        if (offset > at) yield offset - at;
        this.pendingData -= length;
        yield* this.source.stream(length, what);
        at = offset + length;
      }
      if (entry.size > at) yield entry.size - at;
      if (this.pendingData > 0) await this.source.skip(this.pendingData, what);
      this.pendingData = 0;
    }
    await this.source.readExact(this.pendingPadding, `the padding of ${JSON.stringify(entry.name)}`);
    this.pendingPadding = 0;
  }

  /**
   * The current entry's stored bytes as they follow its header(s) (for a sparse entry: the
   * data segments back to back, without the holes), then its padding is skipped. Views are
   * valid until the next iteration. Must be read completely or not at all.
   */
  async *data(): AsyncGenerator<Buffer> {
    const entry = this.current;
    if (entry === null) throw new Error('data() without a current entry');
    const n = this.pendingData;
    this.pendingData = 0;
    yield* this.source.stream(n, `the data of ${JSON.stringify(displayName(entry.name))}`);
    await this.source.readExact(this.pendingPadding, `the padding of ${JSON.stringify(displayName(entry.name))}`);
    this.pendingPadding = 0;
  }

  /** Skips the current entry's data and padding (`next()` also does this by itself). */
  async skipData(): Promise<void> {
    if (this.pendingData + this.pendingPadding > 0) await this.source.skip(this.pendingData + this.pendingPadding, 'the data of an entry');
    this.pendingData = 0;
    this.pendingPadding = 0;
  }
}

function mergePax(global: Map<string, Buffer>, local: Map<string, Buffer>): Map<string, Buffer> {
  if (global.size === 0) return local;
  const merged = new Map(global);
  for (const [k, v] of local) merged.set(k, v);
  return merged;
}

function checkSparseMap(map: Array<[number, number]>, realSize: number, stored: number): Array<[number, number]> {
  let at = 0;
  let total = 0;
  for (const [offset, length] of map) {
    if (offset < at || offset + length > realSize) throw corrupt('sparse map out of order or beyond the file size');
    at = offset + length;
    total += length;
  }
  if (total > stored) throw corrupt('sparse map names more data than the entry stores');
  return map;
}
