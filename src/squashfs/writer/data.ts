/**
 * The data area of the image: file blocks and fragment blocks, streamed as files arrive.
 *
 * Blocks are compressed in parallel but written in submission order (a FIFO of pending
 * compressions with a fixed depth: that depth bounds memory and pushes back on the tar
 * input). All-zero blocks are stored as sparse (size word 0, no bytes). The tail of each
 * file (< block size) is packed into shared fragment blocks: small files in one run of
 * them, tails of larger files in another. Identical files are stored
 * once: the whole-file sha256 is known only at the end, so a duplicate's blocks, already
 * queued or written, are dropped and the write position rewinds to where they started
 * (a file's blocks are contiguous in the queue, nothing else is interleaved).
 */
import { createHash, type Hash } from 'node:crypto';
import { writeSync } from 'node:fs';
import type { BlockCompressor, CompressedBlock } from './compressor.js';
import { DATA_UNCOMPRESSED, INVALID_FRAGMENT } from './metadata.js';
import type { ContentPiece } from '../../formats/tar/index.js';

/**
 * The size words of every file's full blocks, in one growable typed array: a file keeps only
 * where its run starts and how long it is (4 bytes a block, no array object per file).
 */
export class BlockWords {
  private words = new Uint32Array(4096);
  length = 0;

  push(word: number): void {
    if (this.length === this.words.length) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
    }
    this.words[this.length++] = word;
  }

  /** The run [first, first + count): a view, valid until the next push. */
  slice(first: number, count: number): Uint32Array {
    return this.words.subarray(first, first + count);
  }
}

/** Where a regular file's content lives in the image: a fixed-shape record of numbers. */
export class FileData {
  /** Image offset of the first block (meaningful when blockCount > 0). */
  start = 0;
  /** Index of its first size word in the writer's BlockWords; -1 before the first block is written. */
  firstBlock = -1;
  /** Size words, one per full block (and per block of a file without tail packing). */
  blockCount = 0;
  fragment = INVALID_FRAGMENT;
  fragmentOffset = 0;
  sparseBytes = 0;
  discarded = false;
  constructor(readonly size: number) {}
}

/** Blocks queued for compression or writing at most (each holds one block-sized buffer). */
export function queueDepth(workers: number): number {
  return Math.max(4, workers * 3);
}

/** Offsets in a fragment block are below 2^21 (block size <= 1 MiB). */
const TAIL_SLOT = 2 ** 21;

interface FragmentEntry {
  start: number;
  sizeWord: number;
}

interface OpenFragment {
  buf: Buffer;
  used: number;
  /** Its index in the fragment table, -1 while empty. */
  index: number;
}

interface QueueItem {
  result: Promise<CompressedBlock> | null;
  file: FileData | null;
  fragment: number;
  /** A sparse block (result null): the bytes it stands for (a block, or an all-zero tail). */
  sparseBytes?: number;
}

export interface DataWriterStats {
  dataBytesIn: number;
  duplicatesSaved: number;
}

export class DataWriter {
  /** Next write position in the image. */
  position: number;
  readonly fragments: FragmentEntry[] = [];
  readonly stats: DataWriterStats = { dataBytesIn: 0, duplicatesSaved: 0 };
  /** Size words of all files' blocks (FileData.firstBlock/blockCount index it). */
  readonly blockWords = new BlockWords();
  private readonly queue: QueueItem[] = [];
  private readonly maxQueue: number;
  private readonly zero: Buffer;
  /**
   * Dedup tables, the part of the writer's memory that grows with the input: keyed by the
   * sha256 of the content as a 32-char binary string (equal content implies equal size),
   * tails valued by one number (fragment index * 2^21 + offset), not a pair array.
   */
  private readonly files = new Map<string, FileData>();
  private readonly tails = new Map<string, number>();
  /** Open fragment blocks: [0] whole small files, [1] tails of files of a block or more. */
  private readonly open: [OpenFragment, OpenFragment];
  private staging: Buffer;
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly fd: number,
    start: number,
    private readonly blockSize: number,
    private readonly compressor: BlockCompressor,
    workers: number,
  ) {
    this.position = start;
    this.maxQueue = queueDepth(workers);
    this.zero = Buffer.alloc(blockSize);
    this.open = [
      { buf: Buffer.allocUnsafeSlow(blockSize), used: 0, index: -1 },
      { buf: Buffer.allocUnsafeSlow(blockSize), used: 0, index: -1 },
    ];
    this.staging = Buffer.allocUnsafeSlow(blockSize);
  }

  /** Streams one regular file's content; returns where it was stored (shared for duplicates). */
  async addFile(size: number, content: AsyncIterable<ContentPiece>, onBytes: () => void): Promise<FileData> {
    const bs = this.blockSize;
    const file = new FileData(size);
    const hash = createHash('sha256');
    // The staging block is handed over when full; a partial one (the tail) is copied into
    // a fragment, so the buffer is reused by the next file (no 128 KiB garbage per file).
    let block = this.staging;
    let used = 0;
    let total = 0;
    for await (const piece of content) {
      if (typeof piece === 'number') {
        let hole = piece;
        total += hole;
        while (hole > 0) {
          if (used === 0 && hole >= bs) {
            const n = Math.floor(hole / bs);
            for (let i = 0; i < n; i++) {
              hashZeros(hash, this.zero, bs);
              await this.submitSparse(file);
            }
            hole -= n * bs;
            continue;
          }
          const n = Math.min(hole, bs - used);
          block.fill(0, used, used + n);
          used += n;
          hole -= n;
          if (used === bs) {
            hash.update(block);
            if (await this.submitBlock(file, block)) block = this.staging = this.takeBlock();
            used = 0;
          }
        }
      } else {
        let at = 0;
        total += piece.length;
        while (at < piece.length) {
          const n = Math.min(piece.length - at, bs - used);
          piece.copy(block, used, at, at + n);
          used += n;
          at += n;
          if (used === bs) {
            hash.update(block);
            if (await this.submitBlock(file, block)) block = this.staging = this.takeBlock();
            used = 0;
          }
        }
      }
      onBytes();
    }
    if (total !== size) throw new Error(`internal: file content ${total} bytes, expected ${size}`);
    const tail = block.subarray(0, used);
    if (used > 0) hash.update(tail);
    this.stats.dataBytesIn += size;
    if (size === 0) return file;

    const key = hash.digest('binary');
    const existing = this.files.get(key);
    if (existing) {
      this.discard(file);
      this.stats.duplicatesSaved += size;
      return existing;
    }
    this.files.set(key, file);
    // An all-zero tail is a sparse block rather than a fragment, as tar2sqfs writes it
    // (sqfsdiff then finds both images equal, inode types included).
    if (used > 0 && tail.equals(this.zero.subarray(0, used))) await this.submitSparse(file, used);
    // A file smaller than a block is all tail: its whole-file key is its tail key.
    else if (used > 0) await this.addTail(file, tail, size < bs ? key : undefined);
    return file;
  }

  private async addTail(file: FileData, tail: Buffer, wholeKey: string | undefined): Promise<void> {
    const key = wholeKey ?? createHash('sha256').update(tail).digest('binary');
    const known = this.tails.get(key);
    if (known !== undefined) {
      file.fragment = Math.floor(known / TAIL_SLOT);
      file.fragmentOffset = known % TAIL_SLOT;
      return;
    }
    // Small files and the tails of larger files fill separate fragment blocks, as
    // mksquashfs does: tails of binaries look alike (ELF section headers, string tables)
    // and compress better next to each other than between small files.
    const open = this.open[wholeKey === undefined ? 1 : 0];
    if (open.used + tail.length > this.blockSize) {
      // Fragment blocks count in the queue's depth too: a run of small files waits here.
      await this.makeRoom();
      this.flushFragment(open);
    }
    if (open.index < 0) {
      // The index is taken when the block opens: it depends only on the tar.
      open.index = this.fragments.length;
      this.fragments.push({ start: 0, sizeWord: 0 });
    }
    tail.copy(open.buf, open.used);
    file.fragment = open.index;
    file.fragmentOffset = open.used;
    open.used += tail.length;
    this.tails.set(key, file.fragment * TAIL_SLOT + file.fragmentOffset);
  }

  /** Queues an open fragment block for compression and writing. */
  private flushFragment(open: OpenFragment): void {
    if (open.used === 0) return;
    const result = handled(this.compressor.compress(open.buf, open.used));
    this.queue.push({ result, file: null, fragment: open.index });
    open.buf = this.takeBlock();
    open.used = 0;
    open.index = -1;
  }

  private discard(file: FileData): void {
    file.discarded = true;
    if (file.firstBlock >= 0) {
      // Its words are the last ones pushed: nothing else is interleaved with a file's blocks.
      this.position = file.start;
      this.blockWords.length = file.firstBlock;
    }
  }

  private async submitSparse(file: FileData, bytes = this.blockSize): Promise<void> {
    await this.makeRoom();
    this.queue.push({ result: null, file, fragment: -1, sparseBytes: bytes });
  }

  /** Queues a full block; false when it was all zeros (stored sparse, buffer not taken). */
  private async submitBlock(file: FileData, block: Buffer): Promise<boolean> {
    if (block.equals(this.zero)) {
      await this.submitSparse(file);
      return false;
    }
    await this.makeRoom();
    this.queue.push({ result: handled(this.compressor.compress(block, block.length)), file, fragment: -1 });
    return true;
  }

  /** A block-sized buffer: a recycled one when available (less garbage, steadier RSS). */
  private takeBlock(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
  }

  private recycle(block: CompressedBlock): void {
    const source = block.source;
    if (source && source.length === this.blockSize && source.byteOffset === 0 && this.spare.length < this.maxQueue + 2) this.spare.push(source);
  }

  private async makeRoom(): Promise<void> {
    while (this.queue.length >= this.maxQueue) await this.writeHead();
  }

  private async writeHead(): Promise<void> {
    const item = this.queue.shift()!;
    const file = item.file;
    if (file !== null) {
      if (file.discarded) {
        if (item.result) this.recycle(await item.result);
        return;
      }
      if (file.firstBlock < 0) {
        file.start = this.position;
        file.firstBlock = this.blockWords.length;
      }
      file.blockCount++;
      if (item.result === null) {
        this.blockWords.push(0);
        file.sparseBytes += item.sparseBytes ?? this.blockSize;
        return;
      }
      const block = await item.result;
      this.blockWords.push(this.writeBlock(block));
      this.recycle(block);
      return;
    }
    const block = await item.result!;
    const entry = this.fragments[item.fragment]!;
    entry.start = this.position;
    entry.sizeWord = this.writeBlock(block);
    this.recycle(block);
  }

  private writeBlock(block: CompressedBlock): number {
    const data = block.data;
    let at = 0;
    while (at < data.length) at += writeSync(this.fd, data, at, data.length - at, this.position + at);
    this.position += data.length;
    return block.compressed ? data.length : data.length | DATA_UNCOMPRESSED;
  }

  /** Flushes the last fragment and writes everything still queued. */
  async finish(): Promise<void> {
    // The lower index first (any fixed order would do: positions follow the queue).
    const [a, b] = this.open[0].index <= this.open[1].index ? [this.open[0], this.open[1]] : [this.open[1], this.open[0]];
    this.flushFragment(a);
    this.flushFragment(b);
    while (this.queue.length > 0) await this.writeHead();
  }

  /** Waits for in-flight compressions (after a failure) without writing them. */
  async abandon(): Promise<void> {
    const results = this.queue.splice(0).map((item) => item.result);
    await Promise.allSettled(results);
  }
}

/**
 * Marks a queued compression as handled: it is awaited only when it reaches the head of
 * the queue, and a failure before that must not count as an unhandled rejection.
 */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

function hashZeros(hash: Hash, zero: Buffer, n: number): void {
  hash.update(zero.subarray(0, n));
}
