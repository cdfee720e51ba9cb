/**
 * Rewrites an engine's save output deterministically without touching any entry's content:
 * entries sorted (parents first, then byte order), mtime = SOURCE_DATE_EPOCH, uid/gid 0, no
 * user/group names, no PAX atime/ctime, modes kept. Engines put volatile mtimes (save time,
 * or the image's created time) on the outer entries; the layer tars inside are byte-exact
 * (engines rebuild them with tar-split), so this is all that differs between two saves.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { pack, type Pack } from 'tar-stream';
import { InputError } from '../errors.js';
import { compareTarPaths, indexTar, type TarIndexEntry } from './tar-index.js';

export interface TarSource {
  entry: TarIndexEntry;
  /** File holding the data at entry.offset. */
  file: string;
}

/** Writes `sources` (already in their final order) as a tar at `outPath`. */
export async function writeTarFromSources(outPath: string, sources: readonly TarSource[], mtimeSeconds: number): Promise<void> {
  const mtime = new Date(mtimeSeconds * 1000);
  const p: Pack = pack();
  const written = pipeline(p, createWriteStream(outPath, { mode: 0o644 }));
  try {
    for (const { entry, file } of sources) {
      // Symlink modes mean nothing on Linux and engines disagree (0000, 0777): always 0777.
      const header = { name: entry.name, mode: entry.type === 'symlink' ? 0o777 : entry.mode, uid: 0, gid: 0, uname: '', gname: '', mtime };
      if (entry.type === 'file' && entry.size > 0) {
        const stream = p.entry({ ...header, type: 'file', size: entry.size });
        await pipeline(createReadStream(file, { start: entry.offset, end: entry.offset + entry.size - 1 }), stream);
      } else if (entry.type === 'file') {
        await new Promise<void>((resolve, reject) => {
          p.entry({ ...header, type: 'file', size: 0 }, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
        });
      } else {
        await new Promise<void>((resolve, reject) => {
          p.entry({ ...header, type: entry.type, ...(entry.type === 'symlink' || entry.type === 'link' ? { linkname: entry.linkname } : {}) }, (err) => (err ? reject(err) : resolve()));
        });
      }
    }
    p.finalize();
  } catch (error) {
    p.destroy(error as Error);
    await written.catch(() => undefined);
    throw error;
  }
  await written;
}

/** Normalizes the tar at `inPath` into `outPath`; returns the entries in their new order (offsets are into `inPath`). */
export async function normalizeTar(inPath: string, outPath: string, mtimeSeconds: number): Promise<TarIndexEntry[]> {
  const entries = await indexTar(inPath);
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new InputError('E_ARCHIVE_INVALID', `${inPath}: entry ${e.name} appears twice`);
    seen.add(e.name);
  }
  const sorted = [...entries].sort((a, b) => compareTarPaths(a.name, b.name));
  const placed = new Set<string>();
  for (const e of sorted) {
    if (e.type === 'link' && !placed.has(e.linkname.replace(/^\.\//, ''))) {
      throw new InputError('E_ARCHIVE_INVALID', `${inPath}: hard link ${e.name} would come before its target ${e.linkname}`);
    }
    placed.add(e.name);
  }
  await writeTarFromSources(outPath, sorted.map((entry) => ({ entry, file: inPath })), mtimeSeconds);
  return sorted;
}
