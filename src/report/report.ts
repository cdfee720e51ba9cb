/**
 * `ctrbake report`: sizes, sharing, duplicates, SquashFS sizes, first-boot writes and budget
 * fit of a bake (OUT/manifest.json) or of a lock before baking (what bake's budget check uses).
 * Every distinct layer is read once (cache, archives or store.tar) and measured by scan-layer.ts.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, DoesNotFitError, InputError } from '../errors.js';
import { DEFAULT_BLOCK_SIZE, resolveBlockSize } from '../util/fs-block-size.js';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { doesNotFit, judgeBudget, resolveBudget, type BudgetOptions, type ResolvedBudget } from './budget.js';
import { cacheLockOf, completeFromCache, readReportInput, type ReportImageInput, type ReportInput } from './input.js';
import { indexArchiveLayers } from './archive-source.js';
import { withLayerTar } from './layer-source.js';
import { scanStoreLayers } from './store-source.js';
import { defaultLayout, LAYOUTS, modelFirstBoot, PARTITIONS, type Layout, type LayoutLayer, type Partition } from './layout-model.js';
import { scanLayerTar, type LayerScan } from './scan-layer.js';
import type { DuplicateGroup, DuplicateOccurrence, ImageReport, LayerReport, ReportResult, ReportTotals, SquashfsReport } from './types.js';
import { formatSize } from './size.js';
import { roundUp } from './unpacked-model.js';

export const E_REPORT_OPTIONS = 'E_REPORT_OPTIONS';
export const E_REPORT_OUTPUT_MISMATCH = 'E_REPORT_OUTPUT_MISMATCH';

export interface ReportOptions extends BudgetOptions {
  /** OUT/manifest.json of a bake; or give lockPath. */
  manifestPath?: string;
  /** A lock file: report before baking (no archives, no SquashFS yet). */
  lockPath?: string;
  /** Pre-read input (bake's budget check); wins over manifestPath/lockPath. */
  input?: ReportInput;
  cacheDir?: string;
  /** Target filesystem block size; default 4096. */
  blockSize?: number;
  /** Default: from the manifest (archive; store: split, overlay-vfs for vfs, podman-ro for podman). */
  layout?: Layout;
  /** Layers read at once (default 2). */
  concurrency?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export type { DuplicateGroup, DuplicateOccurrence, ImageReport, LayerReport, ReportResult, ReportTotals, SquashfsReport } from './types.js';

/** A DoesNotFitError that carries the report, so the CLI can still print it. */
export class ReportDoesNotFitError extends DoesNotFitError {
  constructor(
    readonly report: ReportResult,
    base: DoesNotFitError,
  ) {
    super(base.message, { details: base.details });
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** report's options checked, defaults filled, paths absolute: what report() works from. */
export interface ResolvedReportConfig {
  /** Pre-read input (bake's budget check), or the absolute path of a manifest.json or lock file. */
  source: { input: ReportInput } | { path: string };
  cacheDir?: string;
  blockSize: number;
  layout?: Layout;
  payloadPartition?: Partition;
  budget?: ResolvedBudget;
  concurrency: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** The one resolve step of report: every usage error (E_REPORT_OPTIONS, E_SIZE_INVALID, E_BUDGET_OPTIONS) before any file is read. */
export function resolveReportOptions(options: ReportOptions): Readonly<ResolvedReportConfig> {
  const blockSize = resolveBlockSize(options.blockSize);
  if (options.layout !== undefined && !LAYOUTS.includes(options.layout)) {
    throw new ConfigError(E_REPORT_OPTIONS, `--layout ${String(options.layout)} is not one of ${LAYOUTS.join(', ')}`);
  }
  if (options.payloadPartition !== undefined && !PARTITIONS.includes(options.payloadPartition)) {
    throw new ConfigError(E_REPORT_OPTIONS, `--payload-on ${String(options.payloadPartition)} is not one of ${PARTITIONS.join(', ')}`);
  }
  const budget = resolveBudget(options);
  let source: ResolvedReportConfig['source'];
  if (options.input) source = { input: options.input };
  else {
    const path = options.manifestPath ?? options.lockPath;
    if (!path) throw new ConfigError(E_REPORT_OPTIONS, 'give --manifest OUT/manifest.json (or a lock file)');
    source = { path: resolve(path) };
  }
  return Object.freeze({
    source,
    ...(options.cacheDir ? { cacheDir: resolve(options.cacheDir) } : {}),
    blockSize,
    ...(options.layout !== undefined ? { layout: options.layout } : {}),
    ...(options.payloadPartition !== undefined ? { payloadPartition: options.payloadPartition } : {}),
    ...(budget ? { budget } : {}),
    concurrency: options.concurrency ?? 2,
    reporter: options.reporter ?? silentReporter,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

export async function report(options: ReportOptions): Promise<ReportResult> {
  return measureReport(resolveReportOptions(options));
}

async function measureReport(config: Readonly<ResolvedReportConfig>): Promise<ReportResult> {
  const { reporter, blockSize, budget, cacheDir } = config;
  const input = 'input' in config.source ? config.source.input : await readReportInput(config.source.path);
  const archives = await indexArchiveLayers(input);
  // Without a cache, a store-mode report measures the layer dirs inside store.tar.
  const storeScans = cacheDir ? undefined : await scanStoreLayers(input, blockSize);
  if (!cacheDir && archives.layers.size === 0 && !storeScans?.scans.size) {
    throw new ConfigError(
      E_REPORT_OPTIONS,
      'report measures layers from the fetch cache, or from the archives or overlay store.tar next to a manifest: give --cache DIR, the one bake used',
    );
  }
  await completeFromCache(input, cacheDir);
  for (const image of input.images) image.configSize ??= archives.configSizes.get(image.imageId) ?? storeScans?.configSizes.get(image.imageId);
  const layout = config.layout ?? defaultLayout(input.mode, input.engine, input.storageDriver);

  // Engines store a layer once per chain (the layer on top of its exact parents): a layer with
  // the same digest on other parents is stored again. Download dedupes by digest.
  const chainsOf = (image: ReportImageInput): string[] => {
    const keys: string[] = [];
    image.layers.forEach((l, n) => keys.push(n === 0 ? l.digest : `${keys[n - 1]}>${l.digest}`));
    return keys;
  };
  const distinct = new Map<string, { layer: ReportImageInput['layers'][number]; parent: string | null; images: string[] }>();
  const byDigest = new Map<string, { layer: ReportImageInput['layers'][number]; images: string[] }>();
  for (const image of input.images) {
    const chains = chainsOf(image);
    image.layers.forEach((l, n) => {
      const entry = distinct.get(chains[n]!) ?? { layer: l, parent: n === 0 ? null : image.layers[n - 1]!.digest, images: [] };
      if (!entry.images.includes(image.reference)) entry.images.push(image.reference);
      distinct.set(chains[n]!, entry);
      const d = byDigest.get(l.digest) ?? { layer: l, images: [] };
      if (!d.images.includes(image.reference)) d.images.push(image.reference);
      byDigest.set(l.digest, d);
    });
  }
  let done = 0;
  const scans = await mapLimit([...byDigest.values()], config.concurrency, async ({ layer, images }) => {
    config.signal?.throwIfAborted();
    const scan =
      (layer.diffId ? storeScans?.scans.get(layer.diffId) : undefined) ??
      (await withLayerTar(cacheDir, layer, layer.diffId, images[0]!, (tar) => scanLayerTar(tar, blockSize), archives, {
        ...cacheLockOf(input),
        layerIndex: input.images.find((i) => i.reference === images[0])?.layers.findIndex((l) => l.digest === layer.digest),
      }));
    done++;
    reporter.progress({ event: 'report.layer', message: `measured ${done}/${byDigest.size} layers`, current: done, total: byDigest.size });
    return scan;
  });
  const scanOf = new Map<string, LayerScan>();
  [...byDigest.keys()].forEach((k, i) => scanOf.set(k, scans[i]!));

  const layerBy = new Map<string, LayerReport>();
  for (const [chain, { layer, parent, images }] of distinct) {
    const s = scanOf.get(layer.digest)!;
    layerBy.set(chain, {
      digest: layer.digest,
      ...(layer.diffId ? { diffId: layer.diffId } : {}),
      parent,
      mediaType: layer.mediaType,
      compressedBytes: layer.size,
      tarBytes: s.tarBytes,
      unpackedBytes: s.unpackedBytes,
      fileBytes: s.fileBytes,
      files: s.files,
      directories: s.directories,
      symlinks: s.symlinks,
      ...(s.tarSplitBytes !== undefined ? { tarSplitBytes: s.tarSplitBytes } : {}),
      ...(s.tarSplitExact ? { tarSplitExact: true } : {}),
      inodes: s.files + s.directories + s.symlinks + s.specials,
      images,
      shared: images.length > 1,
    });
  }
  const layers = [...layerBy.values()];

  const images: ImageReport[] = [];
  const imageChains: string[][] = [];
  for (const image of input.images) {
    const chains = chainsOf(image);
    imageChains.push(chains);
    const own = [...new Set(chains)];
    const ownDigests = [...new Set(image.layers.map((l) => l.digest))];
    const configBytes = image.configSize ?? 0;
    let archive: ImageReport['archive'];
    if (image.archive && input.outDir) {
      const st = await stat(join(input.outDir, image.archive)).catch(() => undefined);
      if (st) archive = { path: image.archive, bytes: st.size };
    }
    const sharedDigest = (d: string) => byDigest.get(d)!.images.length > 1;
    images.push({
      reference: image.reference,
      digest: image.digest,
      imageId: image.imageId,
      configBytes,
      compressedBytes: configBytes + ownDigests.reduce((s, d) => s + byDigest.get(d)!.layer.size, 0),
      unpackedBytes: own.reduce((s, k) => s + layerBy.get(k)!.unpackedBytes, 0),
      uniqueCompressedBytes: ownDigests.filter((d) => !sharedDigest(d)).reduce((s, d) => s + byDigest.get(d)!.layer.size, 0),
      uniqueUnpackedBytes: own.filter((k) => !layerBy.get(k)!.shared).reduce((s, k) => s + layerBy.get(k)!.unpackedBytes, 0),
      layers: image.layers.map((l) => l.digest),
      ...(archive ? { archive } : {}),
    });
  }

  const duplicates = findDuplicates(scanOf, byDigest, blockSize);
  const squashfs = await checkSquashfsOutputs(input);

  const layoutLayers = new Map<string, LayoutLayer>(
    [...layerBy].map(([k, l]) => [k, { key: k, unpackedBytes: l.unpackedBytes, tarBytes: l.tarBytes, inodes: l.inodes, directories: l.directories, ...(l.tarSplitBytes !== undefined ? { tarSplitBytes: l.tarSplitBytes } : {}), ...(l.tarSplitExact ? { tarSplitExact: true } : {}) }]),
  );
  const firstBoot = modelFirstBoot(
    layout,
    images.map((i, n) => ({ reference: i.reference, configSize: i.configBytes, layers: imageChains[n]!, ...(i.archive ? { archiveBytes: i.archive.bytes } : {}) })),
    layoutLayers,
    blockSize,
    {
      ...(input.engine ? { engine: input.engine } : {}),
      ...(config.payloadPartition ? { payloadPartition: config.payloadPartition } : {}),
      storeImageBytes: squashfs.reduce((s, q) => s + q.bytes, 0),
    },
  );

  const uniqueConfigs = new Map(images.map((i) => [i.imageId, i.configBytes]));
  const compressedBytes = [...byDigest.values()].reduce((s, d) => s + d.layer.size, 0) + [...uniqueConfigs.values()].reduce((a, b) => a + b, 0);
  const compressedBytesUnshared = images.reduce((s, i) => s + i.compressedBytes, 0);
  const unpackedBytes = layers.reduce((s, l) => s + l.unpackedBytes, 0);
  const unpackedBytesUnshared = images.reduce((s, i) => s + i.unpackedBytes, 0);
  const totals: ReportTotals = {
    images: images.length,
    layers: layers.length,
    sharedLayers: layers.filter((l) => l.shared).length,
    compressedBytes,
    compressedBytesUnshared,
    sharingSavesCompressedBytes: compressedBytesUnshared - compressedBytes,
    unpackedBytes,
    unpackedBytesUnshared,
    sharingSavesUnpackedBytes: unpackedBytesUnshared - unpackedBytes,
    duplicateGroups: duplicates.length,
    duplicateWastedBytes: duplicates.reduce((s, d) => s + d.wastedBytes, 0),
    squashfsBytes: squashfs.reduce((s, q) => s + q.bytes, 0),
    firstBootBytes: firstBoot.totalBytes,
  };

  const result: ReportResult = {
    source: { kind: input.kind, path: input.path },
    platform: input.platform,
    ...(input.mode ? { mode: input.mode } : {}),
    ...(input.engine ? { engine: input.engine } : {}),
    ...(input.storageDriver ? { storageDriver: input.storageDriver } : {}),
    blockSize,
    layout,
    images,
    layers,
    duplicates,
    squashfs,
    firstBoot,
    totals,
  };
  if (budget) {
    result.budget = judgeBudget(budget, firstBoot.totalBytes);
    if (!result.budget.fits) {
      const payload = firstBoot.items.filter((i) => i.kind === 'payload');
      const where = payload.length
        ? `; its payload (${payload.map((i) => `${i.name}, ${formatSize(i.bytes)}`).join('; ')}) is ${payload[0]!.partition === 'rootfs' ? 'in the rootfs, not counted (--payload-on data if the loader puts it on the data partition)' : 'on the data partition, counted'}`
        : '';
      const what = `the ${layout} layout (data partition at the peak of the first boot${where})`;
      throw new ReportDoesNotFitError(result, doesNotFit(result.budget, what, images.map((i) => ({ reference: i.reference, bytes: i.unpackedBytes }))));
    }
  }
  return result;
}

function findDuplicates(scans: ReadonlyMap<string, LayerScan>, layerBy: ReadonlyMap<string, { images: string[] }>, blockSize: number): DuplicateGroup[] {
  const groups = new Map<string, { size: number; occurrences: DuplicateOccurrence[]; layers: Set<string> }>();
  for (const [key, scan] of scans) {
    for (const f of scan.contents) {
      const g = groups.get(f.sha256) ?? { size: f.size, occurrences: [], layers: new Set<string>() };
      g.occurrences.push({ layer: key, path: Buffer.from(f.path, 'latin1').toString('utf8'), images: layerBy.get(key)?.images ?? [] });
      g.layers.add(key);
      groups.set(f.sha256, g);
    }
  }
  const out: DuplicateGroup[] = [];
  for (const [sha256, g] of groups) {
    if (g.layers.size < 2) continue;
    out.push({ sha256, size: g.size, wastedBytes: roundUp(g.size, blockSize) * (g.layers.size - 1), layers: g.layers.size, occurrences: g.occurrences });
  }
  return out.sort((a, b) => b.wastedBytes - a.wastedBytes || (a.sha256 < b.sha256 ? -1 : 1));
}

async function checkSquashfsOutputs(input: ReportInput): Promise<SquashfsReport[]> {
  if (!input.outDir) return [];
  const out: SquashfsReport[] = [];
  for (const o of input.outputs) {
    if (!/\.(sqfs|squashfs)$/.test(o.path)) continue;
    const file = join(input.outDir, o.path);
    const st = await stat(file).catch(() => undefined);
    if (!st) throw new InputError(E_REPORT_OUTPUT_MISMATCH, `${input.path} lists ${o.path}, but ${file} does not exist; bake again or report on the right OUT directory`);
    if (st.size !== o.size) {
      throw new InputError(E_REPORT_OUTPUT_MISMATCH, `${file} is ${st.size} bytes, ${input.path} records ${o.size}: the file changed after the bake; bake again`, {
        details: { path: o.path, bytes: st.size, recordedBytes: o.size },
      });
    }
    out.push({ path: o.path, bytes: st.size, recordedBytes: o.size });
  }
  return out;
}
