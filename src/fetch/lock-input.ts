import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError } from '../errors.js';
import type { Descriptor, LockedImage, LockFile } from '../formats/index.js';
import { isDigest } from './cache.js';
import { E_LOCK_INVALID } from './errors.js';

/**
 * The file each lock object was read from, so a message about its cache can name the exact
 * `ctrbake fetch --lock FILE` that repairs it without every caller passing the path along.
 */
const lockSources = new WeakMap<LockFile, string>();

/** The absolute path readLockForFetch read `lock` from; undefined for a lock built in memory. */
export function lockPathOf(lock: Pick<LockFile, 'images'>): string | undefined {
  return lockSources.get(lock as LockFile);
}

/**
 * Reads a lock file and checks the fields fetch relies on: every digest a sha256 digest (they
 * become file names in the cache), every size a non-negative integer.
 */
export async function readLockForFetch(path: string): Promise<LockFile> {
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
  const lock = validateLockForFetch(value, path);
  lockSources.set(lock, resolve(path));
  return lock;
}

export function validateLockForFetch(value: unknown, where = 'lock'): LockFile {
  const fail = (what: string): never => {
    throw new InputError(E_LOCK_INVALID, `${where}: ${what}; run \`ctrbake lock\` again`);
  };
  if (!isObject(value)) fail('not a JSON object');
  const lock = value as Record<string, unknown>;
  if (lock.lockVersion !== 1) fail(`unsupported lockVersion ${JSON.stringify(lock.lockVersion)} (this ctrbake reads 1)`);
  if (!Array.isArray(lock.images)) fail('"images" must be an array');
  (lock.images as unknown[]).forEach((image, i) => validateImage(image, `images[${i}]`, fail));
  return value as LockFile;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

function validateImage(image: unknown, at: string, fail: (what: string) => never): void {
  if (!isObject(image)) fail(`${at} is not an object`);
  const img = image as Partial<LockedImage> & Record<string, unknown>;
  for (const key of ['reference', 'registry', 'repository'] as const) {
    if (typeof img[key] !== 'string' || img[key] === '') fail(`${at}.${key} must be a non-empty string`);
  }
  if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(img.registry!)) fail(`${at}.registry ${JSON.stringify(img.registry)} is not HOST[:PORT]`);
  if (!REPOSITORY_RE.test(img.repository!)) fail(`${at}.repository ${JSON.stringify(img.repository)} is not a repository path`);
  validateDescriptor(img.manifest, `${at}.manifest`, fail);
  validateDescriptor(img.config, `${at}.config`, fail);
  if (!Array.isArray(img.layers)) fail(`${at}.layers must be an array`);
  img.layers!.forEach((layer, j) => validateDescriptor(layer, `${at}.layers[${j}]`, fail));
}

function validateDescriptor(d: unknown, at: string, fail: (what: string) => never): void {
  if (!isObject(d)) fail(`${at} must be a descriptor object`);
  const desc = d as Partial<Descriptor>;
  if (!isDigest(desc.digest)) fail(`${at}.digest must be "sha256:" and 64 hex digits`);
  if (!Number.isSafeInteger(desc.size) || desc.size! < 0) fail(`${at}.size must be a non-negative integer`);
  if (typeof desc.mediaType !== 'string') fail(`${at}.mediaType must be a string`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
