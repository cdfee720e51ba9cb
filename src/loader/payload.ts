/**
 * The payload the device reads: the shipped manifest (byte for byte: the device compares its
 * sha256 with the one it applied last), images.list (what the shell needs, no JSON parser on
 * the device), and the archives or the store SquashFS, each checked against the manifest.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { InputError } from '../errors.js';
import type { ManifestImage, OutputFile } from '../formats/index.js';
import { createSquashfs, SQUASHFS_SUBCOMMAND_FLAGS } from '../squashfs/index.js';
import { sha256File } from '../util/fs.js';
import type { ResolvedLoaderConfig } from './options.js';

function hex(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

/** Docker's chain ids: chain(0) = diff(0); chain(n) = sha256(chain(n-1) + " " + diff(n)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diffId : `sha256:${createHash('sha256').update(`${prev} ${diffId}`).digest('hex')}`);
  }
  return out;
}

/**
 * containers/storage's layer ids for an image it pulls or loads (podman 4.x; checked against
 * podman 4.3's store): id(0) = diff(0) hex; id(n) = sha256(id(n-1) + "+" + diff(n) hex).
 */
export function podmanLayerIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const prev = out[out.length - 1];
    const diff = hex(diffId);
    out.push(prev === undefined ? diff : createHash('sha256').update(`${prev}+${diff}`).digest('hex'));
  }
  return out;
}

function outputFor(config: ResolvedLoaderConfig, path: string): OutputFile {
  const output = config.manifest.outputs.find((o) => o.path === path);
  if (!output) throw new InputError('E_LOADER_INPUT', `${config.manifestPath} does not list the output ${path} among its outputs`);
  return output;
}

function safeRelative(path: string): string {
  const normalized = posix.normalize(path);
  if (normalized.startsWith('/') || normalized.startsWith('..') || !/^[A-Za-z0-9/._:+-]+$/.test(normalized)) {
    throw new InputError('E_LOADER_INPUT', `the manifest names the output ${JSON.stringify(path)}, which is not a plain relative path`);
  }
  return normalized;
}

/** Copies a bake output into the payload, checking size and sha256 against the manifest. */
async function copyChecked(config: ResolvedLoaderConfig, output: OutputFile, target: string): Promise<void> {
  const source = join(config.bakeDir, safeRelative(output.path));
  try {
    await stat(source);
  } catch (error) {
    throw new InputError('E_LOADER_INPUT', `${source} is missing: the loader reads the outputs next to ${config.manifestPath}`, { cause: error });
  }
  await mkdir(dirname(target), { recursive: true });
  await copyFile(source, target);
  const [size, sha256] = [(await stat(target)).size, await sha256File(target)];
  if (size !== output.size || sha256 !== output.sha256) {
    throw new InputError('E_LOADER_INPUT', `${source} does not match the manifest (size ${size}, sha256 ${sha256}; manifest: ${output.size}, ${output.sha256}); bake again`, {
      details: { path: output.path },
    });
  }
}

export interface ListedImage {
  image: ManifestImage;
  size: number;
  archive: string;
  chains: string[];
  podmanLayers: string[];
}

/** One line per image, largest first: `<id hex> <bytes> <archive|-> <reference> <chain,chain...> <podman layer,layer...>`. */
export function imagesList(images: readonly ListedImage[]): string {
  const sorted = [...images].sort((a, b) => b.size - a.size || (a.image.imageId < b.image.imageId ? -1 : 1));
  return sorted.map((l) => `${hex(l.image.imageId)} ${l.size} ${l.archive} ${l.image.reference} ${l.chains.map(hex).join(',')} ${l.podmanLayers.join(',')}\n`).join('');
}

export function listImages(config: ResolvedLoaderConfig): ListedImage[] {
  return config.manifest.images.map((image) => {
    if (!/^sha256:[0-9a-f]{64}$/.test(image.imageId) || /\s/.test(image.reference)) {
      throw new InputError('E_LOADER_INPUT', `the manifest entry ${JSON.stringify(image.reference)} has a bad image id or reference`);
    }
    const diffIds = image.layers.map((l) => l.diffId);
    if (diffIds.some((d) => !/^sha256:[0-9a-f]{64}$/.test(d ?? ''))) {
      throw new InputError('E_LOADER_INPUT', `${image.reference}: the manifest lacks the layers' diff ids; bake again with this ctrbake version`);
    }
    const archive = image.archive ? safeRelative(image.archive) : '-';
    const size = image.archive ? outputFor(config, image.archive).size : image.layers.reduce((n, l) => n + l.size, 0);
    return { image, size, archive, chains: chainIds(diffIds), podmanLayers: podmanLayerIds(diffIds) };
  });
}

export async function copyArchives(config: ResolvedLoaderConfig, payloadRoot: string, images: readonly ListedImage[]): Promise<void> {
  for (const listed of images) {
    config.signal?.throwIfAborted();
    if (listed.archive === '-') throw new InputError('E_LOADER_INPUT', `${listed.image.reference} has no archive in the manifest`);
    await copyChecked(config, outputFor(config, listed.archive), join(payloadRoot, listed.archive));
  }
}

/** The store as SquashFS: the bake's .sqfs when it made one, else built from store.tar. Returns its sha256. */
export async function writeStoreImage(config: ResolvedLoaderConfig, target: string): Promise<string> {
  await mkdir(dirname(target), { recursive: true });
  const sqfs = config.manifest.outputs.find((o) => o.path.endsWith('.sqfs'));
  if (sqfs) {
    await copyChecked(config, sqfs, target);
    return sqfs.sha256;
  }
  const tar = config.manifest.outputs.find((o) => posix.basename(o.path) === 'store.tar');
  if (!tar) throw new InputError('E_LOADER_INPUT', `${config.manifestPath} lists neither a .sqfs nor store.tar: bake with --mode store`);
  const source = join(config.bakeDir, safeRelative(tar.path));
  const sha = await sha256File(source).catch((error: unknown) => {
    throw new InputError('E_LOADER_INPUT', `cannot read ${source}: ${(error as Error).message}`, { cause: error });
  });
  if (sha !== tar.sha256) throw new InputError('E_LOADER_INPUT', `${source} does not match the manifest (sha256 ${sha}, manifest ${tar.sha256}); bake again`);
  config.reporter.event({ event: 'loader.squashfs', message: `building the store image from ${tar.path} (${config.squashfsBackend}, ${config.compression})` });
  const result = await createSquashfs({
    input: source,
    outPath: target,
    backend: config.squashfsBackend,
    compression: config.compression,
    sourceDateEpoch: config.manifest.sourceDateEpoch,
    flags: SQUASHFS_SUBCOMMAND_FLAGS,
    reporter: config.reporter,
    ...(config.signal ? { signal: config.signal } : {}),
  });
  return result.sha256 ?? (await sha256File(target));
}
