/**
 * OUT/layers.json: per-layer metadata shipped with the payload, so an update agent on the
 * device can tell what an update costs before downloading it (docs/report.md, "layers.json").
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import type { Platform } from '../formats/index.js';
import { toJsonFile, writeFileAtomic } from '../util/fs.js';
import { report, type ReportOptions, type ReportResult } from './report.js';

export const LAYERS_FILE = 'layers.json';

export interface LayersFileLayer {
  digest: string;
  diffId: string | null;
  mediaType: string;
  /** Compressed size: bytes to download. */
  size: number;
  /** Extracted on the target filesystem (blockSize): bytes to store. */
  unpackedSize: number;
}

export interface LayersFileImage {
  reference: string;
  digest: string;
  imageId: string;
  configSize: number;
  compressedSize: number;
  unpackedSize: number;
  layers: LayersFileLayer[];
}

export interface LayersFile {
  layersVersion: 1;
  platform: Platform;
  blockSize: number;
  images: LayersFileImage[];
}

export function layersFileFromReport(result: ReportResult): LayersFile {
  const byDigest = new Map(result.layers.map((l) => [l.digest, l]));
  return {
    layersVersion: 1,
    platform: result.platform,
    blockSize: result.blockSize,
    images: result.images.map((i) => ({
      reference: i.reference,
      digest: i.digest,
      imageId: i.imageId,
      configSize: i.configBytes,
      compressedSize: i.compressedBytes,
      unpackedSize: i.unpackedBytes,
      layers: i.layers.map((d) => {
        const l = byDigest.get(d)!;
        return { digest: l.digest, diffId: l.diffId ?? null, mediaType: l.mediaType, size: l.compressedBytes, unpackedSize: l.unpackedBytes };
      }),
    })),
  };
}

/**
 * Measures a bake (manifest + cache) and writes OUT/layers.json next to its manifest.json.
 * Bake or a build recipe calls this after the bake; the loader installs the file with the payload.
 */
export async function writeLayersFile(options: Pick<ReportOptions, 'manifestPath' | 'cacheDir' | 'blockSize' | 'reporter' | 'signal'> & { manifestPath: string }): Promise<{ path: string; layers: LayersFile }> {
  const result = await report({ ...options });
  const layers = layersFileFromReport(result);
  const path = join(dirname(options.manifestPath), LAYERS_FILE);
  await writeFileAtomic(path, toJsonFile(layers));
  return { path, layers };
}

export async function readLayersFile(path: string): Promise<LayersFile> {
  let value: LayersFile;
  try {
    value = JSON.parse(await readFile(path, 'utf8')) as LayersFile;
  } catch (error) {
    throw new InputError('E_REPORT_INPUT', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (value?.layersVersion !== 1 || !Array.isArray(value.images)) throw new InputError('E_REPORT_INPUT', `${path} is not a layers.json (layersVersion 1)`);
  return value;
}
