/**
 * The project's one tar encoder: ustar headers, plus one PAX header when a field does not
 * fit or xattrs must travel. Deterministic: the same entries give the same bytes.
 *
 * Header fields are laid out as tar-stream laid them out (octal digits, a space, a NUL), so
 * the archives bake writes kept their bytes when tar-stream was dropped. Owner names are
 * never written (sqfstar would map them through the host's passwd); a PAX mtime is never
 * written (sqfstar 4.5.1 rejects a PAX mtime without a fraction).
 *
 * Names and link targets are binary strings (latin1, one char per byte), as decode.ts
 * yields them; `binaryString` converts text.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BLOCK, type TarEntry, type TarEntryType } from './decode.js';
import { corruptError } from './errors.js';

/** One entry's header as written. */
export type TarHeader = Pick<TarEntry, 'type' | 'mode' | 'uid' | 'gid' | 'size' | 'linkname' | 'devmajor' | 'devminor' | 'xattrs'> & {
  /** Name (binary string), written as given (a directory's trailing "/" is the caller's choice); "" is the root, written as "./". */
  path: string;
  /** Whole seconds, 0..2^33-1. */
  mtime: number;
};

/** An entry to encode: a header (omitted fields are 0, "" or no xattrs) and, for files, its content. */
export interface TarWriteEntry extends Partial<Omit<TarHeader, 'path' | 'type' | 'mode'>> {
  path: string;
  type: TarEntryType;
  mode: number;
  /** Exactly `size` bytes; streamed, never buffered whole. Absent: `size` must be 0. */
  content?: Buffer | AsyncIterable<Uint8Array>;
}

export interface EncodeOptions {
  /**
   * Link targets over 100 bytes as GNU 'K' entries rather than PAX linkpath records:
   * sqfstar 4.5.1 strips leading "/", "./" and "../" from a PAX linkpath (turning long
   * symlink targets into other targets) but keeps a GNU long link as it is.
   */
  gnuLongLinks?: boolean;
  /**
   * Numbers as POSIX, GNU tar and Python's tarfile write them (every digit, then a NUL;
   * device numbers only for devices) and the end padded to 20-block records, so an archive
   * another tool also writes (the BitBake DL_DIR image archive) comes out byte for byte the same.
   */
  posix?: boolean;
}

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  chardev: '3',
  blockdev: '4',
  dir: '5',
  fifo: '6',
};

const MAX_OCTAL_7 = 0o7777777;
/** GNU tar's and Python's default record: 20 blocks. */
const RECORD = 20 * BLOCK;
const MAX_OCTAL_11 = 0o77777777777;

/** UTF-8 text as a binary string (the form names take in headers). */
export function binaryString(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * An 8-byte field as 6 digits, space, NUL (7 digits and a NUL when larger), or a 12-byte
 * field as 11 digits and a space.
 */
function writeOctal(block: Buffer, start: number, width: 8 | 12, value: number): void {
  const digits = value.toString(8);
  const text = width === 12 ? `${digits.padStart(11, '0')} ` : digits.length <= 6 ? `${digits.padStart(6, '0')} \0` : `${digits.padStart(7, '0')}\0`;
  block.write(text, start, width, 'latin1');
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length), 'latin1'), body]);
}

type Fields = Omit<TarHeader, 'path' | 'type' | 'xattrs'>;

/** Every digit of the field but the last byte, then a NUL (POSIX, GNU tar, Python). */
function writePosixOctal(block: Buffer, start: number, width: 8 | 12, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, start, width, 'latin1');
}

function headerBlock(name: string, typeflag: string, fields: Fields, posix = false): Buffer {
  const octal = posix ? writePosixOctal : writeOctal;
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'latin1');
  octal(block, 100, 8, fields.mode);
  octal(block, 108, 8, fields.uid);
  octal(block, 116, 8, fields.gid);
  octal(block, 124, 12, fields.size);
  octal(block, 136, 12, fields.mtime);
  block.write(typeflag, 156, 1, 'latin1');
  block.write(fields.linkname, 157, 100, 'latin1');
  block.write('ustar\x0000', 257, 8, 'latin1');
  if (!posix || typeflag === '3' || typeflag === '4') {
    octal(block, 329, 8, fields.devmajor);
    octal(block, 337, 8, fields.devminor);
  }
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, '0')}${posix ? '\0 ' : ' \0'}`, 148, 8, 'latin1');
  return block;
}

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** Header bytes (GNU long link / PAX header if needed + ustar header) for one entry. */
export function encodeHeader(entry: TarHeader, options: EncodeOptions = {}): Buffer {
  const name = entry.path === '' ? './' : entry.path;
  const records: Buffer[] = [];
  if (name.length > 100) records.push(paxRecord('path', Buffer.from(name, 'latin1')));
  const prefix: Buffer[] = [];
  if (entry.linkname.length > 100) {
    if (options.gnuLongLinks) {
      const data = Buffer.from(`${entry.linkname}\0`, 'latin1');
      const header = headerBlock('././@LongLink', 'K', { mode: 0, uid: 0, gid: 0, size: data.length, mtime: 0, linkname: '', devmajor: 0, devminor: 0 });
      prefix.push(header, data, padding(data.length));
    } else {
      records.push(paxRecord('linkpath', Buffer.from(entry.linkname, 'latin1')));
    }
  }
  if (entry.uid > MAX_OCTAL_7) records.push(paxRecord('uid', Buffer.from(String(entry.uid))));
  if (entry.gid > MAX_OCTAL_7) records.push(paxRecord('gid', Buffer.from(String(entry.gid))));
  if (entry.size > MAX_OCTAL_11) records.push(paxRecord('size', Buffer.from(String(entry.size))));
  for (const [key, value] of [...entry.xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  }
  const fields: Fields = {
    mode: entry.mode & 0o7777,
    uid: Math.min(entry.uid, MAX_OCTAL_7),
    gid: Math.min(entry.gid, MAX_OCTAL_7),
    size: Math.min(entry.size, MAX_OCTAL_11),
    mtime: entry.mtime,
    linkname: entry.linkname.slice(0, 100),
    devmajor: entry.devmajor,
    devminor: entry.devminor,
  };
  const ustar = headerBlock(name.slice(0, 100), TYPEFLAG[entry.type], fields, options.posix);
  if (records.length === 0) return prefix.length ? Buffer.concat([...prefix, ustar]) : ustar;
  const pax = Buffer.concat(records);
  const paxName = `PaxHeaders/${name.replace(/\/$/, '').split('/').pop() ?? ''}`.slice(0, 100);
  const paxHeader = headerBlock(paxName, 'x', { ...fields, size: pax.length, linkname: '' }, options.posix);
  return Buffer.concat([...prefix, paxHeader, pax, padding(pax.length), ustar]);
}

/** Two zero blocks. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

function headerOf(entry: TarWriteEntry): TarHeader {
  return {
    path: entry.path,
    type: entry.type,
    mode: entry.mode,
    uid: entry.uid ?? 0,
    gid: entry.gid ?? 0,
    mtime: entry.mtime ?? 0,
    size: entry.type === 'file' ? (entry.size ?? 0) : 0,
    linkname: entry.linkname ?? '',
    devmajor: entry.devmajor ?? 0,
    devminor: entry.devminor ?? 0,
    xattrs: entry.xattrs ?? new Map(),
  };
}

/**
 * A whole tar stream: each entry's header, its content (checked against its size) and
 * padding, then the end-of-archive marker. Pull-based, so backpressure reaches the sources.
 */
export function encodeTar(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>, options: EncodeOptions = {}): AsyncGenerator<Buffer> {
  return encodeTarRecords(entries, options);
}

async function* encodeTarEntries(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>, options: EncodeOptions): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    const header = headerOf(entry);
    yield encodeHeader(header, options);
    let written = 0;
    if (entry.content !== undefined) {
      const chunks = Buffer.isBuffer(entry.content) ? [entry.content] : entry.content;
      for await (const chunk of chunks) {
        written += chunk.length;
        if (written > header.size) break;
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
    }
    if (written !== header.size) {
      throw corruptError(`the content of ${JSON.stringify(entry.path)} has ${written > header.size ? 'more' : 'fewer'} bytes than the ${header.size} its header says (did the file change while it was read?)`);
    }
    yield padding(header.size);
  }
  yield endOfArchive();
}

/** With `posix`, the stream padded with zeros to whole 20-block records, as GNU tar and Python end it. */
async function* encodeTarRecords(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>, options: EncodeOptions): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of encodeTarEntries(entries, options)) {
    total += chunk.length;
    yield chunk;
  }
  if (options.posix && total % RECORD !== 0) yield Buffer.alloc(RECORD - (total % RECORD));
}

/** Writes `entries` as a tar file at `path` (created with `mode`). */
export async function writeTarFile(path: string, entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>, mode = 0o644, options: EncodeOptions = {}): Promise<void> {
  await pipeline(Readable.from(encodeTar(entries, options)), createWriteStream(path, { mode }));
}
