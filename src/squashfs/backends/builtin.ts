/**
 * Backend: ctrbake's own streaming writer (src/squashfs/writer). It reads the raw tar
 * itself and does its own validation, with the same error codes as the validating pass
 * in front of the host tools.
 */
import { CtrbakeError } from '../../errors.js';
import type { ResolvedSquashfsOptions, SquashfsBackendImpl, SquashfsBackendRun } from '../index.js';
import { VERSION } from '../../version.js';

export const E_SQUASHFS_BUILTIN_MISSING = 'E_SQUASHFS_BUILTIN_MISSING';

interface BuiltinWriterOptions {
  blockSize: number;
  compression: string;
  level?: number;
  workers: number;
  sourceDateEpoch: number;
  signal?: AbortSignal;
  onProgress?: (progress: { bytesIn?: number; inputBytes?: number; [key: string]: unknown }) => void;
}

interface BuiltinWriterResult {
  bytes: number;
  inodes?: number;
  [key: string]: unknown;
}

type WriteSquashfsFromTar = (input: AsyncIterable<Uint8Array>, outPath: string, options: BuiltinWriterOptions) => Promise<BuiltinWriterResult>;

async function loadWriter(): Promise<WriteSquashfsFromTar> {
  const specifier = '../writer/index.js';
  try {
    const mod = (await import(specifier)) as { writeSquashfsFromTar?: WriteSquashfsFromTar };
    if (typeof mod.writeSquashfsFromTar === 'function') return mod.writeSquashfsFromTar;
  } catch (error) {
    throw new CtrbakeError(E_SQUASHFS_BUILTIN_MISSING, 'the builtin SquashFS writer is not part of this build; use --backend tar2sqfs or sqfstar', { cause: error });
  }
  throw new CtrbakeError(E_SQUASHFS_BUILTIN_MISSING, 'the builtin SquashFS writer does not export writeSquashfsFromTar; use --backend tar2sqfs or sqfstar');
}

export const builtinBackend: SquashfsBackendImpl = {
  name: 'builtin',
  async prepare() {
    const write = await loadWriter();
    return {
      tool: { name: 'ctrbake-builtin', version: VERSION },
      async write(input: AsyncIterable<Uint8Array>, tmpPath: string, config: ResolvedSquashfsOptions): Promise<SquashfsBackendRun> {
        const result = await write(input, tmpPath, {
          blockSize: config.blockSize,
          compression: config.compression,
          ...(config.level !== undefined ? { level: config.level } : {}),
          workers: config.workers,
          sourceDateEpoch: config.sourceDateEpoch,
          signal: config.signal,
          onProgress: (p) => {
            const bytes = typeof p.bytesIn === 'number' ? p.bytesIn : typeof p.inputBytes === 'number' ? p.inputBytes : undefined;
            if (bytes !== undefined) config.onInputBytes?.(bytes);
          },
        });
        return {
          ...(typeof result.inodes === 'number' ? { inodes: result.inodes, entries: result.inodes } : {}),
          ...(typeof result.inputBytes === 'number' ? { inputBytes: result.inputBytes } : {}),
        };
      },
    };
  },
};
