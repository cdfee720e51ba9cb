/**
 * The unpacked-size model: what an extracted layer occupies on the target filesystem, in
 * blocks, as `du --block-size=1 -s` shows it on ext4 (docs/report.md, "Unpacked size model").
 *
 * - the layer's root directory and every directory in it (named in the tar or implied by a
 *   path): its entries' ext4 dirent bytes (8 + name length, rounded up to 4, plus 24 for "."
 *   and ".."), rounded up to whole blocks of (block size - 12) usable bytes (metadata_csum
 *   tail), at least one block;
 * - a regular file: its size rounded up to the block size (the last entry of a path wins;
 *   an empty file takes no block);
 * - a hard link: nothing (it shares its target's inode, du counts that once);
 * - a symlink: nothing when its target is shorter than 60 bytes (ext4 stores it in the inode),
 *   else one block;
 * - devices (overlay whiteouts), fifos: nothing. Extended attributes are assumed to fit in
 *   the inode (256-byte inodes hold ~100 bytes of them; security.capability needs 20).
 *
 * Known differences: a directory larger than one block becomes an htree on ext4 (one index
 * block more, leaves part full); a file with more than 4 extents needs an extent block;
 * sparse files count their stored bytes.
 */

export const EXT4_FAST_SYMLINK_MAX = 59;
const DIRENT_DOT_BYTES = 24;
const DIR_TAIL_BYTES = 12;

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
  return Math.max(1, Math.ceil(bytes / usable)) * blockSize;
}

export function symlinkBytes(targetLength: number, blockSize: number): number {
  return targetLength > EXT4_FAST_SYMLINK_MAX ? roundUp(targetLength, blockSize) : 0;
}
