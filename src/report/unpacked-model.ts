/**
 * The unpacked-size model: what an extracted layer occupies on the target filesystem, in
 * blocks, as `du --block-size=1 -s` shows it on ext4 (docs/report.md, "Unpacked size model").
 *
 * - the layer's root directory and every directory in it (named in the tar or implied by a
 *   path): one block while its entries' ext4 dirents (8 + name length, rounded up to 4, plus
 *   24 for "." and "..") fit in (block size - 12) bytes (metadata_csum tail). A larger
 *   directory becomes an htree: one index block plus leaves filled to ~3/4 on average
 *   (HTREE_FILL), an estimate: exact for small directories, within a block or two for big ones;
 * - a regular file: its size rounded up to the block size (the last entry of a path wins;
 *   an empty file takes no block);
 * - a hard link: nothing (it shares its target's inode, du counts that once);
 * - a symlink: nothing when its target is shorter than 60 bytes (ext4 stores it in the inode),
 *   else one block;
 * - devices (overlay whiteouts), fifos: nothing. Extended attributes are assumed to fit in
 *   the inode (256-byte inodes hold ~100 bytes of them; security.capability needs 20).
 *
 * Known differences: htree leaves of big directories (above); a file with more than 4 extents needs an extent block;
 * sparse files count their stored bytes.
 */

export const EXT4_FAST_SYMLINK_MAX = 59;
const DIRENT_DOT_BYTES = 24;
const DIR_TAIL_BYTES = 12;
/** Average fill of htree leaf blocks after splits (measured: 120 names of 38 bytes take 1 + 2 blocks). */
export const HTREE_FILL = 0.75;

export function roundUp(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize) * blockSize;
}

export function direntBytes(nameLength: number): number {
  return Math.ceil((8 + nameLength) / 4) * 4;
}

/** Bytes a directory with the given entry name lengths takes. */
export function directoryBytes(nameLengths: readonly number[], blockSize: number): number {
  const bytes = DIRENT_DOT_BYTES + nameLengths.reduce((sum, n) => sum + direntBytes(n), 0);
  const usable = blockSize - DIR_TAIL_BYTES;
  if (bytes <= usable) return blockSize;
  return (1 + Math.ceil(bytes / (usable * HTREE_FILL))) * blockSize;
}

export function symlinkBytes(targetLength: number, blockSize: number): number {
  return targetLength > EXT4_FAST_SYMLINK_MAX ? roundUp(targetLength, blockSize) : 0;
}
