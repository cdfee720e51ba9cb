/**
 * Reads the table of contents of a tar file with each entry's data offset, so entries can be
 * rewritten in another order without extracting or buffering them. Handles ustar (prefix
 * field), PAX extended headers (path, linkpath, size) and GNU long names; base-256 sizes.
 * Engine save output and ctrbake's own archives use nothing else.
 */
import { open } from 'node:fs/promises';
import { InputError } from '../errors.js';

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link';

export interface TarIndexEntry {
  /** Without a trailing slash. */
  name: string;
  type: TarEntryType;
  mode: number;
  size: number;
  linkname: string;
  /** Byte offset of the entry's data in the file. */
  offset: number;
}

const BLOCK = 512;

function cString(buf: Buffer, start: number, length: number): string {
  const slice = buf.subarray(start, start + length);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul === -1 ? slice.length : nul).toString('utf8');
}

function numeric(buf: Buffer, start: number, length: number): number {
  if (buf[start]! & 0x80) {
    // base-256: big-endian, first byte's top bit is the marker
    let value = buf[start]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + buf[start + i]!;
    return value;
  }
  const text = cString(buf, start, length).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number(data.subarray(pos, space).toString());
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'directory', '2': 'symlink', '1': 'link' };

/** Lists every entry of the tar at `path`; anything but files, dirs and links is an error. */
export async function indexTar(path: string): Promise<TarIndexEntry[]> {
  const fh = await open(path, 'r');
  try {
    const { size: fileSize } = await fh.stat();
    const entries: TarIndexEntry[] = [];
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    const fail = (why: string): never => {
      throw new InputError('E_ARCHIVE_INVALID', `${path}: not a tar archive ctrbake can normalize (${why} at byte ${pos})`);
    };
    for (;;) {
      if (pos + BLOCK > fileSize) fail('truncated');
      await fh.read(header, 0, BLOCK, pos);
      if (header.every((b) => b === 0)) break;
      const checksum = numeric(header, 148, 8);
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
      if (sum !== checksum) fail('bad header checksum');
      const typeflag = String.fromCharCode(header[156]!);
      const size = pax.size !== undefined ? Number(pax.size) : numeric(header, 124, 12);
      const dataOffset = pos + BLOCK;
      const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
      if (next > fileSize) fail('truncated entry');
      const readData = async () => {
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataOffset);
        return data;
      };
      if (typeflag === 'x') {
        pax = { ...pax, ...parsePax(await readData()) };
        pos = next;
        continue;
      }
      if (typeflag === 'g') {
        pos = next;
        continue;
      }
      if (typeflag === 'L' || typeflag === 'K') {
        const text = cString(await readData(), 0, size);
        if (typeflag === 'L') longName = text;
        else longLink = text;
        pos = next;
        continue;
      }
      const type = TYPES[typeflag];
      if (!type) fail(`unsupported entry type ${JSON.stringify(typeflag)}`);
      const magic = cString(header, 257, 6);
      const prefix = magic.startsWith('ustar') ? cString(header, 345, 155) : '';
      const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      const name = rawName.replace(/^\.\//, '').replace(/\/+$/, '');
      if ((name === '' || name === '.') && type === 'directory') {
        // The archive root ("./"): nothing to keep.
        pax = {};
        longName = undefined;
        longLink = undefined;
        pos = next;
        continue;
      }
      if (name === '' || name.split('/').includes('..') || name.startsWith('/')) fail(`unsafe entry name ${JSON.stringify(rawName)}`);
      entries.push({
        name,
        type: type!,
        mode: numeric(header, 100, 8) & 0o7777,
        size: type === 'file' ? size : 0,
        linkname: pax.linkpath ?? longLink ?? cString(header, 157, 100),
        offset: dataOffset,
      });
      pax = {};
      longName = undefined;
      longLink = undefined;
      pos = next;
    }
    return entries;
  } finally {
    await fh.close();
  }
}

/** Sort key order: parents before children, then component-wise byte order. */
export function compareTarPaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return Buffer.compare(Buffer.from(pa[i]!), Buffer.from(pb[i]!));
  }
  return pa.length - pb.length;
}
