/**
 * Backend: squashfs-tools-ng's tar2sqfs, fed the canonical stream of the validating pass.
 * Implicit directories get 0755 root:root and the SOURCE_DATE_EPOCH mtime (--defaults),
 * which also becomes the superblock time; --no-skip makes any entry it cannot store fatal.
 */
import type { ResolvedSquashfsOptions, SquashfsBackendImpl, SquashfsBackendRun } from './backend.js';
import { captureOutput, findHostTool, runHostTool } from './host-tool.js';
import { TarNormalizer } from './tar-normalize.js';

export const tar2sqfsBackend: SquashfsBackendImpl = {
  name: 'tar2sqfs',
  async prepare(config: ResolvedSquashfsOptions) {
    const tool = await findHostTool('tar2sqfs', 'squashfs-tools-ng', config.flags.backend);
    const { output } = await captureOutput(tool, ['--version']);
    const version = /tar2sqfs \(squashfs-tools-ng\) (\S+)/.exec(output)?.[1] ?? 'unknown';
    return {
      tool: { name: 'tar2sqfs', version },
      async write(input: AsyncIterable<Uint8Array>, tmpPath: string, config: ResolvedSquashfsOptions): Promise<SquashfsBackendRun> {
        const normalizer = new TarNormalizer(input, {
          backend: 'tar2sqfs',
          explicitParents: false,
          omitRoot: false,
          refuseSparse: true,
          defaultMtime: config.sourceDateEpoch,
          onBytes: config.onInputBytes,
        });
        const extra = tar2sqfsLevel(config.compression, config.level);
        const args = [
          '--quiet',
          '--no-skip',
          '--compressor',
          config.compression,
          ...extra,
          '--block-size',
          String(config.blockSize),
          '--num-jobs',
          String(config.workers),
          '--defaults',
          `uid=0,gid=0,mode=0755,mtime=${config.sourceDateEpoch}`,
          tmpPath,
        ];
        await runHostTool(tool, args, normalizer.output(), config.signal);
        return { entries: normalizer.summary().entries, inputBytes: normalizer.summary().inputBytes };
      },
    };
  },
};

function tar2sqfsLevel(compression: string, level: number | undefined): string[] {
  if (level === undefined) return [];
  if (compression === 'lz4') return level > 0 ? ['--comp-extra', 'hc'] : [];
  return ['--comp-extra', `level=${level}`];
}
