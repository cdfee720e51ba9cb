/**
 * The docker-archive format (what `docker save` and `podman save --format docker-archive`
 * write): `manifest.json` (one item per image: Config, RepoTags, Layers), one config JSON
 * per image and one file per layer, possibly reached through symlinks (podman links
 * `<id>/layer.tar` to `../<diffid>.tar`). Its reader, writer and validation live here;
 * what a stage does with an archive (normalise it, check it, move it into the cache) stays
 * in that stage.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { InputError } from '../errors.js';
import { E_ARCHIVE_INVALID, readTarEntry, writeTarFile, type TarIndexEntry, type TarWriteEntry } from './tar/index.js';

/** One item of manifest.json. */
export interface DockerManifestItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** Parses and validates manifest.json; `fail` turns a reason naming the field into the caller's error. */
export function parseDockerManifest(bytes: Buffer | string, fail: (why: string, cause?: unknown) => Error): DockerManifestItem[] {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString());
  } catch (error) {
    throw fail('manifest.json is not JSON', error);
  }
  if (!Array.isArray(value)) throw fail('manifest.json is not a list of images');
  return value.map((item: unknown, i) => {
    const m = (item ?? {}) as Record<string, unknown>;
    if (typeof m.Config !== 'string') throw fail(`manifest.json[${i}].Config is not a file name`);
    if (!Array.isArray(m.Layers) || !m.Layers.every((l) => typeof l === 'string')) throw fail(`manifest.json[${i}].Layers is not a list of file names`);
    const tags = m.RepoTags ?? [];
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw fail(`manifest.json[${i}].RepoTags is not a list of references`);
    return { Config: m.Config, RepoTags: tags as string[], Layers: m.Layers as string[] };
  });
}

/** manifest.json's bytes for `images`, as ctrbake writes it. */
export function formatDockerManifest(items: readonly DockerManifestItem[]): Buffer {
  return Buffer.from(JSON.stringify(items.map((i) => ({ Config: i.Config, RepoTags: i.RepoTags, Layers: i.Layers }))));
}

/** The path a symlink at `name` to `target` names, inside the archive. */
export function symlinkTarget(name: string, target: string): string {
  return posix.normalize(posix.join(posix.dirname(name), target)).replace(/^\.\//, '');
}

export interface ArchiveLayerInput {
  /** File holding the layer (tar, or gzip/zstd-compressed tar). */
  path: string;
  /** Entry name in the archive, e.g. "<hex>.tar.gz" or "<hex>/layer.tar". */
  name: string;
}

export interface ArchiveImageInput {
  /** The image config's bytes; its entry is named `<sha256 hex>.json`. */
  configBytes: Buffer;
  configName: string;
  layers: ArchiveLayerInput[];
  /** Tags to give the image on load, e.g. ["127.0.0.1:5000/ctrbake/sample:1.0"]. */
  repoTags: string[];
}

async function* archiveEntries(images: readonly ArchiveImageInput[], mtime: number): AsyncGenerator<TarWriteEntry> {
  const file = (path: string, size: number, content: TarWriteEntry['content']): TarWriteEntry => ({ path, type: 'file', mode: 0o644, mtime, size, content });
  const done = new Set<string>();
  for (const image of images) {
    if (!done.has(image.configName)) {
      yield file(image.configName, image.configBytes.length, image.configBytes);
      done.add(image.configName);
    }
    for (const layer of image.layers) {
      if (done.has(layer.name)) continue;
      yield file(layer.name, (await stat(layer.path)).size, createReadStream(layer.path));
      done.add(layer.name);
    }
  }
  const manifest = formatDockerManifest(images.map((i) => ({ Config: i.configName, RepoTags: i.repoTags, Layers: i.layers.map((l) => l.name) })));
  yield file('manifest.json', manifest.length, manifest);
}

/**
 * Writes `images` as one docker-archive at `outPath`, for loading into an engine. Layer
 * files may be compressed: `docker load` and podman's docker-archive transport decompress
 * them and check each against the config's rootfs.diff_ids. Deterministic: fixed entry
 * order, mtime, owner and mode.
 */
export async function writeDockerArchive(outPath: string, images: readonly ArchiveImageInput[], mtimeSeconds = 0): Promise<void> {
  await writeTarFile(outPath, archiveEntries(images, mtimeSeconds), 0o600);
}

export interface SavedImage {
  repoTags: string[];
  configName: string;
  configBytes: Buffer;
  config: { os?: string; architecture?: string; variant?: string; rootfs?: { diff_ids?: string[] } };
  /** The file entries holding each layer, in order. */
  layers: TarIndexEntry[];
}

/** Reads the images of the docker-archive `file`, whose entries `indexTarFile` listed. */
export async function readDockerArchive(file: string, entries: readonly TarIndexEntry[]): Promise<SavedImage[]> {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const fail = (why: string, cause?: unknown): Error => new InputError(E_ARCHIVE_INVALID, `engine save output ${file}: ${why}`, cause === undefined ? {} : { cause });
  const resolveFile = (name: string): TarIndexEntry => {
    let current = name;
    for (let hops = 0; hops < 10; hops++) {
      const e = byName.get(current);
      if (!e) throw fail(`no entry ${current}`);
      if (e.type === 'file') return e;
      if (e.type === 'symlink') current = symlinkTarget(current, e.linkname);
      else if (e.type === 'hardlink') current = e.linkname.replace(/^\.\//, '');
      else throw fail(`${current} is a ${e.type === 'dir' ? 'directory' : e.type}`);
    }
    throw fail(`too many links from ${name}`);
  };
  const manifest = parseDockerManifest(await readTarEntry(file, resolveFile('manifest.json')), fail);
  const images: SavedImage[] = [];
  for (const m of manifest) {
    const configBytes = await readTarEntry(file, resolveFile(m.Config));
    let config: SavedImage['config'];
    try {
      config = JSON.parse(configBytes.toString('utf8')) as SavedImage['config'];
    } catch (error) {
      throw fail(`config ${m.Config} is not JSON`, error);
    }
    images.push({ repoTags: m.RepoTags, configName: m.Config, configBytes, config, layers: m.Layers.map(resolveFile) });
  }
  return images;
}
