/**
 * Backend: ctrbake's own streaming writer (src/squashfs/writer). It reads the raw tar
 * itself and does its own validation, with the same error codes as the validating pass
 * in front of the host tools. It needs no host tool and no root.
 */
import { ConfigError } from '../../errors.js';
import { VERSION } from '../../version.js';
import type { ResolvedSquashfsOptions, SquashfsBackendImpl, SquashfsBackendRun } from './backend.js';
import { SUPPORTED_COMPRESSIONS, writeSquashfsFromTar, type SquashfsCompression } from '../writer/index.js';

export const builtinBackend: SquashfsBackendImpl = {
  name: 'builtin',
  async prepare(config: ResolvedSquashfsOptions) {
    if (!SUPPORTED_COMPRESSIONS.includes(config.compression as SquashfsCompression)) {
      throw new ConfigError(
        'E_SQUASHFS_OPTIONS',
        `the builtin backend does not compress with ${config.compression} (it supports ${SUPPORTED_COMPRESSIONS.join(', ')}); add ${config.flags.backend} tar2sqfs or ${config.flags.backend} sqfstar for ${config.compression}`,
      );
    }
    return {
      tool: { name: 'ctrbake-builtin', version: VERSION },
      async write(input: AsyncIterable<Uint8Array>, tmpPath: string, cfg: ResolvedSquashfsOptions): Promise<SquashfsBackendRun> {
        let inputBytes = 0;
        const result = await writeSquashfsFromTar(input, tmpPath, {
          blockSize: cfg.blockSize,
          compression: cfg.compression as SquashfsCompression,
          ...(cfg.level !== undefined ? { level: cfg.level } : {}),
          workers: cfg.workers,
          ...(cfg.gzipImplementation !== undefined ? { gzipImplementation: cfg.gzipImplementation } : {}),
          sourceDateEpoch: cfg.sourceDateEpoch,
          signal: cfg.signal,
          onProgress: (bytes, imageBytes) => {
            inputBytes = bytes;
            cfg.onInputBytes?.(bytes, imageBytes);
          },
        });
        return { inodes: result.inodes, entries: result.inodes, ...(inputBytes ? { inputBytes } : {}) };
      },
    };
  },
};
