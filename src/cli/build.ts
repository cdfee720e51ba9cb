import type { Argv, CommandModule } from 'yargs';
import type { EngineName } from '../formats/index.js';
import type { FetcherChoice } from '../fetch/types.js';
import { LOADER_INITS, LOADER_LAYOUTS, type LoaderInit, type LoaderLayout } from '../loader/options.js';
import { SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS, type SquashfsBackendName, type SquashfsCompression } from '../squashfs/index.js';
import { buildStandalone, type StandaloneBuildResult } from '../standalone/build.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

interface BuildArgs extends GlobalArgs {
  refs?: string[];
  images?: string;
  compose?: string;
  platform?: string;
  br2Arch?: string;
  br2ArmCpu?: string;
  br2Config?: string;
  cache: string;
  lock?: string;
  relock: boolean;
  fetchOnly: boolean;
  offline: boolean;
  output?: string;
  partitionImage?: string;
  partitionDevice?: string;
  bakeDir?: string;
  layout: LoaderLayout;
  engine?: EngineName;
  init: LoaderInit;
  payloadDir?: string;
  dataDir?: string;
  dataRoot?: string;
  compression?: SquashfsCompression;
  squashfsBackend?: SquashfsBackendName;
  fetcher: FetcherChoice;
  authfile?: string;
  insecureRegistry?: string | string[];
}

function human(result: StandaloneBuildResult): string {
  const lines = [`${result.images.length} image(s) for ${result.platform} (${result.target}); lock ${result.lockPath}${result.lockResolved ? ' (written)' : ''}`];
  const f = result.fetch;
  lines.push(`cache ${result.cacheDir}: ${f.blobsFetched} blob(s) fetched (${f.bytesFetched} bytes), ${f.blobsAlreadyCached} already there`);
  if (result.overlayDir) lines.push(`rootfs overlay ${result.overlayDir}: ${result.files?.length ?? 0} file(s), ${result.layout} layout, ${result.engine}, ${result.init}`);
  if (result.partition) lines.push(`partition image ${result.partition.path}: ${result.partition.size} bytes, sha256:${result.partition.sha256}, mounted from ${result.partition.device}`);
  if (result.fetchOnly) lines.push('fetch only: the build can now run offline');
  return lines.join('\n');
}

export const buildCommand: CommandModule<GlobalArgs, BuildArgs> = {
  command: 'build [refs..]',
  describe: 'One call for Buildroot and standalone builds: lock, fetch, bake and loader to a rootfs overlay dir (and a SquashFS partition image)',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
      y
      .positional('refs', { type: 'string', array: true, describe: 'image references, e.g. registry.example.com/app:1.2' })
      .option('images', { type: 'string', describe: 'file with one reference per line (# comments)' })
      .option('compose', { type: 'string', describe: 'compose file: every services.*.image' })
      .option('br2-config', { type: 'string', describe: 'target from a Buildroot .config (BR2_ARCH, BR2_ARM_CPU_*), e.g. $BR2_CONFIG' })
      .option('br2-arch', { type: 'string', describe: 'target from BR2_ARCH: aarch64, arm, x86_64, i686, riscv64, powerpc64le, mips64el...' })
      .option('br2-arm-cpu', { type: 'string', describe: 'with --br2-arch arm: the BR2_ARM_CPU_* level: ARMV7A, ARMV6, ARMV5 or ARMV8A' })
      .option('platform', { type: 'string', describe: 'target as OS/ARCH[/VARIANT], e.g. linux/arm64 (instead of the BR2 options)' })
      .option('cache', { type: 'string', demandOption: true, describe: 'content-addressed cache, e.g. $BR2_DL_DIR/ctrbake' })
      .option('lock', { type: 'string', describe: 'lock file: reused when it matches the images and target, else written (default CACHE/locks/<key>.lock.json)' })
      .option('relock', { type: 'boolean', default: false, describe: 'resolve the tags again even when a matching lock exists' })
      .option('fetch-only', { type: 'boolean', default: false, describe: 'lock and fetch into the cache, nothing else (the network step; Buildroot: make source)' })
      .option('offline', { type: 'boolean', default: false, describe: 'never use the network: the lock and every blob must be there (after --fetch-only)' })
      .option('output', { alias: 'o', type: 'string', describe: 'rootfs overlay directory to write (absent, empty or a previous build output; replaced only when complete), e.g. for BR2_ROOTFS_OVERLAY' })
      .option('partition-image', { type: 'string', describe: 'also write the payload as a SquashFS partition image (for genimage), mounted on the device at --payload-dir' })
      .option('partition-device', { type: 'string', describe: 'with --partition-image: the partition\'s device node on the device, e.g. /dev/mmcblk0p3' })
      .option('bake-dir', { type: 'string', describe: 'keep the bake output (manifest.json, archives or store.tar) here, e.g. for ctrbake report' })
      .option('layout', { choices: LOADER_LAYOUTS, default: 'archive' as LoaderLayout, describe: 'how the device gets the images (docs/loader.md)' })
      .option('engine', { choices: ['docker', 'podman'] as const, describe: 'engine on the device (default docker; podman for podman-ro)' })
      .option('init', { choices: LOADER_INITS, default: 'busybox' as LoaderInit, describe: 'init system of the device (Buildroot default: busybox)' })
      .option('payload-dir', { type: 'string', describe: 'read-only payload dir on the device (default /usr/share/ctrbake)' })
      .option('data-dir', { type: 'string', describe: 'writable loader state on the device (default /var/lib/ctrbake)' })
      .option('data-root', { type: 'string', describe: 'engine data-root on the device (default /var/lib/docker; podman /var/lib/containers/storage)' })
      .option('compression', { choices: SQUASHFS_COMPRESSIONS, describe: 'SquashFS compression (default gzip)' })
      .option('squashfs-backend', { choices: SQUASHFS_BACKENDS, describe: 'SquashFS writer (default builtin)' })
      .option('fetcher', { choices: ['auto', 'skopeo', 'docker', 'podman'] as const, default: 'auto' as FetcherChoice, describe: 'how blobs are downloaded' })
      .option('authfile', { type: 'string', describe: 'registry credentials: docker config.json or containers auth.json' })
      // Not `array: true`: that would swallow the REF arguments after it; repeating the flag gives an array.
      .option('insecure-registry', { type: 'string', describe: 'HOST:PORT spoken to over plain HTTP (repeat the flag for several)' })
      ,
      [
        { what: 'the network step (Buildroot: make source)', lines: ['$0 build --br2-config "$BR2_CONFIG" --images images.txt', '--cache "$BR2_DL_DIR/ctrbake" --fetch-only'] },
        { what: 'bake offline into a rootfs overlay', lines: ['$0 build --br2-config "$BR2_CONFIG" --images images.txt', '--cache "$BR2_DL_DIR/ctrbake" --offline -o "$BUILD_DIR/ctrbake/overlay"'] },
        {
          what: 'split layout, the payload on its own partition',
          lines: ['$0 build --br2-arch arm --br2-arm-cpu ARMV7A --images images.txt', '--cache dl --layout split -o overlay', '--partition-image images/ctrbake.sqfs --partition-device /dev/mmcblk0p3'],
        },
      ],
    ) as unknown as Argv<BuildArgs>,
  handler: (argv) =>
    runCommand<StandaloneBuildResult>(
      argv,
      ({ reporter, signal }) =>
        buildStandalone({
          references: argv.refs ?? [],
          ...(argv.images ? { imagesFile: argv.images } : {}),
          ...(argv.compose ? { composeFile: argv.compose } : {}),
          ...(argv.platform ? { platform: argv.platform } : {}),
          ...(argv.br2Arch ? { br2Arch: argv.br2Arch } : {}),
          ...(argv.br2ArmCpu ? { br2ArmCpu: argv.br2ArmCpu } : {}),
          ...(argv.br2Config ? { br2Config: argv.br2Config } : {}),
          cacheDir: argv.cache,
          ...(argv.lock ? { lockPath: argv.lock } : {}),
          relock: argv.relock,
          fetchOnly: argv.fetchOnly,
          offline: argv.offline,
          ...(argv.output ? { overlayDir: argv.output } : {}),
          ...(argv.partitionImage ? { partitionImage: argv.partitionImage } : {}),
          ...(argv.partitionDevice ? { partitionDevice: argv.partitionDevice } : {}),
          ...(argv.bakeDir ? { bakeDir: argv.bakeDir } : {}),
          layout: argv.layout,
          ...(argv.engine ? { engine: argv.engine } : {}),
          init: argv.init,
          ...(argv.payloadDir ? { payloadDir: argv.payloadDir } : {}),
          ...(argv.dataDir ? { dataDir: argv.dataDir } : {}),
          ...(argv.dataRoot ? { dataRoot: argv.dataRoot } : {}),
          ...(argv.compression ? { compression: argv.compression } : {}),
          ...(argv.squashfsBackend ? { squashfsBackend: argv.squashfsBackend } : {}),
          fetcher: argv.fetcher,
          ...(argv.authfile ? { authfile: argv.authfile } : {}),
          insecureRegistries: ([] as string[]).concat(argv.insecureRegistry ?? []),
          reporter,
          signal,
        }),
      human,
    ),
};
