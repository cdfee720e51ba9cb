import { FETCHER_CHOICES } from '../fetch/config.js';
import type { FetcherChoice } from '../fetch/types.js';
import { LOADER_INITS, LOADER_LAYOUTS, type LoaderInit, type LoaderLayout } from '../loader/options.js';
import { SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS } from '../squashfs/index.js';
import { buildStandalone, type StandaloneBuildResult } from '../standalone/build.js';
import { BUILDERS } from '../builder/scope.js';
import { defineCommand, givenOnly } from './command.js';
import { AUTHFILE_OPTION, DEVICE_DIR_OPTIONS, ENGINES, IMAGES_FILE_OPTION, INSECURE_REGISTRY_OPTION, repeated } from './options.js';

function human(result: StandaloneBuildResult): string {
  const lines = [`${result.images.length} image(s) for ${result.platform} (${result.target}); lock ${result.lockPath}${result.lockResolved ? ' (written)' : ''}`];
  const f = result.fetch;
  lines.push(`cache ${result.cacheDir}: ${f.blobsFetched} blob(s) fetched (${f.bytesFetched} bytes), ${f.blobsAlreadyCached} already there`);
  if (result.overlayDir) lines.push(`rootfs overlay ${result.overlayDir}: ${result.files?.length ?? 0} file(s), ${result.layout} layout, ${result.engine}, ${result.init}`);
  if (result.partition) lines.push(`partition image ${result.partition.path}: ${result.partition.size} bytes, sha256:${result.partition.sha256}, mounted from ${result.partition.device}`);
  if (result.fetchOnly) lines.push('fetch only: the build can now run offline');
  return lines.join('\n');
}

export const buildCommand = defineCommand({
  command: 'build [refs..]',
  describe: 'One call for Buildroot and standalone builds: lock, fetch, bake and loader to a rootfs overlay dir (and a SquashFS partition image)',
  options: (y) =>
    y.positional('refs', { type: 'string', array: true, describe: 'image references, e.g. registry.example.com/app:1.2' }).options({
      ...IMAGES_FILE_OPTION,
      compose: { type: 'string', describe: 'compose file: every services.*.image' },
      'br2-config': { type: 'string', describe: 'target from a Buildroot .config (BR2_ARCH, BR2_ARM_CPU_*), e.g. $BR2_CONFIG' },
      'br2-arch': { type: 'string', describe: 'target from BR2_ARCH: aarch64, arm, x86_64, i686, riscv64, powerpc64le, mips64el...' },
      'br2-arm-cpu': { type: 'string', describe: 'with --br2-arch arm: the BR2_ARM_CPU_* level: ARMV7A, ARMV6, ARMV5 or ARMV8A' },
      platform: { type: 'string', describe: 'target as OS/ARCH[/VARIANT], e.g. linux/arm64 (instead of the BR2 options)' },
      cache: { type: 'string', demandOption: true, describe: 'content-addressed cache, e.g. $BR2_DL_DIR/ctrbake' },
      lock: { type: 'string', describe: 'lock file: reused when it matches the images and target, else written (default CACHE/locks/<key>.lock.json)' },
      relock: { type: 'boolean', default: false, describe: 'resolve the tags again even when a matching lock exists' },
      'fetch-only': { type: 'boolean', default: false, describe: 'lock and fetch into the cache, nothing else (the network step; Buildroot: make source)' },
      offline: { type: 'boolean', default: false, describe: 'never use the network: the lock and every blob must be there (after --fetch-only)' },
      output: { alias: 'o', type: 'string', describe: 'rootfs overlay directory to write (absent, empty or a previous build output; replaced only when complete), e.g. for BR2_ROOTFS_OVERLAY' },
      'partition-image': { type: 'string', describe: 'also write the payload as a SquashFS partition image (for genimage), mounted on the device at --payload-dir' },
      'partition-device': { type: 'string', describe: 'with --partition-image: the partition\'s device node on the device, e.g. /dev/mmcblk0p3' },
      'bake-dir': { type: 'string', describe: 'keep the bake output (manifest.json, archives or store.tar) here, e.g. for ctrbake report' },
      layout: { choices: LOADER_LAYOUTS, default: 'archive' as LoaderLayout, describe: 'how the device gets the images (docs/loader.md)' },
      engine: { choices: ENGINES, describe: 'engine on the device (default docker; podman for podman-ro)' },
      builder: { choices: BUILDERS, describe: 'who writes the bake: native (ctrbake itself, no engine, no root; the default for the layouts it serves, e.g. split) or engine (a private dockerd or podman; docs/builder.md)' },
      init: { choices: LOADER_INITS, default: 'busybox' as LoaderInit, describe: 'init system of the device (Buildroot default: busybox)' },
      ...DEVICE_DIR_OPTIONS,
      'data-root': { type: 'string', describe: 'engine data-root on the device (default /var/lib/docker; podman /var/lib/containers/storage)' },
      compression: { choices: SQUASHFS_COMPRESSIONS, describe: 'SquashFS compression (default gzip)' },
      'squashfs-backend': { choices: SQUASHFS_BACKENDS, describe: 'SquashFS writer (default builtin)' },
      fetcher: { choices: FETCHER_CHOICES, default: 'auto' as FetcherChoice, describe: 'how blobs are downloaded' },
      ...AUTHFILE_OPTION,
      ...INSECURE_REGISTRY_OPTION,
    }),
  examples: [
    { what: 'the network step (Buildroot: make source)', lines: ['$0 build --br2-config "$BR2_CONFIG" --images images.txt', '--cache "$BR2_DL_DIR/ctrbake" --fetch-only'] },
    { what: 'bake offline into a rootfs overlay', lines: ['$0 build --br2-config "$BR2_CONFIG" --images images.txt', '--cache "$BR2_DL_DIR/ctrbake" --offline -o "$BUILD_DIR/ctrbake/overlay"'] },
    {
      what: 'split layout, the payload on its own partition',
      lines: ['$0 build --br2-arch arm --br2-arm-cpu ARMV7A --images images.txt', '--cache dl --layout split -o overlay', '--partition-image images/ctrbake.sqfs --partition-device /dev/mmcblk0p3'],
    },
  ],
  run: (argv, { reporter, signal }): Promise<StandaloneBuildResult> =>
    buildStandalone({
      references: argv.refs ?? [],
      cacheDir: argv.cache,
      relock: argv.relock,
      fetchOnly: argv.fetchOnly,
      offline: argv.offline,
      layout: argv.layout,
      init: argv.init,
      fetcher: argv.fetcher,
      insecureRegistries: repeated(argv.insecureRegistry),
      ...givenOnly({
        imagesFile: argv.images,
        composeFile: argv.compose,
        platform: argv.platform,
        br2Arch: argv.br2Arch,
        br2ArmCpu: argv.br2ArmCpu,
        br2Config: argv.br2Config,
        lockPath: argv.lock,
        overlayDir: argv.output,
        partitionImage: argv.partitionImage,
        partitionDevice: argv.partitionDevice,
        bakeDir: argv.bakeDir,
        engine: argv.engine,
        builder: argv.builder,
        payloadDir: argv.payloadDir,
        dataDir: argv.dataDir,
        dataRoot: argv.dataRoot,
        compression: argv.compression,
        squashfsBackend: argv.squashfsBackend,
        authfile: argv.authfile,
      }),
      reporter,
      signal,
    }),
  human,
});
