import { bake } from '../bake/bake.js';
import type { BakeResult } from '../bake/archive.js';
import type { TargetEngine } from '../formats/index.js';
import { GZIP_IMPLEMENTATIONS, SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS } from '../squashfs/index.js';
import { defineCommand, givenOnly } from './command.js';
import { BUDGET_OPTIONS, budgetFrom } from './budget-options.js';
import { ENGINES, LOCK_INPUT_OPTION } from './options.js';
import { DEFAULT_ENGINE_VERSION, DEFAULT_PODMAN_VERSION } from '../builder/bake-native.js';
import { BUILDERS, defaultScopeText, nativeScopeText } from '../builder/scope.js';

function human(result: BakeResult): string {
  const m = result.manifest;
  if (result.upToDate === true) return `${result.outDir} is up to date: nothing baked (--force bakes anyway)`;
  const lines = [`baked ${m.images.length} image(s) with ${m.engine.name} ${m.engine.version} (${m.storageDriver}) into ${result.outDir}:`];
  for (const o of m.outputs) lines.push(`  ${o.path}  ${o.size} bytes  sha256:${o.sha256}`);
  lines.push(`  manifest.json`);
  return lines.join('\n');
}

export const bakeCommand = defineCommand({
  command: 'bake',
  describe: 'Offline, from the cache: write one archive per image (or an engine store) plus OUT/manifest.json; a docker overlay2 store is written by ctrbake itself, without root or an engine, other outputs by a private engine',
  options: (y) =>
    y.options({
      ...BUDGET_OPTIONS,
      ...LOCK_INPUT_OPTION,
      cache: { type: 'string', demandOption: true, describe: 'cache directory filled by `ctrbake fetch`' },
      mode: { choices: ['archive', 'store'] as const, demandOption: true, describe: 'archive: one archive per image; store: a baked engine store' },
      engine: { choices: [...ENGINES, 'containerd'] as const, default: 'docker' as TargetEngine, describe: 'the private engine to bake with; containerd: its image store (content + meta.db), written by ctrbake itself (docs/containerd.md)' },
      'storage-driver': { type: 'string', choices: ['overlay2', 'vfs', 'overlay', 'overlayfs'], describe: 'docker: overlay2 (default) or vfs; podman: overlay (default) or vfs; containerd: overlayfs (the snapshotter the device unpacks into)' },
      namespace: { type: 'string', describe: 'with --engine containerd: the namespace the images are recorded in: default (ctr, nerdctl; the default), moby (Docker\'s containerd image store), k8s.io (k3s)' },
      output: { alias: ['o', 'out'], type: 'string', demandOption: true, describe: 'output directory: absent, empty or a previous bake output, replaced only when the new one is complete (--out is the old spelling)' },
      offline: { type: 'boolean', default: false, describe: 'state that no network may be used (bake never uses it: the engine has no network)' },
      'archive-format': { choices: ['docker-archive', 'oci-archive'] as const, describe: 'archive mode: the archive format (default docker-archive)' },
      squashfs: { type: 'boolean', default: false, describe: 'store mode: also pack store.tar into OUT/store.sqfs, the payload of the store layouts' },
      compression: { choices: SQUASHFS_COMPRESSIONS, describe: 'with --squashfs: the SquashFS compressor (default gzip; docs/squashfs.md)' },
      'squashfs-backend': { choices: SQUASHFS_BACKENDS, describe: 'with --squashfs: builtin (default, no host tools), tar2sqfs or sqfstar' },
      'block-size': { type: 'number', describe: 'with --squashfs: SquashFS block size in bytes (default 131072)' },
      'gzip-impl': { choices: GZIP_IMPLEMENTATIONS, describe: 'with --squashfs, builtin gzip: node (default, fastest) or canonical (~1.5 % smaller, same bytes on every Node version, ~2.7x the CPU)' },
      builder: { choices: BUILDERS, describe: `native: ctrbake writes the output itself, no engine, no root (it writes: ${nativeScopeText()}; the default for ${defaultScopeText()}; docs/builder.md); engine: a private dockerd or podman bakes it (the default elsewhere, and the oracle native is tested against)` },
      'engine-version': { type: 'string', describe: `with --builder native: the engine version the store is for (default: docker ${DEFAULT_ENGINE_VERSION}, podman ${DEFAULT_PODMAN_VERSION})` },
      force: { type: 'boolean', default: false, describe: 'bake even when OUT is up to date with the same lock, options and versions' },
      'verify-outputs': { type: 'boolean', default: false, describe: 'up-to-date check: also re-hash every output (default: size and mtime)' },
    }),
  examples: [
    { what: 'one archive per image', lines: ['$0 bake --lock ctrbake.lock.json --cache cache --mode archive -o out'] },
    { what: 'a docker overlay2 store and its SquashFS (split layout)', lines: ['$0 bake --lock ctrbake.lock.json --cache cache --mode store', '--squashfs -o out'] },
    { what: 'a containerd content store for k3s (no engine, no root)', lines: ['$0 bake --lock ctrbake.lock.json --cache cache --mode store', '--engine containerd --namespace k8s.io --squashfs -o out'] },
    { what: 'xz needs a host tool', lines: ['$0 bake --lock ctrbake.lock.json --cache cache --mode store', '--squashfs --compression xz --squashfs-backend tar2sqfs -o out'] },
  ],
  run: (argv, { reporter, signal }) =>
    bake({
      lockPath: argv.lock,
      cacheDir: argv.cache,
      mode: argv.mode,
      engine: argv.engine,
      outDir: argv.output,
      offline: argv.offline,
      ...givenOnly({ storageDriver: argv.storageDriver, archiveFormat: argv.archiveFormat, builder: argv.builder, engineVersion: argv.engineVersion, namespace: argv.namespace }),
      squashfs: {
        pack: argv.squashfs,
        ...givenOnly({ compression: argv.compression, backend: argv.squashfsBackend, blockSize: argv.blockSize, gzipImplementation: argv.gzipImpl }),
      },
      force: argv.force,
      verifyOutputs: argv.verifyOutputs,
      fit: { ...budgetFrom(argv), ...givenOnly({ layout: argv.layout, blockSize: argv.fsBlockSize, payloadPartition: argv.payloadOn }) },
      reporter,
      signal,
    }),
  human,
});
