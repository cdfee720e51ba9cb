/**
 * Turns a stopped private dockerd's data-root into a store that holds only what the engine
 * needs to use the loaded images, with content-derived names instead of random ones.
 *
 * dockerd (20.10 .. 26.x, graph drivers) keeps images in:
 *   image/<driver>/repositories.json             references -> image id
 *   image/<driver>/imagedb/content/sha256/<id>   image configs
 *   image/<driver>/imagedb/metadata/sha256/<id>/ parent, lastUpdated (a timestamp: dropped)
 *   image/<driver>/layerdb/sha256/<chain id>/    diff, parent, size, tar-split.json.gz, cache-id
 *   image/<driver>/distribution/                 registry digest mappings (pulls only)
 *   overlay2/<cache id>/{diff,link,lower,work,committed}, overlay2/l/<link> -> ../<cache id>/diff
 *   vfs/dir/<cache id>/                          the full root of each layer stack
 * The cache id (64 random hex digits) and the overlay2 link name (26 random base32 chars)
 * are rewritten from the chain id, in layerdb cache-id, the layer dirs, link, lower and l/.
 * Everything else in the data-root is runtime state and is removed: containers, network,
 * runtimes, tmp, buildkit, swarm, plugins, volumes, trust, containerd, engine-id,
 * layerdb/mounts, layerdb/tmp, backingFsBlockDev.
 */
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { layerCacheId, overlayLinkName } from '../builder/store-ids.js';
import { relinkOverlayLayers } from './store-normalize.js';

export type DockerStoreDriver = 'overlay2' | 'vfs';

export interface DockerStoreImage {
  /** "sha256:<hex>" config digest. */
  id: string;
  /** References as repositories.json names them, sorted. */
  references: string[];
  diffIds: string[];
}

export interface NormalizedStore {
  /** Top-level names under the root that make up the store, sorted. */
  members: string[];
  images: DockerStoreImage[];
  /** Number of layer directories kept. */
  layerCount: number;
}

interface LayerRecord {
  chainHex: string;
  oldCacheId: string;
  newCacheId: string;
}

function layoutError(root: string, what: string, cause?: unknown): InputError {
  return new InputError(
    'E_STORE_LAYOUT',
    `the engine's data-root ${root} does not look as ctrbake expects: ${what}; this engine version may store images differently (see docs/engine-compat.md)`,
    cause === undefined ? {} : { cause },
  );
}

async function readText(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

async function keepOnly(dir: string, keep: ReadonlySet<string>): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const name of entries) {
    if (!keep.has(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

/** Renames a set of directories without ever overwriting: first to temp names, then to the final ones. */
async function renameAll(dir: string, moves: ReadonlyArray<{ from: string; to: string }>): Promise<void> {
  const pending = moves.filter((m) => m.from !== m.to);
  for (const m of pending) await rename(join(dir, m.from), join(dir, `${m.to}.ctrbake-rename`));
  for (const m of pending) await rename(join(dir, `${m.to}.ctrbake-rename`), join(dir, m.to));
}

async function readLayers(root: string, driver: DockerStoreDriver): Promise<LayerRecord[]> {
  const layerdb = join(root, 'image', driver, 'layerdb', 'sha256');
  let chains: string[];
  try {
    chains = (await readdir(layerdb)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
  } catch (error) {
    throw layoutError(root, `no image/${driver}/layerdb/sha256`, error);
  }
  const layers: LayerRecord[] = [];
  for (const chainHex of chains) {
    let oldCacheId: string;
    try {
      oldCacheId = await readText(join(layerdb, chainHex, 'cache-id'));
    } catch (error) {
      throw layoutError(root, `layer ${chainHex} has no cache-id`, error);
    }
    if (!/^[0-9a-zA-Z_.-]+$/.test(oldCacheId)) throw layoutError(root, `layer ${chainHex} has cache-id ${JSON.stringify(oldCacheId)}`);
    layers.push({ chainHex, oldCacheId, newCacheId: layerCacheId(chainHex) });
  }
  return layers;
}

async function normalizeOverlay2(root: string, layers: readonly LayerRecord[]): Promise<void> {
  const dir = join(root, 'overlay2');
  const oldLinkToNew = new Map<string, string>();
  for (const layer of layers) {
    let oldLink: string;
    try {
      oldLink = await readText(join(dir, layer.oldCacheId, 'link'));
    } catch (error) {
      throw layoutError(root, `overlay2/${layer.oldCacheId}/link is missing`, error);
    }
    oldLinkToNew.set(oldLink, overlayLinkName(layer.newCacheId));
  }
  await keepOnly(dir, new Set([...layers.map((l) => l.oldCacheId), 'l']));
  await renameAll(dir, layers.map((l) => ({ from: l.oldCacheId, to: l.newCacheId })));
  const relinked = layers.map((l) => ({ name: l.newCacheId, link: overlayLinkName(l.newCacheId), label: l.oldCacheId }));
  await relinkOverlayLayers(dir, relinked, oldLinkToNew, 0o700, (label, entry) => layoutError(root, `overlay2/${label}/lower names ${entry}, which no layer owns`));
}

async function normalizeVfs(root: string, layers: readonly LayerRecord[]): Promise<void> {
  await keepOnly(join(root, 'vfs'), new Set(['dir']));
  const dir = join(root, 'vfs', 'dir');
  await keepOnly(dir, new Set(layers.map((l) => l.oldCacheId)));
  await renameAll(dir, layers.map((l) => ({ from: l.oldCacheId, to: l.newCacheId })));
}

async function readImages(root: string, driver: DockerStoreDriver): Promise<DockerStoreImage[]> {
  const imageDir = join(root, 'image', driver);
  let repositories: { Repositories?: Record<string, Record<string, string>> };
  try {
    repositories = JSON.parse(await readFile(join(imageDir, 'repositories.json'), 'utf8')) as typeof repositories;
  } catch (error) {
    throw layoutError(root, `image/${driver}/repositories.json is missing or not JSON`, error);
  }
  const refsById = new Map<string, string[]>();
  for (const refs of Object.values(repositories.Repositories ?? {})) {
    for (const [ref, id] of Object.entries(refs)) refsById.set(id, [...(refsById.get(id) ?? []), ref]);
  }
  const images: DockerStoreImage[] = [];
  for (const [id, references] of [...refsById].sort(([a], [b]) => a.localeCompare(b))) {
    const hex = id.replace(/^sha256:/, '');
    let config: { rootfs?: { diff_ids?: string[] } };
    try {
      config = JSON.parse(await readFile(join(imageDir, 'imagedb', 'content', 'sha256', hex), 'utf8')) as typeof config;
    } catch (error) {
      throw layoutError(root, `image ${id} has no config in imagedb`, error);
    }
    images.push({ id, references: references.sort(), diffIds: config.rootfs?.diff_ids ?? [] });
  }
  return images;
}

/** Drops `lastUpdated` (the time of the last tag: differs per bake) from imagedb metadata. */
async function dropVolatileMetadata(root: string, driver: DockerStoreDriver): Promise<void> {
  const metadata = join(root, 'image', driver, 'imagedb', 'metadata', 'sha256');
  let ids: string[] = [];
  try {
    ids = await readdir(metadata);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const id of ids) {
    await rm(join(metadata, id, 'lastUpdated'), { force: true });
    if ((await readdir(join(metadata, id))).length === 0) await rm(join(metadata, id), { recursive: true });
  }
}

/**
 * Normalizes a stopped dockerd's data-root in place (it must be a disposable copy: runtime
 * state is deleted). Returns the members to archive and what the store holds.
 */
export async function normalizeDockerStore(root: string, driver: DockerStoreDriver): Promise<NormalizedStore> {
  const layers = await readLayers(root, driver);
  const images = await readImages(root, driver);
  if (driver === 'overlay2') await normalizeOverlay2(root, layers);
  else await normalizeVfs(root, layers);
  const layerdb = join(root, 'image', driver, 'layerdb', 'sha256');
  for (const layer of layers) await writeFile(join(layerdb, layer.chainHex, 'cache-id'), layer.newCacheId);
  await dropVolatileMetadata(root, driver);
  await keepOnly(join(root, 'image', driver, 'layerdb'), new Set(['sha256']));
  await keepOnly(join(root, 'image', driver), new Set(['imagedb', 'layerdb', 'distribution', 'repositories.json']));
  await keepOnly(join(root, 'image'), new Set([driver]));
  await keepOnly(root, new Set(['image', driver]));
  return { members: ['image', driver].sort(), images, layerCount: layers.length };
}

export interface DigestReference {
  /** Repository as the lock names it: "registry/repository", e.g. "docker.io/library/busybox". */
  repository: string;
  /** Registry digests the image is known by (index and platform manifest). */
  digests: string[];
  /** "sha256:<hex>" image id. */
  imageId: string;
}

/** Docker's short form of a repository name: docker.io/library/x -> x, docker.io/u/x -> u/x. */
export function familiarRepository(repository: string): string {
  if (!repository.startsWith('docker.io/')) return repository;
  const path = repository.slice('docker.io/'.length);
  return path.startsWith('library/') && path.split('/').length === 2 ? path.slice('library/'.length) : path;
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Adds `repository@digest` references to repositories.json, as a pull would: a loaded image
 * otherwise has no registry digest, and a device whose compose file pins `image@sha256:...`
 * would try to pull it. Keys sorted as Go writes them.
 */
export async function addDockerDigestReferences(root: string, driver: DockerStoreDriver, refs: readonly DigestReference[]): Promise<void> {
  const path = join(root, 'image', driver, 'repositories.json');
  const data = JSON.parse(await readFile(path, 'utf8')) as { Repositories?: Record<string, Record<string, string>> };
  const repositories = data.Repositories ?? {};
  for (const ref of refs) {
    const name = familiarRepository(ref.repository);
    const entries = { ...(repositories[name] ?? {}) };
    for (const digest of ref.digests) entries[`${name}@${digest}`] = ref.imageId;
    repositories[name] = sortKeys(entries);
  }
  await writeFile(path, JSON.stringify({ ...data, Repositories: sortKeys(repositories) }), { mode: 0o600 });
}
