/**
 * What each device layout writes to the writable data partition at first boot, and what the
 * baked store holds (docs/report.md, "First boot model"). Engine metadata is an estimate:
 * METADATA_BLOCKS_PER_LAYER blocks per layer (layerdb and overlay2 link/lower/work entries) and,
 * per image, its config rounded up plus METADATA_BLOCKS_PER_IMAGE blocks (imagedb, repositories).
 */
import { roundUp } from './unpacked-model.js';

export const LAYOUTS = ['archive', 'overlay-vfs', 'split', 'copy', 'podman-ro'] as const;
export type Layout = (typeof LAYOUTS)[number];

export const METADATA_BLOCKS_PER_LAYER = 10;
export const METADATA_BLOCKS_PER_IMAGE = 4;
/** docker-archive overhead per image when the archive is not baked yet: manifest.json, repositories, tar headers. */
export const ARCHIVE_OVERHEAD_ESTIMATE = 16 * 1024;

export interface LayoutLayer {
  key: string;
  unpackedBytes: number;
  tarBytes: number;
}

export interface LayoutImage {
  reference: string;
  configSize: number;
  /** Layer keys bottom-up. */
  layers: string[];
  /** Archive size when baked (archive mode), else undefined. */
  archiveBytes?: number;
}

export interface FirstBootItem {
  name: string;
  bytes: number;
  note: string;
}

export interface FirstBootModel {
  layout: Layout;
  items: FirstBootItem[];
  /** What the data partition must hold at the peak of first boot. */
  totalBytes: number;
  /** Uncompressed bytes of the baked store (store layouts) or of the loaded images (archive). */
  storeBytes: number;
}

export function defaultLayout(mode: string | undefined, engine: string | undefined, storageDriver: string | undefined): Layout {
  if (mode !== 'store') return 'archive';
  if (engine === 'podman') return 'podman-ro';
  return storageDriver === 'vfs' ? 'overlay-vfs' : 'split';
}

export function modelFirstBoot(layout: Layout, images: readonly LayoutImage[], layers: ReadonlyMap<string, LayoutLayer>, blockSize: number): FirstBootModel {
  const unique = new Set(images.flatMap((i) => i.layers));
  const uniqueUnpacked = [...unique].reduce((sum, k) => sum + (layers.get(k)?.unpackedBytes ?? 0), 0);
  const metadata =
    unique.size * METADATA_BLOCKS_PER_LAYER * blockSize +
    images.reduce((sum, i) => sum + roundUp(i.configSize, blockSize) + METADATA_BLOCKS_PER_IMAGE * blockSize, 0);
  const metadataItem: FirstBootItem = { name: 'engine metadata', bytes: metadata, note: 'estimate: image and layer databases, overlay2 link/lower/work entries' };
  // vfs: each layer directory is a full copy of its parent plus its own changes.
  const chains = new Map<string, number>();
  for (const image of images) {
    let chainKey = '';
    let cumulative = 0;
    for (const k of image.layers) {
      chainKey += `/${k}`;
      cumulative += layers.get(k)?.unpackedBytes ?? 0;
      chains.set(chainKey, cumulative);
    }
  }
  const vfsStore = [...chains.values()].reduce((a, b) => a + b, 0);
  const imageUnpacked = (i: LayoutImage) => i.layers.reduce((sum, k) => sum + (layers.get(k)?.unpackedBytes ?? 0), 0);
  let items: FirstBootItem[];
  let storeBytes = uniqueUnpacked + metadata;
  switch (layout) {
    case 'archive': {
      const archives = images.map(
        (i) => i.archiveBytes ?? i.configSize + ARCHIVE_OVERHEAD_ESTIMATE + i.layers.reduce((sum, k) => sum + (layers.get(k)?.tarBytes ?? 0), 0),
      );
      const estimated = images.some((i) => i.archiveBytes === undefined);
      items = [
        { name: 'archives', bytes: archives.reduce((a, b) => a + b, 0), note: `${estimated ? 'estimated from the layer tars; ' : ''}drop this item if the archives ship in the read-only rootfs or a SquashFS` },
        { name: 'unpacked layers', bytes: uniqueUnpacked, note: 'every distinct layer once, in the engine data-root' },
        { name: 'load staging', bytes: Math.max(0, ...archives), note: 'docker load stages an archive under data-root/tmp; the loader loads one image at a time, so the largest one' },
        metadataItem,
      ];
      break;
    }
    case 'overlay-vfs':
      storeBytes = vfsStore + metadata;
      items = [
        { name: 'container copies', bytes: images.reduce((sum, i) => sum + imageUnpacked(i), 0), note: 'vfs copies the whole image for each container: one container per image (upper bound: deleted and overwritten files counted)' },
        metadataItem,
      ];
      break;
    case 'split':
      items = [metadataItem];
      break;
    case 'copy':
      items = [{ name: 'store copy', bytes: uniqueUnpacked, note: 'the store is copied from the SquashFS to the writable data-root once' }, metadataItem];
      break;
    case 'podman-ro':
      items = [{ ...metadataItem, bytes: images.length * METADATA_BLOCKS_PER_IMAGE * blockSize, note: 'estimate: the writable graphroot starts empty; images stay in the read-only store' }];
      break;
  }
  return { layout, items, totalBytes: items.reduce((sum, i) => sum + i.bytes, 0), storeBytes };
}
