/**
 * Rewrites a tar deterministically without touching any entry's content: entries sorted
 * (parents first, then byte order), mtime = SOURCE_DATE_EPOCH, uid/gid 0, no user/group
 * names, no PAX atime/ctime, modes kept. Engines put volatile mtimes (save time, or the
 * image's created time) on the outer entries of their save output; the layer tars inside
 * are byte-exact (engines rebuild them with tar-split), so this is all that differs between
 * two saves.
 */
import { createReadStream } from 'node:fs';
import { InputError } from '../../errors.js';
import { binaryString, writeTarFile, type TarWriteEntry } from './encode.js';
import { compareTarPaths, E_ARCHIVE_INVALID, indexTarFile, type TarIndexEntry } from './file-index.js';

export interface TarSource {
  entry: TarIndexEntry;
  /** File holding the data at entry.offset. */
  file: string;
}

function* writeEntries(sources: readonly TarSource[], mtime: number): Generator<TarWriteEntry> {
  for (const { entry, file } of sources) {
    const linked = entry.type === 'symlink' || entry.type === 'hardlink';
    yield {
      path: binaryString(entry.name),
      type: entry.type,
      // Symlink modes mean nothing on Linux and engines disagree (0000, 0777): always 0777.
      mode: entry.type === 'symlink' ? 0o777 : entry.mode,
      mtime,
      size: entry.type === 'file' ? entry.size : 0,
      linkname: linked ? binaryString(entry.linkname) : '',
      ...(entry.type === 'file' && entry.size > 0 ? { content: createReadStream(file, { start: entry.offset, end: entry.offset + entry.size - 1 }) } : {}),
    };
  }
}

/** Writes `sources` (already in their final order) as a tar at `outPath`. */
export async function writeTarFromSources(outPath: string, sources: readonly TarSource[], mtimeSeconds: number): Promise<void> {
  await writeTarFile(outPath, writeEntries(sources, mtimeSeconds));
}

/** Normalizes the tar at `inPath` into `outPath`; returns the entries in their new order (offsets are into `inPath`). */
export async function normalizeTar(inPath: string, outPath: string, mtimeSeconds: number): Promise<TarIndexEntry[]> {
  const entries = await indexTarFile(inPath);
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new InputError(E_ARCHIVE_INVALID, `${inPath}: entry ${e.name} appears twice`);
    seen.add(e.name);
  }
  const sorted = [...entries].sort((a, b) => compareTarPaths(a.name, b.name));
  const placed = new Set<string>();
  for (const e of sorted) {
    if (e.type === 'hardlink' && !placed.has(e.linkname.replace(/^\.\//, ''))) {
      throw new InputError(E_ARCHIVE_INVALID, `${inPath}: hard link ${e.name} would come before its target ${e.linkname}`);
    }
    placed.add(e.name);
  }
  await writeTarFromSources(outPath, sorted.map((entry) => ({ entry, file: inPath })), mtimeSeconds);
  return sorted;
}
