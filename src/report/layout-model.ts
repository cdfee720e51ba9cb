/**
 * What each device layout writes at first boot, partition by partition (docs/report.md, "First
 * boot model"), from what the device really does: templates/loader/ctrbake-device.sh's
 * prepare and load steps, then the engine's own first start. Every file is counted in blocks
 * as ext4 stores it (unpacked-model.ts), plus the filesystem's own metadata (inode tables,
 * bitmaps, directory blocks) that the journal writes for every inode created.
 *
 * Checked against bytes written (ext4 lifetime_write_kbytes) by the simulated device booting
 * each layout on the benchmark's image set (test/integration/size-model.test.ts).
 */
import { defaultLayoutFor, LAYOUTS as DEVICE_LAYOUTS, type LayoutName } from '../layouts.js';
import { roundUp, symlinkBytes } from './unpacked-model.js';

export const LAYOUTS = DEVICE_LAYOUTS;
export type Layout = LayoutName;
export const PARTITIONS = ['rootfs', 'data'] as const;
export type Partition = (typeof PARTITIONS)[number];

/** docker-archive overhead per image when the archive is not baked yet: manifest.json, repositories, tar headers. */
export const ARCHIVE_OVERHEAD_ESTIMATE = 16 * 1024;

/**
 * Bytes an engine writes at its first start on a data-root it has not run on, journal
 * included (measured, dockerd 20.10: its bolt databases for buildkit, networks and volumes,
 * ~20 directories, each database created with several fsyncs; podman 4.3 at its first
 * command: libpod's bolt_state.db, lock files, the overlay driver's directories).
 */
export const ENGINE_FIRST_START: Record<'docker' | 'podman', number> = { docker: 850 * 1024, podman: 850 * 1024 };

/**
 * dockerd's first start on a store the loader copied (split, copy) reads every layer record
 * and image config; `cp -a` kept the bake's timestamps, so relatime writes each of those
 * inodes back, through several journal commits (measured: ~3 KiB per record inode).
 */
export const SEEDED_RECORD_READ_BYTES = 3 * 1024;

/** podman's tar-split files are ~16 % larger than docker's for the same layer (measured, podman 4.3). */
const PODMAN_TAR_SPLIT_FACTOR = 1.16;

/**
 * Filesystem metadata written per inode created: its share of the inode table, bitmaps and
 * group descriptors, through the journal (several commits while a boot runs), measured on
 * ext4 (Debian 12 mkfs defaults, 4 KiB blocks, 256-byte inodes): 0.65 to 1.1 KiB when docker
 * or cp writes a store, ~2 KiB when podman load does (containers/storage touches each inode again).
 * Directory blocks and long symlinks' blocks are metadata too: the journal writes each once
 * more (counted apart, a block each).
 */
export const FS_METADATA_PER_INODE: Record<'docker' | 'podman', number> = { docker: 900, podman: 2048 };

/** One journal commit of the device script's syncs (descriptor, commit block, the metadata blocks a small change dirties). */
export const SYNC_COMMIT_BYTES = 16 * 1024;

/** Length of the long symlinks engines keep per layer (overlay2 `l/<id>` -> `../<64 hex>/diff`). */
const LAYER_LINK_TARGET = 72;

export interface LayoutLayer {
  key: string;
  unpackedBytes: number;
  tarBytes: number;
  /** Inodes the extracted layer holds (directories, files, symlinks, devices), its root included. */
  inodes?: number;
  /** Directories among them. */
  directories?: number;
  /** The engines' gzipped tar-split of the layer (docker's size, estimated); from tarBytes when unknown. */
  tarSplitBytes?: number;
  /** tarSplitBytes is the engine's own file's size (read from a baked store): no engine factor. */
  tarSplitExact?: boolean;
}

export interface LayoutImage {
  reference: string;
  configSize: number;
  /** Layer keys bottom-up. */
  layers: string[];
  /** Archive size when baked (archive mode), else undefined. */
  archiveBytes?: number;
}

/**
 * `boot`: written by the first boot and still there after it (bytes written on the device).
 * `transient`: written during the first boot and removed before its end (staging); the data
 * partition must hold the largest one at the peak. `containers`: what starting one container
 * per image adds on top. `payload`: shipped in the image, read-only at boot.
 */
export type FirstBootKind = 'boot' | 'transient' | 'containers' | 'payload';

export interface FirstBootItem {
  name: string;
  /** Bytes written (payload: its size). */
  bytes: number;
  /** Of them, what the partition holds at once at the peak (transient items: the largest piece). */
  heldBytes: number;
  partition: Partition;
  kind: FirstBootKind;
  note: string;
}

export interface FirstBootOptions {
  engine?: string;
  /** Where the payload (archives, store SquashFS) is: the rootfs (loader's default payload dir) or the data partition. */
  payloadPartition?: Partition;
  /** Bytes of the store SquashFS when baked (store layouts). */
  storeImageBytes?: number;
}

export interface FirstBootModel {
  layout: Layout;
  engine: 'docker' | 'podman';
  items: FirstBootItem[];
  /** Bytes the first boot writes to the data partition (items of kind boot). */
  writtenBytes: number;
  /** What the data partition must hold: written + the largest transient item + containers + payload placed there. The budget's need. */
  totalBytes: number;
  /** Payload bytes on the read-only rootfs (not in the budget of the data partition). */
  rootfsBytes: number;
  /** Uncompressed bytes of the baked store (store layouts) or of the loaded images (archive). */
  storeBytes: number;
}

export const defaultLayout = defaultLayoutFor;

/** tar-split is ~1/6 of a layer's header bytes gzipped; without a scan, a few % of a small tar. */
function tarSplitOf(layer: LayoutLayer | undefined): number {
  if (!layer) return 0;
  return layer.tarSplitBytes ?? Math.ceil(layer.tarBytes / 100);
}

interface Tally {
  bytes: number;
  inodes: number;
  /** Blocks the journal writes once more: directories, long symlinks. */
  journaled: number;
}

export function modelFirstBoot(layout: Layout, images: readonly LayoutImage[], layers: ReadonlyMap<string, LayoutLayer>, blockSize: number, options: FirstBootOptions = {}): FirstBootModel {
  const engine = options.engine === 'podman' ? 'podman' : 'docker';
  const payloadPartition = options.payloadPartition ?? 'rootfs';
  const B = blockSize;
  const block = (n: number) => roundUp(n, B);
  const layerOf = (k: string) => layers.get(k);
  const unique = [...new Set(images.flatMap((i) => i.layers))];
  const parents = new Set(images.flatMap((i) => i.layers.slice(0, -1)));
  const bottoms = new Set(images.map((i) => i.layers[0]).filter((k): k is string => k !== undefined));
  const uniqueUnpacked = unique.reduce((sum, k) => sum + (layerOf(k)?.unpackedBytes ?? 0), 0);
  // Without counts (callers that only know sizes), ~one inode per 2 blocks and one directory per 10 inodes (measured on real images).
  const inodesOf = (k: string) => layerOf(k)?.inodes ?? Math.max(1, Math.round((layerOf(k)?.unpackedBytes ?? 0) / (2 * B)));
  const dirsOf = (k: string) => layerOf(k)?.directories ?? Math.max(1, Math.round(inodesOf(k) / 10));
  const contents: Tally = {
    bytes: uniqueUnpacked,
    inodes: unique.reduce((sum, k) => sum + inodesOf(k), 0),
    journaled: unique.reduce((sum, k) => sum + dirsOf(k), 0),
  };
  const longLink = symlinkBytes(LAYER_LINK_TARGET, B);

  // The engine's record of each layer. docker: layerdb/sha256/<chain>/ {cache-id, diff, size,
  // parent, tar-split.json.gz} and overlay2/<id>/ {link, lower, work/, committed} with its
  // l/<short> link; podman: overlay/<id>/ {link, lower, work/, merged/}, l/<short>,
  // overlay-layers/<id>.tar-split.gz and its layers.json entry.
  const layerRecords = (diffLink: boolean): Tally => {
    const t: Tally = { bytes: 0, inodes: 0, journaled: 0 };
    for (const k of unique) {
      const bottom = bottoms.has(k) && !images.some((i) => i.layers.indexOf(k) > 0);
      const factor = engine === 'podman' && !layerOf(k)?.tarSplitExact ? PODMAN_TAR_SPLIT_FACTOR : 1;
      const tarSplit = block(tarSplitOf(layerOf(k)) * factor);
      if (engine === 'docker') {
        const files = 3 + (bottom ? 0 : 1);
        t.bytes += B + files * B + tarSplit + B + B + (bottom ? 0 : 2 * B) + longLink;
        t.inodes += 1 + files + 1 + 1 + 1 + (bottom ? 0 : 2) + 1 + (parents.has(k) ? 1 : 0);
        t.journaled += 2 + (bottom ? 0 : 1) + (longLink ? 1 : 0);
      } else {
        t.bytes += B + B + (bottom ? 0 : B) + 2 * B + longLink + tarSplit + 450;
        t.inodes += 1 + 1 + (bottom ? 0 : 1) + 2 + 1 + 1;
        t.journaled += 3 + (longLink ? 1 : 0);
      }
      if (diffLink) {
        // split: diff is a symlink into the mounted store (PAYLOAD/store/overlay2/<64 hex>/diff).
        const link = symlinkBytes(100, B);
        t.bytes += link;
        t.inodes += 1;
        t.journaled += link ? 1 : 0;
      }
    }
    return t;
  };
  // docker: imagedb/content/sha256/<id> (the config) + ~150 bytes of repositories.json;
  // podman: overlay-images/<id>/ with the manifest twice, the config, a signature file, and
  // ~1.6 KB of images.json. Plus the image store's directory tree (~12 directories).
  const imageRecords = (): Tally => {
    const t: Tally = { bytes: 0, inodes: 14, journaled: 12 };
    for (const i of images) {
      if (engine === 'docker') {
        t.bytes += block(i.configSize) + 150;
        t.inodes += 1;
      } else {
        t.bytes += B + 2 * block(1024) + block(i.configSize) + 1600;
        t.inodes += 5;
        t.journaled += 1;
      }
    }
    t.bytes = block(t.bytes) + 12 * B;
    return t;
  };
  // The device script's own files and syncs (each sync a journal commit).
  const loaderState = (files: number, syncs: number): Tally => ({ bytes: files * B + syncs * SYNC_COMMIT_BYTES, inodes: files, journaled: 0 });

  const written: Array<{ name: string; tally: Tally; note: string }> = [];
  const other: FirstBootItem[] = [];
  const archives = images.map((i) => i.archiveBytes ?? i.configSize + ARCHIVE_OVERHEAD_ESTIMATE + i.layers.reduce((sum, k) => sum + (layerOf(k)?.tarBytes ?? 0), 0));
  const archivesEstimated = images.some((i) => i.archiveBytes === undefined);
  const archivesTotal = archives.reduce((a, b) => a + b, 0);
  const payload = (name: string, bytes: number, note: string) =>
    other.push({
      name,
      bytes,
      heldBytes: bytes,
      partition: payloadPartition,
      kind: 'payload',
      note: `${note}; ${payloadPartition === 'rootfs' ? "in the read-only rootfs (the default of ctrbake loader --payload-dir)" : 'on the data partition (--payload-on data)'}`,
    });
  const recordsNote = engine === 'docker' ? 'layerdb entries with tar-split.json.gz, overlay2 link/lower/work, l/ links' : 'overlay link/lower/work/merged, l/ links, overlay-layers tar-split.gz and layers.json';
  const imagesNote = engine === 'docker' ? 'imagedb configs, repositories.json' : 'overlay-images manifests and configs, images.json';
  let storeBytes = uniqueUnpacked + layerRecords(false).bytes + imageRecords().bytes;

  switch (layout) {
    case 'archive': {
      payload('archives', archivesTotal, `${archivesEstimated ? 'estimated from the layer tars' : "the bake's archives"}, read by the load step`);
      written.push({ name: 'unpacked layers', tally: contents, note: 'every distinct layer once, extracted into the engine data-root' });
      written.push({ name: 'layer records', tally: layerRecords(false), note: recordsNote });
      written.push({ name: 'image records', tally: imageRecords(), note: imagesNote });
      written.push({ name: 'loader state', tally: loaderState(3 + images.length, 2 + 6 * images.length), note: 'DATA_DIR/loaded/<id> per image, applied; 6 syncs per image' });
      if (engine === 'docker') {
        other.push({
          name: 'load staging',
          bytes: archivesTotal,
          heldBytes: Math.max(0, ...archives),
          partition: 'data',
          kind: 'transient',
          note: 'docker load extracts each archive under data-root/tmp, loads it, then removes it: written once per image, the largest held at the peak (a host with much RAM may drop it before writeback)',
        });
      }
      break;
    }
    case 'overlay-vfs': {
      // vfs: each layer directory is a full copy of its parent plus its own changes.
      const chains = new Map<string, number>();
      for (const image of images) {
        let chainKey = '';
        let cumulative = 0;
        for (const k of image.layers) {
          chainKey += `/${k}`;
          cumulative += layerOf(k)?.unpackedBytes ?? 0;
          chains.set(chainKey, cumulative);
        }
      }
      storeBytes = [...chains.values()].reduce((a, b) => a + b, 0) + layerRecords(false).bytes + imageRecords().bytes;
      payload('store.sqfs', options.storeImageBytes ?? 0, "the vfs store as SquashFS, the overlay's lower layer");
      written.push({ name: 'writable layer', tally: { bytes: 3 * B, inodes: 3, journaled: 3 }, note: 'DATA_DIR/overlay/upper and work (the engine writes its own files there)' });
      written.push({ name: 'loader state', tally: loaderState(2, 3), note: 'DATA_DIR/seeded' });
      const imageUnpacked = (i: LayoutImage) => i.layers.reduce((sum, k) => sum + (layerOf(k)?.unpackedBytes ?? 0), 0);
      const copies = images.reduce((sum, i) => sum + imageUnpacked(i), 0);
      other.push({
        name: 'container copies',
        bytes: copies,
        heldBytes: copies,
        partition: 'data',
        kind: 'containers',
        note: 'not written at boot: vfs copies the whole image for each container; one container per image (upper bound: deleted and overwritten files counted)',
      });
      break;
    }
    case 'split':
      payload('store.sqfs', options.storeImageBytes ?? 0, 'the overlay2 store as SquashFS; layer contents stay there');
      written.push({ name: 'layer records', tally: layerRecords(true), note: `copied from the store: ${recordsNote}; each diff a symlink into the store` });
      written.push({ name: 'image records', tally: imageRecords(), note: `copied from the store: ${imagesNote}` });
      written.push({ name: 'loader state', tally: loaderState(2, 5), note: 'DATA_DIR/seeded' });
      break;
    case 'copy':
      payload('store.sqfs', options.storeImageBytes ?? 0, 'the store as SquashFS, copied once');
      written.push({ name: 'unpacked layers', tally: contents, note: 'the store copied from the SquashFS to the writable data-root' });
      written.push({ name: 'layer records', tally: layerRecords(false), note: recordsNote });
      written.push({ name: 'image records', tally: imageRecords(), note: imagesNote });
      written.push({ name: 'loader state', tally: loaderState(2, 5), note: 'DATA_DIR/seeded' });
      break;
    case 'podman-ro':
      payload('store.sqfs', options.storeImageBytes ?? 0, 'the podman store as SquashFS, listed in additionalimagestores');
      written.push({ name: 'loader state', tally: loaderState(4, 3), note: 'the empty graphroot, DATA_DIR/seeded' });
      break;
    case 'containerd': {
      // meta.db (a page per blob and image record, roughly) and one symlink per blob.
      const blobs = new Set(images.flatMap((i) => i.layers)).size + 2 * images.length;
      payload('store.sqfs', options.storeImageBytes ?? 0, "containerd's content store and meta.db as SquashFS; the blobs stay there");
      written.push({ name: 'meta.db and content links', tally: { bytes: (4 + blobs + images.length) * B, inodes: blobs + 6, journaled: blobs + 6 }, note: 'meta.db copied (containerd writes it), one symlink per blob into the store; containerd unpacks layers into its snapshotter when a container first runs (not counted)' });
      written.push({ name: 'loader state', tally: loaderState(2, 5), note: 'DATA_DIR/seeded' });
      break;
    }
  }
  if (engine === 'docker' && (layout === 'split' || layout === 'copy')) {
    const records = layerRecords(layout === 'split').inodes + imageRecords().inodes;
    written.push({ name: 'engine reads the records', tally: { bytes: records * SEEDED_RECORD_READ_BYTES, inodes: 0, journaled: 0 }, note: `dockerd's first start reads ${records} copied record files: their access times are written back` });
  }
  const inodes = written.reduce((sum, b) => sum + b.tally.inodes, 0);
  const journaled = written.reduce((sum, b) => sum + b.tally.journaled, 0);
  const items: FirstBootItem[] = [
    ...written.map((b) => ({ name: b.name, bytes: b.tally.bytes, heldBytes: b.tally.bytes, partition: 'data' as const, kind: 'boot' as const, note: b.note })),
    {
      name: 'engine first start',
      bytes: ENGINE_FIRST_START[engine],
      heldBytes: ENGINE_FIRST_START[engine],
      partition: 'data',
      kind: 'boot',
      note: `measured: ${engine === 'docker' ? "dockerd's databases (buildkit, networks, volumes) and directories" : "podman's libpod database, locks and driver directories"}, journal included`,
    },
    {
      name: 'filesystem metadata',
      bytes: inodes * FS_METADATA_PER_INODE[engine] + journaled * B,
      heldBytes: 0,
      partition: 'data',
      kind: 'boot',
      note: `ext4 inode tables and bitmaps for ${inodes} inodes, ${journaled} directory and symlink blocks again, through the journal`,
    },
    ...other,
  ];
  const onData = items.filter((i) => i.partition === 'data');
  return {
    layout,
    engine,
    items,
    writtenBytes: onData.filter((i) => i.kind === 'boot' || i.kind === 'transient').reduce((sum, i) => sum + i.bytes, 0),
    totalBytes: onData.reduce((sum, i) => sum + i.heldBytes, 0),
    rootfsBytes: items.filter((i) => i.partition === 'rootfs').reduce((sum, i) => sum + i.heldBytes, 0),
    storeBytes,
  };
}
