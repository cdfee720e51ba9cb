/**
 * Block compressors for the SquashFS writer. Data blocks compress in parallel: gzip with
 * node:zlib's thread pool by default, or (gzipImplementation `canonical`) on worker threads with
 * pako (a pure-JS port of zlib, run with zlib's own hash so that its output is canonical
 * zlib's, byte for byte); zstd and lz4 with WebAssembly builds
 * (@foxglove/wasm-zstd: libzstd 1.5.4, lz4-wasm-nodejs). Metadata blocks (8 KiB) compress synchronously on
 * the calling thread with the same code: they are few and small.
 *
 * node:zlib and canonical zlib differ: Node bundles Chromium's zlib fork, whose deflate indexes its
 * match chains by a hash of 4 bytes where zlib's rolling hash covers 3, so it misses short
 * matches: at level 9 the same 128 KiB blocks came out 1.65 % larger than with the system
 * zlib that tar2sqfs and mksquashfs link, and its bytes depend on the zlib of the Node
 * build. pako with `legacyHash` writes exactly the system zlib's bytes, on any machine and
 * Node version (docs/squashfs-format.md, "Compression"), at ~2.7x node:zlib's CPU. node:zlib
 * stays the default (issue #4 asks for it, at least as fast as tar2sqfs); `canonical` is the
 * choice for the smallest image and bytes that do not change with the Node version.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { deflate, deflateSync, constants as zlibConstants } from 'node:zlib';

export type SquashfsCompression = 'gzip' | 'zstd' | 'lz4' | 'xz';

/** SquashFS superblock compression ids. */
export const COMPRESSION_ID: Record<SquashfsCompression, number> = { gzip: 1, xz: 4, lz4: 5, zstd: 6 };

/** The compressions this writer can produce. */
export const SUPPORTED_COMPRESSIONS: readonly SquashfsCompression[] = ['gzip', 'zstd', 'lz4'];

/** Defaults of mksquashfs and tar2sqfs. */
export const DEFAULT_LEVEL: Record<SquashfsCompression, number> = { gzip: 9, zstd: 15, lz4: 1, xz: 6 };
/** lz4 has one level (plain LZ4, not HC). */
export const LEVEL_RANGE: Record<SquashfsCompression, [number, number]> = { gzip: [1, 9], zstd: [1, 22], lz4: [1, 1], xz: [0, 9] };

export interface CompressedBlock {
  /** The bytes to store: compressed, or the input itself when compressing did not shrink it. */
  data: Buffer;
  compressed: boolean;
  /** The whole input buffer, handed back so the caller can reuse it once `data` is written. */
  source?: Buffer;
}

export interface BlockCompressor {
  readonly id: number;
  /**
   * Compresses `length` bytes at the start of `block`. Takes ownership of `block` (it may be
   * transferred to a worker): use only the returned data afterwards.
   */
  compress(block: Buffer, length: number): Promise<CompressedBlock>;
  /** Compressed bytes, or null when compressing does not shrink the input. */
  compressSync(data: Buffer): Buffer | null;
  /** Compressor options stored after the superblock, or null (defaults). */
  readonly options: Buffer | null;
  close(): Promise<void>;
}

/**
 * Which deflate writes gzip blocks: `node` (default) is node:zlib; `canonical` is pako with zlib's hash, the
 * bytes of the zlib that mksquashfs and tar2sqfs link, the same on every machine; `node` is
 * (node:zlib is faster but ~1.5 % larger, its bytes those of the zlib Node was built with).
 */
export type GzipImplementation = 'canonical' | 'node';
export const GZIP_IMPLEMENTATIONS: readonly GzipImplementation[] = ['node', 'canonical'];
/**
 * node:zlib by default (issue #4: gzip through node:zlib, at least as fast as tar2sqfs);
 * `canonical` (pako with zlib's own hash: the system zlib's bytes, the same on every Node
 * version, ~1.5 % smaller) costs ~2.7x the CPU. docs/squashfs.md has the figures.
 */
export const DEFAULT_GZIP_IMPLEMENTATION: GzipImplementation = 'node';

export async function createCompressor(kind: SquashfsCompression, level: number, workers: number, gzip: GzipImplementation = DEFAULT_GZIP_IMPLEMENTATION): Promise<BlockCompressor> {
  if (kind === 'gzip' && gzip === 'node') return new NodeGzipCompressor(level, workers);
  if (kind === 'gzip' || kind === 'zstd' || kind === 'lz4') return WorkerPoolCompressor.create(kind, level, workers);
  throw new Error(`compression ${kind} is not supported by the builtin writer`);
}

/** Runs at most `limit` async jobs at once. */
class Limiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await job();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

/** gzip on node:zlib (Chromium's fork): about 2.7x less CPU than pako, 1.5-2 % larger blocks. */
class NodeGzipCompressor implements BlockCompressor {
  readonly id = COMPRESSION_ID.gzip;
  readonly options = null;
  private readonly limiter: Limiter;
  constructor(
    private readonly level: number,
    workers: number,
  ) {
    this.limiter = new Limiter(workers);
  }

  compress(block: Buffer, length: number): Promise<CompressedBlock> {
    const input = block.subarray(0, length);
    return this.limiter.run(
      () =>
        new Promise<CompressedBlock>((resolve, reject) => {
          deflate(input, { level: this.level, windowBits: 15, memLevel: 8, strategy: zlibConstants.Z_DEFAULT_STRATEGY }, (error, out) => {
            if (error) reject(error);
            else resolve(out.length < length ? { data: out, compressed: true, source: block } : { data: input, compressed: false, source: block });
          });
        }),
    );
  }

  compressSync(data: Buffer): Buffer | null {
    const out = deflateSync(data, { level: this.level });
    return out.length < data.length ? out : null;
  }

  async close(): Promise<void> {}
}

interface ZstdModule {
  init(): Promise<void>;
  compress(data: Uint8Array, level: number): Uint8Array;
  decompress(data: Uint8Array): Uint8Array;
}

interface PakoModule {
  deflate(data: Uint8Array, options: { level: number; legacyHash: boolean; chunkSize: number }): Uint8Array;
}

interface Lz4Module {
  /** LZ4 block with the uncompressed size prepended (u32 LE). */
  compress(data: Uint8Array): Uint8Array;
}

const require = createRequire(import.meta.url);
/**
 * zstd compresses with @foxglove/wasm-zstd: libzstd 1.5.4 in WebAssembly, the same bytes as
 * Debian 12's native libzstd 1.5.4 (the one tar2sqfs links here) at level 15 on 128 KiB
 * blocks, and 1.39x less CPU than @bokuweb/zstd-wasm (docs/squashfs.md, "Compressors").
 */
const MODULES = { gzip: 'pako', zstd: '@foxglove/wasm-zstd', lz4: 'lz4-wasm-nodejs' } as const;
type PoolKind = keyof typeof MODULES;

/** Loads the zstd decoder (@bokuweb/zstd-wasm: it decompresses without knowing the output size) for readers. */
let zstdModule: Promise<ZstdModule> | undefined;
export function loadZstd(): Promise<ZstdModule> {
  zstdModule ??= (async () => {
    const mod = require('@bokuweb/zstd-wasm') as ZstdModule;
    await mod.init();
    return mod;
  })();
  return zstdModule;
}

interface ZstdEncoderModule {
  isLoaded: Promise<void>;
  compress(data: Uint8Array, level: number): Uint8Array;
}

/** Loads the zstd encoder on this thread (metadata blocks; data blocks go to the workers). */
let zstdEncoder: Promise<ZstdEncoderModule> | undefined;
function loadZstdEncoder(): Promise<ZstdEncoderModule> {
  zstdEncoder ??= (async () => {
    const mod = require(MODULES.zstd) as ZstdEncoderModule;
    await mod.isLoaded;
    return mod;
  })();
  return zstdEncoder;
}

/** A raw LZ4 block (what SquashFS stores), without lz4-wasm-nodejs's size prefix. */
function lz4Block(mod: Lz4Module, data: Uint8Array): Uint8Array {
  return mod.compress(data).subarray(4);
}

/**
 * A zlib stream (what SquashFS gzip stores: zlib header, deflate, adler32) as canonical zlib
 * writes it with deflateInit2(level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY), the
 * parameters of mksquashfs and tar2sqfs. `legacyHash` selects zlib's rolling hash; the
 * output buffer (chunkSize) holds any block in one piece.
 */
function zlibBlock(mod: PakoModule, data: Uint8Array, level: number): Uint8Array {
  return mod.deflate(data, { level, legacyHash: true, chunkSize: data.length + 1024 });
}

/** SquashFS lz4 always has compressor options: version 1 (LZ4_LEGACY), no flags (no HC). */
const LZ4_OPTIONS = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

/** Worker body, CommonJS evaluated by node:worker_threads (the writer may run from .ts sources). */
const WORKER_BODY = `
const { parentPort, workerData } = require('node:worker_threads');
const mod = require(workerData.modulePath);
const level = workerData.level;
const compress = workerData.kind === 'zstd'
  ? (input) => mod.compress(input, level)
  : workerData.kind === 'gzip'
    ? (input) => mod.deflate(input, { level, legacyHash: true, chunkSize: input.length + 1024 })
    : (input) => mod.compress(input).subarray(4);
Promise.resolve(typeof mod.init === 'function' ? mod.init() : mod.isLoaded).then(() => {
  parentPort.on('message', (job) => {
    try {
      const input = new Uint8Array(job.buf, 0, job.length);
      const out = compress(input);
      if (out.length < job.length) {
        const copy = new Uint8Array(out);
        parentPort.postMessage({ id: job.id, buf: copy.buffer, length: copy.length, compressed: true, input: job.buf }, [copy.buffer, job.buf]);
      } else {
        parentPort.postMessage({ id: job.id, buf: job.buf, length: job.length, compressed: false }, [job.buf]);
      }
    } catch (error) {
      parentPort.postMessage({ id: job.id, error: String(error && error.stack || error) });
    }
  });
  parentPort.postMessage({ ready: true });
}, (error) => { throw error; });
`;

/**
 * The worker's Node flags: the parent's, less `--input-type`, which would make the eval'd
 * CommonJS body an ES module (a parent started as `node --input-type=module -e ...`).
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--input-type') i++;
    else if (!argv[i]!.startsWith('--input-type=')) out.push(argv[i]!);
  }
  return out;
}

interface WorkerReply {
  id: number;
  buf: ArrayBuffer;
  /** The input buffer, returned with a compressed result. */
  input?: ArrayBuffer;
  length: number;
  compressed: boolean;
  error?: string;
  ready?: boolean;
}

interface PoolWorker {
  worker: Worker;
  outstanding: number;
}

class WorkerPoolCompressor implements BlockCompressor {
  readonly id: number;
  readonly options: Buffer | null;
  private readonly pending = new Map<number, { resolve: (b: CompressedBlock) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(
    kind: PoolKind,
    private readonly syncCompress: (data: Uint8Array) => Uint8Array,
    private readonly pool: PoolWorker[],
  ) {
    this.id = COMPRESSION_ID[kind];
    this.options = kind === 'lz4' ? LZ4_OPTIONS : null;
  }

  static async create(kind: PoolKind, level: number, workers: number): Promise<WorkerPoolCompressor> {
    let syncCompress: (data: Uint8Array) => Uint8Array;
    if (kind === 'gzip') {
      const pako = require(MODULES.gzip) as PakoModule;
      syncCompress = (data) => zlibBlock(pako, data, level);
    } else if (kind === 'zstd') {
      const zstd = await loadZstdEncoder();
      syncCompress = (data) => zstd.compress(data, level);
    } else {
      const lz4 = require(MODULES.lz4) as Lz4Module;
      syncCompress = (data) => lz4Block(lz4, data);
    }
    const modulePath = require.resolve(MODULES[kind]);
    const pool: PoolWorker[] = [];
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(WORKER_BODY, { eval: true, execArgv: workerExecArgv(), workerData: { modulePath, level, kind } });
      pool.push({ worker, outstanding: 0 });
      ready.push(
        new Promise<void>((resolve, reject) => {
          const onMessage = (msg: WorkerReply): void => {
            if (msg.ready) {
              worker.off('error', reject);
              worker.off('message', onMessage);
              resolve();
            }
          };
          worker.on('message', onMessage);
          worker.once('error', reject);
        }),
      );
    }
    const compressor = new WorkerPoolCompressor(kind, syncCompress, pool);
    try {
      await Promise.all(ready);
    } catch (error) {
      await compressor.close();
      throw error;
    }
    for (const entry of pool) {
      entry.worker.on('message', (msg: WorkerReply) => compressor.settle(entry, msg));
      entry.worker.on('error', (error) => compressor.fail(error));
      entry.worker.on('exit', (code) => {
        if (code !== 0) compressor.fail(new Error(`compression worker exited with code ${code}`));
      });
    }
    return compressor;
  }

  private settle(entry: PoolWorker, msg: WorkerReply): void {
    entry.outstanding--;
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) waiter.reject(new Error(`compression failed in a worker: ${msg.error}`));
    else waiter.resolve({ data: Buffer.from(msg.buf, 0, msg.length), compressed: msg.compressed, source: Buffer.from(msg.input ?? msg.buf) });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  compress(block: Buffer, length: number): Promise<CompressedBlock> {
    if (this.failure) return Promise.reject(this.failure);
    // Only a buffer that owns its whole ArrayBuffer can be transferred.
    const owned = block.byteOffset === 0 && block.buffer.byteLength === block.length ? block : Buffer.from(block.subarray(0, length));
    let target = this.pool[0]!;
    for (const entry of this.pool) if (entry.outstanding < target.outstanding) target = entry;
    target.outstanding++;
    const id = this.nextId++;
    return new Promise<CompressedBlock>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const buf = owned.buffer as ArrayBuffer;
      target.worker.postMessage({ id, buf, length }, [buf]);
    });
  }

  compressSync(data: Buffer): Buffer | null {
    const out = this.syncCompress(data);
    return out.length < data.length ? Buffer.from(out) : null;
  }

  async close(): Promise<void> {
    await Promise.all(this.pool.map((entry) => entry.worker.terminate()));
  }
}
