/**
 * The lock file (docs/lock.md): its types, its reader with validation on read, and its writer.
 * Every stage that takes a lock (fetch, bake, report, build) reads it here, so a bad field is
 * refused the same way everywhere: E_LOCK_INVALID, naming the file and the field.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError } from '../errors.js';
import { toJsonFile, writeFileAtomic } from '../util/fs.js';
import { checkArray, checkDescriptor, checkDigest, checkObject, checkPlatform, checkString, isObject, type Fail } from './check.js';
import type { Descriptor, Platform } from './descriptor.js';

export type { Descriptor, Platform } from './descriptor.js';

export const E_LOCK_INVALID = 'E_LOCK_INVALID';

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

/**
 * The file each lock object was read from, so a message about its cache can name the exact
 * `ctrbake fetch --lock FILE` that repairs it without every caller passing the path along.
 */
const lockSources = new WeakMap<LockFile, string>();

/** The absolute path readLock read `lock` from; undefined for a lock built in memory. */
export function lockPathOf(lock: Pick<LockFile, 'images'>): string | undefined {
  return lockSources.get(lock as LockFile);
}

/** Reads and validates a lock file (validateLock); the lock remembers its path (lockPathOf). */
export async function readLock(path: string): Promise<LockFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(E_LOCK_INVALID, `cannot read lock file ${path}: ${(error as Error).message}; run \`ctrbake lock\` first`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError(E_LOCK_INVALID, `lock file ${path} is not valid JSON; run \`ctrbake lock\` again`, { cause: error });
  }
  const lock = validateLock(value, path);
  lockSources.set(lock, resolve(path));
  return lock;
}

/**
 * Checks every field a stage relies on: digests are sha256 digests (they become file names in
 * the cache), sizes non-negative integers, registry and repository usable in a reference.
 * `where` (the file) starts the message; the field follows, as a JSON path.
 */
export function validateLock(value: unknown, where = 'lock'): LockFile {
  assertLock(value, (what) => {
    throw new InputError(E_LOCK_INVALID, `${where}: ${what}; run \`ctrbake lock\` again`);
  });
  return value;
}

function assertLock(value: unknown, fail: Fail): asserts value is LockFile {
  if (!isObject(value)) fail('not a JSON object');
  const lock = value;
  if (lock.lockVersion !== 1) fail(`unsupported lockVersion ${JSON.stringify(lock.lockVersion)} (this ctrbake reads 1)`);
  checkPlatform(lock.platform, 'platform', fail);
  checkArray(lock.images, '"images"', fail).forEach((image, i) => validateImage(image, `images[${i}]`, fail));
}

/** Recognizes a lock written by `ctrbake lock` without validating it whole (the output guard). */
export function looksLikeLock(value: unknown): boolean {
  return isObject(value) && value.lockVersion === 1 && isObject(value.platform) && Array.isArray(value.images);
}

/** The lock file's text: images sorted by reference, keys in a fixed order, no timestamps. */
export function serializeLock(lock: LockFile): string {
  return toJsonFile(lock);
}

/** Writes the lock atomically: a reader sees the old lock or the new one, never half. */
export function writeLock(path: string, lock: LockFile): Promise<void> {
  return writeFileAtomic(path, serializeLock(lock));
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

function validateImage(value: unknown, at: string, fail: Fail): void {
  const img = checkObject(value, at, fail, 'an object');
  for (const key of ['reference', 'registry', 'repository'] as const) checkString(img[key], `${at}.${key}`, fail, { nonEmpty: true });
  if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(img.registry as string)) fail(`${at}.registry ${JSON.stringify(img.registry)} is not HOST[:PORT]`);
  if (!REPOSITORY_RE.test(img.repository as string)) fail(`${at}.repository ${JSON.stringify(img.repository)} is not a repository path`);
  if (img.tag !== null) checkString(img.tag, `${at}.tag`, fail, { nonEmpty: true });
  checkDigest(img.indexDigest, `${at}.indexDigest`, fail);
  checkString(img.indexMediaType, `${at}.indexMediaType`, fail);
  checkDescriptor(img.manifest, `${at}.manifest`, fail);
  checkDescriptor(img.config, `${at}.config`, fail);
  checkArray(img.layers, `${at}.layers`, fail).forEach((layer, j) => checkDescriptor(layer, `${at}.layers[${j}]`, fail));
  checkPlatform(img.platform, `${at}.platform`, fail);
}
