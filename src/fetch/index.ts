/** The fetch stage's public API (re-exported by src/index.ts). */
export { fetchImages, type FetchResult, type FetchedImage, type FetchedLayer } from './fetch.js';
export type { FetchOptions } from './config.js';
export { blobPath, cacheTmpDir, hasBlob, parseDigest, resolveLayerBlob, type LayerBlob } from './cache.js';
export { assertCacheComplete, checkCacheComplete, findCacheDamage, type AssertCacheOptions, type CacheCheckResult, type ImageCacheStatus, type MissingBlob } from './complete.js';
export { checkCacheOffline, type OfflineCheckOptions, type OfflineCheckResult } from './offline-check.js';
export { repairCommand, type CacheDamage } from './cache-damage.js';
export { DigestMismatchError } from './errors.js';
export type { FetcherChoice, FetcherName } from './types.js';
