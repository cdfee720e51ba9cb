/**
 * Block compressors for the SquashFS writer. Data blocks compress in parallel: gzip on
 * node:zlib's asynchronous API (libuv thread pool, at most `workers` at once), zstd on a
 * pool of worker threads running the zstd wasm build. Metadata blocks (8 KiB) compress
 * synchronously on the calling thread: they are few and small.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { deflate, deflateSync, constants as zlibConstants } from 'node:zlib';

export type SquashfsCompression = 'gzip' | 'zstd' | 'lz4' | 'xz';

/** SquashFS superblock compression ids. */
export const COMPRESSION_ID: Record<SquashfsCompression, number> = { gzip: 1, xz: 4, lz4: 5, zstd: 6 };

/** The compressions this writer can produce. */
export const SUPPORTED_COMPRESSIONS: readonly SquashfsCompression[] = ['gzip', 'zstd'];

/** Defaults of mksquashfs and tar2sqfs. */
export const DEFAULT_LEVEL: Record<SquashfsCompression, number> = { gzip: 9, zstd: 15, lz4: 0, xz: 6 };
export const LEVEL_RANGE: Record<SquashfsCompression, [number, number]> = { gzip: [1, 9], zstd: [1, 22], lz4: [0, 0], xz: [0, 9] };

export interface CompressedBlock {
  /** The bytes to store: compressed, or the input itself when compressing did not shrink it. */
  data: Buffer;
  compressed: boolean;
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
  close(): Promise<void>;
}

export async function createCompressor(kind: SquashfsCompression, level: number, workers: number): Promise<BlockCompressor> {
  if (kind === 'gzip') return new GzipCompressor(level, workers);
  if (kind === 'zstd') return ZstdCompressor.create(level, workers);
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

class GzipCompressor implements BlockCompressor {
  readonly id = COMPRESSION_ID.gzip;
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
            else resolve(out.length < length ? { data: out, compressed: true } : { data: input, compressed: false });
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

const require = createRequire(import.meta.url);

/** Loads the zstd wasm module on this thread (shared by the writer and the reader). */
let zstdModule: Promise<ZstdModule> | undefined;
export function loadZstd(): Promise<ZstdModule> {
  zstdModule ??= (async () => {
    const mod = require('@bokuweb/zstd-wasm') as ZstdModule;
    await mod.init();
    return mod;
  })();
  return zstdModule;
}

/** Worker body, CommonJS evaluated by node:worker_threads (the writer may run from .ts sources). */
const ZSTD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.modulePath);
zstd.init().then(() => {
  parentPort.on('message', (job) => {
    try {
      const input = new Uint8Array(job.buf, 0, job.length);
      const out = zstd.compress(input, workerData.level);
      if (out.length < job.length) {
        const copy = new Uint8Array(out);
        parentPort.postMessage({ id: job.id, buf: copy.buffer, length: copy.length, compressed: true }, [copy.buffer]);
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

interface WorkerReply {
  id: number;
  buf: ArrayBuffer;
  length: number;
  compressed: boolean;
  error?: string;
  ready?: boolean;
}

interface PoolWorker {
  worker: Worker;
  outstanding: number;
}

class ZstdCompressor implements BlockCompressor {
  readonly id = COMPRESSION_ID.zstd;
  private readonly pending = new Map<number, { resolve: (b: CompressedBlock) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly level: number,
    private readonly module: ZstdModule,
    private readonly pool: PoolWorker[],
  ) {}

  static async create(level: number, workers: number): Promise<ZstdCompressor> {
    const module = await loadZstd();
    const modulePath = require.resolve('@bokuweb/zstd-wasm');
    const pool: PoolWorker[] = [];
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(ZSTD_WORKER, { eval: true, workerData: { modulePath, level } });
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
    const compressor = new ZstdCompressor(level, module, pool);
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
        if (code !== 0) compressor.fail(new Error(`zstd worker exited with code ${code}`));
      });
    }
    return compressor;
  }

  private settle(entry: PoolWorker, msg: WorkerReply): void {
    entry.outstanding--;
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) waiter.reject(new Error(`zstd compression failed: ${msg.error}`));
    else waiter.resolve({ data: Buffer.from(msg.buf, 0, msg.length), compressed: msg.compressed });
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
    const out = this.module.compress(data, this.level);
    return out.length < data.length ? Buffer.from(out) : null;
  }

  async close(): Promise<void> {
    await Promise.all(this.pool.map((entry) => entry.worker.terminate()));
  }
}
