/**
 * What a build without network (BitBake's BB_NO_NETWORK, `ctrbake fetch --offline`) runs
 * instead of a fetch: the cache must already hold every blob the lock needs, intact.
 */
import { resolve } from 'node:path';
import { assertCacheComplete } from './complete.js';
import { readLock } from '../formats/lock.js';

export interface OfflineCheckOptions {
  lockPath: string;
  cacheDir: string;
}

export interface OfflineCheckResult {
  cacheDir: string;
  offline: true;
  images: { reference: string; digest: string; status: 'cached' }[];
}

/** Fails with E_CACHE_MISS or E_CACHE_DAMAGED (docs/errors.md) when a blob is missing or wrong. */
export async function checkCacheOffline(options: OfflineCheckOptions): Promise<OfflineCheckResult> {
  const lock = await readLock(options.lockPath);
  const status = await assertCacheComplete(options.cacheDir, lock);
  return {
    cacheDir: resolve(options.cacheDir),
    offline: true,
    images: status.images.map((i) => ({ reference: i.reference, digest: i.digest, status: 'cached' as const })),
  };
}
