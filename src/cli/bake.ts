import type { Argv, CommandModule } from 'yargs';
import { bake } from '../bake/bake.js';
import type { BakeResult } from '../bake/archive.js';
import type { ArchiveFormat, BakeMode, EngineName } from '../formats/index.js';
import type { Layout } from '../report/index.js';
import { budgetOptions } from './report.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';
import { GZIP_IMPLEMENTATIONS, SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS, type GzipImplementation, type SquashfsBackendName, type SquashfsCompression } from '../squashfs/index.js';
import { ConfigError } from '../errors.js';
import { BUILDERS, DEFAULT_ENGINE_VERSION, type BuilderName } from '../builder/bake-native.js';

interface BakeArgs extends GlobalArgs {
  lock: string;
  cache: string;
  mode: BakeMode;
  engine: EngineName;
  storageDriver?: string;
  output: string;
  offline: boolean;
  archiveFormat?: ArchiveFormat;
  budget?: string;
  partitionSize?: string;
  watermark?: string;
  reserve?: string;
  layout?: Layout;
  fsBlockSize?: number;
  payloadOn?: 'rootfs' | 'data';
  builder?: BuilderName;
  engineVersion?: string;
  force: boolean;
  verifyOutputs: boolean;
  squashfs: boolean;
  compression?: SquashfsCompression;
  squashfsBackend?: SquashfsBackendName;
  blockSize?: number;
  gzipImpl?: GzipImplementation;
}

function human(result: BakeResult): string {
  const m = result.manifest;
  if (result.upToDate === true) return `${result.outDir} is up to date: nothing baked (--force bakes anyway)`;
  const lines = [`baked ${m.images.length} image(s) with ${m.engine.name} ${m.engine.version} (${m.storageDriver}) into ${result.outDir}:`];
  for (const o of m.outputs) lines.push(`  ${o.path}  ${o.size} bytes  sha256:${o.sha256}`);
  lines.push(`  manifest.json`);
  return lines.join('\n');
}

export const bakeCommand: CommandModule<GlobalArgs, BakeArgs> = {
  command: 'bake',
  describe: 'Offline, from the cache: load the locked images into a private engine and write one archive per image (or a store) plus OUT/manifest.json',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
    budgetOptions(y)
      .option('lock', { type: 'string', demandOption: true, describe: 'lock file written by `ctrbake lock`' })
      .option('cache', { type: 'string', demandOption: true, describe: 'cache directory filled by `ctrbake fetch`' })
      .option('mode', { choices: ['archive', 'store'] as const, demandOption: true, describe: 'archive: one archive per image; store: a baked engine store' })
      .option('engine', { choices: ['docker', 'podman'] as const, default: 'docker' as EngineName, describe: 'the private engine to bake with' })
      .option('storage-driver', { type: 'string', choices: ['overlay2', 'vfs', 'overlay'], describe: 'docker: overlay2 (default) or vfs; podman: overlay (default) or vfs' })
      .option('output', { alias: ['o', 'out'], type: 'string', demandOption: true, describe: 'output directory: absent, empty or a previous bake output, replaced only when the new one is complete (--out is the old spelling)' })
      .option('offline', { type: 'boolean', default: false, describe: 'state that no network may be used (bake never uses it: the engine has no network)' })
      .option('archive-format', { choices: ['docker-archive', 'oci-archive'] as const, describe: 'archive mode: the archive format (default docker-archive)' })
      .option('squashfs', { type: 'boolean', default: false, describe: 'store mode: also pack store.tar into OUT/store.sqfs, the payload of the store layouts' })
      .option('compression', { choices: SQUASHFS_COMPRESSIONS, describe: 'with --squashfs: the SquashFS compressor (default gzip; docs/squashfs.md)' })
      .option('squashfs-backend', { choices: SQUASHFS_BACKENDS, describe: 'with --squashfs: builtin (default, no host tools), tar2sqfs or sqfstar' })
      .option('block-size', { type: 'number', describe: 'with --squashfs: SquashFS block size in bytes (default 131072)' })
      .option('gzip-impl', { choices: GZIP_IMPLEMENTATIONS, describe: 'with --squashfs, builtin gzip: node (default, fastest) or canonical (~1.5 % smaller, same bytes on every Node version, ~2.7x the CPU)' })
      .option('builder', { choices: BUILDERS, describe: 'store mode, docker overlay2: native writes the store itself, no engine, no root (docs/builder.md); engine (default) bakes with a private dockerd' })
      .option('engine-version', { type: 'string', describe: `with --builder native: the docker version the store is for (default ${DEFAULT_ENGINE_VERSION})` })
      .option('force', { type: 'boolean', default: false, describe: 'bake even when OUT is up to date with the same lock, options and versions' })
      .option('verify-outputs', { type: 'boolean', default: false, describe: 'up-to-date check: also re-hash every output (default: size and mtime)' }) as unknown as Argv<BakeArgs>,
      [
        { what: 'one archive per image', lines: ['$0 bake --lock ctrbake.lock.json --cache cache --mode archive -o out'] },
        { what: 'a docker overlay2 store and its SquashFS (split layout)', lines: ['$0 bake --lock ctrbake.lock.json --cache cache --mode store', '--squashfs -o out'] },
        { what: 'xz needs a host tool', lines: ['$0 bake --lock ctrbake.lock.json --cache cache --mode store', '--squashfs --compression xz --squashfs-backend tar2sqfs -o out'] },
      ],
    ) as unknown as Argv<BakeArgs>,
  handler: (argv) =>
    runCommand<BakeResult>(
      argv,
      ({ reporter, signal }) => {
        if (!argv.squashfs && (argv.compression || argv.squashfsBackend || argv.blockSize !== undefined || argv.gzipImpl)) {
          throw new ConfigError('E_CONFIG', '--compression, --squashfs-backend, --block-size and --gzip-impl apply to --squashfs: add --squashfs (store mode)');
        }
        return bake({
          lockPath: argv.lock,
          cacheDir: argv.cache,
          mode: argv.mode,
          engine: argv.engine,
          ...(argv.storageDriver ? { storageDriver: argv.storageDriver } : {}),
          outDir: argv.output,
          offline: argv.offline,
          ...(argv.archiveFormat ? { archiveFormat: argv.archiveFormat } : {}),
          ...(argv.squashfs
            ? { squashfs: { ...(argv.compression ? { compression: argv.compression } : {}), ...(argv.squashfsBackend ? { backend: argv.squashfsBackend } : {}), ...(argv.blockSize !== undefined ? { blockSize: argv.blockSize } : {}), ...(argv.gzipImpl ? { gzipImplementation: argv.gzipImpl } : {}) } }
            : {}),
          ...(argv.builder ? { builder: argv.builder } : {}),
          ...(argv.engineVersion ? { engineVersion: argv.engineVersion } : {}),
          force: argv.force,
          verifyOutputs: argv.verifyOutputs,
          fit: {
            budget: argv.budget,
            partitionSize: argv.partitionSize,
            watermarkPct: argv.watermark,
            reserve: argv.reserve,
            ...(argv.layout ? { layout: argv.layout } : {}),
            ...(argv.fsBlockSize !== undefined ? { blockSize: argv.fsBlockSize } : {}),
            ...(argv.payloadOn ? { payloadPartition: argv.payloadOn } : {}),
          },
          reporter,
          signal,
        });
      },
      human,
    ),
};
