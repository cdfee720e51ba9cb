/**
 * SquashFS from a tar stream, behind one interface with three backends:
 * `builtin` (ctrbake's own streaming writer, no host tools, no root), `tar2sqfs`
 * (squashfs-tools-ng) and `sqfstar` (squashfs-tools >= 4.5). Every backend writes a temp
 * sibling of the output and renames it at the end, so a failure leaves no output file.
 */
import { createReadStream, statSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { ConfigError, InputError } from '../errors.js';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { registerCleanup } from '../util/cleanup.js';
import { checkOutput, startsWith } from '../util/output.js';
import { fsyncDir, sha256File, tempSiblingPath } from '../util/fs.js';
import { parseSourceDateEpoch } from '../util/sde.js';
import { builtinBackend } from './backends/builtin.js';
import { sqfstarBackend } from './backends/sqfstar.js';
import { tar2sqfsBackend } from './backends/tar2sqfs.js';
import { GZIP_IMPLEMENTATIONS, SUPPORTED_COMPRESSIONS, type GzipImplementation } from './writer/compressor.js';
import {
  SQUASHFS_BACKENDS,
  SQUASHFS_COMPRESSIONS,
  SQUASHFS_FLAGS,
  type ResolvedSquashfsOptions,
  type SquashfsBackendImpl,
  type SquashfsBackendName,
  type SquashfsCompression,
  type SquashfsFlagNames,
} from './backends/backend.js';

export * from './backends/backend.js';

export { DEFAULT_GZIP_IMPLEMENTATION, GZIP_IMPLEMENTATIONS, type GzipImplementation } from './writer/compressor.js';

/** Same code as the builtin writer uses for bad options. */
export const E_SQUASHFS_OPTION = 'E_SQUASHFS_OPTIONS';
export const E_SQUASHFS_INPUT = 'E_SQUASHFS_INPUT';

export const DEFAULT_BLOCK_SIZE = 128 * 1024;

/** Compressors whose level sqfstar can set (xz has none there). */
const SQFSTAR_LEVEL_COMPRESSIONS: readonly SquashfsCompression[] = ['gzip', 'zstd', 'lz4'];

export interface CreateSquashfsOptions {
  /** A tar file path, or a tar byte stream (a Readable or any async iterable of bytes). */
  input: string | AsyncIterable<Uint8Array>;
  outPath: string;
  backend?: SquashfsBackendName;
  compression?: SquashfsCompression;
  /** Compressor level; each backend's default when unset. */
  level?: number;
  /** Power of two, 4 KiB .. 1 MiB; 128 KiB by default. Bytes, or a size such as "128K" or "1M". */
  blockSize?: number | string;
  /** Superblock time and implicit directories' mtime; SOURCE_DATE_EPOCH or 0 when unset. */
  sourceDateEpoch?: number;
  /** Compression threads/processes; all cores by default. */
  workers?: number;
  /** builtin backend, gzip: `node` (default, node:zlib) or `canonical` (system zlib's bytes on every Node version, ~1.5 % smaller, ~2.7x the CPU; docs/squashfs.md). */
  gzipImplementation?: GzipImplementation;
  signal?: AbortSignal;
  reporter?: Reporter;
  /** Compute the output's sha256 (default true). */
  digest?: boolean;
  /** How the calling command spells the flags, for hints (default: `ctrbake squashfs`'s). */
  flags?: SquashfsFlagNames;
}

export interface SquashfsResult {
  path: string;
  backend: SquashfsBackendName;
  tool: { name: string; version: string };
  compression: SquashfsCompression;
  blockSize: number;
  /** Size of the image. */
  bytes: number;
  sha256?: string;
  /** Tar bytes read, when the backend reports it. */
  inputBytes?: number;
  /** Tar entries read, when the backend reports it. */
  entries?: number;
}

const BACKENDS: Record<SquashfsBackendName, SquashfsBackendImpl> = {
  builtin: builtinBackend,
  tar2sqfs: tar2sqfsBackend,
  sqfstar: sqfstarBackend,
};

const LEVELS: Record<SquashfsCompression, [number, number]> = { gzip: [1, 9], zstd: [1, 22], lz4: [0, 1], xz: [0, 9] };

/** Checks and completes the options; the only place that reads the environment. */
export function resolveSquashfsOptions(
  options: Omit<CreateSquashfsOptions, 'input' | 'outPath'>,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedSquashfsOptions {
  const flags = options.flags ?? SQUASHFS_FLAGS;
  const bad = (message: string): never => {
    throw new ConfigError(E_SQUASHFS_OPTION, message);
  };
  // First, as when the CLI parsed it: a size that is no size is the first thing reported.
  const blockSize = typeof options.blockSize === 'string' ? parseBlockSize(options.blockSize, flags.blockSize) : (options.blockSize ?? DEFAULT_BLOCK_SIZE);
  const backend = options.backend ?? 'builtin';
  if (!SQUASHFS_BACKENDS.includes(backend)) bad(`${flags.backend} must be one of ${SQUASHFS_BACKENDS.join(', ')}, got ${JSON.stringify(backend)}`);
  const compression = options.compression ?? 'gzip';
  if (!SQUASHFS_COMPRESSIONS.includes(compression)) bad(`${flags.compression} must be one of ${SQUASHFS_COMPRESSIONS.join(', ')}, got ${JSON.stringify(compression)}`);
  if (backend === 'builtin' && !SUPPORTED_COMPRESSIONS.includes(compression)) {
    bad(
      `the builtin backend does not compress with ${compression} (it supports ${SUPPORTED_COMPRESSIONS.join(', ')}): add ${flags.backend} tar2sqfs or ${flags.backend} sqfstar for ${compression}, or choose another ${flags.compression}`,
    );
  }
  if (!Number.isInteger(blockSize) || blockSize < 4096 || blockSize > 1024 * 1024 || (blockSize & (blockSize - 1)) !== 0) {
    bad(`${flags.blockSize} ${blockSize} is not a power of two from 4096 to 1048576`);
  }
  const [min, max] = LEVELS[compression];
  if (options.level !== undefined && (!Number.isInteger(options.level) || options.level < min || options.level > max)) {
    bad(`${flags.level} ${options.level} is out of range for ${compression} (${min}..${max})`);
  }
  if (options.level !== undefined && backend === 'sqfstar' && !SQFSTAR_LEVEL_COMPRESSIONS.includes(compression)) {
    bad(`sqfstar has no compression level for ${compression}: drop ${flags.level} or add ${flags.backend} tar2sqfs`);
  }
  if (options.gzipImplementation !== undefined) {
    if (!GZIP_IMPLEMENTATIONS.includes(options.gzipImplementation)) {
      bad(`${flags.gzipImpl} must be one of ${GZIP_IMPLEMENTATIONS.join(', ')}, got ${JSON.stringify(options.gzipImplementation)}`);
    }
    if (backend !== 'builtin' || compression !== 'gzip') {
      bad(`${flags.gzipImpl} applies to the builtin backend with gzip (here ${backend}, ${compression}): drop it`);
    }
  }
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) {
    throw new ConfigError(E_SQUASHFS_OPTION, `workers must be a positive integer, got ${workers}`);
  }
  let sourceDateEpoch = options.sourceDateEpoch;
  if (sourceDateEpoch === undefined) {
    try {
      sourceDateEpoch = parseSourceDateEpoch(env.SOURCE_DATE_EPOCH);
    } catch (error) {
      throw new ConfigError(E_SQUASHFS_OPTION, (error as Error).message, { cause: error });
    }
  }
  if (!Number.isInteger(sourceDateEpoch) || sourceDateEpoch < 0 || sourceDateEpoch > 0x7fffffff) {
    throw new ConfigError(E_SQUASHFS_OPTION, `source date epoch ${sourceDateEpoch} is outside 0..2147483647`);
  }
  return Object.freeze({
    backend,
    compression,
    level: options.level,
    blockSize,
    sourceDateEpoch,
    workers,
    ...(options.gzipImplementation !== undefined ? { gzipImplementation: options.gzipImplementation } : {}),
    flags,
    signal: options.signal,
  });
}

/** "131072", "128K", "1M" -> bytes. */
export function parseBlockSize(value: string, flag = SQUASHFS_FLAGS.blockSize): number {
  const match = /^(\d+)\s*([KkMm])?(?:i?B)?$/.exec(value.trim());
  if (!match) throw new ConfigError(E_SQUASHFS_OPTION, `${flag} ${JSON.stringify(value)} is not a size: use bytes, or K/M (e.g. 131072, 128K, 1M)`);
  const unit = match[2]?.toUpperCase();
  return Number(match[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 * 1024 : 1);
}

async function openInput(input: string | AsyncIterable<Uint8Array>): Promise<{ stream: AsyncIterable<Uint8Array>; total?: number }> {
  if (typeof input !== 'string') return { stream: input };
  let size: number;
  try {
    const st = await stat(input);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (error) {
    throw new InputError(E_SQUASHFS_INPUT, `cannot read the tar ${input}: ${(error as Error).message}`, { cause: error });
  }
  return { stream: createReadStream(input, { highWaterMark: 1024 * 1024 }), total: size };
}

/** The first 4 bytes of every SquashFS 4 image ("hsqs", the magic 0x73717368 little-endian). */
export const SQUASHFS_FILE_MAGIC = Buffer.from('hsqs', 'latin1');

/**
 * Checks the backend's prerequisites (host tool installed, its version) without reading any
 * input: for commands that pack a SquashFS at the end of a long run, so that a missing tool
 * fails before the run starts.
 */
export async function checkSquashfsBackend(options: Omit<CreateSquashfsOptions, 'input' | 'outPath'>): Promise<{ name: string; version: string }> {
  const config = resolveSquashfsOptions(options);
  return (await BACKENDS[config.backend].prepare(config)).tool;
}

/** Writes a SquashFS image of the tar `input` at `outPath` with the chosen backend. */
export async function createSquashfs(options: CreateSquashfsOptions): Promise<SquashfsResult> {
  const reporter = options.reporter ?? silentReporter;
  const base = resolveSquashfsOptions(options);
  const outDir = dirname(options.outPath);
  const dirStat = await stat(outDir).catch(() => null);
  if (!dirStat?.isDirectory()) {
    throw new ConfigError(E_SQUASHFS_OPTION, `the output directory ${outDir} does not exist; create it first`);
  }
  // Before any work (docs/errors.md): replace only an absent or empty file or a SquashFS image, never the input.
  const checked = await checkOutput(
    { path: options.outPath, flag: '-o', command: 'squashfs', kind: 'file', signature: 'a SquashFS image', isOurs: startsWith(SQUASHFS_FILE_MAGIC) },
    typeof options.input === 'string' ? [{ path: options.input, what: 'input tar' }] : [],
  );
  options = { ...options, outPath: checked.path };
  const backend = BACKENDS[base.backend];
  const prepared = await backend.prepare(base);
  const input = options.input;
  const { stream, total } = await openInput(input);
  const tmpPath = tempSiblingPath(options.outPath);
  const progress = squashfsProgress(reporter, base.backend, total, tmpPath);
  const config: ResolvedSquashfsOptions = Object.freeze({
    ...base,
    onInputBytes: progress.update,
    onWarning: (message: string) => reporter.event({ event: 'squashfs.warning', message: `warning: ${message}` }),
  });
  const unregister = registerCleanup(`remove ${tmpPath}`, () => rm(tmpPath, { force: true }));
  reporter.event({ event: 'squashfs.start', message: `writing ${options.outPath} with ${prepared.tool.name} ${prepared.tool.version}`, backend: base.backend });
  try {
    const run = await prepared.write(stream, tmpPath, config);
    progress.done(run.inputBytes);
    const fh = await open(tmpPath, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmpPath, options.outPath);
    await fsyncDir(outDir);
    const bytes = (await stat(options.outPath)).size;
    const sha256 = options.digest === false ? undefined : await sha256File(options.outPath);
    return {
      path: options.outPath,
      backend: base.backend,
      tool: prepared.tool,
      compression: base.compression,
      blockSize: base.blockSize,
      bytes,
      ...(sha256 ? { sha256 } : {}),
      ...(run.inputBytes !== undefined ? { inputBytes: run.inputBytes } : {}),
      ...(run.entries !== undefined ? { entries: run.entries } : {}),
    };
  } catch (error) {
    await rm(tmpPath, { force: true });
    const destroyable = stream as unknown as { destroy?: () => void };
    if (typeof input === 'string' && typeof destroyable.destroy === 'function') destroyable.destroy();
    throw error;
  } finally {
    unregister();
  }
}

/**
 * `squashfs.progress` events: tar bytes read (of the input file's size when known) and image
 * bytes written, at most every 4 MiB of input or 250 ms, and once at the end. The image size
 * comes from the backend (builtin) or, for the host tools, from the size of their output file.
 */
function squashfsProgress(reporter: Reporter, backend: SquashfsBackendName, total: number | undefined, outFile: string): { update: (bytes: number, imageBytes?: number) => void; done: (bytes?: number) => void } {
  let lastBytes = -Infinity;
  let lastTime = 0;
  let read = 0;
  let written = 0;
  const emit = (): void => {
    reporter.progress({
      event: 'squashfs.progress',
      message: `squashfs (${backend}): ${formatMiB(read)}${total ? ` of ${formatMiB(total)}` : ''} read, ${formatMiB(written)} written`,
      current: read,
      ...(total !== undefined ? { total } : {}),
      written,
    });
  };
  return {
    update(bytes, imageBytes) {
      read = bytes;
      const now = Date.now();
      if (bytes - lastBytes < 4 * 1024 * 1024 && now - lastTime < 250) return;
      lastBytes = bytes;
      lastTime = now;
      written = imageBytes ?? sizeOrZero(outFile);
      emit();
    },
    done(bytes) {
      // The backend read its input to the end (the tar's closing blocks are not counted as read).
      read = total ?? bytes ?? read;
      written = sizeOrZero(outFile);
      emit();
    },
  };
}

/** The size of a file being written, 0 before it exists. */
function sizeOrZero(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export * from './errors.js';
