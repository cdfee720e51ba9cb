/**
 * `ctrbake diff OLD NEW`: what an update from OLD to NEW costs a device that holds every layer
 * of OLD. Each side is a lock file, a manifest.json (with layers.json next to it when present)
 * or a layers.json. Layers are the same when their digest or their diff_id matches.
 * Unpacked sizes come from layers.json, else from the cache (--cache), else they are unknown.
 * With --cache, a layer the cache lacks or holds damaged fails like bake (E_CACHE_MISS /
 * E_CACHE_DAMAGED, with the repair command).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, CtrbakeError } from '../errors.js';
import { E_CACHE_DAMAGED, E_CACHE_MISS } from '../fetch/errors.js';
import { cacheLockOf, completeFromCache, readReportInput, type ReportInput, type ReportLayerInput } from './input.js';
import { withLayerTar } from './layer-source.js';
import { LAYERS_FILE, readLayersFile, type LayersFile } from '../formats/layers.js';
import { resolveBlockSize } from '../util/fs-block-size.js';
import { scanLayerTar } from './scan-layer.js';

export interface DiffOptions {
  oldPath: string;
  newPath: string;
  cacheDir?: string;
  blockSize?: number;
}

export interface DiffLayer {
  digest: string;
  diffId?: string;
  /** Compressed bytes. */
  size: number;
  /** null when unknown (no layers.json, layer not in the cache). */
  unpackedSize: number | null;
}

export interface ImageDiff {
  /** Repository the two sides were matched on. */
  repository: string;
  oldReference: string | null;
  newReference: string | null;
  status: 'added' | 'removed' | 'changed' | 'unchanged';
  addedLayers: DiffLayer[];
  droppedLayers: DiffLayer[];
  /** New layers the device has in no image yet: to download (compressed) and store (unpacked). */
  downloadBytes: number;
  storeBytes: number | null;
}

export interface DiffResult {
  old: string;
  new: string;
  blockSize: number;
  images: ImageDiff[];
  totals: {
    addedLayers: number;
    droppedLayers: number;
    downloadBytes: number;
    storeBytes: number | null;
    /** Unpacked bytes of layers no image of NEW uses any more. */
    freedBytes: number | null;
  };
}

interface Side {
  images: Array<{ reference: string; layers: DiffLayer[] }>;
}

function repositoryOf(reference: string): string {
  const noDigest = reference.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

async function readSide(path: string, cacheDir: string | undefined, blockSize: number): Promise<Side> {
  const text = await readFile(path, 'utf8').catch(() => '');
  if (text.includes('"layersVersion"')) return fromLayersFile(await readLayersFile(path));
  const input: ReportInput = await readReportInput(path);
  await completeFromCache(input, cacheDir);
  let sizes = new Map<string, number>();
  if (input.kind === 'manifest') {
    const lf = await readLayersFile(join(dirname(path), LAYERS_FILE)).catch(() => undefined);
    if (lf && lf.blockSize === blockSize) sizes = unpackedSizes(lf);
  }
  const measured = new Map<string, Promise<number | null>>();
  const measure = (l: ReportLayerInput, what: string, layerIndex: number): Promise<number | null> => {
    if (sizes.has(l.digest)) return Promise.resolve(sizes.get(l.digest)!);
    if (!cacheDir) return Promise.resolve(null);
    let p = measured.get(l.digest);
    if (!p) {
      p = withLayerTar(cacheDir, l, l.diffId, what, (tar) => scanLayerTar(tar, blockSize), undefined, { ...cacheLockOf(input), layerIndex }).then(
        (s) => s.unpackedBytes,
        // A missing or damaged cache blob is the cache error bake gives; a layer that cannot be read is unknown.
        (error: unknown) => {
          if (isCacheError(error)) throw error;
          return null;
        },
      );
      measured.set(l.digest, p);
    }
    return p;
  };
  const images: Side['images'] = [];
  for (const image of input.images) {
    const layers: DiffLayer[] = [];
    for (const [n, l] of image.layers.entries()) {
      layers.push({ digest: l.digest, ...(l.diffId ? { diffId: l.diffId } : {}), size: l.size, unpackedSize: await measure(l, image.reference, n) });
    }
    images.push({ reference: image.reference, layers });
  }
  return { images };
}

function isCacheError(error: unknown): boolean {
  return error instanceof CtrbakeError && (error.code === E_CACHE_DAMAGED || error.code === E_CACHE_MISS);
}

function unpackedSizes(lf: LayersFile): Map<string, number> {
  return new Map(lf.images.flatMap((i) => i.layers.map((l) => [l.digest, l.unpackedSize] as const)));
}

function fromLayersFile(lf: LayersFile): Side {
  return {
    images: lf.images.map((i) => ({
      reference: i.reference,
      layers: i.layers.map((l) => ({ digest: l.digest, ...(l.diffId ? { diffId: l.diffId } : {}), size: l.size, unpackedSize: l.unpackedSize })),
    })),
  };
}

class LayerSet {
  private readonly digests = new Set<string>();
  private readonly diffIds = new Set<string>();
  add(l: DiffLayer): void {
    this.digests.add(l.digest);
    if (l.diffId) this.diffIds.add(l.diffId);
  }
  has(l: DiffLayer): boolean {
    return this.digests.has(l.digest) || (l.diffId !== undefined && this.diffIds.has(l.diffId));
  }
}

function sumKnown(layers: readonly DiffLayer[]): number | null {
  let sum = 0;
  for (const l of layers) {
    if (l.unpackedSize === null) return null;
    sum += l.unpackedSize;
  }
  return sum;
}

function uniqueLayers(layers: readonly DiffLayer[]): DiffLayer[] {
  const seen = new LayerSet();
  const out: DiffLayer[] = [];
  for (const l of layers) {
    if (seen.has(l)) continue;
    seen.add(l);
    out.push(l);
  }
  return out;
}

export async function diffImages(options: DiffOptions): Promise<DiffResult> {
  const blockSize = resolveBlockSize(options.blockSize);
  if (!options.oldPath || !options.newPath) throw new ConfigError('E_REPORT_OPTIONS', 'diff needs OLD and NEW (lock files, manifest.json or layers.json)');
  const cacheDir = options.cacheDir ? resolve(options.cacheDir) : undefined;
  const oldSide = await readSide(resolve(options.oldPath), cacheDir, blockSize);
  const newSide = await readSide(resolve(options.newPath), cacheDir, blockSize);

  const onDevice = new LayerSet();
  for (const i of oldSide.images) for (const l of i.layers) onDevice.add(l);
  const stillUsed = new LayerSet();
  for (const i of newSide.images) for (const l of i.layers) stillUsed.add(l);

  const repos = [...new Set([...oldSide.images, ...newSide.images].map((i) => repositoryOf(i.reference)))];
  const images: ImageDiff[] = repos.map((repository) => {
    const o = oldSide.images.find((i) => repositoryOf(i.reference) === repository);
    const n = newSide.images.find((i) => repositoryOf(i.reference) === repository);
    const oldSet = new LayerSet();
    for (const l of o?.layers ?? []) oldSet.add(l);
    const newSet = new LayerSet();
    for (const l of n?.layers ?? []) newSet.add(l);
    const addedLayers = uniqueLayers((n?.layers ?? []).filter((l) => !oldSet.has(l)));
    const droppedLayers = uniqueLayers((o?.layers ?? []).filter((l) => !newSet.has(l)));
    const toFetch = addedLayers.filter((l) => !onDevice.has(l));
    const status = !o ? 'added' : !n ? 'removed' : addedLayers.length || droppedLayers.length || o.reference !== n.reference ? 'changed' : 'unchanged';
    return {
      repository,
      oldReference: o?.reference ?? null,
      newReference: n?.reference ?? null,
      status,
      addedLayers,
      droppedLayers,
      downloadBytes: toFetch.reduce((s, l) => s + l.size, 0),
      storeBytes: sumKnown(toFetch),
    };
  });
  const allNew = uniqueLayers(newSide.images.flatMap((i) => i.layers).filter((l) => !onDevice.has(l)));
  const allDropped = uniqueLayers(oldSide.images.flatMap((i) => i.layers).filter((l) => !stillUsed.has(l)));
  return {
    old: options.oldPath,
    new: options.newPath,
    blockSize,
    images,
    totals: {
      addedLayers: allNew.length,
      droppedLayers: allDropped.length,
      downloadBytes: allNew.reduce((s, l) => s + l.size, 0),
      storeBytes: sumKnown(allNew),
      freedBytes: sumKnown(allDropped),
    },
  };
}
