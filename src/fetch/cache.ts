import { access } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The content-addressed cache that `fetch` fills and `bake` reads (docs/fetch.md):
 *
 *   CACHE/blobs/sha256/<hex>   every blob by the sha256 of its bytes: platform manifests,
 *                              configs, layers as the registry serves them (compressed), and,
 *                              when an engine fetcher could only produce them, uncompressed
 *                              layers under their diff_id
 *   CACHE/tmp/                 partial downloads; same filesystem, renamed into blobs/ once verified
 *
 * A blob exists in blobs/ only once its digest was verified.
 */

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export function parseDigest(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return m[1]!;
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
