/**
 * OUT/manifest.json, the bake's output manifest (docs/bake.md): its types, the one place that
 * builds it, its writer, and its reader with validation on read. The loader, `report`,
 * verify-store and the up-to-date check read it here; each turns a bad field into its own
 * error code (the `fail` it passes), so a message names the file and the field.
 */
import { readFile } from 'node:fs/promises';
import { toJsonFile, writeFileAtomic } from '../util/fs.js';
import { VERSION } from '../version.js';
import { checkArray, checkDescriptor, checkDigest, checkObject, checkPlatform, checkSize, checkString, isObject, type Fail } from './check.js';
import type { Descriptor, LockedImage, Platform } from './lock.js';

export const MANIFEST_FILE = 'manifest.json';

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
/** The engines ctrbake runs (bake, fetch). */
export type EngineName = 'docker' | 'podman';
/** The engines a bake's output is for: also containerd, whose image store only ctrbake's builder writes (docs/containerd.md). */
export type TargetEngine = EngineName | 'containerd';
export type ArchiveFormat = 'docker-archive' | 'oci-archive';

export interface BakeManifest {
  manifestVersion: 1;
  ctrbakeVersion: string;
  mode: BakeMode;
  engine: { name: TargetEngine; version: string };
  storageDriver: string;
  /** containerd stores: the namespace the images are recorded in (default, moby, k8s.io...). */
  namespace?: string;
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

/** What a bake decides; buildManifest adds the version fields. */
export type ManifestFields = Omit<BakeManifest, 'manifestVersion' | 'ctrbakeVersion' | 'inputFingerprint'>;

/** A locked image as the manifest records it once baked: its layers get their diff ids. */
export function manifestImageOf(image: LockedImage, diffIds: readonly string[], archive?: string): ManifestImage {
  return {
    reference: image.reference,
    repository: image.repository,
    tag: image.tag,
    digest: image.manifest.digest,
    indexDigest: image.indexDigest,
    imageId: image.config.digest,
    platform: image.platform,
    layers: image.layers.map((l, n) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, diffId: diffIds[n] ?? '' })),
    ...(archive !== undefined ? { archive } : {}),
  };
}

/** The manifest of a bake, in the one key order every manifest.json has; outputs sorted by path. */
export function buildManifest(fields: ManifestFields): BakeManifest {
  return {
    manifestVersion: 1,
    ctrbakeVersion: VERSION,
    mode: fields.mode,
    engine: fields.engine,
    storageDriver: fields.storageDriver,
    ...(fields.archiveFormat ? { archiveFormat: fields.archiveFormat } : {}),
    platform: fields.platform,
    sourceDateEpoch: fields.sourceDateEpoch,
    images: fields.images,
    outputs: [...fields.outputs].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

export function serializeManifest(manifest: BakeManifest): string {
  return toJsonFile(manifest);
}

export function writeManifest(path: string, manifest: BakeManifest): Promise<void> {
  return writeFileAtomic(path, serializeManifest(manifest));
}

/** manifestVersion 1 and ctrbake's top-level fields: the output guard's recognizer, no validation. */
export function looksLikeManifest(value: unknown): value is Pick<BakeManifest, 'manifestVersion' | 'ctrbakeVersion' | 'outputs'> {
  return isObject(value) && value.manifestVersion === 1 && typeof value.ctrbakeVersion === 'string' && Array.isArray(value.outputs);
}

export interface ManifestProblem {
  /** unreadable: the file cannot be read (`cause` has the errno); not-json; invalid: `message` names the field. */
  kind: 'unreadable' | 'not-json' | 'invalid';
  message: string;
  cause?: unknown;
}

export type ManifestRead = { manifest: BakeManifest; problem?: undefined } | { manifest?: undefined; problem: ManifestProblem };

/**
 * Reads and validates a manifest.json. A problem is returned, not thrown: each reader turns it
 * into its own error code and next step (the loader's E_LOADER_INPUT, report's E_REPORT_INPUT,
 * the up-to-date check's "bake again"). An invalid field is named, e.g.
 * `images[0].layers[1].digest must be "sha256:" and 64 hex digits`.
 */
export async function readManifest(path: string): Promise<ManifestRead> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return { problem: { kind: 'unreadable', message: (error as Error).message, cause: error } };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: { kind: 'not-json', message: (error as Error).message, cause: error } };
  }
  return parseManifest(value);
}

/** Validates an already parsed manifest.json (see readManifest). */
export function parseManifest(value: unknown): ManifestRead {
  const fail: Fail = (message) => {
    throw new ManifestInvalid(message);
  };
  try {
    return { manifest: validateManifest(value, fail) };
  } catch (error) {
    if (error instanceof ManifestInvalid) return { problem: { kind: 'invalid', message: error.message } };
    throw error;
  }
}

class ManifestInvalid extends Error {}

const MODES: readonly string[] = ['archive', 'store'];
const ENGINES: readonly string[] = ['docker', 'podman', 'containerd'];
const ARCHIVE_FORMATS: readonly string[] = ['docker-archive', 'oci-archive'];
const SHA256_HEX_RE = /^[a-f0-9]{64}$/;

/** Validates a parsed manifest.json; `fail` gets what is wrong, naming the field. */
export function validateManifest(value: unknown, fail: Fail): BakeManifest {
  assertManifest(value, fail);
  return value;
}

function assertManifest(value: unknown, fail: Fail): asserts value is BakeManifest {
  if (!isObject(value)) fail('not a JSON object');
  const m = value;
  if (m.manifestVersion !== 1) fail(`not a ctrbake manifest (manifestVersion ${JSON.stringify(m.manifestVersion)}, this ctrbake reads 1)`);
  checkString(m.ctrbakeVersion, 'ctrbakeVersion', fail);
  oneOf(m.mode, 'mode', MODES, fail);
  const engine = checkObject(m.engine, 'engine', fail, 'an object ({"name", "version"})');
  oneOf(engine.name, 'engine.name', ENGINES, fail);
  checkString(engine.version, 'engine.version', fail);
  checkString(m.storageDriver, 'storageDriver', fail, { nonEmpty: true });
  if (m.namespace !== undefined) checkString(m.namespace, 'namespace', fail, { nonEmpty: true });
  if (m.archiveFormat !== undefined) oneOf(m.archiveFormat, 'archiveFormat', ARCHIVE_FORMATS, fail);
  checkPlatform(m.platform, 'platform', fail);
  checkSize(m.sourceDateEpoch, 'sourceDateEpoch', fail);
  checkArray(m.images, 'images', fail).forEach((image, i) => validateImage(image, `images[${i}]`, fail));
  checkArray(m.outputs, 'outputs', fail).forEach((output, i) => validateOutput(output, `outputs[${i}]`, fail));
  if (m.inputFingerprint !== undefined) checkDigest(m.inputFingerprint, 'inputFingerprint', fail);
}

function oneOf(value: unknown, at: string, allowed: readonly string[], fail: Fail): void {
  if (typeof value !== 'string' || !allowed.includes(value)) fail(`${at} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
}

function validateImage(value: unknown, at: string, fail: Fail): void {
  const img = checkObject(value, at, fail);
  checkString(img.reference, `${at}.reference`, fail, { nonEmpty: true });
  checkString(img.repository, `${at}.repository`, fail, { nonEmpty: true });
  if (img.tag !== null) checkString(img.tag, `${at}.tag`, fail, { nonEmpty: true });
  checkDigest(img.digest, `${at}.digest`, fail);
  checkDigest(img.indexDigest, `${at}.indexDigest`, fail);
  checkDigest(img.imageId, `${at}.imageId`, fail);
  checkPlatform(img.platform, `${at}.platform`, fail);
  checkArray(img.layers, `${at}.layers`, fail).forEach((layer, j) => {
    checkDescriptor(layer, `${at}.layers[${j}]`, fail);
    const l = checkObject(layer, `${at}.layers[${j}]`, fail);
    // An engine that reported no diff id for a layer leaves it empty (bake/archive.ts).
    if (l.diffId !== undefined && l.diffId !== '') checkDigest(l.diffId, `${at}.layers[${j}].diffId`, fail);
  });
  if (img.archive !== undefined) checkRelativePath(img.archive, `${at}.archive`, fail);
}

function validateOutput(value: unknown, at: string, fail: Fail): void {
  const o = checkObject(value, at, fail);
  checkRelativePath(o.path, `${at}.path`, fail);
  if (typeof o.sha256 !== 'string' || !SHA256_HEX_RE.test(o.sha256)) fail(`${at}.sha256 must be 64 hex digits`);
  checkSize(o.size, `${at}.size`, fail);
}

/** Outputs are files inside OUT: a path that leaves it is refused before anyone opens it. */
function checkRelativePath(value: unknown, at: string, fail: Fail): void {
  const path = checkString(value, at, fail, { nonEmpty: true });
  if (path.startsWith('/') || path.split('/').includes('..')) fail(`${at} ${JSON.stringify(path)} must be a path inside OUT (relative, no "..")`);
}
