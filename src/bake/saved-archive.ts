/**
 * Reads what an engine's save (docker-archive) holds: manifest.json, each image's config and
 * layer entries (symlinks resolved, as podman links `<id>/layer.tar` to `../<diffid>.tar`).
 */
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { InputError } from '../errors.js';
import type { TarIndexEntry } from './tar-index.js';

export interface SavedImage {
  repoTags: string[];
  configName: string;
  configBytes: Buffer;
  config: { os?: string; architecture?: string; variant?: string; rootfs?: { diff_ids?: string[] } };
  /** The file entries holding each layer, in order. */
  layers: TarIndexEntry[];
}

async function readEntry(file: string, entry: TarIndexEntry): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const data = Buffer.alloc(entry.size);
    await fh.read(data, 0, entry.size, entry.offset);
    return data;
  } finally {
    await fh.close();
  }
}

export async function readSavedArchive(file: string, entries: readonly TarIndexEntry[]): Promise<SavedImage[]> {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const fail = (why: string): never => {
    throw new InputError('E_ARCHIVE_INVALID', `engine save output ${file}: ${why}`);
  };
  const resolveFile = (name: string): TarIndexEntry => {
    let current = name;
    for (let hops = 0; hops < 10; hops++) {
      const e = byName.get(current) ?? fail(`no entry ${current}`);
      if (e.type === 'file') return e;
      if (e.type === 'symlink') current = posix.normalize(posix.join(posix.dirname(current), e.linkname));
      else if (e.type === 'link') current = e.linkname.replace(/^\.\//, '');
      else fail(`${current} is a ${e.type}`);
    }
    return fail(`too many links from ${name}`);
  };
  const manifestEntry = resolveFile('manifest.json');
  let manifest: { Config: string; RepoTags?: string[] | null; Layers: string[] }[];
  try {
    manifest = JSON.parse((await readEntry(file, manifestEntry)).toString('utf8'));
  } catch (error) {
    throw new InputError('E_ARCHIVE_INVALID', `engine save output ${file}: manifest.json is not JSON`, { cause: error });
  }
  const images: SavedImage[] = [];
  for (const m of manifest) {
    const configBytes = await readEntry(file, resolveFile(m.Config));
    let config: SavedImage['config'];
    try {
      config = JSON.parse(configBytes.toString('utf8')) as SavedImage['config'];
    } catch (error) {
      throw new InputError('E_ARCHIVE_INVALID', `engine save output ${file}: config ${m.Config} is not JSON`, { cause: error });
    }
    images.push({
      repoTags: m.RepoTags ?? [],
      configName: m.Config,
      configBytes,
      config,
      layers: m.Layers.map(resolveFile),
    });
  }
  return images;
}
