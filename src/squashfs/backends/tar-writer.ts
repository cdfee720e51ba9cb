/**
 * Encodes canonical tar headers for the stream piped into tar2sqfs and sqfstar: ustar
 * headers, plus one PAX header when a field does not fit or xattrs must travel.
 * Owner names are never written (sqfstar would map them through the host's passwd);
 * PAX mtime is never written (sqfstar 4.5.1 rejects a PAX mtime without a fraction).
 */
import { BLOCK, type TarEntry, type TarEntryType } from '../writer/tar-input.js';

/** A tar entry as the host tools get it: the parsed entry's fields under its normalised name. */
export type CanonicalEntry = Pick<TarEntry, 'type' | 'mode' | 'uid' | 'gid' | 'size' | 'linkname' | 'devmajor' | 'devminor' | 'xattrs'> & {
  /** Normalised name (binary string); "" is the root and is written as "./". */
  path: string;
  /** Seconds, already clamped to 0..2^32-1. */
  mtime: number;
};

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
const MAX_OCTAL_11 = 0o77777777777;

function writeOctal(block: Buffer, start: number, digits: number, value: number): void {
  block.write(`${value.toString(8).padStart(digits, '0')}\0`, start, digits + 1, 'latin1');
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length), 'latin1'), body]);
}

function headerBlock(name: string, typeflag: string, fields: {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'latin1');
  writeOctal(block, 100, 7, fields.mode);
  writeOctal(block, 108, 7, fields.uid);
  writeOctal(block, 116, 7, fields.gid);
  writeOctal(block, 124, 11, fields.size);
  writeOctal(block, 136, 11, fields.mtime);
  block.write(typeflag, 156, 1, 'latin1');
  block.write(fields.linkname, 157, 100, 'latin1');
  block.write('ustar\x0000', 257, 8, 'latin1');
  writeOctal(block, 329, 7, fields.devmajor);
  writeOctal(block, 337, 7, fields.devminor);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

export interface EncodeOptions {
  /**
   * Link targets over 100 bytes as GNU 'K' entries rather than PAX linkpath records:
   * sqfstar 4.5.1 strips leading "/", "./" and "../" from a PAX linkpath (turning long
   * symlink targets into other targets) but keeps a GNU long link as it is.
   */
  gnuLongLinks?: boolean;
}

/** Header bytes (GNU long link / PAX header if needed + ustar header) for one entry. */
export function encodeHeader(entry: CanonicalEntry, options: EncodeOptions = {}): Buffer {
  let name = entry.path === '' ? './' : entry.path;
  if (entry.type === 'dir' && !name.endsWith('/')) name += '/';
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
  const fields = {
    mode: entry.mode & 0o7777,
    uid: Math.min(entry.uid, MAX_OCTAL_7),
    gid: Math.min(entry.gid, MAX_OCTAL_7),
    size: Math.min(entry.size, MAX_OCTAL_11),
    mtime: entry.mtime,
    linkname: entry.linkname.slice(0, 100),
    devmajor: entry.devmajor,
    devminor: entry.devminor,
  };
  const ustar = headerBlock(name.slice(0, 100), TYPEFLAG[entry.type], fields);
  if (records.length === 0) return prefix.length ? Buffer.concat([...prefix, ustar]) : ustar;
  const pax = Buffer.concat(records);
  const paxName = `PaxHeaders/${name.replace(/\/$/, '').split('/').pop() ?? ''}`.slice(0, 100);
  const paxHeader = headerBlock(paxName, 'x', { ...fields, size: pax.length, linkname: '' });
  return Buffer.concat([...prefix, paxHeader, pax, padding(pax.length), ustar]);
}

/** Two zero blocks. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}
