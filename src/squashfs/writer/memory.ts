/**
 * The builtin writer's memory bound, the formula docs/squashfs.md gives and the memory test
 * checks (test/integration/squashfs-memory-flat.test.ts): it depends on the block size, the
 * worker count, the compressor and the number of tar entries, never on the bytes of content.
 *
 *   peak RSS <= RUNTIME + blockSize x (2 x queueDepth(workers) + 5)
 *                       + workers x PER_WORKER[compressor] + PER_ENTRY x entries
 *
 * - RUNTIME: Node itself (~45 MiB), V8's young generation (it grows under the writer's
 *   allocation rate up to its maximum) and buffers already dropped but not yet collected
 *   (blocks that outlived two scavenges wait for a full collection, which V8 starts when
 *   external memory grew by 64 MiB). It rises from ~61 MiB (16 MiB of tar) to a plateau,
 *   ~125 MiB at 1.6 GiB on 2 cores; 128 MiB here.
 * - Block buffers: the queue of blocks being compressed or written (queueDepth), as many
 *   recycled spares, the two open fragment blocks, the staging block, the zero block and one
 *   in the tar reader.
 * - Compressors: node:zlib's deflate state per running job; a worker thread (its own V8
 *   isolate) with its wasm heap for zstd, lz4 and canonical gzip.
 * - Per entry, what the image's tables need once the tar ends: the tree node and its name,
 *   where the file's data is (FileData), its dedup table keys and inode/directory table bytes
 *   (~400 B live), with V8's headroom for a growing heap.
 */
import type { SquashfsCompression, GzipImplementation } from './compressor.js';
import { queueDepth } from './data.js';

const MiB = 1024 * 1024;
export const MEMORY_RUNTIME = 128 * MiB;
export const MEMORY_PER_ENTRY = 1024;

function perWorker(compression: SquashfsCompression, gzip: GzipImplementation): number {
  return compression === 'gzip' && gzip === 'node' ? 1 * MiB : 16 * MiB;
}

export interface MemoryBoundInput {
  blockSize: number;
  workers: number;
  compression: SquashfsCompression;
  gzipImplementation?: GzipImplementation;
  /** Tar entries (files, directories, links...). */
  entries: number;
}

/** The most resident memory (bytes) the builtin writer may use for such a run. */
export function writerMemoryBound(input: MemoryBoundInput): number {
  const buffers = input.blockSize * (2 * queueDepth(input.workers) + 5);
  return MEMORY_RUNTIME + buffers + input.workers * perWorker(input.compression, input.gzipImplementation ?? 'node') + MEMORY_PER_ENTRY * input.entries;
}
