/** What `report()` returns (also the `--format json` output): see docs/report.md. */
import type { Platform } from '../formats/index.js';
import type { BudgetVerdict } from './budget.js';
import type { FirstBootModel, Layout } from './layout-model.js';

/** One layer as the engine stores it: on top of its parent (the same digest on another parent is another entry). */
export interface LayerReport {
  digest: string;
  diffId?: string;
  /** Digest of the layer below, null for a bottom layer. */
  parent: string | null;
  mediaType: string;
  compressedBytes: number;
  tarBytes: number;
  unpackedBytes: number;
  fileBytes: number;
  files: number;
  directories: number;
  symlinks: number;
  /** Inodes the extracted layer holds (files, directories incl. its root, symlinks, devices). */
  inodes: number;
  /** The engines' gzipped tar-split of this layer (estimate; absent when measured from a store). */
  tarSplitBytes?: number;
  /** tarSplitBytes read from the baked store (the engine's own file), not estimated. */
  tarSplitExact?: boolean;
  /** References of the images that use this layer. */
  images: string[];
  shared: boolean;
}

export interface ImageReport {
  reference: string;
  digest: string;
  imageId: string;
  configBytes: number;
  /** Layer blobs + config, as a registry serves them. */
  compressedBytes: number;
  /** Its layers extracted (model), each layer counted. */
  unpackedBytes: number;
  /** Bytes of the layers only this image uses. */
  uniqueCompressedBytes: number;
  uniqueUnpackedBytes: number;
  layers: string[];
  archive?: { path: string; bytes: number };
}

export interface DuplicateOccurrence {
  layer: string;
  path: string;
  images: string[];
}

export interface DuplicateGroup {
  sha256: string;
  size: number;
  /** Layers holding this content beyond the first, times its size rounded to blocks. */
  wastedBytes: number;
  layers: number;
  occurrences: DuplicateOccurrence[];
}

export interface SquashfsReport {
  path: string;
  bytes: number;
  recordedBytes: number;
}

export interface ReportTotals {
  images: number;
  layers: number;
  sharedLayers: number;
  compressedBytes: number;
  /** Sum over images, as if nothing were shared. */
  compressedBytesUnshared: number;
  sharingSavesCompressedBytes: number;
  unpackedBytes: number;
  unpackedBytesUnshared: number;
  sharingSavesUnpackedBytes: number;
  duplicateGroups: number;
  duplicateWastedBytes: number;
  squashfsBytes: number;
  firstBootBytes: number;
}

export interface ReportResult {
  source: { kind: 'manifest' | 'lock'; path: string };
  platform: Platform;
  mode?: string;
  engine?: string;
  storageDriver?: string;
  blockSize: number;
  layout: Layout;
  images: ImageReport[];
  layers: LayerReport[];
  duplicates: DuplicateGroup[];
  squashfs: SquashfsReport[];
  firstBoot: FirstBootModel;
  totals: ReportTotals;
  budget?: BudgetVerdict;
}
