/**
 * OUT/layers.json: per-layer metadata shipped with the payload, so an update agent on the
 * device can tell what an update costs before downloading it (docs/report.md, "layers.json").
 * Its types, reader with validation on read, and writer; `report` measures what goes in it.
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { toJsonFile, writeFileAtomic } from '../util/fs.js';
import { checkArray, checkDigest, checkObject, checkPlatform, checkSize, checkString, isObject, type Fail } from './check.js';
import type { Platform } from './lock.js';

export const LAYERS_FILE = 'layers.json';
/** The code of report's input errors: layers.json is read by `report` and `diff`. */
const E_REPORT_INPUT = 'E_REPORT_INPUT';

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

export function writeLayers(path: string, layers: LayersFile): Promise<void> {
  return writeFileAtomic(path, toJsonFile(layers));
}

/** Reads and validates a layers.json; E_REPORT_INPUT names the file and the field. */
export async function readLayersFile(path: string): Promise<LayersFile> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new InputError(E_REPORT_INPUT, `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  return validateLayersFile(value, path);
}

export function validateLayersFile(value: unknown, where = 'layers.json'): LayersFile {
  assertLayersFile(value, where, (what) => {
    throw new InputError(E_REPORT_INPUT, `${where}: ${what}; write it again with \`ctrbake report --write-layers\``);
  });
  return value;
}

function assertLayersFile(value: unknown, where: string, fail: Fail): asserts value is LayersFile {
  if (!isObject(value) || value.layersVersion !== 1) throw new InputError(E_REPORT_INPUT, `${where} is not a layers.json (layersVersion 1)`);
  checkPlatform(value.platform, 'platform', fail);
  checkSize(value.blockSize, 'blockSize', fail);
  checkArray(value.images, 'images', fail).forEach((image, i) => {
    const at = `images[${i}]`;
    const img = checkObject(image, at, fail);
    checkString(img.reference, `${at}.reference`, fail, { nonEmpty: true });
    checkDigest(img.digest, `${at}.digest`, fail);
    checkDigest(img.imageId, `${at}.imageId`, fail);
    for (const key of ['configSize', 'compressedSize', 'unpackedSize'] as const) checkSize(img[key], `${at}.${key}`, fail);
    checkArray(img.layers, `${at}.layers`, fail).forEach((layer, j) => {
      const l = checkObject(layer, `${at}.layers[${j}]`, fail);
      checkDigest(l.digest, `${at}.layers[${j}].digest`, fail);
      if (l.diffId !== null) checkDigest(l.diffId, `${at}.layers[${j}].diffId`, fail);
      checkString(l.mediaType, `${at}.layers[${j}].mediaType`, fail);
      checkSize(l.size, `${at}.layers[${j}].size`, fail);
      checkSize(l.unpackedSize, `${at}.layers[${j}].unpackedSize`, fail);
    });
  });
}
