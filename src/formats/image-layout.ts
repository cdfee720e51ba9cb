/**
 * Image archives written straight from blobs (ctrbake's own builder, no engine): the blobs
 * go in unchanged, under `blobs/sha256/<hex>`, so every digest stays the registry's.
 *
 * - docker-archive: `manifest.json` (Config, RepoTags, Layers naming the blob entries), as
 *   `docker save` of Docker 25+ lays it out. `docker load` (every version) and podman's
 *   docker-archive transport accept compressed layer files: they decompress them and check
 *   each against the config's rootfs.diff_ids.
 * - oci-archive: the same plus the OCI image layout, `oci-layout` and `index.json`, whose one
 *   descriptor is the registry's own index (when the lock was resolved from one) or image
 *   manifest, annotated with the image's reference. containerd (and Docker's containerd image
 *   store) and podman read index.json and ignore manifest.json; Docker's graph-driver `load`
 *   (20.10) reads only manifest.json. So one archive loads everywhere, and an engine that keeps
 *   manifests reports the lock's digests.
 *
 * Deterministic: entries sorted, fixed mode, owner 0:0, mtime given; JSON written with fixed
 * key order.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InputError } from '../errors.js';
import type { Descriptor } from './descriptor.js';
import type { LockedImage } from './lock.js';
import type { ArchiveFormat } from './manifest.js';
import { formatDockerManifest } from './docker-archive.js';
import { OCI_INDEX } from './media-types.js';
import { E_ARCHIVE_INVALID, encodeTar, type TarWriteEntry } from './tar/index.js';

/** The tag an image is loaded and saved under: the lock's reference without a digest. */
export function imageTag(image: LockedImage): string | undefined {
  return image.tag ? `${image.registry}/${image.repository}:${image.tag}` : undefined;
}

/** A file name for an image's archive: the reference with path and tag separators flattened. */
export function archiveFileName(image: LockedImage, format: ArchiveFormat, taken: Set<string>): string {
  const base = `${image.registry}/${image.repository}${image.tag ? `:${image.tag}` : `@${image.manifest.digest}`}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  const ext = format === 'oci-archive' ? '.oci.tar' : '.tar';
  let name = `${base}${ext}`;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}${ext}`;
  taken.add(name);
  return name;
}

/** A blob of the archive: its digest and size, and the file holding exactly its bytes. */
export interface LayoutBlob {
  digest: string;
  size: number;
  path: string;
}

export interface LayoutImage {
  /** The config blob's digest (its bytes must be among `blobs`). */
  configDigest: string;
  /** The layer blobs' digests, in the config's rootfs order (compressed or not). */
  layerDigests: readonly string[];
  /** Tags for manifest.json's RepoTags (docker load names the image with them). */
  repoTags: readonly string[];
  /**
   * The OCI layout's entry: what index.json names (the registry's index or image manifest,
   * which must be among `blobs`). Absent: a docker-archive (no oci-layout, no index.json).
   */
  oci?: {
    target: Descriptor;
    /**
     * The full reference for the annotations: registry/repository:tag gets both; a digest
     * reference (registry/repository@sha256:...) only containerd's (podman's load reads
     * ref.name as a name to tag, and a digest is none: it loads the image unnamed, as the
     * engine path's archive). Absent: unnamed.
     */
    name?: string;
  };
  /** Every blob this image needs: config, layers and, for OCI, its manifest and index. */
  blobs: readonly LayoutBlob[];
}

/** The annotations engines read an image's name from (containerd, nerdctl, Docker 25+; podman). */
export const REF_NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name'] as const;

function annotationsFor(name: string): Record<string, string> {
  const keys = name.includes('@') ? REF_NAME_ANNOTATIONS.slice(0, 1) : REF_NAME_ANNOTATIONS;
  return Object.fromEntries(keys.map((k) => [k, name]));
}

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_BYTES = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

/** The index.json of an OCI archive: one descriptor per image, annotated with its name. */
export function formatLayoutIndex(images: readonly Pick<LayoutImage, 'oci'>[]): Buffer {
  const manifests = images.flatMap((i) =>
    i.oci
      ? [
          {
            mediaType: i.oci.target.mediaType,
            digest: i.oci.target.digest,
            size: i.oci.target.size,
            ...(i.oci.name ? { annotations: annotationsFor(i.oci.name) } : {}),
          },
        ]
      : [],
  );
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
}

const blobName = (digest: string) => `blobs/sha256/${digest.replace(/^sha256:/, '')}`;

/** Blob reads: 1 MiB chunks (the default 64 KiB costs several times the CPU per byte here). */
const READ_CHUNK = 1024 * 1024;

export interface LayoutArchiveResult {
  /** sha256 hex of the archive's bytes, hashed as they were written (no second read). */
  sha256: string;
  size: number;
}

/**
 * Writes `images` as one archive at `outPath` (created 0644): a docker-archive, or an OCI
 * archive when every image has `oci`. A blob shared by images is written once.
 */
export async function writeImageLayoutArchive(outPath: string, images: readonly LayoutImage[], mtimeSeconds: number): Promise<LayoutArchiveResult> {
  if (images.length === 0) throw new InputError(E_ARCHIVE_INVALID, `${outPath}: an archive needs at least one image`);
  const oci = images.every((i) => i.oci);
  if (!oci && images.some((i) => i.oci)) throw new InputError(E_ARCHIVE_INVALID, `${outPath}: images of one archive are all OCI or all docker-archive`);
  const blobs = new Map<string, LayoutBlob>();
  for (const image of images) {
    for (const b of image.blobs) blobs.set(b.digest, b);
    const needed = [image.configDigest, ...image.layerDigests, ...(image.oci ? [image.oci.target.digest] : [])];
    for (const d of needed) if (!blobs.has(d)) throw new InputError(E_ARCHIVE_INVALID, `${outPath}: blob ${d} is named but not given`);
  }
  const file = (path: string, size: number, content: TarWriteEntry['content']): TarWriteEntry => ({ path, type: 'file', mode: 0o644, mtime: mtimeSeconds, size, content });
  const dir = (path: string): TarWriteEntry => ({ path, type: 'dir', mode: 0o755, mtime: mtimeSeconds });
  const manifest = formatDockerManifest(images.map((i) => ({ Config: blobName(i.configDigest), RepoTags: [...i.repoTags], Layers: i.layerDigests.map(blobName) })));
  async function* entries(): AsyncGenerator<TarWriteEntry> {
    yield dir('blobs/');
    yield dir('blobs/sha256/');
    for (const digest of [...blobs.keys()].sort()) {
      const b = blobs.get(digest)!;
      yield file(blobName(digest), b.size, createReadStream(b.path, { highWaterMark: READ_CHUNK }));
    }
    if (oci) {
      const index = formatLayoutIndex(images);
      yield file('index.json', index.length, index);
    }
    yield file('manifest.json', manifest.length, manifest);
    if (oci) yield file(OCI_LAYOUT_FILE, OCI_LAYOUT_BYTES.length, OCI_LAYOUT_BYTES);
  }
  const hash = createHash('sha256');
  let size = 0;
  const tee = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(Readable.from(encodeTar(entries())), tee, createWriteStream(outPath, { mode: 0o644 }));
  return { sha256: hash.digest('hex'), size };
}
