/**
 * The builtin SquashFS 4.0 writer: a tar stream in, an image the Linux kernel mounts out,
 * in process, without root and without extracting anything.
 *
 * `writeSquashfsFromTar(input, outPath, options)`:
 * - input: a Node readable stream or any async iterable of bytes holding an uncompressed
 *   tar (ustar, GNU, PAX). It is read once, front to back, with backpressure.
 * - outPath: the image is written to a temp sibling and renamed into place at the end;
 *   on any failure or abort the temp file is removed and outPath is left untouched.
 * - options: see SquashfsWriteOptions. Block size and compression are checked first
 *   (ConfigError E_SQUASHFS_OPTIONS); bad tar input throws InputError with one of
 *   E_TAR_UNSAFE_PATH, E_TAR_DUPLICATE, E_TAR_TRUNCATED, E_TAR_BAD_LINK, E_TAR_CORRUPT,
 *   E_TAR_UNSUPPORTED (docs/errors.md, "SquashFS").
 *
 * What goes in the image is described in docs/squashfs-format.md. The same tar and
 * options always give the same bytes.
 */
import { availableParallelism } from 'node:os';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../../errors.js';
import { fsyncDir, tempSiblingPath } from '../../util/fs.js';
import { registerCleanup } from '../../util/cleanup.js';
import {
  COMPRESSION_ID,
  DEFAULT_LEVEL,
  DEFAULT_GZIP_IMPLEMENTATION,
  GZIP_IMPLEMENTATIONS,
  LEVEL_RANGE,
  SUPPORTED_COMPRESSIONS,
  createCompressor,
  type BlockCompressor,
  type GzipImplementation,
  type SquashfsCompression,
} from './compressor.js';
import { DataWriter } from './data.js';
import { METADATA_UNCOMPRESSED, SUPERBLOCK_SIZE, SuperFlags } from './metadata.js';
import { writeTables } from './tables.js';
import { TarInput, type TarEntry } from '../../formats/tar/index.js';
import { Tree, newNode, shown, type NodeKind } from './tree.js';
import { checkXattrNames } from './xattr.js';

export type { GzipImplementation, SquashfsCompression } from './compressor.js';
export { SUPPORTED_COMPRESSIONS } from './compressor.js';
export { E_TAR_CORRUPT, E_TAR_UNSUPPORTED } from '../../formats/tar/index.js';

export const E_SQUASHFS_OPTIONS = 'E_SQUASHFS_OPTIONS';

export interface SquashfsWriteOptions {
  /** Data block size: a power of 2 from 4 KiB to 1 MiB. Default 131072. */
  blockSize?: number;
  /** Default gzip; gzip, zstd and lz4 are written, xz is refused (see docs/squashfs-format.md). */
  compression?: SquashfsCompression;
  /** Compression level; default as mksquashfs: gzip 9 (1..9), zstd 15 (1..22); lz4 has only 1. */
  level?: number;
  /** Parallel compressions; default os.availableParallelism(). */
  workers?: number;
  /**
   * gzip only: `canonical` (default, pako: the system zlib's bytes, as small as tar2sqfs's
   * and mksquashfs's) or `node` (node:zlib: about 2.7x less CPU, 1.5-2 % larger).
   */
  gzipImplementation?: GzipImplementation;
  /** Superblock mkfs time and the mtime of implicit directories; default 0. */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
  /** Called as the tar is read: tar bytes consumed so far, image bytes written so far. */
  onProgress?: (bytesIn: number, imageBytes: number) => void;
}

export interface SquashfsWriteResult {
  path: string;
  /** Size of the image file (padded to 4 KiB). */
  bytes: number;
  inodes: number;
  /** Bytes of regular file content read from the tar. */
  dataBytesIn: number;
  /** Bytes of file content not stored again because an identical file was stored before. */
  duplicatesSaved: number;
}

interface ResolvedWriteOptions {
  blockSize: number;
  compression: SquashfsCompression;
  level: number;
  workers: number;
  gzipImplementation: GzipImplementation;
  sourceDateEpoch: number;
}

function optionError(message: string): ConfigError {
  return new ConfigError(E_SQUASHFS_OPTIONS, message);
}

export function resolveWriteOptions(options: SquashfsWriteOptions): Readonly<ResolvedWriteOptions> {
  const blockSize = options.blockSize ?? 131072;
  if (!Number.isInteger(blockSize) || blockSize < 4096 || blockSize > 1048576 || (blockSize & (blockSize - 1)) !== 0) {
    throw optionError(`SquashFS block size ${blockSize} is invalid: use a power of 2 from 4096 to 1048576`);
  }
  const compression = options.compression ?? 'gzip';
  if (!SUPPORTED_COMPRESSIONS.includes(compression)) {
    throw optionError(
      `compression ${compression} is not supported by the builtin SquashFS writer (it supports ${SUPPORTED_COMPRESSIONS.join(', ')}); use another compression or the tar2sqfs/sqfstar backend`,
    );
  }
  const level = options.level ?? DEFAULT_LEVEL[compression];
  const [min, max] = LEVEL_RANGE[compression];
  if (!Number.isInteger(level) || level < min || level > max) throw optionError(`${compression} level ${level} is invalid: use ${min} to ${max}`);
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw optionError(`workers ${workers} is invalid: use 1 to 256`);
  const gzipImplementation = options.gzipImplementation ?? DEFAULT_GZIP_IMPLEMENTATION;
  if (!GZIP_IMPLEMENTATIONS.includes(gzipImplementation)) throw optionError(`gzip implementation ${String(gzipImplementation)} is invalid: use ${GZIP_IMPLEMENTATIONS.join(' or ')}`);
  const sourceDateEpoch = options.sourceDateEpoch ?? 0;
  if (!Number.isInteger(sourceDateEpoch) || sourceDateEpoch < 0 || sourceDateEpoch > 0xffffffff) {
    throw optionError(`sourceDateEpoch ${sourceDateEpoch} is invalid: SquashFS stores times as unsigned 32-bit seconds`);
  }
  return Object.freeze({ blockSize, compression, level, workers, gzipImplementation, sourceDateEpoch });
}

const KINDS: Record<TarEntry['type'], NodeKind | null> = {
  file: 'file',
  dir: 'dir',
  symlink: 'symlink',
  chardev: 'chardev',
  blockdev: 'blockdev',
  fifo: 'fifo',
  hardlink: null,
};

/** Linux new_encode_dev. */
function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

function clampTime(t: number): number {
  return Math.min(Math.max(t, 0), 0xffffffff);
}

export async function writeSquashfsFromTar(
  input: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  outPath: string,
  options: SquashfsWriteOptions = {},
): Promise<SquashfsWriteResult> {
  const resolved = resolveWriteOptions(options);
  const { signal, onProgress } = options;
  signal?.throwIfAborted();
  const tmp = tempSiblingPath(outPath);
  const unregister = registerCleanup(`squashfs temp ${tmp}`, () => rm(tmp, { force: true }));
  let compressor: BlockCompressor | undefined;
  let data: DataWriter | undefined;
  let tar: TarInput | undefined;
  try {
    compressor = await createCompressor(resolved.compression, resolved.level, resolved.workers, resolved.gzipImplementation);
    const codec = compressor;
    const fh = await open(tmp, 'w', 0o644);
    try {
      let dataStart = SUPERBLOCK_SIZE;
      if (compressor.options) {
        // Compressor options: one uncompressed metadata block right after the superblock.
        const block = Buffer.alloc(2 + compressor.options.length);
        block.writeUInt16LE(compressor.options.length | METADATA_UNCOMPRESSED, 0);
        compressor.options.copy(block, 2);
        await fh.write(block, 0, block.length, SUPERBLOCK_SIZE);
        dataStart += block.length;
      }
      data = new DataWriter(fh.fd, dataStart, resolved.blockSize, compressor, resolved.workers);
      tar = new TarInput(input as AsyncIterable<Uint8Array>);
      const tree = new Tree(resolved.sourceDateEpoch);
      const reader = tar;
      const writer = data;
      // Called as content streams in: reports progress and stops a long file on abort.
      const progress = (): void => {
        signal?.throwIfAborted();
        onProgress?.(reader.bytesConsumed, writer.position);
      };
      for (;;) {
        signal?.throwIfAborted();
        const entry = await tar.next();
        if (entry === null) break;
        if (entry.type === 'hardlink') {
          tree.link(entry.name, entry.linkname);
          progress();
          continue;
        }
        if (entry.xattrs.size > 0) checkXattrNames(shown(entry.name), entry.xattrs);
        const kind = KINDS[entry.type]!;
        const add = tree.prepare(entry.name, kind);
        const node = newNode(kind, {
          mode: entry.mode,
          uid: entry.uid,
          gid: entry.gid,
          mtime: clampTime(entry.mtime),
          xattrs: entry.xattrs.size > 0 ? entry.xattrs : null,
        });
        if (kind === 'file') {
          node.data = await data.addFile(entry.size, tar.content(), progress);
        } else if (kind === 'symlink') {
          node.target = entry.linkname;
        } else if (kind === 'chardev' || kind === 'blockdev') {
          node.rdev = encodeDev(entry.devmajor, entry.devminor);
        }
        add(node);
        progress();
      }
      signal?.throwIfAborted();
      await data.finish();
      const tables = writeTables({
        fd: fh.fd,
        start: data.position,
        root: tree.root,
        blockSize: resolved.blockSize,
        compressionId: COMPRESSION_ID[resolved.compression],
        compress: (b) => codec.compressSync(b),
        fragments: data.fragments,
        blockWords: data.blockWords,
        mkfsTime: resolved.sourceDateEpoch,
        extraFlags: compressor.options ? SuperFlags.CompressorOptions : 0,
      });
      const bytes = Math.ceil(tables.bytesUsed / 4096) * 4096;
      // Cut what a rewound duplicate may have left past the tables, then zero-pad.
      await fh.truncate(tables.bytesUsed);
      await fh.truncate(bytes);
      onProgress?.(reader.bytesConsumed, bytes);
      await fh.sync();
      await fh.close();
      signal?.throwIfAborted();
      await rename(tmp, outPath);
      unregister();
      await fsyncDir(dirname(outPath));
      return { path: outPath, bytes, inodes: tables.inodes, dataBytesIn: data.stats.dataBytesIn, duplicatesSaved: data.stats.duplicatesSaved };
    } finally {
      await fh.close().catch(() => {});
    }
  } catch (error) {
    await tar?.close().catch(() => {});
    await data?.abandon();
    await rm(tmp, { force: true });
    unregister();
    throw error;
  } finally {
    await compressor?.close();
  }
}
