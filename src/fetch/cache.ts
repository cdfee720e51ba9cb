import { randomBytes } from 'node:crypto';
import { access, link, mkdir, open, readFile, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Descriptor } from '../formats/index.js';
import { fsyncDir, sha256File } from '../util/fs.js';
import { DigestMismatchError } from './errors.js';
import { rememberVerified } from './integrity.js';
import { diffIdsOfConfig } from '../formats/oci.js';

/**
 * The content-addressed cache that `fetch` fills and `bake` reads (docs/fetch.md):
 *
 *   CACHE/blobs/sha256/<hex>   every blob by the sha256 of its bytes: platform manifests,
 *                              configs, layers as the registry serves them (compressed), and,
 *                              when an engine fetcher could only produce them, uncompressed
 *                              layers under their diff_id
 *   CACHE/tmp/                 partial downloads; same filesystem, renamed into blobs/ once verified
 *
 * A blob enters blobs/ only once its digest was verified. A cache is still a plain directory
 * (copied, mirrored, edited): readers check what they use (complete.ts, integrity.ts).
 */

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export function parseDigest(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return m[1]!;
}

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function blobPath(cacheDir: string, digest: string): string {
  return join(cacheDir, 'blobs', 'sha256', parseDigest(digest));
}

export function cacheTmpDir(cacheDir: string): string {
  return join(cacheDir, 'tmp');
}

export async function hasBlob(cacheDir: string, digest: string): Promise<boolean> {
  try {
    await access(blobPath(cacheDir, digest));
    return true;
  } catch {
    return false;
  }
}

/** Size of a cached blob, or undefined when it is not in the cache. */
export async function blobSize(cacheDir: string, digest: string): Promise<number | undefined> {
  try {
    return (await stat(blobPath(cacheDir, digest))).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function ensureCacheLayout(cacheDir: string): Promise<void> {
  await mkdir(join(cacheDir, 'blobs', 'sha256'), { recursive: true });
  await mkdir(cacheTmpDir(cacheDir), { recursive: true });
}

/**
 * A fresh directory under CACHE/tmp/ for one fetcher run. Its name carries the host and pid
 * of its owner, so a later run can tell a dead process's leftovers from a live neighbour's.
 */
export async function makeCacheWorkDir(cacheDir: string, kind: string): Promise<string> {
  const dir = join(cacheTmpDir(cacheDir), `${kind}.${tmpOwnerTag()}.${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

function tmpOwnerTag(): string {
  return `${hostname().replace(/[^A-Za-z0-9-]/g, '_')}.${process.pid}`;
}

/** The pid that owns a CACHE/tmp/ entry, when it was made on this host; undefined otherwise. */
export function tmpEntryOwnerPid(name: string): number | undefined {
  const host = hostname().replace(/[^A-Za-z0-9-]/g, '_');
  const m = /^[a-z]+\.(.+)\.(\d+)\.[0-9a-f]{8}$/.exec(name);
  if (!m || m[1] !== host) return undefined;
  return Number(m[2]);
}

export interface ExpectedBlob {
  digest: string;
  /** Checked when known (the lock has sizes for manifests, configs and compressed layers). */
  size?: number;
  /** For messages: what this blob is, e.g. "layer 2 of 127.0.0.1:5000/app@sha256:...". */
  what: string;
}

export type CommitOutcome = 'stored' | 'existed';

/**
 * Verifies a file written under CACHE/tmp/ (size and sha256 of its bytes) and moves it into
 * blobs/. The file is fsynced first so a power cut never leaves a short blob behind a valid
 * name. If the blob already exists (another process won the race), the existing one wins and
 * the temp file is removed. On a mismatch the temp file is removed and nothing enters blobs/.
 */
export async function commitBlob(cacheDir: string, tmpFile: string, expected: ExpectedBlob): Promise<CommitOutcome> {
  const dest = blobPath(cacheDir, expected.digest);
  try {
    const size = (await stat(tmpFile)).size;
    if (expected.size !== undefined && size !== expected.size) {
      throw new DigestMismatchError(expected.what, `size ${expected.size}`, `size ${size}`);
    }
    const actual = `sha256:${await sha256File(tmpFile)}`;
    if (actual !== expected.digest) throw new DigestMismatchError(expected.what, expected.digest, actual);
    const fh = await open(tmpFile, 'r');
    try {
      // Downloaders create 0600 files; blobs are shared read-only data (report and squashfs may run unprivileged).
      await fh.chmod(0o644);
      await fh.sync();
    } finally {
      await fh.close();
    }
    const outcome = await linkNoReplace(tmpFile, dest);
    if (outcome === 'stored') {
      await fsyncDir(join(cacheDir, 'blobs', 'sha256'));
      await rememberVerified(dest, expected.digest);
    }
    return outcome;
  } finally {
    await rm(tmpFile, { force: true });
  }
}

/** link(2) never replaces an existing name, so the first verified copy of a blob stays in place. */
async function linkNoReplace(src: string, dest: string): Promise<CommitOutcome> {
  try {
    await link(src, dest);
    return 'stored';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return 'existed';
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
  }
  // Filesystems without hard links: rename is still atomic; identical content makes a lost race harmless.
  if (await access(dest).then(() => true, () => false)) return 'existed';
  await rename(src, dest);
  return 'stored';
}

/** Removes a blob that failed a check (wrong size), so the next fetch downloads it again. */
export async function evictBlob(cacheDir: string, digest: string): Promise<void> {
  await unlink(blobPath(cacheDir, digest)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Lists the names in CACHE/tmp/ (empty when it does not exist). */
export async function listCacheTmp(cacheDir: string): Promise<string[]> {
  try {
    return await readdir(cacheTmpDir(cacheDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The diff_ids of a cached image config, or undefined when the config is not cached or not an image config. */
export async function readCachedDiffIds(cacheDir: string, configDigest: string): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await readFile(blobPath(cacheDir, configDigest), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return diffIdsOfConfig(text);
}


export interface LayerBlob {
  path: string;
  /** The digest the blob is stored under: the layer's (compressed) digest or its diff_id. */
  digest: string;
  /** True when the blob is the layer as the registry serves it (layer.mediaType applies). */
  asPublished: boolean;
  /** False when the stored blob is the uncompressed tar (stored under its diff_id). */
  compressed: boolean;
}

/**
 * Where a layer is in the cache: under its digest as published (usually gzip-compressed), or,
 * when an engine fetcher stored it, as the uncompressed tar under its diff_id. Bake accepts either.
 */
export async function resolveLayerBlob(cacheDir: string, layer: Descriptor, diffId?: string): Promise<LayerBlob | undefined> {
  if (await hasBlob(cacheDir, layer.digest)) {
    return {
      path: blobPath(cacheDir, layer.digest),
      digest: layer.digest,
      asPublished: true,
      compressed: /gzip|zstd/.test(layer.mediaType),
    };
  }
  if (diffId && (await hasBlob(cacheDir, diffId))) {
    return { path: blobPath(cacheDir, diffId), digest: diffId, asPublished: false, compressed: false };
  }
  return undefined;
}
