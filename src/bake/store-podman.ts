/**
 * Turns a podman graphroot (containers-storage, podman 4.x) into a store that holds only
 * what the engine needs to use the loaded images, usable as a graphroot and as an
 * additional image store.
 *
 *   <driver>-images/images.json, images.lock, <image id>/=<base64 key>  image records, big data
 *   <driver>-layers/layers.json, layers.lock, <layer id>.tar-split.gz   layer records (tar-split:
 *                                                                       needed by push/save)
 *   overlay/<layer id>/{diff,link,lower,work,merged,empty}, overlay/l/<link> -> ../<id>/diff
 *   vfs/dir/<layer id>/
 * Layer ids are chain ids already (content-derived); the overlay link names are random and
 * rewritten from the layer id; a layer's `created` (the load's clock) becomes
 * SOURCE_DATE_EPOCH, an image's `created` stays the config's (as podman took it from there);
 * records are sorted by id; lock files are shipped empty (their content is
 * a random last-writer token; an additional image store needs them to exist).
 * Removed: libpod, mounts, tmp, storage.lock, userns.lock, defaultNetworkBackend,
 * <driver>-containers, overlay/.has-* (driver probe results belong to the device's kernel).
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { overlayLinkName } from '../builder/store-ids.js';
import { relinkOverlayLayers, sourceDateEpochIso } from './store-normalize.js';
import type { NormalizedStore } from './store-docker.js';

export type PodmanStoreDriver = 'overlay' | 'vfs';

interface LayerJson {
  id: string;
  parent?: string;
  created?: string;
  flags?: Record<string, unknown>;
  [key: string]: unknown;
}

interface ImageJson {
  id: string;
  names?: string[];
  layer?: string;
  created?: string;
  [key: string]: unknown;
}

function layoutError(root: string, what: string, cause?: unknown): InputError {
  return new InputError(
    'E_STORE_LAYOUT',
    `the podman storage ${root} does not look as ctrbake expects: ${what}; this podman version may store images differently (see docs/engine-compat.md)`,
    cause === undefined ? {} : { cause },
  );
}

async function readJson<T>(root: string, path: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    throw layoutError(root, `${path} is missing or not JSON`, error);
  }
}

async function keepOnly(dir: string, keep: (name: string) => boolean): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!keep(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

async function normalizeOverlayLinks(root: string, layers: readonly LayerJson[]): Promise<void> {
  const dir = join(root, 'overlay');
  const oldToNew = new Map<string, string>();
  for (const layer of layers) {
    let oldLink: string;
    try {
      oldLink = (await readFile(join(dir, layer.id, 'link'), 'utf8')).trim();
    } catch (error) {
      throw layoutError(root, `overlay/${layer.id}/link is missing`, error);
    }
    oldToNew.set(oldLink, overlayLinkName(layer.id));
  }
  const ids = new Set(layers.map((l) => l.id));
  await keepOnly(dir, (name) => ids.has(name) || name === 'l');
  const relinked = layers.map((l) => ({ name: l.id, link: overlayLinkName(l.id), label: l.id }));
  await relinkOverlayLayers(dir, relinked, oldToNew, 0o755, (label, entry) => layoutError(root, `overlay/${label}/lower names ${entry}, which no layer owns`));
}

/**
 * Normalizes a podman graphroot in place (a disposable copy: runtime state is deleted).
 * `diffIds` are not in the podman records; images carry an empty list (the manifest takes
 * layers from the lock).
 */
export async function normalizePodmanStore(root: string, driver: PodmanStoreDriver, sourceDateEpoch: number): Promise<NormalizedStore> {
  const created = sourceDateEpochIso(sourceDateEpoch);
  const layersDir = join(root, `${driver}-layers`);
  const imagesDir = join(root, `${driver}-images`);
  const layers = (await readJson<LayerJson[]>(root, join(layersDir, 'layers.json'))).sort(byId);
  const images = (await readJson<ImageJson[]>(root, join(imagesDir, 'images.json'))).sort(byId);
  for (const layer of layers) {
    if (!/^[0-9a-f]{64}$/.test(layer.id)) throw layoutError(root, `layer id ${JSON.stringify(layer.id)} is not a chain id`);
    if (layer.flags && Object.keys(layer.flags).some((f) => f.includes('incomplete'))) {
      throw layoutError(root, `layer ${layer.id} is marked incomplete (an interrupted load)`);
    }
    if (layer.created !== undefined) layer.created = created;
  }

  if (driver === 'overlay') await normalizeOverlayLinks(root, layers);
  else {
    await keepOnly(join(root, 'vfs'), (name) => name === 'dir');
    const ids = new Set(layers.map((l) => l.id));
    await keepOnly(join(root, 'vfs', 'dir'), (name) => ids.has(name));
  }

  const layerIds = new Set(layers.map((l) => l.id));
  await keepOnly(layersDir, (name) => name === 'layers.json' || name === 'layers.lock' || layerIds.has(name.replace(/\.tar-split\.gz$/, '')));
  await writeFile(join(layersDir, 'layers.json'), JSON.stringify(layers), { mode: 0o600 });
  await writeFile(join(layersDir, 'layers.lock'), '');
  const imageIds = new Set(images.map((i) => i.id));
  await keepOnly(imagesDir, (name) => name === 'images.json' || name === 'images.lock' || imageIds.has(name));
  await writeFile(join(imagesDir, 'images.json'), JSON.stringify(images), { mode: 0o600 });
  await writeFile(join(imagesDir, 'images.lock'), '');
  const members = [driver, `${driver}-images`, `${driver}-layers`].sort();
  await keepOnly(root, (name) => members.includes(name));
  return {
    members,
    images: images.map((i) => ({ id: `sha256:${i.id}`, references: [...(i.names ?? [])].sort(), diffIds: [] })),
    layerCount: layers.length,
  };
}
