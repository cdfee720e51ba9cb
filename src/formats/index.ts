/**
 * The files steps use to talk to each other. Their formats are public and documented
 * in docs/lock.md (lock), docs/fetch.md (cache), docs/bake.md (manifest.json) and
 * docs/report.md (layers.json); bump the version field on any incompatible change.
 */

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** One image pinned for one platform. */
export interface LockedImage {
  /** The reference as the user wrote it (normalized: docker.io/library/ added). */
  reference: string;
  /** Registry host[:port], e.g. "127.0.0.1:5000" or "docker.io". */
  registry: string;
  /** Repository path inside the registry, e.g. "library/busybox". */
  repository: string;
  tag: string | null;
  /** What the tag (or given digest) resolves to: an index, or a single manifest. */
  indexDigest: string;
  indexMediaType: string;
  /** The manifest for the lock's platform. Equals indexDigest for single-platform images. */
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** The platform of the chosen manifest as the index (or config) declares it. */
  platform: Platform;
}

export interface LockFile {
  lockVersion: 1;
  platform: Platform;
  images: LockedImage[];
}

export interface OutputFile {
  /** Relative to the OUT directory, '/'-separated. */
  path: string;
  sha256: string;
  size: number;
}

export interface ManifestLayer extends Descriptor {
  /** sha256 of the uncompressed layer tar (from the image config's rootfs.diff_ids). */
  diffId: string;
}

export interface ManifestImage {
  reference: string;
  repository: string;
  tag: string | null;
  /** Platform manifest digest. */
  digest: string;
  indexDigest: string;
  /** Image id as the engine shows it: the config digest. */
  imageId: string;
  platform: Platform;
  layers: ManifestLayer[];
  /** Archive mode: path of this image's archive relative to OUT. */
  archive?: string;
}

export type BakeMode = 'archive' | 'store';
export type EngineName = 'docker' | 'podman';
export type ArchiveFormat = 'docker-archive' | 'oci-archive';

export interface BakeManifest {
  manifestVersion: 1;
  ctrbakeVersion: string;
  mode: BakeMode;
  engine: { name: EngineName; version: string };
  storageDriver: string;
  /** Archive mode only. */
  archiveFormat?: ArchiveFormat;
  platform: Platform;
  sourceDateEpoch: number;
  images: ManifestImage[];
  outputs: OutputFile[];
  /**
   * Optional (added compatibly in manifestVersion 1): "sha256:<hex>" of everything the outputs
   * depend on (lock content, output-affecting options, ctrbake and engine versions); a bake
   * with the same fingerprint into this OUT is skipped (docs/bake.md, "Up to date").
   */
  inputFingerprint?: string;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
