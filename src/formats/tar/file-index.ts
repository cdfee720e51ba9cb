/**
 * The table of contents of a tar file with each entry's data offset, so entries can be
 * copied, hashed or rewritten in another order without extracting or buffering them. The
 * one decoder (decode.ts) reads the headers; a seeking reader skips entry data unread.
 * Engine save output and ctrbake's own archives hold only files, directories and links:
 * anything else (devices, FIFOs, sparse files) is refused.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CtrbakeError, InputError } from '../../errors.js';
import { displayName, TarInput, type ByteReader, type TarEntryType } from './decode.js';
import { truncatedError } from './errors.js';

export const E_ARCHIVE_INVALID = 'E_ARCHIVE_INVALID';

export interface TarIndexEntry {
  /** UTF-8, without a leading "./" or a trailing slash. */
  name: string;
  type: Extract<TarEntryType, 'file' | 'dir' | 'symlink' | 'hardlink'>;
  mode: number;
  size: number;
  linkname: string;
  /** Byte offset of the entry's data in the file. */
  offset: number;
}

const CHUNK = 1024 * 1024;

/** Reads a file at a moving position; skips seek instead of reading. */
class FileReader implements ByteReader {
  consumed = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  async read(n: number, what: string): Promise<Buffer | null> {
    if (this.consumed === this.size && n > 0) return null;
    return this.readExact(n, what);
  }

  async readExact(n: number, what: string): Promise<Buffer> {
    if (this.consumed + n > this.size) throw truncatedError(`the input ends inside ${what}`);
    const out = Buffer.alloc(n);
    if (n > 0) await this.fh.read(out, 0, n, this.consumed);
    this.consumed += n;
    return out;
  }

  async *stream(n: number, what: string): AsyncGenerator<Buffer> {
    while (n > 0) {
      const k = Math.min(n, CHUNK);
      n -= k;
      yield await this.readExact(k, what);
    }
  }

  async skip(n: number, what: string): Promise<void> {
    if (this.consumed + n > this.size) throw truncatedError(`the input ends inside ${what}`);
    this.consumed += n;
  }

  async close(): Promise<void> {}

  async drain(): Promise<void> {
    this.consumed = this.size;
  }
}

function stripName(name: string): string {
  return name.replace(/^\.\//, '').replace(/\/+$/, '');
}

/** Lists every entry of the tar at `path` (E_ARCHIVE_INVALID when it is not one ctrbake can use). */
export async function indexTarFile(path: string): Promise<TarIndexEntry[]> {
  const fh = await open(path, 'r');
  const reader = new FileReader(fh, (await fh.stat()).size);
  const fail = (why: string, cause?: unknown): never => {
    throw new InputError(E_ARCHIVE_INVALID, `${path}: not a tar archive ctrbake can normalize (${why} at byte ${reader.consumed})`, cause === undefined ? {} : { cause });
  };
  try {
    const tar = new TarInput(reader);
    const entries: TarIndexEntry[] = [];
    for (;;) {
      let entry;
      try {
        entry = await tar.next();
      } catch (error) {
        if (error instanceof CtrbakeError) fail(error.message, error);
        throw error;
      }
      if (entry === null) return entries;
      const { type } = entry;
      if (type !== 'file' && type !== 'dir' && type !== 'symlink' && type !== 'hardlink') return fail(`unsupported entry type ${type}`);
      if (entry.sparse) fail('unsupported sparse entry');
      const rawName = displayName(entry.name);
      const name = stripName(rawName);
      // The archive root ("./"): nothing to keep.
      if ((name === '' || name === '.') && type === 'dir') continue;
      if (name === '' || name.split('/').includes('..') || name.startsWith('/')) fail(`unsafe entry name ${JSON.stringify(rawName)}`);
      entries.push({ name, type, mode: entry.mode, size: entry.size, linkname: displayName(entry.linkname), offset: reader.consumed });
    }
  } finally {
    await fh.close();
  }
}

/** The bytes of one entry of `file`. */
export async function readTarEntry(file: string, entry: Pick<TarIndexEntry, 'offset' | 'size'>): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const data = Buffer.alloc(entry.size);
    await fh.read(data, 0, entry.size, entry.offset);
    return data;
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
