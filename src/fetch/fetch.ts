import { readFile } from 'node:fs/promises';
import { CtrbakeError, InputError, RegistryError } from '../errors.js';
import type { LockedImage, LockFile } from '../formats/index.js';
import { blobPath, ensureCacheLayout, evictBlob } from './cache.js';
import { describeDamage, type CacheDamage } from './cache-damage.js';
import { checkCacheComplete, findCacheDamage, hasIndex, type ImageCacheStatus } from './complete.js';
import { resolveFetchConfig, type FetchOptions } from './config.js';
import { E_CACHE_IO, E_CACHE_MISS, E_DIGEST_MISMATCH } from './errors.js';
import { readLock, validateLock } from '../formats/lock.js';
import { recoverStaleDownloads } from './salvage.js';
import { createIndexFetcher } from './index-blob.js';
import { createFetcher } from './select.js';
import type { FetcherName, ImageFetcher, ResolvedFetchConfig, StoredBlob } from './types.js';
import { checkManifestMatchesLock, imageLabel } from './verify.js';

export interface FetchedLayer {
  /** The layer's digest in the manifest. */
  digest: string;
  /** The digest it is cached under: the same, or its diff_id when stored uncompressed. */
  cachedAs: string;
  uncompressed: boolean;
}

export interface FetchedImage {
  reference: string;
  /** Platform manifest digest. */
  digest: string;
  /** 'cached': nothing was downloaded for this image. */
  status: 'cached' | 'fetched';
  manifestCached: boolean;
  /** The image index the tag resolved to is cached (always true for a single-platform image). */
  indexCached: boolean;
  layers: FetchedLayer[];
}

export interface FetchResult {
  cacheDir: string;
  /** The fetcher that ran; null when the cache already held everything (no network I/O). */
  fetcher: FetcherName | null;
  images: FetchedImage[];
  /** Distinct blobs this run moved into the cache, and their bytes. */
  blobsFetched: number;
  bytesFetched: number;
  /** Distinct blobs the lock needs that were already in the cache (and verified by sha256). */
  blobsAlreadyCached: number;
  /** Distinct damaged cache files (wrong size or content) removed and downloaded again. */
  blobsRepaired: number;
}

/**
 * Downloads exactly what the lock names (platform manifest, config, layers) into the
 * content-addressed cache; see docs/fetch.md. Checks the cache first, every blob of the lock
 * by size and sha256: damaged files are removed and downloaded again; a complete, intact cache
 * means no fetcher starts and no network I/O happens.
 */
export async function fetchImages(options: FetchOptions): Promise<FetchResult> {
  const config = await resolveFetchConfig(options);
  const lock = options.lock ? validateLock(options.lock) : await readLock(options.lockPath!);
  try {
    return await fetchIntoCache(config, lock);
  } catch (error) {
    throw cacheIoError(error, config.cacheDir) ?? error;
  }
}

const CACHE_IO_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'ENOTDIR', 'EEXIST', 'EIO']);

/** A filesystem error on the cache (full, read-only, not a directory...) as a CtrbakeError that says so. */
function cacheIoError(error: unknown, cacheDir: string): CtrbakeError | undefined {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (error instanceof CtrbakeError || typeof code !== 'string' || !CACHE_IO_CODES.has(code)) return undefined;
  return new InputError(
    E_CACHE_IO,
    `cannot write to the cache ${cacheDir}: ${(error as Error).message}. Free space, fix its permissions, or choose another --cache; ` +
      'what is already in blobs/ is complete and verified.',
    { cause: error, details: { errno: code } },
  );
}

async function fetchIntoCache(config: ResolvedFetchConfig, lock: LockFile): Promise<FetchResult> {
  const { cacheDir, reporter } = config;
  await ensureCacheLayout(cacheDir);
  const recovered = await recoverStaleDownloads(cacheDir, lock.images);
  if (recovered.length > 0) {
    reporter.event({ event: 'fetch.recovered', message: `kept ${recovered.length} complete blob(s) of an interrupted fetch`, digests: recovered });
  }
  reporter.event({ event: 'fetch.start', message: `fetching ${lock.images.length} image(s) into ${cacheDir}`, images: lock.images.length });

  const before = await checkCacheComplete(cacheDir, lock);
  const cachedAtStart = new Set<string>();
  before.images.forEach((status, i) => presentDigests(status, lock.images[i]!).forEach((d) => cachedAtStart.add(d)));

  const stored = new Map<string, number>();
  const state: RunState = { evicted: new Map(), repaired: new Set() };
  let fetcher: ImageFetcher | undefined;
  const indexes = createIndexFetcher(config);
  /** `optional`: the image is otherwise complete, so a registry that cannot be reached only costs the index (needed by native OCI archives alone). */
  const keepIndex = async (image: LockedImage, optional: boolean) => {
    let blob: StoredBlob | undefined;
    try {
      blob = await indexes.fetchIndex(image);
    } catch (error) {
      if (!optional || !(error instanceof RegistryError) || error.code === E_DIGEST_MISMATCH) throw error;
      reporter.event({
        event: 'fetch.index-not-cached',
        message: `${image.reference}: the cache is complete but lacks the image index ${image.indexDigest}, and it could not be fetched (${error.message}); only an OCI archive written by ctrbake's builder needs it: run ctrbake fetch again with the registry reachable before such a bake`,
        reference: image.reference,
        digest: image.indexDigest,
        code: error.code,
      });
      return;
    }
    if (!blob) return;
    if (blob.outcome === 'stored') stored.set(blob.digest, blob.size);
    reporter.event({ event: 'fetch.blob', reference: image.reference, ...blob });
  };
  try {
    for (const [i, image] of lock.images.entries()) {
      config.signal?.throwIfAborted();
      // Re-checked per image: an earlier image or a parallel fetch may have brought its blobs.
      const before = await statusForFetch(config, image, state);
      let status = before.status;
      // The index is read by ctrbake itself, not by the fetcher (./index-blob.ts): a cache
      // filled before fetch kept it gets it with one request, no fetcher started.
      await keepIndex(image, status.missing.length === 0 && !before.refetch);
      if (status.missing.length === 0 && !before.refetch) {
        reporter.event({ event: 'fetch.image', message: `${image.reference}: cached`, reference: image.reference, digest: image.manifest.digest, status: 'cached' });
        continue;
      }
      fetcher ??= await createFetcher(config);
      reporter.event({
        event: 'fetch.image',
        message: `${image.reference}: fetching ${status.missing.length ? `${status.missing.length} missing blob(s)` : 'its damaged platform manifest'} with ${fetcher.name}`,
        reference: image.reference,
        digest: image.manifest.digest,
        status: 'fetching',
        fetcher: fetcher.name,
      });
      const outcome = await fetcher.fetchImage(image);
      let done = 0;
      const total = outcome.blobs.reduce((n, b) => n + b.size, 0);
      for (const blob of outcome.blobs) {
        if (blob.outcome === 'stored') stored.set(blob.digest, blob.size);
        done += blob.size;
        reporter.event({ event: 'fetch.blob', reference: image.reference, ...blob });
        reporter.progress({ event: 'fetch.progress', message: `${image.reference}: ${i + 1}/${lock.images.length} images`, current: done, total });
      }
      if (!outcome.manifestCached) {
        reporter.event({
          event: 'fetch.manifest-not-cached',
          message: `${image.reference}: ${fetcher.name} cannot give the platform manifest's original bytes; it is recorded in the lock only`,
          reference: image.reference,
          digest: image.manifest.digest,
        });
      }
      status = (await statusForFetch(config, image, state)).status;
      if (status.missing.length > 0) {
        throw new InputError(E_CACHE_MISS, `after fetching ${imageLabel(image)}, the cache still lacks ${status.missing.map((m) => m.digest).join(', ')}; please report this`);
      }
      for (const d of presentDigests(status, image)) {
        const repaired = state.evicted.get(d);
        if (!repaired || state.repaired.has(d)) continue;
        state.repaired.add(d);
        reporter.event({ event: 'fetch.repaired', message: `${image.reference}: repaired ${blobPath(cacheDir, d)} (${repaired.kind === 'layer' ? `layer ${repaired.index}` : repaired.kind} ${d}, downloaded again and verified)`, reference: image.reference, kind: repaired.kind, digest: d, path: blobPath(cacheDir, d) });
      }
    }
  } finally {
    await fetcher?.close();
  }

  for (const d of state.evicted.keys()) cachedAtStart.delete(d);
  const after = await checkCacheComplete(cacheDir, lock);
  const images: FetchedImage[] = after.images.map((status, i) => {
    const image = lock.images[i]!;
    const fetched = presentDigests(status, image).some((d) => stored.has(d) && !cachedAtStart.has(d));
    return {
      reference: image.reference,
      digest: image.manifest.digest,
      status: fetched ? 'fetched' : 'cached',
      manifestCached: status.manifestCached,
      indexCached: status.indexCached,
      layers: image.layers.map((layer, j) => ({
        digest: layer.digest,
        cachedAs: status.layers[j]!.digest,
        uncompressed: !status.layers[j]!.asPublished,
      })),
    };
  });
  const needed = new Set<string>();
  for (const [i, status] of after.images.entries()) for (const d of presentDigests(status, lock.images[i]!)) needed.add(d);
  const fetchedNow = [...needed].filter((d) => stored.has(d) && !cachedAtStart.has(d));
  const result: FetchResult = {
    cacheDir,
    fetcher: fetcher?.name ?? null,
    images,
    blobsFetched: fetchedNow.length,
    bytesFetched: fetchedNow.reduce((n, d) => n + stored.get(d)!, 0),
    blobsAlreadyCached: needed.size - fetchedNow.length,
    blobsRepaired: state.repaired.size,
  };
  reporter.event({
    event: 'fetch.done',
    message: `${result.blobsFetched} blob(s) fetched (${result.bytesFetched} bytes), ${result.blobsAlreadyCached} already cached and verified${result.blobsRepaired ? `, ${result.blobsRepaired} damaged one(s) repaired` : ''}`,
  });
  return result;
}

/** Digests of this image's blobs that are in the cache (config, layers as stored, manifest). */
function presentDigests(status: ImageCacheStatus, image: LockedImage): string[] {
  const out: string[] = [];
  if (!status.missing.some((m) => m.kind === 'config')) out.push(image.config.digest);
  for (const layer of status.layers) if (layer) out.push(layer.digest);
  if (status.manifestCached) out.push(image.manifest.digest);
  if (status.indexCached && hasIndex(image)) out.push(image.indexDigest);
  return out;
}

interface RunState {
  /** Damaged cache files removed this run, by digest: no longer "already cached"; reported once repaired. */
  evicted: Map<string, CacheDamage>;
  repaired: Set<string>;
}

/**
 * The cache status of one image, repairing what fetch may repair: every blob of the image
 * that is there is checked (size, then sha256; each file hashed once per run), and a wrong one
 * is removed, so that it is downloaded again. A cached manifest that contradicts the lock is an
 * error. `refetch` is set when a removed blob is one that checkCacheComplete does not count as
 * missing (the platform manifest): the image must be fetched even though nothing is "missing".
 */
async function statusForFetch(config: ResolvedFetchConfig, image: LockedImage, state: RunState): Promise<{ status: ImageCacheStatus; refetch: boolean }> {
  const { cacheDir, reporter } = config;
  const check = () => checkCacheComplete(cacheDir, { images: [image] });
  let result = await check();
  const damaged = (await findCacheDamage(cacheDir, { images: [image] }, result)).filter((d) => d.problem !== 'missing');
  for (const d of damaged) {
    reporter.event({
      event: 'fetch.evict',
      message: `${image.reference}: removing damaged cache file ${describeDamage(d)}; it is downloaded again`,
      reference: image.reference,
      kind: d.kind,
      digest: d.digest,
      path: d.path,
      reason: d.problem === 'size' ? 'wrong size' : 'content does not match its digest',
    });
    await evictBlob(cacheDir, d.digest);
    state.evicted.set(d.digest, d);
  }
  if (damaged.length > 0) result = await check();
  const status = result.images[0]!;
  if (status.manifestCached) {
    checkManifestMatchesLock(await readFile(blobPath(cacheDir, image.manifest.digest), 'utf8'), image);
  }
  return { status, refetch: damaged.some((d) => d.kind === 'manifest') };
}

export type { FetchOptions };
