/**
 * What report reads: OUT/manifest.json (with the outputs next to it) or a lock file, turned
 * into one list of images with their layer descriptors. Also used by `ctrbake diff`.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.js';
import type { BakeManifest, BakeMode, Descriptor, LockFile, OutputFile, Platform } from '../formats/index.js';
import { blobPath } from '../fetch/cache.js';
import { cacheDamageError } from '../fetch/cache-damage.js';
import { inspectBlobFile } from '../fetch/integrity.js';
import { validateLock } from '../formats/lock.js';
import { parseManifest } from '../formats/manifest.js';
import { diffIdsOfConfig } from '../formats/oci.js';

export const E_REPORT_INPUT = 'E_REPORT_INPUT';

export interface ReportLayerInput extends Descriptor {
  diffId?: string;
}

export interface ReportImageInput {
  reference: string;
  /** Platform manifest digest. */
  digest: string;
  /** Config digest. */
  imageId: string;
  /** Config size when known (lock; manifest: from the cache). */
  configSize?: number;
  layers: ReportLayerInput[];
  /** Archive mode: the image's archive, relative to outDir. */
  archive?: string;
}

export interface ReportInput {
  kind: 'manifest' | 'lock';
  path: string;
  platform: Platform;
  mode?: BakeMode;
  engine?: string;
  storageDriver?: string;
  /** The manifest's directory (OUT). */
  outDir?: string;
  outputs: OutputFile[];
  images: ReportImageInput[];
}

function bad(path: string, what: string, cause?: unknown): never {
  throw new InputError(E_REPORT_INPUT, `${path}: ${what}; give a manifest.json written by \`ctrbake bake\` or a lock file written by \`ctrbake lock\``, cause ? { cause } : {});
}

/** A validated manifest (formats/manifest.ts) as report's input. */
export function manifestToInput(manifest: BakeManifest, path: string): ReportInput {
  return {
    kind: 'manifest',
    path,
    platform: manifest.platform,
    mode: manifest.mode,
    engine: manifest.engine.name,
    storageDriver: manifest.storageDriver,
    outDir: dirname(path),
    outputs: manifest.outputs,
    images: manifest.images.map((image) => ({
      reference: image.reference,
      digest: image.digest,
      imageId: image.imageId,
      layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.diffId ? { diffId: l.diffId } : {}) })),
      ...(image.archive ? { archive: image.archive } : {}),
    })),
  };
}

export function lockToInput(lock: LockFile, path: string): ReportInput {
  return {
    kind: 'lock',
    path,
    platform: lock.platform,
    outputs: [],
    images: lock.images.map((image) => ({
      reference: image.reference,
      digest: image.manifest.digest,
      imageId: image.config.digest,
      configSize: image.config.size,
      layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    })),
  };
}

/** Reads a manifest.json or a lock file (told apart by their version field). */
export async function readReportInput(path: string): Promise<ReportInput> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    bad(path, `cannot read: ${(error as Error).message}`, error);
  }
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    bad(path, 'not valid JSON', error);
  }
  if (value && typeof value === 'object' && value.manifestVersion === 1) {
    const read = parseManifest(value);
    if (read.problem) bad(path, read.problem.message);
    return manifestToInput(read.manifest, path);
  }
  if (value && typeof value === 'object' && value.lockVersion === 1) return lockToInput(validateLock(value, path), path);
  bad(path, 'neither a manifest (manifestVersion 1) nor a lock file (lockVersion 1)');
}

/**
 * The lock to name in a cache error's repair command: the input itself when it is a lock; for a
 * manifest, the lock it was baked from, which the manifest does not record.
 */
export function cacheLockOf(input: Pick<ReportInput, 'kind' | 'path'>): { lockPath: string } | { lockHint: string } {
  return input.kind === 'lock' ? { lockPath: resolve(input.path) } : { lockHint: `the lock ${input.path} was baked from` };
}

/**
 * Fills config sizes and diff_ids from the cache where the input lacks them. A cached config is
 * checked first (size when known, sha256): a damaged one is the cache error bake gives.
 */
export async function completeFromCache(input: ReportInput, cacheDir: string | undefined): Promise<void> {
  if (!cacheDir) return;
  for (const image of input.images) {
    const configPath = blobPath(cacheDir, image.imageId);
    const problem = await inspectBlobFile(configPath, image.imageId, image.configSize);
    if (problem && problem.problem !== 'missing') {
      throw cacheDamageError([{ reference: image.reference, kind: 'config', digest: image.imageId, path: configPath, ...problem }], { cacheDir, ...cacheLockOf(input) });
    }
    if (image.configSize === undefined) {
      const st = await stat(configPath).catch(() => undefined);
      if (st) image.configSize = st.size;
    }
    if (image.layers.some((l) => !l.diffId)) {
      const ids = await readFile(configPath, 'utf8').then(diffIdsOfConfig, () => undefined);
      if (ids && ids.length === image.layers.length) image.layers.forEach((l, n) => (l.diffId ??= ids[n]));
    }
  }
}
