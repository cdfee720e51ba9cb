/**
 * What a bake reads from its inputs, once: the lock (parsed and validated) and the cache check
 * (every blob of the lock present, sized and hashed). The budget check, the up-to-date
 * fingerprint and the mode's bake all take these instead of reading the files again.
 */
import { assertCacheComplete, type CacheCheckResult } from '../fetch/complete.js';
import { readLock, type LockFile } from '../formats/lock.js';

export interface BakeInputs {
  readonly lock: LockFile;
  /**
   * The cache check, run on the first call and shared by every later one. Lazy so that it runs
   * where it always has: before the budget check, else after the up-to-date check (an up-to-date
   * OUT needs no cache) and after the mode's first event.
   */
  readonly checkCache: () => Promise<CacheCheckResult>;
}

export async function readBakeInputs(config: { lockPath: string; cacheDir: string }): Promise<BakeInputs> {
  return bakeInputsOf(await readLock(config.lockPath), config.cacheDir);
}

export function bakeInputsOf(lock: LockFile, cacheDir: string): BakeInputs {
  let checked: Promise<CacheCheckResult> | undefined;
  return Object.freeze({ lock, checkCache: () => (checked ??= assertCacheComplete(cacheDir, lock)) });
}
