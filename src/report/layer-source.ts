/**
 * Where report reads a layer's tar: the cache blob (CACHE/blobs/sha256/<hex>) through
 * resolveLayerBlob, decompressed as its media type says (gzip with node:zlib, zstd with the
 * host's `zstd -dc`: Node 20 has no zstd).
 */
import { spawn } from 'node:child_process';
import { createReadStream, type ReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { InputError } from '../errors.js';
import { blobPath, resolveLayerBlob } from '../fetch/cache.js';
import { cacheDamageError, type CacheDamageContext } from '../fetch/cache-damage.js';
import { inspectBlobFile } from '../fetch/integrity.js';
import type { Descriptor } from '../formats/index.js';
import { sniffCompression, type ArchiveLayers } from './archive-source.js';
import { compressionOf, type LayerCompression } from '../formats/media-types.js';

export const E_REPORT_LAYER_MISSING = 'E_REPORT_LAYER_MISSING';
export const E_REPORT_LAYER_READ = 'E_REPORT_LAYER_READ';

/** Which lock the cache serves, for the repair command of a cache error (input.ts cacheLockOf). */
export type CacheLock = Omit<CacheDamageContext, 'cacheDir' | 'details'>;

/** For cache errors: the lock (repair command) and the layer's index in the image named by `what`. */
export type LayerCacheContext = CacheLock & { layerIndex?: number };

/**
 * Reads a layer tar, decompressed, and hands it to `consume`: from the cache when it has the
 * layer, else from an archive next to the manifest (archive-source.ts). A cache blob is checked
 * first (size, sha256): a damaged one, or a layer neither in the cache nor in an archive, is
 * the cache error bake gives (E_CACHE_DAMAGED / E_CACHE_MISS with the repair command).
 */
export async function withLayerTar<T>(
  cacheDir: string | undefined,
  layer: Descriptor,
  diffId: string | undefined,
  what: string,
  consume: (tar: AsyncIterable<Uint8Array>) => Promise<T>,
  archives?: ArchiveLayers,
  { layerIndex, ...cacheLock }: LayerCacheContext = {},
): Promise<T> {
  const index = layerIndex !== undefined && layerIndex >= 0 ? { index: layerIndex } : {};
  const blob = cacheDir ? await resolveLayerBlob(cacheDir, layer, diffId) : undefined;
  if (blob) {
    const problem = await inspectBlobFile(blob.path, blob.digest, blob.asPublished ? layer.size : undefined);
    if (problem) throw cacheDamageError([{ reference: what, kind: 'layer', ...index, digest: blob.digest, path: blob.path, ...problem }], { cacheDir: cacheDir!, ...cacheLock });
  }
  let open: () => ReadStream;
  let compression: LayerCompression;
  let where: string;
  if (blob) {
    compression = blob.asPublished ? compressionOf(layer.mediaType) : 'none';
    open = () => createReadStream(blob.path, { highWaterMark: 1024 * 1024 });
    where = blob.path;
  } else {
    const loc = archives?.layers.get(layer.digest) ?? (diffId ? archives?.layers.get(diffId) : undefined);
    if (!loc && cacheDir) {
      const missing = { reference: what, kind: 'layer' as const, ...index, digest: layer.digest, path: blobPath(cacheDir, layer.digest), problem: 'missing' as const };
      throw cacheDamageError([{ ...missing, ...(diffId ? { diffId } : {}) }], { cacheDir, ...cacheLock });
    }
    if (!loc) {
      throw new InputError(
        E_REPORT_LAYER_MISSING,
        `${what}: layer ${layer.digest} is not in an archive next to the manifest, and no cache was given; pass --cache with the cache the bake used, or run \`ctrbake fetch\` with its lock`,
        { details: { digest: layer.digest } },
      );
    }
    compression = await sniffCompression(loc);
    open = () => createReadStream(loc.file, { start: loc.offset, end: loc.offset + loc.size - 1, highWaterMark: 1024 * 1024 });
    where = `${loc.file} (bytes ${loc.offset}..${loc.offset + loc.size})`;
  }
  const file = open();
  try {
    if (compression === 'none') return await consume(file);
    if (compression === 'gzip') {
      const gunzip = createGunzip();
      file.pipe(gunzip);
      file.on('error', (e) => gunzip.destroy(e));
      try {
        return await consume(gunzip);
      } finally {
        gunzip.destroy();
      }
    }
    return await withZstd(file, what, consume);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(E_REPORT_LAYER_READ, `${what}: cannot read layer ${layer.digest} from ${where}: ${(error as Error).message}; run \`ctrbake fetch\` again`, {
      cause: error,
      details: { digest: layer.digest },
    });
  } finally {
    file.destroy();
  }
}
async function withZstd<T>(file: NodeJS.ReadableStream, what: string, consume: (tar: AsyncIterable<Uint8Array>) => Promise<T>): Promise<T> {
  const child = spawn('zstd', ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new InputError(E_REPORT_LAYER_READ, `${what}: a zstd layer needs the zstd command (Debian package zstd)`) : e),
    );
    child.on('close', resolve);
  });
  child.stdin.on('error', () => {});
  file.pipe(child.stdin);
  try {
    const ok = exited.then((code) => {
      if (code !== 0) throw new Error(`zstd -dc exited ${code}: ${stderr.trim()}`);
    });
    const [result] = await Promise.all([consume(child.stdout), ok]);
    return result;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
