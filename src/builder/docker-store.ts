/**
 * The docker graphdriver store (overlay2), written by ctrbake itself as a tar stream, from
 * the cache, with no engine: what `bake --mode store --engine docker` makes with the engine
 * path, modulo what docs/builder.md lists. Paths relative to the data-root:
 *   image/overlay2/repositories.json                     tags and registry digests -> image id
 *   image/overlay2/imagedb/content/sha256/<config hex>   the config bytes as fetched
 *   image/overlay2/layerdb/sha256/<chain hex>/           cache-id, diff, parent, size, tar-split.json.gz
 *   overlay2/<cache id>/{diff/,link,lower,committed,work/}, overlay2/l/<link> -> ../<cache id>/diff
 * Modes and owners are the ones dockerd 20.10 gives (read from an engine-path store.tar);
 * every file the store adds has mtime SOURCE_DATE_EPOCH, layer files keep the layer's.
 * Each layer is gunzipped once: pass 1 (tar-split, tree, diff id) reads the blob through
 * gunzip and spools the uncompressed tar to a temp file as it goes; pass 2 (the diff entries,
 * content streamed) reads that spool, then it is removed. An uncompressed blob is read twice
 * in place. Nothing is extracted and no file content is held in memory.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip, gzipSync } from 'node:zlib';
import { InputError } from '../errors.js';
import type { LockFile, LockedImage } from '../formats/index.js';
import { blobPath, resolveLayerBlob, type LayerBlob } from '../fetch/cache.js';
import { diffIdsOfConfig } from '../formats/oci.js';
import type { Inode } from './diff-tree.js';
import { canonical, writeDiffEntries } from './diff-writer.js';
import { scanLayer, type LayerScan } from './layer-scan.js';
import { chainIds, layerCacheId, overlayLinkName } from './store-ids.js';
import { encodeHeader, endOfArchive, padding, type TarHeader } from '../formats/tar/index.js';
import { tarSplitFlavourFor } from './tar-split.js';

export interface DockerStoreOptions {
  lock: LockFile;
  cacheDir: string;
  /** The engine version the store is for ("20.10", "26.1"...): decides the tar-split flavour. */
  engineVersion: string;
  sourceDateEpoch: number;
  /** Where a layer's uncompressed tar is spooled between its two passes (default: the OS temp dir). */
  spoolDir?: string;
  /** Called after each layer is written: `done` of `total` unique layers. */
  onLayer?: (done: number, total: number, layer: { digest: string; reference: string }) => void;
}

export interface BuiltStoreImage {
  image: LockedImage;
  diffIds: string[];
}

interface PlannedLayer {
  chainId: string;
  diffId: string;
  parent?: string;
  blob: LayerBlob;
  mediaType: string;
  reference: string;
  hasChildren: boolean;
}

export interface DockerStorePlan {
  images: Array<BuiltStoreImage & { config: Buffer }>;
  layers: PlannedLayer[];
}

function cacheMiss(image: LockedImage, digest: string, cacheDir: string): InputError {
  return new InputError('E_CACHE_MISS', `${image.reference}: ${digest} is not in the cache ${cacheDir}; run ctrbake fetch with this lock first (bake is offline)`, {
    details: { reference: image.reference, digest },
  });
}

/** Reads what the store needs from the cache (configs, blob paths) and orders the layers. */
export async function planDockerStore(options: DockerStoreOptions): Promise<DockerStorePlan> {
  const images: DockerStorePlan['images'] = [];
  const layers = new Map<string, PlannedLayer>();
  for (const image of options.lock.images) {
    let config: Buffer;
    try {
      config = await readFile(blobPath(options.cacheDir, image.config.digest));
    } catch {
      throw cacheMiss(image, image.config.digest, options.cacheDir);
    }
    const diffIds = diffIdsOfConfig(config.toString('utf8')) ?? [];
    if (diffIds.length !== image.layers.length) {
      throw new InputError('E_STORE_INPUT', `${image.reference}: the cached config declares ${diffIds.length} layers, the lock ${image.layers.length}`);
    }
    const chains = chainIds(diffIds);
    for (const [i, layer] of image.layers.entries()) {
      const chainId = chains[i]!;
      if (i > 0) layers.get(chains[i - 1]!)!.hasChildren = true;
      if (layers.has(chainId)) continue;
      const blob = await resolveLayerBlob(options.cacheDir, layer, diffIds[i]);
      if (!blob) throw cacheMiss(image, layer.digest, options.cacheDir);
      layers.set(chainId, { chainId, diffId: diffIds[i]!, ...(i > 0 ? { parent: chains[i - 1]! } : {}), blob, mediaType: layer.mediaType, reference: image.reference, hasChildren: false });
    }
    images.push({ image, diffIds, config });
  }
  return { images, layers: [...layers.values()] };
}

const READ_CHUNK = 1 << 20;

function openLayer(layer: PlannedLayer): AsyncIterable<Uint8Array> {
  const file = createReadStream(layer.blob.path, { highWaterMark: READ_CHUNK });
  if (!layer.blob.compressed) return file;
  if (!/gzip/.test(layer.mediaType)) {
    throw new InputError('E_BUILDER_UNSUPPORTED', `${layer.reference}: layer ${layer.blob.digest} is ${layer.mediaType}; the builder reads gzip and plain layers (Node 20 has no zstd): use --builder engine`);
  }
  return file.pipe(createGunzip({ chunkSize: 256 * 1024 }));
}

/** The stream, written to `spool` as it is read. */
async function* spooled(input: AsyncIterable<Uint8Array>, spool: FileHandle): AsyncGenerator<Uint8Array> {
  for await (const chunk of input) {
    await spool.write(chunk);
    yield chunk;
  }
}

/** Pass 1 over a layer; a compressed one is gunzipped once and spooled for pass 2, which `second` opens. */
async function scanOnce(
  layer: PlannedLayer,
  options: DockerStoreOptions,
  scan: (input: AsyncIterable<Uint8Array>) => Promise<LayerScan>,
): Promise<{ scanned: LayerScan; second: () => AsyncIterable<Uint8Array>; done: () => Promise<void> }> {
  if (!layer.blob.compressed) return { scanned: await scan(openLayer(layer)), second: () => openLayer(layer), done: async () => {} };
  const path = join(options.spoolDir ?? tmpdir(), `.ctrbake-layer-${process.pid}-${layer.chainId.slice(7, 19)}.tar`);
  const remove = () => rm(path, { force: true });
  const spool = await open(path, 'wx', 0o600);
  try {
    const scanned = await scan(spooled(openLayer(layer), spool));
    return { scanned, second: () => createReadStream(path, { highWaterMark: READ_CHUNK }), done: remove };
  } catch (error) {
    await remove();
    throw error;
  } finally {
    await spool.close();
  }
}

const hex = (digest: string): string => digest.replace(/^sha256:/, '');

/** Docker's short form of a repository name: docker.io/library/x -> x, docker.io/u/x -> u/x. */
function familiar(repository: string): string {
  if (!repository.startsWith('docker.io/')) return repository;
  const path = repository.slice('docker.io/'.length);
  return path.startsWith('library/') && !path.slice('library/'.length).includes('/') ? path.slice('library/'.length) : path;
}

function byKey<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** repositories.json as the engine path leaves it: tag and registry digests per image, keys sorted. */
export function repositoriesJson(images: readonly BuiltStoreImage[]): Buffer {
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image } of images) {
    const name = familiar(`${image.registry}/${image.repository}`);
    const refs = (repositories[name] ??= {});
    if (image.tag) refs[`${name}:${image.tag}`] = image.config.digest;
    for (const digest of new Set([image.indexDigest, image.manifest.digest])) refs[`${name}@${digest}`] = image.config.digest;
  }
  for (const name of Object.keys(repositories)) repositories[name] = byKey(repositories[name]!);
  return Buffer.from(JSON.stringify({ Repositories: byKey(repositories) }));
}

export async function* dockerStoreTar(plan: DockerStorePlan, options: DockerStoreOptions): AsyncGenerator<Buffer> {
  const flavour = tarSplitFlavourFor(options.engineVersion);
  const sde = options.sourceDateEpoch;
  const node = (type: Inode['type'], mode: number): Inode => ({ type, mode, uid: 0, gid: 0, mtime: sde, xattrs: new Map(), linkname: '', devmajor: 0, devminor: 0, size: 0 });
  const dir = (path: string, mode: number, xattrs?: Map<string, Buffer>): Buffer => encodeHeader(canonical(path, { ...node('dir', mode), ...(xattrs ? { xattrs } : {}) }));
  function* file(path: string, mode: number, content: Buffer): Generator<Buffer> {
    const entry: TarHeader = canonical(path, { ...node('file', mode), size: content.length });
    yield encodeHeader(entry);
    yield content;
    yield padding(content.length);
  }
  // Depth-first, each directory's content right after it (GNU tar then sets directory
  // mtimes last): overlay2/ with each layer as it is read, then image/ (small, kept until then).
  const root = 'image/overlay2/';
  const links = new Map(plan.layers.map((l) => [l.chainId, overlayLinkName(layerCacheId(l.chainId))]));
  yield dir('overlay2', 0o710);
  yield dir('overlay2/l', 0o700);
  for (const layer of plan.layers) {
    const cacheId = layerCacheId(layer.chainId);
    yield encodeHeader(canonical(`overlay2/l/${links.get(layer.chainId)!}`, { ...node('symlink', 0o777), linkname: `../${cacheId}/diff` }));
  }
  const lowers = new Map<string, string>();
  const layerdb: Buffer[] = [];
  for (const [done, layer] of plan.layers.entries()) {
    const pass = await scanOnce(layer, options, (input) => scanLayer(input, { flavour, sourceDateEpoch: sde }));
    try {
      yield* layerEntries(layer, pass.scanned, pass.second);
    } finally {
      await pass.done();
    }
    options.onLayer?.(done + 1, plan.layers.length, { digest: layer.blob.digest, reference: layer.reference });
  }
  async function* layerEntries(layer: PlannedLayer, scanned: LayerScan, second: () => AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const cacheId = layerCacheId(layer.chainId);
    if (scanned.diffId !== layer.diffId) {
      throw new InputError('E_DIGEST_MISMATCH', `${layer.reference}: layer ${layer.blob.digest} unpacks to ${scanned.diffId}, the config says ${layer.diffId}; the cache is damaged: run \`ctrbake fetch\` again`, {
        details: { reference: layer.reference, digest: layer.blob.digest, diffId: scanned.diffId, expected: layer.diffId },
      });
    }
    const layerDir = `overlay2/${cacheId}`;
    yield dir(layerDir, 0o710);
    if (layer.hasChildren) yield* file(`${layerDir}/committed`, 0o600, Buffer.alloc(0));
    yield dir(`${layerDir}/diff`, 0o755, scanned.tree.rootOpaque ? new Map([['trusted.overlay.opaque', Buffer.from('y')]]) : undefined);
    yield* writeDiffEntries(scanned.tree, second(), `${layerDir}/diff/`);
    yield* file(`${layerDir}/link`, 0o644, Buffer.from(links.get(layer.chainId)!));
    if (layer.parent) {
      const parentLower = lowers.get(layer.parent);
      const lower = `l/${links.get(layer.parent)!}${parentLower ? `:${parentLower}` : ''}`;
      lowers.set(layer.chainId, lower);
      yield* file(`${layerDir}/lower`, 0o644, Buffer.from(lower));
      yield dir(`${layerDir}/work`, 0o700);
    }

    const chainDir = `${root}layerdb/sha256/${hex(layer.chainId)}`;
    layerdb.push(dir(chainDir, 0o700));
    layerdb.push(...file(`${chainDir}/cache-id`, 0o644, Buffer.from(cacheId)));
    layerdb.push(...file(`${chainDir}/diff`, 0o644, Buffer.from(layer.diffId)));
    if (layer.parent) layerdb.push(...file(`${chainDir}/parent`, 0o644, Buffer.from(layer.parent)));
    layerdb.push(...file(`${chainDir}/size`, 0o644, Buffer.from(String(scanned.size))));
    layerdb.push(...file(`${chainDir}/tar-split.json.gz`, 0o644, gzipSync(scanned.tarSplit)));
  }

  yield dir('image', 0o700);
  yield dir(root, 0o700);
  yield dir(`${root}distribution`, 0o700);
  yield dir(`${root}imagedb`, 0o700);
  yield dir(`${root}imagedb/content`, 0o700);
  yield dir(`${root}imagedb/content/sha256`, 0o700);
  for (const { image, config } of plan.images) yield* file(`${root}imagedb/content/sha256/${hex(image.config.digest)}`, 0o600, config);
  yield dir(`${root}imagedb/metadata`, 0o700);
  yield dir(`${root}imagedb/metadata/sha256`, 0o700);
  yield dir(`${root}layerdb`, 0o700);
  yield dir(`${root}layerdb/sha256`, 0o755);
  yield* layerdb;
  yield* file(`${root}repositories.json`, 0o600, repositoriesJson(plan.images));
  yield endOfArchive();
}
