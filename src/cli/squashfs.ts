import { ConfigError } from '../errors.js';
import { createSquashfs, GZIP_IMPLEMENTATIONS, SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS, type SquashfsBackendName, type SquashfsCompression } from '../squashfs/index.js';
import { defineCommand, givenOnly } from './command.js';

/** `-` (or an empty name): the tar comes from stdin, which must not be a terminal. */
function inputOf(name: string): string | AsyncIterable<Uint8Array> {
  if (name !== '-' && name !== '') return name;
  if (process.stdin.isTTY) throw new ConfigError('E_SQUASHFS_OPTIONS', 'refusing to read a tar from a terminal: pipe one in or give a file');
  return process.stdin;
}

export const squashfsCommand = defineCommand({
  command: 'squashfs <input>',
  describe: 'Write a SquashFS image from a tar (file or "-" for stdin), without extracting it and without root (docs/squashfs.md)',
  options: (y) =>
    y.positional('input', { type: 'string', demandOption: true, describe: 'uncompressed tar (ustar, GNU, PAX), or - to read stdin' }).options({
      output: { alias: 'o', type: 'string', demandOption: true, describe: 'the image to write (replaced only when complete)' },
      backend: { choices: SQUASHFS_BACKENDS, default: 'builtin' as SquashfsBackendName, describe: 'builtin (no host tools), tar2sqfs (squashfs-tools-ng) or sqfstar (squashfs-tools >= 4.5)' },
      compression: { choices: SQUASHFS_COMPRESSIONS, default: 'gzip' as SquashfsCompression, describe: 'block compressor (builtin: gzip, zstd)' },
      level: { type: 'number', describe: 'compression level (default: the backend\'s, gzip 9, zstd 15)' },
      'block-size': { type: 'string', describe: 'data block size, a power of two from 4K to 1M (default 128K)' },
      workers: { type: 'number', describe: 'parallel compression jobs (default: all cores)' },
      'gzip-impl': { choices: GZIP_IMPLEMENTATIONS, describe: 'builtin gzip: node (default, node:zlib, fastest) or canonical (the system zlib\'s bytes on every Node version, ~1.5 % smaller, ~2.7x the CPU)' },
    }),
  examples: [
    { what: 'gzip, builtin writer', lines: ['$0 squashfs layer.tar -o layer.sqfs'] },
    { what: 'from a pipe', lines: ['docker save img | $0 squashfs - -o img.sqfs --compression zstd'] },
    { what: 'xz, with squashfs-tools', lines: ['$0 squashfs rootfs.tar -o rootfs.sqfs', '--backend sqfstar --compression xz'] },
  ],
  run: async (argv, { reporter, signal }) =>
    createSquashfs({
      input: inputOf(argv.input),
      outPath: argv.output,
      backend: argv.backend,
      compression: argv.compression,
      // Not givenOnly: `--block-size ''` is refused as no size, as before.
      ...(argv.blockSize !== undefined ? { blockSize: argv.blockSize } : {}),
      ...givenOnly({ level: argv.level, workers: argv.workers, gzipImplementation: argv.gzipImpl }),
      signal,
      reporter,
    }),
  human: (r) => `${r.path}: ${r.bytes} bytes, ${r.compression}, block size ${r.blockSize}, ${r.tool.name} ${r.tool.version}${r.sha256 ? `, sha256 ${r.sha256}` : ''}`,
});
