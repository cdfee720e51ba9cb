/**
 * `bake --mode archive --builder native`: one archive per image written by ctrbake from the
 * cache's blobs, unchanged (formats/image-layout.ts): no engine started, no root, nothing
 * decompressed, so the bake runs at about the speed of copying the blobs. The same archives
 * serve docker and podman (docs/builder.md, "Archives").
 *
 * - docker-archive: manifest.json, the config blob, the layer blobs as cached (compressed as
 *   the registry served them, or uncompressed where an engine fetcher stored them).
 * - oci-archive: the same plus oci-layout and index.json naming the registry's index (when the
 *   lock was resolved from one) or manifest, so engines that keep manifests (containerd,
 *   Docker's containerd store, podman) report the lock's digests. It needs the cache to hold
 *   the manifest, the index and every layer as published: a cache without them is refused
 *   with E_CACHE_MISS and the fetch that completes it.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { blobPath } from '../fetch/cache.js';
import type { CacheCheckResult, ImageCacheStatus } from '../fetch/complete.js';
import { hasIndex } from '../fetch/complete.js';
import { E_CACHE_MISS } from '../fetch/errors.js';
import { repairCommand } from '../fetch/cache-damage.js';
import { lockPathOf, type LockedImage, type LockFile } from '../formats/lock.js';
import { buildManifest, manifestImageOf, type ArchiveFormat, type BakeManifest, type EngineName, type ManifestImage, type OutputFile } from '../formats/manifest.js';
import { formatPlatform } from '../formats/index.js';
import { diffIdsOfConfig } from '../formats/oci.js';
import { archiveFileName, imageTag, writeImageLayoutArchive, type LayoutBlob, type LayoutImage } from '../formats/image-layout.js';
import type { Reporter } from '../util/reporter.js';
import type { StagedOutput } from '../util/staged-output.js';
import { assertConfigPlatform } from './bake-native.js';

/** What the manifest records as the engine version of an archive ctrbake wrote: no engine ran, any version loads it. */
export const NATIVE_ARCHIVE_ENGINE_VERSION = 'native';

export interface NativeArchiveConfig {
  cacheDir: string;
  engine: EngineName;
  storageDriver: string;
  archiveFormat: ArchiveFormat;
  sourceDateEpoch: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** The full reference an OCI archive names the image by: registry/repository:tag, or @digest when untagged. */
export function layoutName(image: LockedImage): string {
  return imageTag(image) ?? `${image.registry}/${image.repository}@${image.indexDigest}`;
}

function missingForOci(cacheDir: string, image: LockedImage, status: ImageCacheStatus, lockPath: string | undefined): InputError | undefined {
  const lacks: string[] = [];
  if (!status.manifestCached) lacks.push(`its platform manifest ${image.manifest.digest} (${blobPath(cacheDir, image.manifest.digest)})`);
  if (!status.indexCached) lacks.push(`its image index ${image.indexDigest} (${blobPath(cacheDir, image.indexDigest)}): the cache was filled by a ctrbake that did not keep it`);
  status.layers.forEach((l, i) => {
    if (l && !l.asPublished) lacks.push(`layer ${i} ${image.layers[i]!.digest} as the registry serves it (only its uncompressed form ${l.digest} is cached, as an engine fetcher stores it)`);
  });
  if (lacks.length === 0) return undefined;
  const command = repairCommand(lockPath, cacheDir);
  return new InputError(
    E_CACHE_MISS,
    `${image.reference}: an OCI archive that keeps the registry's digests is written from the registry's own blobs, and the cache ${cacheDir} lacks:\n  ${lacks.join('\n  ')}\n` +
      `Fetch again with the skopeo fetcher (it keeps every blob as published; fetch adds the index for any fetcher):\n  ${command} --fetcher skopeo\n` +
      'or bake --archive-format docker-archive (any cache), or --builder engine.',
    { details: { reference: image.reference, cacheDir, repair: `${command} --fetcher skopeo` } },
  );
}

/** The blobs and names of one image's archive. */
async function layoutImage(config: NativeArchiveConfig, image: LockedImage, status: ImageCacheStatus): Promise<LayoutImage> {
  const { cacheDir } = config;
  const blob = async (digest: string, path = blobPath(cacheDir, digest)): Promise<LayoutBlob> => ({ digest, path, size: (await stat(path)).size });
  const layers = status.layers.map((l) => l!);
  const blobs: LayoutBlob[] = [await blob(image.config.digest), ...(await Promise.all(layers.map((l) => blob(l.digest, l.path))))];
  const tag = imageTag(image);
  const base = { configDigest: image.config.digest, layerDigests: layers.map((l) => l.digest), repoTags: tag ? [tag] : [] };
  if (config.archiveFormat === 'docker-archive') return { ...base, blobs };
  blobs.push(await blob(image.manifest.digest));
  const target = hasIndex(image) ? { mediaType: image.indexMediaType, digest: image.indexDigest, size: (await blob(image.indexDigest)).size } : image.manifest;
  if (hasIndex(image)) blobs.push(await blob(image.indexDigest));
  return { ...base, blobs, oci: { target, name: layoutName(image) } };
}

/**
 * Bakes the archives into `staged.outTmp/archives` and returns the manifest (the caller,
 * bake.ts, adds the fingerprint, writes manifest.json and commits).
 */
export async function bakeNativeArchiveInto(
  config: Readonly<NativeArchiveConfig>,
  inputs: Readonly<{ lock: LockFile; checkCache: () => Promise<CacheCheckResult> }>,
  staged: StagedOutput,
): Promise<BakeManifest> {
  const { reporter, signal, cacheDir } = config;
  const { lock } = inputs;
  reporter.event({
    event: 'bake.start',
    message: `writing ${lock.images.length} ${config.archiveFormat}(s) for ${formatPlatform(lock.platform)} with ctrbake's builder, from the cache's blobs unchanged, offline, no engine`,
    mode: 'archive',
    images: lock.images.length,
  });
  // Every blob checked against its digest (and the index, when cached) before anything is written.
  const cache = await inputs.checkCache();
  if (config.archiveFormat === 'oci-archive') {
    for (const [i, image] of lock.images.entries()) {
      const error = missingForOci(cacheDir, image, cache.images[i]!, lockPathOf(lock));
      if (error) throw error;
    }
  }
  const taken = new Set<string>();
  const images: ManifestImage[] = [];
  const outputs: OutputFile[] = [];
  const archives = join(staged.outTmp, 'archives');
  for (const [i, image] of lock.images.entries()) {
    signal?.throwIfAborted();
    const configBytes = await readFile(blobPath(cacheDir, image.config.digest));
    assertConfigPlatform(image, configBytes, lock);
    const diffIds = diffIdsOfConfig(configBytes) ?? [];
    if (diffIds.length !== image.layers.length) {
      throw new InputError('E_DIGEST_MISMATCH', `${image.reference}: its config ${image.config.digest} lists ${diffIds.length} diff_ids for the manifest's ${image.layers.length} layers; lock it again with \`ctrbake lock\``);
    }
    const name = archiveFileName(image, config.archiveFormat, taken);
    const relPath = `archives/${name}`;
    const target = join(archives, name);
    await mkdir(archives, { recursive: true });
    const { sha256, size } = await writeImageLayoutArchive(target, [await layoutImage(config, image, cache.images[i]!)], config.sourceDateEpoch);
    outputs.push({ path: relPath, sha256, size });
    images.push(manifestImageOf(image, diffIds, relPath));
    reporter.event({ event: 'image.saved', message: `wrote ${image.reference} -> ${relPath} (${size} bytes, sha256 ${sha256.slice(0, 12)})`, reference: image.reference, path: relPath, sha256, size });
  }
  return buildManifest({
    mode: 'archive',
    engine: { name: config.engine, version: NATIVE_ARCHIVE_ENGINE_VERSION },
    storageDriver: config.storageDriver,
    archiveFormat: config.archiveFormat,
    platform: lock.platform,
    sourceDateEpoch: config.sourceDateEpoch,
    images,
    outputs,
  });
}
