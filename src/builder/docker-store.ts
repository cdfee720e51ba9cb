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
import { canonical, storeEntryWriters, writeDiffEntries } from './diff-writer.js';
import { scanLayer, type LayerScan } from './layer-scan.js';
import { chainIds, layerCacheId, overlayLinkName } from './store-ids.js';
import { encodeHeader, endOfArchive } from '../formats/tar/index.js';
import { tarSplitFlavourFor, type TarSplitFlavour } from './tar-split.js';
import { VfsTree } from './vfs-tree.js';
import { writeVfsDir } from './vfs-writer.js';

export interface DockerStoreOptions {
  lock: LockFile;
  cacheDir: string;
  /** The engine version the store is for ("20.10", "26.1"...): decides the tar-split flavour. */
  engineVersion: string;
  sourceDateEpoch: number;
  /** overlay2 (default): one diff dir per layer; vfs: one full tree per layer stack. */
  storageDriver?: DockerStoreDriver;
  /** Where a layer's uncompressed tar is spooled between its two passes (default: the OS temp dir). */
  spoolDir?: string;
  /** Called after each layer is written: `done` of `total` unique layers. */
  onLayer?: (done: number, total: number, layer: { digest: string; reference: string }) => void;
}

export type DockerStoreDriver = 'overlay2' | 'vfs';

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

export function cacheMiss(image: LockedImage, digest: string, cacheDir: string): InputError {
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

/** The layer's uncompressed tar stream, from the cache (gzip or plain). */
export function openLayer(layer: Pick<PlannedLayer, 'blob' | 'mediaType' | 'reference'>): AsyncIterable<Uint8Array> {
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

interface StoreEntries {
  dir: (path: string, mode: number, xattrs?: Map<string, Buffer>) => Buffer;
  file: (path: string, mode: number, content: Buffer) => Generator<Buffer>;
  node: (type: Inode['type'], mode: number) => Inode;
  layerFiles: (layer: PlannedLayer, cacheId: string, size: number, tarSplit: Buffer) => void;
}

function checkDiffId(layer: PlannedLayer, diffId: string): void {
  if (diffId === layer.diffId) return;
  throw new InputError('E_DIGEST_MISMATCH', `${layer.reference}: layer ${layer.blob.digest} unpacks to ${diffId}, the config says ${layer.diffId}; the cache is damaged: run \`ctrbake fetch\` again`, {
    details: { reference: layer.reference, digest: layer.blob.digest, diffId, expected: layer.diffId },
  });
}

/** overlay2/<id>/{diff/,link,lower,committed,work/} and overlay2/l/, each layer as it is read. */
async function* overlay2Layers(plan: DockerStorePlan, options: DockerStoreOptions, scanOptions: { flavour: TarSplitFlavour; sourceDateEpoch: number }, { dir, file, node, layerFiles }: StoreEntries): AsyncGenerator<Buffer> {
  // Depth-first, each directory's content right after it (GNU tar then sets directory
  // mtimes last): overlay2/ with each layer as it is read, then image/ (small, kept until then).
  const links = new Map(plan.layers.map((l) => [l.chainId, overlayLinkName(layerCacheId(l.chainId))]));
  yield dir('overlay2', 0o710);
  yield dir('overlay2/l', 0o700);
  for (const layer of plan.layers) {
    const cacheId = layerCacheId(layer.chainId);
    yield encodeHeader(canonical(`overlay2/l/${links.get(layer.chainId)!}`, { ...node('symlink', 0o777), linkname: `../${cacheId}/diff` }));
  }
  const lowers = new Map<string, string>();
  for (const [done, layer] of plan.layers.entries()) {
    const pass = await scanOnce(layer, options, (input) => scanLayer(input, scanOptions));
    try {
      yield* layerEntries(layer, pass.scanned, pass.second);
    } finally {
      await pass.done();
    }
    options.onLayer?.(done + 1, plan.layers.length, { digest: layer.blob.digest, reference: layer.reference });
  }
  async function* layerEntries(layer: PlannedLayer, scanned: LayerScan, second: () => AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const cacheId = layerCacheId(layer.chainId);
    checkDiffId(layer, scanned.diffId);
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

    layerFiles(layer, cacheId, scanned.size, scanned.tarSplit);
  }
}

/** vfs/dir/<id>: each layer's full tree (the parent's copied, the layer applied: vfs-tree.ts). */
async function* vfsLayers(plan: DockerStorePlan, scanOptions: { flavour: TarSplitFlavour; sourceDateEpoch: number }, { dir, layerFiles }: StoreEntries): AsyncGenerator<Buffer> {
  yield dir('vfs', 0o710);
  yield dir('vfs/dir', 0o710);
  const trees = new Map<string, VfsTree>();
  const byChain = new Map(plan.layers.map((l) => [l.chainId, l]));
  for (const layer of plan.layers) {
    const parentTree = layer.parent ? trees.get(layer.parent) : undefined;
    const tree = parentTree ? parentTree.child() : VfsTree.base(scanOptions.sourceDateEpoch);
    const scanned = await scanLayer(openLayer(layer), scanOptions, tree);
    checkDiffId(layer, scanned.diffId);
    tree.finish();
    trees.set(layer.chainId, tree);
    const stack: PlannedLayer[] = [];
    for (let at: PlannedLayer | undefined = layer; at; at = at.parent ? byChain.get(at.parent) : undefined) stack.unshift(at);
    const cacheId = layerCacheId(layer.chainId);
    yield* writeVfsDir(tree, stack.map((l) => () => openLayer(l)), `vfs/dir/${cacheId}`);
    layerFiles(layer, cacheId, scanned.size, scanned.tarSplit);
  }
}

/**
 * `image/<driver>/distribution/` as a `docker pull` of the lock's images, in lock order, leaves
 * it (moby v20.10 distribution/metadata, v2MetadataService.Add for each pulled layer):
 *   diffid-by-digest/sha256/<blob hex>      the layer's diff id
 *   v2metadata-by-diffid/sha256/<diff hex>  JSON [{Digest, SourceRepository, HMAC: ""}], one per
 *                                           (blob, repository), in pull order, an equal one moved last
 * With them a later pull of an image sharing layers finds them ("Already exists") and a push
 * can mount them across repositories. Dirs 0755 and files 0644 as the metadata store makes them.
 */
export function distributionMetadata(images: readonly BuiltStoreImage[]): { diffIdByDigest: Map<string, string>; v2MetadataByDiffId: Map<string, Buffer> } {
  const diffIdByDigest = new Map<string, string>();
  const byDiffId = new Map<string, Array<{ Digest: string; SourceRepository: string; HMAC: string }>>();
  for (const { image, diffIds } of images) {
    const repository = `${image.registry}/${image.repository}`;
    for (const [i, layer] of image.layers.entries()) {
      const diffId = diffIds[i]!;
      const entry = { Digest: layer.digest, SourceRepository: repository, HMAC: '' };
      const list = (byDiffId.get(diffId) ?? []).filter((m) => m.Digest !== entry.Digest || m.SourceRepository !== entry.SourceRepository);
      byDiffId.set(diffId, [...list, entry].slice(-MAX_V2_METADATA));
      diffIdByDigest.set(layer.digest, diffId);
    }
  }
  return { diffIdByDigest, v2MetadataByDiffId: new Map([...byDiffId].map(([k, v]) => [k, Buffer.from(JSON.stringify(v))])) };
}

/** moby's maxMetadata: the newest 50 records per diff id are kept. */
const MAX_V2_METADATA = 50;

function* distributionEntries(plan: DockerStorePlan, root: string, { dir, file }: Pick<StoreEntries, 'dir' | 'file'>): Generator<Buffer> {
  const { diffIdByDigest, v2MetadataByDiffId } = distributionMetadata(plan.images);
  const sorted = <T>(map: Map<string, T>): Array<[string, T]> => [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  yield dir(`${root}distribution`, 0o700);
  yield dir(`${root}distribution/diffid-by-digest`, 0o755);
  yield dir(`${root}distribution/diffid-by-digest/sha256`, 0o755);
  for (const [digest, diffId] of sorted(diffIdByDigest)) yield* file(`${root}distribution/diffid-by-digest/sha256/${hex(digest)}`, 0o644, Buffer.from(diffId));
  yield dir(`${root}distribution/v2metadata-by-diffid`, 0o755);
  yield dir(`${root}distribution/v2metadata-by-diffid/sha256`, 0o755);
  for (const [diffId, json] of sorted(v2MetadataByDiffId)) yield* file(`${root}distribution/v2metadata-by-diffid/sha256/${hex(diffId)}`, 0o644, json);
}

export async function* dockerStoreTar(plan: DockerStorePlan, options: DockerStoreOptions): AsyncGenerator<Buffer> {
  const flavour = tarSplitFlavourFor(options.engineVersion);
  const sde = options.sourceDateEpoch;
  const { node, dir, file } = storeEntryWriters(sde);
  const driver = options.storageDriver ?? 'overlay2';
  const root = `image/${driver}/`;
  const layerdb: Buffer[] = [];
  const layerFiles = (layer: PlannedLayer, cacheId: string, size: number, tarSplit: Buffer): void => {
    const chainDir = `${root}layerdb/sha256/${hex(layer.chainId)}`;
    layerdb.push(dir(chainDir, 0o700));
    layerdb.push(...file(`${chainDir}/cache-id`, 0o644, Buffer.from(cacheId)));
    layerdb.push(...file(`${chainDir}/diff`, 0o644, Buffer.from(layer.diffId)));
    if (layer.parent) layerdb.push(...file(`${chainDir}/parent`, 0o644, Buffer.from(layer.parent)));
    layerdb.push(...file(`${chainDir}/size`, 0o644, Buffer.from(String(size))));
    layerdb.push(...file(`${chainDir}/tar-split.json.gz`, 0o644, gzipSync(tarSplit)));
  };
  const scanOptions = { flavour, sourceDateEpoch: sde };

  const entries = { dir, file, node, layerFiles };
  yield* driver === 'vfs' ? vfsLayers(plan, scanOptions, entries) : overlay2Layers(plan, options, scanOptions, entries);

  yield dir('image', 0o700);
  yield dir(root, 0o700);
  yield* distributionEntries(plan, root, { dir, file });
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
