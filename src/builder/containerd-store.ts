/**
 * containerd's image store, content part, written by ctrbake itself as a tar stream from the
 * cache, with no engine (docs/containerd.md). Paths relative to containerd's root
 * (/var/lib/containerd; k3s: /var/lib/rancher/k3s/agent/containerd):
 *   io.containerd.content.v1.content/blobs/sha256/<hex>   every manifest, config and layer blob,
 *                                                          the registry's bytes as fetched
 *   io.containerd.content.v1.content/ingest/              empty, as containerd makes it
 *   io.containerd.metadata.v1.bolt/meta.db                bbolt: v1/version, and per namespace
 *       content/blob/<digest>/{createdat,updatedat,size,labels/}   one record per blob
 *       images/<name>/{createdat,updatedat,labels/,target/{digest,mediatype,size}}
 *       content/ingests/, leases/                          empty, as a pull leaves them
 * The records are the ones `ctr images pull` of the same image writes (read from containerd
 * 1.6's own meta.db): the manifest blob carries the garbage collector's references
 * (containerd.io/gc.ref.content.config, .l.<i>) and every blob the
 * containerd.io/distribution.source.<host> label; without the references containerd's first
 * GC run drops the config and layers. Times are SOURCE_DATE_EPOCH. Layers stay compressed:
 * containerd unpacks them into its snapshotter when a container first needs them.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { writeBolt, type BoltBucket } from '../formats/bbolt.js';
import type { Descriptor, LockFile, LockedImage } from '../formats/index.js';
import { encodeTar, type TarWriteEntry } from '../formats/tar/index.js';
import { blobPath } from '../fetch/cache.js';

/** Schema version containerd 1.6 and 2.x keep in v1/version (metadata/db.go dbVersion). */
export const CONTAINERD_DB_VERSION = 3;
export const CONTAINERD_CONTENT_DIR = 'io.containerd.content.v1.content';
export const CONTAINERD_METADATA_DIR = 'io.containerd.metadata.v1.bolt';

/** Namespaces by who reads the store: nerdctl and ctr `default`, Docker's containerd store `moby`, k3s/CRI `k8s.io`. */
export const CONTAINERD_NAMESPACES = { containerd: 'default', docker: 'moby', k3s: 'k8s.io' } as const;

export interface ContainerdStoreOptions {
  lock: LockFile;
  cacheDir: string;
  /** The containerd namespace the images are recorded in. */
  namespace: string;
  sourceDateEpoch: number;
}

interface PlannedBlob {
  descriptor: Descriptor;
  labels: Record<string, string>;
}

export interface ContainerdStorePlan {
  blobs: PlannedBlob[];
  images: Array<{ names: string[]; target: Descriptor; labels: Record<string, string> }>;
}

/** Go's time.MarshalBinary of a UTC time (version 1: seconds since year 1, nanoseconds, offset -1 = UTC). */
export function goTimeBinary(unixSeconds: number): Buffer {
  const out = Buffer.alloc(15);
  out[0] = 1;
  out.writeBigInt64BE(BigInt(unixSeconds) + 62135596800n, 1);
  out.writeUInt32BE(0, 9);
  out.writeInt16BE(-1, 13);
  return out;
}

/** Go's binary.PutVarint (zigzag, then base-128), containerd's encodeInt. */
export function goVarint(value: number): Buffer {
  let v = BigInt(value) >= 0n ? BigInt(value) * 2n : -BigInt(value) * 2n - 1n;
  const bytes: number[] = [];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Buffer.from(bytes);
}

/** The label key a pull writes: `containerd.io/distribution.source.<host without port>`. */
const SOURCE_PREFIX = 'containerd.io/distribution.source.';
function sourceLabel(image: LockedImage): [string, string] {
  return [`${SOURCE_PREFIX}${image.registry.replace(/:\d+$/, '')}`, image.repository];
}

/** The names an image gets: its reference; for CRI (k8s.io) also repo@digest and the config digest, as the CRI plugin records a pull. */
function imageNames(image: LockedImage, namespace: string): string[] {
  const names = [image.reference];
  if (namespace === CONTAINERD_NAMESPACES.k3s) names.push(`${image.registry}/${image.repository}@${image.manifest.digest}`, image.config.digest);
  return [...new Set(names)];
}

export function planContainerdStore(options: Pick<ContainerdStoreOptions, 'lock' | 'namespace'>): ContainerdStorePlan {
  const blobs = new Map<string, PlannedBlob>();
  const add = (descriptor: Descriptor, labels: Record<string, string>) => {
    const merged = { ...(blobs.get(descriptor.digest)?.labels ?? {}) };
    // A blob two repositories share: a pull lists both sources, comma-separated.
    for (const [k, v] of Object.entries(labels)) merged[k] = merged[k] && k.startsWith(SOURCE_PREFIX) ? [...new Set([...merged[k]!.split(','), v])].sort().join(',') : v;
    blobs.set(descriptor.digest, { descriptor, labels: merged });
  };
  const images: ContainerdStorePlan['images'] = [];
  for (const image of options.lock.images) {
    const [sourceKey, sourceValue] = sourceLabel(image);
    const source = { [sourceKey]: sourceValue };
    const refs: Record<string, string> = { 'containerd.io/gc.ref.content.config': image.config.digest };
    image.layers.forEach((layer, i) => {
      refs[`containerd.io/gc.ref.content.l.${i}`] = layer.digest;
      add(layer, source);
    });
    add(image.config, source);
    add(image.manifest, { ...source, ...refs });
    const labels: Record<string, string> = options.namespace === CONTAINERD_NAMESPACES.k3s ? { 'io.cri-containerd.image': 'managed' } : {};
    images.push({ names: imageNames(image, options.namespace), target: image.manifest, labels });
  }
  return { blobs: [...blobs.values()].sort((a, b) => (a.descriptor.digest < b.descriptor.digest ? -1 : 1)), images };
}

function record(sde: number, labels: Record<string, string>, rest: BoltBucket): BoltBucket {
  const time = goTimeBinary(sde);
  const out: BoltBucket = { createdat: time, updatedat: time, ...rest };
  if (Object.keys(labels).length > 0) out.labels = Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, Buffer.from(v)]));
  return out;
}

/** meta.db's bytes for the plan. */
export function containerdMetaDb(plan: ContainerdStorePlan, namespace: string, sourceDateEpoch: number): Buffer {
  const blob: BoltBucket = {};
  for (const b of plan.blobs) blob[b.descriptor.digest] = record(sourceDateEpoch, b.labels, { size: goVarint(b.descriptor.size) });
  const images: BoltBucket = {};
  for (const image of plan.images) {
    const target: BoltBucket = { digest: Buffer.from(image.target.digest), mediatype: Buffer.from(image.target.mediaType), size: goVarint(image.target.size) };
    for (const name of image.names) images[name] = record(sourceDateEpoch, image.labels, { target });
  }
  return writeBolt({
    v1: {
      version: goVarint(CONTAINERD_DB_VERSION),
      [namespace]: { content: { blob, ingests: {} }, images, leases: {} },
    },
  });
}

/** Checks that every blob is in the cache with the lock's size (bake is offline: fetch first). */
export async function checkContainerdBlobs(plan: ContainerdStorePlan, cacheDir: string): Promise<void> {
  for (const { descriptor } of plan.blobs) {
    const size = await stat(blobPath(cacheDir, descriptor.digest)).then(
      (s) => s.size,
      () => undefined,
    );
    if (size !== descriptor.size) {
      throw new InputError('E_CACHE_MISS', `${descriptor.digest} is ${size === undefined ? 'not in' : `${size} bytes (the lock says ${descriptor.size}) in`} the cache ${cacheDir}; run ctrbake fetch with this lock first (bake is offline)`, {
        details: { digest: descriptor.digest },
      });
    }
  }
}

/** The store as a tar stream (paths relative to containerd's root; directories first, modes as containerd makes them). */
export function containerdStoreTar(plan: ContainerdStorePlan, options: ContainerdStoreOptions): AsyncGenerator<Buffer> {
  const mtime = options.sourceDateEpoch;
  const dir = (path: string, mode: number): TarWriteEntry => ({ path: `${path}/`, type: 'dir', mode, mtime });
  async function* entries(): AsyncGenerator<TarWriteEntry> {
    yield dir(CONTAINERD_CONTENT_DIR, 0o755);
    yield dir(`${CONTAINERD_CONTENT_DIR}/blobs`, 0o755);
    yield dir(`${CONTAINERD_CONTENT_DIR}/blobs/sha256`, 0o755);
    for (const { descriptor } of plan.blobs) {
      const hex = descriptor.digest.replace(/^sha256:/, '');
      yield { path: `${CONTAINERD_CONTENT_DIR}/blobs/sha256/${hex}`, type: 'file', mode: 0o444, mtime, size: descriptor.size, content: createReadStream(blobPath(options.cacheDir, descriptor.digest)) };
    }
    yield dir(`${CONTAINERD_CONTENT_DIR}/ingest`, 0o755);
    yield dir(CONTAINERD_METADATA_DIR, 0o711);
    const db = containerdMetaDb(plan, options.namespace, options.sourceDateEpoch);
    yield { path: `${CONTAINERD_METADATA_DIR}/meta.db`, type: 'file', mode: 0o644, mtime, size: db.length, content: db };
  }
  return encodeTar(entries());
}
