import { InputError } from '../errors.js';
import type { LockedImage, LockFile } from '../formats.js';
import { blobPath, blobSize, readCachedDiffIds, resolveLayerBlob, type LayerBlob } from './cache.js';
import { E_CACHE_MISS } from './errors.js';
import type { BlobKind } from './types.js';
import { imageLabel } from './verify.js';

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
 * are present with the right sizes. blobs/ only ever holds verified files, so presence is proof.
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
  return { reference: image.reference, digest: image.manifest.digest, missing, manifestCached, layers, ...(diffIds ? { diffIds } : {}) };
}

/** For bake: fails with E_CACHE_MISS listing every missing blob per image. */
export async function assertCacheComplete(cacheDir: string, lock: Pick<LockFile, 'images'>): Promise<CacheCheckResult> {
  const result = await checkCacheComplete(cacheDir, lock);
  if (result.complete) return result;
  const lines: string[] = [];
  result.images.forEach((status, i) => {
    if (status.missing.length === 0) return;
    lines.push(`  ${imageLabel(lock.images[i]!)} (${status.reference}):`);
    for (const m of status.missing) {
      const where = m.kind === 'layer' ? `layer ${m.index}` : m.kind;
      lines.push(`    ${where} ${m.digest}${m.diffId ? ` (or uncompressed ${m.diffId})` : ''}${m.reason === 'wrong size' ? `: wrong size at ${blobPath(cacheDir, m.digest)}` : ''}`);
    }
  });
  throw new InputError(
    E_CACHE_MISS,
    `the cache ${cacheDir} lacks blobs the lock needs:\n${lines.join('\n')}\nRun \`ctrbake fetch --lock LOCK --cache ${cacheDir}\` (with network) first.`,
    { details: { missing: result.images.filter((s) => s.missing.length > 0).map((s) => ({ reference: s.reference, digest: s.digest, missing: s.missing })) } },
  );
}
