/**
 * The image index a lock's tag resolved to (a multi-platform image): fetch keeps its bytes in
 * the cache, whatever the fetcher, so an OCI archive written from the cache can name the image
 * by the registry's own index and every engine reports the lock's digests (docs/fetch.md).
 * Fetchers pull by the platform manifest's digest and never see the index: it is read here
 * with ctrbake's registry client (the lock step's), by digest, verified, and checked to list
 * the lock's platform manifest before it enters blobs/.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LockedImage } from '../formats/index.js';
import { parseImageIndex } from '../formats/oci.js';
import { RegistryClient } from '../registry/client.js';
import { commitBlob, hasBlob, makeCacheWorkDir } from './cache.js';
import { hasIndex } from './complete.js';
import { DigestMismatchError } from './errors.js';
import type { ResolvedFetchConfig, StoredBlob } from './types.js';
import { imageLabel } from './verify.js';

/** The index's bytes must list the lock's platform manifest (digest and size): else the lock and the registry disagree. */
export function checkIndexListsManifest(indexBytes: Buffer, image: LockedImage): void {
  const what = `index ${image.indexDigest} of ${image.registry}/${image.repository}`;
  const read = parseImageIndex(indexBytes);
  if (read.problem) throw new DigestMismatchError(what, 'an image index', read.problem.message, read.problem.cause === undefined ? {} : { cause: read.problem.cause });
  const listed = read.value.manifests.some((m) => m.digest === image.manifest.digest && m.size === image.manifest.size);
  if (!listed) throw new DigestMismatchError(what, `an index listing ${image.manifest.digest} (${image.manifest.size} bytes)`, 'an index without it');
}

export interface IndexFetcher {
  /** Stores the image's index when the lock has one and the cache lacks it; undefined when there was nothing to do. */
  fetchIndex(image: LockedImage): Promise<StoredBlob | undefined>;
}

export function createIndexFetcher(config: ResolvedFetchConfig): IndexFetcher {
  let client: Promise<RegistryClient> | undefined;
  return {
    async fetchIndex(image) {
      if (!hasIndex(image) || (await hasBlob(config.cacheDir, image.indexDigest))) return undefined;
      client ??= RegistryClient.create({
        insecureRegistries: [...config.insecureRegistries],
        ...(config.auth ? { authfile: config.auth.path } : {}),
        retry: config.retry,
        ...(config.signal ? { signal: config.signal } : {}),
      });
      // getManifest by digest verifies the bytes against it.
      const fetched = await (await client).getManifest({ registry: image.registry, repository: image.repository }, image.indexDigest);
      checkIndexListsManifest(fetched.bytes, image);
      const dir = await makeCacheWorkDir(config.cacheDir, 'index');
      try {
        const tmp = join(dir, 'index');
        await writeFile(tmp, fetched.bytes, { mode: 0o600 });
        const outcome = await commitBlob(config.cacheDir, tmp, { digest: image.indexDigest, size: fetched.size, what: `image index of ${imageLabel(image)}` });
        return { kind: 'index', digest: image.indexDigest, size: fetched.size, outcome };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
