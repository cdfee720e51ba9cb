import { resolve } from 'node:path';
import type { LockedImage, LockFile } from '../formats/index.js';
import { blobPath, blobSize, readCachedDiffIds, resolveLayerBlob, type LayerBlob } from './cache.js';
import { cacheDamageError, type CacheDamage } from './cache-damage.js';
import { inspectBlobFile, type BlobProblem } from './integrity.js';
import { lockPathOf } from '../formats/lock.js';
import type { BlobKind } from './types.js';

export interface MissingBlob {
  kind: BlobKind;
  digest: string;
  /** Layers: the diff_id, when the cached config gives it (the layer may be cached under it). */
  diffId?: string;
  /** Layers: index in the manifest. */
  index?: number;
  /** 'absent', or 'wrong size' for a file whose size differs from the lock (damaged cache). */
  reason: 'absent' | 'wrong size';
}

export interface ImageCacheStatus {
  reference: string;
  /** Platform manifest digest. */
  digest: string;
  /** What bake needs and the cache lacks: the config and layers. Empty when the image is complete. */
  missing: MissingBlob[];
  /** The platform manifest's own bytes are cached (engine fetchers may not provide them). */
  manifestCached: boolean;
  /**
   * The image index the tag resolved to is cached, or there is none (indexDigest is the
   * manifest): fetch keeps it since ctrbake 5; a cache filled earlier lacks it. Only an OCI
   * archive written from the cache needs it (and the manifest).
   */
  indexCached: boolean;
  /** Where each layer is, in manifest order (undefined for missing ones). */
  layers: (LayerBlob | undefined)[];
  diffIds?: string[];
}

export interface CacheCheckResult {
  complete: boolean;
  images: ImageCacheStatus[];
}

/**
 * What of the lock is in the cache, without network I/O or hashing: an image is complete when
 * its config and every layer (compressed under its digest, or uncompressed under its diff_id)
 * are present with the right sizes. Presence is not proof of content: findCacheDamage and
 * assertCacheComplete also hash what is there.
 */
export async function checkCacheComplete(cacheDir: string, lock: Pick<LockFile, 'images'>): Promise<CacheCheckResult> {
  const images: ImageCacheStatus[] = [];
  for (const image of lock.images) images.push(await checkImage(cacheDir, image));
  return { complete: images.every((i) => i.missing.length === 0), images };
}

async function checkImage(cacheDir: string, image: LockedImage): Promise<ImageCacheStatus> {
  const missing: MissingBlob[] = [];
  const sizeProblem = async (digest: string, size: number): Promise<MissingBlob['reason'] | undefined> => {
    const actual = await blobSize(cacheDir, digest);
    if (actual === undefined) return 'absent';
    return actual === size ? undefined : 'wrong size';
  };
  const configProblem = await sizeProblem(image.config.digest, image.config.size);
  if (configProblem) missing.push({ kind: 'config', digest: image.config.digest, reason: configProblem });
  const diffIds = configProblem ? undefined : await readCachedDiffIds(cacheDir, image.config.digest);
  const layers: (LayerBlob | undefined)[] = [];
  for (const [index, layer] of image.layers.entries()) {
    const diffId = diffIds?.length === image.layers.length ? diffIds[index] : undefined;
    const found = await resolveLayerBlob(cacheDir, layer, diffId);
    let reason: MissingBlob['reason'] | undefined = found ? undefined : 'absent';
    if (found?.asPublished) reason = await sizeProblem(layer.digest, layer.size);
    layers.push(reason ? undefined : found);
    if (reason) missing.push({ kind: 'layer', digest: layer.digest, ...(diffId ? { diffId } : {}), index, reason });
  }
  const manifestCached = (await sizeProblem(image.manifest.digest, image.manifest.size)) === undefined;
  const indexCached = !hasIndex(image) || (await blobSize(cacheDir, image.indexDigest)) !== undefined;
  return { reference: image.reference, digest: image.manifest.digest, missing, manifestCached, indexCached, layers, ...(diffIds ? { diffIds } : {}) };
}

/** True when the lock's tag resolved to an image index (a multi-platform image), not to the manifest itself. */
export function hasIndex(image: Pick<LockedImage, 'indexDigest' | 'manifest'>): boolean {
  return image.indexDigest !== image.manifest.digest;
}

/**
 * Every blob of the lock that the cache lacks or holds wrong: the config and each layer
 * (missing, wrong size, or bytes that do not hash to their name), and the platform manifest
 * when a file is there (engine fetchers cannot cache it and bake does not read it, so its
 * absence is no damage), and the image index the same way (a cache filled before ctrbake
 * kept it lacks it). Hashes every present blob once.
 */
export async function findCacheDamage(cacheDir: string, lock: Pick<LockFile, 'images'>, status: CacheCheckResult): Promise<CacheDamage[]> {
  const damage: CacheDamage[] = [];
  const checked = new Map<string, Promise<BlobProblem | undefined>>();
  const inspect = (path: string, digest: string, size?: number) => {
    let p = checked.get(path);
    if (!p) checked.set(path, (p = inspectBlobFile(path, digest, size)));
    return p;
  };
  for (const [i, image] of lock.images.entries()) {
    const s = status.images[i]!;
    const add = async (kind: CacheDamage['kind'], path: string, digest: string, size: number | undefined, extra: Partial<CacheDamage> = {}) => {
      const problem = await inspect(path, digest, size);
      if (problem) damage.push({ reference: image.reference, kind, digest, path, ...extra, ...problem } as CacheDamage);
    };
    await add('config', blobPath(cacheDir, image.config.digest), image.config.digest, image.config.size);
    for (const [index, layer] of image.layers.entries()) {
      const found = s.layers[index];
      const miss = s.missing.find((m) => m.kind === 'layer' && m.index === index);
      if (found) await add('layer', found.path, found.digest, found.asPublished ? layer.size : undefined, { index });
      else await add('layer', blobPath(cacheDir, layer.digest), layer.digest, layer.size, { index, ...(miss?.diffId ? { diffId: miss.diffId } : {}) });
    }
    const manifestPath = blobPath(cacheDir, image.manifest.digest);
    const manifestProblem = await inspect(manifestPath, image.manifest.digest, image.manifest.size);
    if (manifestProblem && manifestProblem.problem !== 'missing') {
      damage.push({ reference: image.reference, kind: 'manifest', digest: image.manifest.digest, path: manifestPath, ...manifestProblem });
    }
    if (hasIndex(image)) {
      // The lock records no index size: its sha256 is the check.
      const indexPath = blobPath(cacheDir, image.indexDigest);
      const indexProblem = await inspect(indexPath, image.indexDigest);
      if (indexProblem && indexProblem.problem !== 'missing') {
        damage.push({ reference: image.reference, kind: 'index', digest: image.indexDigest, path: indexPath, ...indexProblem });
      }
    }
  }
  return damage;
}

export interface AssertCacheOptions {
  /** The lock file to name in the repair command (default: the file readLock read `lock` from). */
  lockPath?: string;
}

/**
 * Before bake (and fetch --offline, build --offline) reads anything: every blob of the lock is
 * present and right (size, then sha256). Fails with E_CACHE_DAMAGED (a wrong file) or
 * E_CACHE_MISS (only missing ones), naming each blob's image, digest and file, and the
 * `ctrbake fetch` command that repairs the cache.
 */
export async function assertCacheComplete(cacheDir: string, lock: Pick<LockFile, 'images'>, options: AssertCacheOptions = {}): Promise<CacheCheckResult> {
  const result = await checkCacheComplete(cacheDir, lock);
  const damage = await findCacheDamage(cacheDir, lock, result);
  if (damage.length === 0) return result;
  const lockPath = options.lockPath ? resolve(options.lockPath) : lockPathOf(lock);
  throw cacheDamageError(damage, {
    cacheDir: resolve(cacheDir),
    ...(lockPath ? { lockPath } : {}),
    details: { missing: result.images.filter((s) => s.missing.length > 0).map((s) => ({ reference: s.reference, digest: s.digest, missing: s.missing })) },
  });
}
