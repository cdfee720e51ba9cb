/**
 * The podman store (containers-storage, driver `overlay`) written by ctrbake itself as a tar
 * stream, from the cache, with no engine and no privilege: what `podman pull` (podman 4.3,
 * containers/image 5.23, containers/storage 1.43) leaves in a graphroot, minus runtime state.
 * Paths relative to the graphroot (docs/builder.md):
 *   overlay/<layer id>/{diff/,link,lower,work/,merged/,empty/}, overlay/l/<link> -> ../<id>/diff
 *   overlay-layers/layers.json, layers.lock, <layer id>.tar-split.gz
 *   overlay-images/images.json, images.lock, <image id>/{manifest,=<base64 key>...}
 * Layer ids are containers/image's (storage_dest.go), not OCI chain ids:
 *   id(0) = hex(diff(0)), id(n) = hex(sha256(id(n-1) + "+" + hex(diff(n)))).
 * Records as a pull writes them: the registry's manifest bytes (so podman lists the lock's
 * manifest digest), compressed digest and size of the blob, uid/gid sets; the image `created`
 * is the config's. What a pull takes from the clock (a layer's `created`) is
 * SOURCE_DATE_EPOCH, link names are derived from the layer id (store-ids.ts, as the engine
 * path's normalizer names them), lock files ship empty, records are sorted by id.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { InputError } from '../errors.js';
import type { LockFile, LockedImage } from '../formats/index.js';
import { blobPath, resolveLayerBlob, type LayerBlob } from '../fetch/cache.js';
import { diffIdsOfConfig } from '../formats/oci.js';
import { encodeHeader, endOfArchive } from '../formats/tar/index.js';
import type { Inode } from './diff-tree.js';
import { canonical, storeEntryWriters, writeDiffEntries } from './diff-writer.js';
import { cacheMiss, openLayer } from './docker-store.js';
import { scanLayer } from './layer-scan.js';
import { overlayLinkName } from './store-ids.js';
import type { TarSplitFlavour } from './tar-split.js';

export interface PodmanStoreOptions {
  lock: LockFile;
  cacheDir: string;
  /** The podman version the store is for ("4.3"): decides the tar-split flavour. */
  engineVersion: string;
  sourceDateEpoch: number;
}

interface PlannedPodmanLayer {
  id: string;
  diffId: string;
  parent?: string;
  blob: LayerBlob;
  mediaType: string;
  reference: string;
  /** The registry blob, as a pull records it. */
  compressedDigest: string;
  compressedSize: number;
}

export interface PodmanStorePlan {
  /** `index`: the image index the tag resolved to, when the cache holds it (a pull records it too). */
  images: Array<{ image: LockedImage; diffIds: string[]; config: Buffer; manifest: Buffer; index?: Buffer; topLayer: string }>;
  layers: PlannedPodmanLayer[];
}

const hex = (digest: string): string => digest.replace(/^sha256:/, '');
const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/** containers/image's layer ids for a stack of diff ids. */
export function podmanLayerIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const previous = out.at(-1);
    out.push(previous === undefined ? hex(diffId) : sha256(`${previous}+${hex(diffId)}`));
  }
  return out;
}

/** The podman versions whose store the builder writes, and their tar-split (containers/storage 1.43: a trailing empty segment). */
export function podmanTarSplitFlavour(engineVersion: string): TarSplitFlavour {
  if (/^4\.\d+/.test(engineVersion)) return 'tar-split-0.11.1';
  throw new InputError(
    'E_BUILDER_ENGINE_VERSION',
    `--builder native writes podman 4.x stores (proven against podman 4.3; podman 5 serves them, docs/engine-compat.md), got --engine-version ${JSON.stringify(engineVersion)}: use --engine-version 4.3 or --builder engine`,
  );
}

/** containers/storage's file name for a big-data key: kept when only [.0-9a-z], else "=" + base64. */
export function bigDataFileName(key: string): string {
  return /^[.0-9a-z]*$/.test(key) ? key : `=${Buffer.from(key).toString('base64')}`;
}

/**
 * A Go time as encoding/json writes it back after parsing RFC 3339 (RFC3339Nano: the
 * fraction without trailing zeros, the zone as written). Undefined when absent or unparsable:
 * containers/storage then takes the clock, the builder SOURCE_DATE_EPOCH.
 */
export function goTimeOf(created: unknown): string | undefined {
  if (typeof created !== 'string') return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/.exec(created);
  if (!m) return undefined;
  const fraction = (m[3] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = m[4]!.toUpperCase() === 'Z' || m[4] === '+00:00' || m[4] === '-00:00' ? 'Z' : m[4]!;
  return `${m[1]}T${m[2]}${fraction ? `.${fraction}` : ''}${zone}`;
}

/**
 * The index blob, when the cache has it (older caches keep only the platform manifest: the
 * store then records the image as a pull by manifest digest does, and `repo@<index digest>`
 * does not resolve).
 */
async function readIndex(cacheDir: string, image: LockedImage): Promise<Buffer | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(blobPath(cacheDir, image.indexDigest));
  } catch {
    return undefined;
  }
  if (`sha256:${sha256(bytes)}` !== image.indexDigest) {
    throw new InputError('E_DIGEST_MISMATCH', `${image.reference}: the cached index ${image.indexDigest} does not hash to its name; the cache is damaged: run \`ctrbake fetch\` again`, {
      details: { reference: image.reference, digest: image.indexDigest },
    });
  }
  return bytes;
}

/** Reads what the store needs from the cache (configs, manifests, blob paths) and orders the layers. */
export async function planPodmanStore(options: PodmanStoreOptions): Promise<PodmanStorePlan> {
  const images: PodmanStorePlan['images'] = [];
  const layers = new Map<string, PlannedPodmanLayer>();
  const read = async (image: LockedImage, digest: string): Promise<Buffer> => {
    try {
      return await readFile(blobPath(options.cacheDir, digest));
    } catch {
      throw cacheMiss(image, digest, options.cacheDir);
    }
  };
  for (const image of options.lock.images) {
    const config = await read(image, image.config.digest);
    const manifest = await read(image, image.manifest.digest);
    const index = image.indexDigest !== image.manifest.digest ? await readIndex(options.cacheDir, image) : undefined;
    const diffIds = diffIdsOfConfig(config.toString('utf8')) ?? [];
    if (diffIds.length !== image.layers.length || diffIds.length === 0) {
      throw new InputError('E_STORE_INPUT', `${image.reference}: the cached config declares ${diffIds.length} layers, the lock ${image.layers.length}`);
    }
    const ids = podmanLayerIds(diffIds);
    for (const [i, layer] of image.layers.entries()) {
      const id = ids[i]!;
      if (layers.has(id)) continue;
      const blob = await resolveLayerBlob(options.cacheDir, layer, diffIds[i]);
      if (!blob) throw cacheMiss(image, layer.digest, options.cacheDir);
      layers.set(id, {
        id,
        diffId: diffIds[i]!,
        ...(i > 0 ? { parent: ids[i - 1]! } : {}),
        blob,
        mediaType: layer.mediaType,
        reference: image.reference,
        compressedDigest: layer.digest,
        compressedSize: layer.size,
      });
    }
    images.push({ image, diffIds, config, manifest, ...(index ? { index } : {}), topLayer: ids.at(-1)! });
  }
  return { images, layers: [...layers.values()] };
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** containers-storage's compression enum (pkg/archive): what a pull records for the blob. */
function compressionOf(mediaType: string): number | undefined {
  return /gzip/.test(mediaType) ? 2 : /zstd/.test(mediaType) ? 4 : undefined;
}

/** An images.json record and its big-data files, as containers/image's storage destination commits them. */
function imageRecord(entry: PodmanStorePlan['images'][number], sourceDateEpoch: number): { record: Record<string, unknown>; files: Array<[string, Buffer]> } {
  const { image, config, manifest, index } = entry;
  const id = hex(image.config.digest);
  const digest = image.manifest.digest;
  // Pulled through an index, the image's digest is the index's and both manifests are kept.
  const name = image.tag ? `${image.registry}/${image.repository}:${image.tag}` : undefined;
  const signatureKey = `signature-${hex(digest)}`;
  const big: Array<[string, Buffer]> = [
    [`sha256:${id}`, config],
    ...(index ? [[`manifest-${image.indexDigest}`, index] as [string, Buffer]] : []),
    [`manifest-${digest}`, manifest],
    ['manifest', manifest],
    [signatureKey, Buffer.alloc(0)],
  ];
  const sortedKeys = big.map(([k]) => k).sort();
  const lookup = new Map(big);
  const parsed = JSON.parse(config.toString('utf8')) as { created?: unknown };
  const created = goTimeOf(parsed.created) ?? new Date(sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z');
  return {
    record: {
      id,
      digest: index ? image.indexDigest : digest,
      ...(name ? { names: [name], 'names-history': [name] } : {}),
      layer: entry.topLayer,
      metadata: JSON.stringify({ 'signatures-sizes': { [digest]: [] } }),
      'big-data-names': big.map(([k]) => k),
      'big-data-sizes': Object.fromEntries(sortedKeys.map((k) => [k, lookup.get(k)!.length])),
      'big-data-digests': Object.fromEntries(sortedKeys.map((k) => [k, k === `sha256:${id}` ? `sha256:${id}` : `sha256:${sha256(lookup.get(k)!)}`])),
      created,
    },
    files: big.map(([k, bytes]) => [bigDataFileName(k), bytes]),
  };
}

export async function* podmanStoreTar(plan: PodmanStorePlan, options: PodmanStoreOptions): AsyncGenerator<Buffer> {
  const flavour = podmanTarSplitFlavour(options.engineVersion);
  const sde = options.sourceDateEpoch;
  const createdIso = new Date(sde * 1000).toISOString().replace('.000Z', 'Z');
  const { node, dir, file } = storeEntryWriters(sde);
  const layers = [...plan.layers];
  const links = new Map(layers.map((l) => [l.id, overlayLinkName(l.id)]));
  yield dir('overlay', 0o700);
  yield dir('overlay/l', 0o755);
  for (const layer of layers) yield encodeHeader(canonical(`overlay/l/${links.get(layer.id)!}`, { ...node('symlink', 0o777), linkname: `../${layer.id}/diff` }));
  const lowers = new Map<string, string>();
  const records: Array<{ id: string } & Record<string, unknown>> = [];
  const tarSplits: Array<[string, Buffer]> = [];
  for (const layer of layers) {
    const scanned = await scanLayer(openLayer(layer), { flavour, sourceDateEpoch: sde });
    if (scanned.diffId !== layer.diffId) {
      throw new InputError('E_DIGEST_MISMATCH', `${layer.reference}: layer ${layer.blob.digest} unpacks to ${scanned.diffId}, the config says ${layer.diffId}; the cache is damaged: run \`ctrbake fetch\` again`, {
        details: { reference: layer.reference, digest: layer.blob.digest, diffId: scanned.diffId, expected: layer.diffId },
      });
    }
    const layerDir = `overlay/${layer.id}`;
    yield dir(layerDir, 0o700);
    // containers-storage makes every diff dir 0555 (its parent's mode; the layer's "./" entry is skipped).
    yield dir(`${layerDir}/diff`, 0o555, scanned.tree.rootOpaque ? new Map([['trusted.overlay.opaque', Buffer.from('y')]]) : undefined);
    yield* writeDiffEntries(scanned.tree, openLayer(layer), `${layerDir}/diff/`);
    if (!layer.parent) yield dir(`${layerDir}/empty`, 0o700);
    yield* file(`${layerDir}/link`, 0o644, Buffer.from(links.get(layer.id)!));
    if (layer.parent) {
      const parentLower = lowers.get(layer.parent);
      const lower = `l/${links.get(layer.parent)!}${parentLower ? `:${parentLower}` : ''}`;
      lowers.set(layer.id, lower);
      yield* file(`${layerDir}/lower`, 0o644, Buffer.from(lower));
    }
    yield dir(`${layerDir}/merged`, 0o700);
    yield dir(`${layerDir}/work`, 0o700);
    const compression = compressionOf(layer.mediaType);
    const compressed = compression !== undefined;
    records.push({
      id: layer.id,
      ...(layer.parent ? { parent: layer.parent } : {}),
      created: createdIso,
      'compressed-diff-digest': compressed ? layer.compressedDigest : layer.diffId,
      'compressed-size': compressed ? layer.compressedSize : scanned.length,
      'diff-digest': layer.diffId,
      'diff-size': scanned.length,
      ...(compression ? { compression } : {}),
      ...(scanned.uids.length > 0 ? { uidset: scanned.uids } : {}),
      ...(scanned.gids.length > 0 ? { gidset: scanned.gids } : {}),
    });
    tarSplits.push([layer.id, gzipSync(scanned.tarSplit)]);
  }

  yield dir('overlay-images', 0o700);
  // Two references to one image: one record with both names, as a second pull adds its name.
  const byImage = new Map<string, { id: string } & ReturnType<typeof imageRecord>>();
  for (const entry of plan.images) {
    const made = { id: hex(entry.image.config.digest), ...imageRecord(entry, sde) };
    const seen = byImage.get(made.id);
    if (!seen) byImage.set(made.id, made);
    else for (const key of ['names', 'names-history']) seen.record[key] = [...new Set([...((seen.record[key] as string[] | undefined) ?? []), ...((made.record[key] as string[] | undefined) ?? [])])];
  }
  const unique = [...byImage.values()].sort(byId);
  for (const image of unique) {
    yield dir(`overlay-images/${image.id}`, 0o700);
    for (const [name, bytes] of image.files) yield* file(`overlay-images/${image.id}/${name}`, 0o600, bytes);
  }
  yield* file('overlay-images/images.json', 0o600, Buffer.from(JSON.stringify(unique.map((i) => i.record))));
  yield* file('overlay-images/images.lock', 0o644, Buffer.alloc(0));

  yield dir('overlay-layers', 0o700);
  for (const [id, gz] of tarSplits.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) yield* file(`overlay-layers/${id}.tar-split.gz`, 0o600, gz);
  yield* file('overlay-layers/layers.json', 0o600, Buffer.from(JSON.stringify(records.sort(byId))));
  yield* file('overlay-layers/layers.lock', 0o644, Buffer.alloc(0));
  yield endOfArchive();
}
