import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../errors.js';
import { createSquashfs, GZIP_IMPLEMENTATIONS, SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS, type GzipImplementation, type SquashfsBackendName, type SquashfsCompression, type SquashfsResult } from '../squashfs/index.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

interface SquashfsArgs extends GlobalArgs {
  input: string;
  output: string;
  backend: SquashfsBackendName;
  compression: SquashfsCompression;
  level?: number;
  blockSize?: string;
  workers?: number;
  gzipImpl?: GzipImplementation;
}

/** "131072", "128K", "1M" -> bytes. */
export function parseBlockSize(value: string): number {
  const match = /^(\d+)\s*([KkMm])?(?:i?B)?$/.exec(value.trim());
  if (!match) throw new ConfigError('E_SQUASHFS_OPTIONS', `--block-size ${JSON.stringify(value)} is not a size: use bytes, or K/M (e.g. 131072, 128K, 1M)`);
  const unit = match[2]?.toUpperCase();
  return Number(match[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 * 1024 : 1);
}

export const squashfsCommand: CommandModule<GlobalArgs, SquashfsArgs> = {
  command: 'squashfs <input>',
  describe: 'Write a SquashFS image from a tar (file or "-" for stdin), without extracting it and without root (docs/squashfs.md)',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
      y
      .positional('input', { type: 'string', demandOption: true, describe: 'uncompressed tar (ustar, GNU, PAX), or - to read stdin' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the image to write (replaced only when complete)' })
      .option('backend', { choices: SQUASHFS_BACKENDS, default: 'builtin' as SquashfsBackendName, describe: 'builtin (no host tools), tar2sqfs (squashfs-tools-ng) or sqfstar (squashfs-tools >= 4.5)' })
      .option('compression', { choices: SQUASHFS_COMPRESSIONS, default: 'gzip' as SquashfsCompression, describe: 'block compressor (builtin: gzip, zstd)' })
      .option('level', { type: 'number', describe: 'compression level (default: the backend\'s, gzip 9, zstd 15)' })
      .option('block-size', { type: 'string', describe: 'data block size, a power of two from 4K to 1M (default 128K)' })
      .option('workers', { type: 'number', describe: 'parallel compression jobs (default: all cores)' })
      .option('gzip-impl', { choices: GZIP_IMPLEMENTATIONS, describe: 'builtin gzip: node (default, node:zlib, fastest) or canonical (the system zlib\'s bytes on every Node version, ~1.5 % smaller, ~2.7x the CPU)' })
      ,
      [
        { what: 'gzip, builtin writer', lines: ['$0 squashfs layer.tar -o layer.sqfs'] },
        { what: 'from a pipe', lines: ['docker save img | $0 squashfs - -o img.sqfs --compression zstd'] },
        { what: 'xz, with squashfs-tools', lines: ['$0 squashfs rootfs.tar -o rootfs.sqfs', '--backend sqfstar --compression xz'] },
      ],
    ) as unknown as Argv<SquashfsArgs>,
  handler: (argv) =>
    runCommand<SquashfsResult>(
      argv,
      async ({ reporter, signal }) => {
        let input: string | AsyncIterable<Uint8Array> = argv.input;
        if (argv.input === '-' || argv.input === '') {
          if (process.stdin.isTTY) throw new ConfigError('E_SQUASHFS_OPTIONS', 'refusing to read a tar from a terminal: pipe one in or give a file');
          input = process.stdin;
        }
        return createSquashfs({
          input,
          outPath: argv.output,
          backend: argv.backend,
          compression: argv.compression,
          ...(argv.level !== undefined ? { level: argv.level } : {}),
          ...(argv.blockSize !== undefined ? { blockSize: parseBlockSize(argv.blockSize) } : {}),
          ...(argv.workers !== undefined ? { workers: argv.workers } : {}),
          ...(argv.gzipImpl !== undefined ? { gzipImplementation: argv.gzipImpl } : {}),
          signal,
          reporter,
        });
      },
      (r) => `${r.path}: ${r.bytes} bytes, ${r.compression}, block size ${r.blockSize}, ${r.tool.name} ${r.tool.version}${r.sha256 ? `, sha256 ${r.sha256}` : ''}`,
    ),
};
