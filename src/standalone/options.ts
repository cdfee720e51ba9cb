/**
 * Options of the one-call standalone build (`ctrbake build`) and the one step that checks
 * them, fills defaults and resolves the target platform.
 */
import { resolve } from 'node:path';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { ConfigError } from '../errors.js';
import type { TargetEngine as EngineName, Platform } from '../formats/index.js';
import type { FetcherChoice } from '../fetch/types.js';
import { LOADER_INITS, LOADER_LAYOUTS, type LoaderInit, type LoaderLayout } from '../loader/options.js';
import { layoutBake, layoutsFor, layoutSpec, listOr, type LayoutBake } from '../layouts.js';
import { checkSquashfsBackend, resolveSquashfsOptions, SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS, SQUASHFS_SUBCOMMAND_FLAGS, type SquashfsBackendName, type SquashfsCompression } from '../squashfs/index.js';
import { parseSourceDateEpoch } from '../util/sde.js';
import { BUILDERS, nativeScopeRow, type BuilderName } from '../builder/scope.js';
import { resolveTarget, type ResolvedTarget, type TargetOptions } from './target.js';

export const E_BUILD_CONFIG = 'E_STANDALONE_CONFIG';

export interface StandaloneBuildOptions extends TargetOptions {
  /** Image references as written by the user. */
  references?: readonly string[];
  /** A file with one reference per line (`#` comments). */
  imagesFile?: string;
  /** A compose file: every services.*.image. */
  composeFile?: string;
  /** The content-addressed cache, e.g. $BR2_DL_DIR/ctrbake. */
  cacheDir: string;
  /** The lock file: reused when it matches the list and target, else written. Default CACHE/locks/<key>.lock.json. */
  lockPath?: string;
  /** Resolve the tags again even when a matching lock exists. */
  relock?: boolean;
  /** Lock and fetch only (the network step); nothing else is written. */
  fetchOnly?: boolean;
  /** Never use the network: the lock and every blob must already be there. */
  offline?: boolean;
  /** The rootfs overlay directory to write (replaced as a whole). Required unless fetchOnly. */
  overlayDir?: string;
  /**
   * Also write the payload (manifest, archives or store image) as a SquashFS partition image
   * here; the overlay then holds a script or mount unit that mounts `partitionDevice` at the
   * payload dir, and no payload.
   */
  partitionImage?: string;
  /** The device node of that partition on the device, e.g. /dev/mmcblk0p3. */
  partitionDevice?: string;
  /** Keep the bake output (OUT/manifest.json and archives or store.tar) here, for `ctrbake report`. */
  bakeDir?: string;
  /** Default archive. */
  layout?: LoaderLayout;
  /** Default docker (podman for podman-ro). */
  engine?: EngineName;
  /** Who writes the bake: default native where it serves the layout's bake, else engine (docs/builder.md). */
  builder?: BuilderName;
  /** Default busybox (Buildroot's default init). */
  init?: LoaderInit;
  /** Device paths passed to the loader. */
  payloadDir?: string;
  dataDir?: string;
  dataRoot?: string;
  compression?: SquashfsCompression;
  squashfsBackend?: SquashfsBackendName;
  fetcher?: FetcherChoice;
  authfile?: string;
  insecureRegistries?: readonly string[];
  sourceDateEpoch?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface ResolvedStandaloneConfig {
  references: string[];
  imagesFile?: string;
  composeFile?: string;
  target: ResolvedTarget;
  platform: Platform;
  cacheDir: string;
  lockPath?: string;
  relock: boolean;
  fetchOnly: boolean;
  offline: boolean;
  overlayDir?: string;
  partition?: { image: string; device: string };
  bakeDir?: string;
  layout: LoaderLayout;
  engine: EngineName;
  storageDriver: string;
  mode: 'archive' | 'store';
  /** Given: passed to bake; absent: bake's default. */
  builder?: BuilderName;
  init: LoaderInit;
  payloadDir: string;
  dataDir?: string;
  dataRoot?: string;
  compression: SquashfsCompression;
  squashfsBackend: SquashfsBackendName;
  fetcher: FetcherChoice;
  authfile?: string;
  insecureRegistries: string[];
  sourceDateEpoch: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** What each layout bakes: mode, engine and storage driver. */
export function bakeFor(layout: LoaderLayout, engine: EngineName | undefined): LayoutBake {
  return layoutBake(layout, engine);
}

function devicePath(flag: string, value: string): string {
  if (!/^\/[A-Za-z0-9/._+-]*[A-Za-z0-9._+-]$/.test(value) || value.split('/').includes('..')) {
    throw new ConfigError(E_BUILD_CONFIG, `${flag} ${JSON.stringify(value)} must be an absolute device path of letters, digits and / . _ + -`);
  }
  return value;
}

export async function resolveStandaloneOptions(options: StandaloneBuildOptions, env: NodeJS.ProcessEnv = process.env): Promise<Readonly<ResolvedStandaloneConfig>> {
  const bad = (message: string): never => {
    throw new ConfigError(E_BUILD_CONFIG, message);
  };
  if (!options.cacheDir) bad('--cache DIR is required (in Buildroot: $(BR2_DL_DIR)/ctrbake)');
  const fetchOnly = options.fetchOnly ?? false;
  const offline = options.offline ?? false;
  if (fetchOnly && offline) bad('--fetch-only downloads, --offline forbids the network: give one of them');
  if (offline && options.relock) bad('--relock resolves the tags at the registry, --offline forbids the network: drop one of them');
  if (!fetchOnly && !options.overlayDir) bad('-o DIR (the rootfs overlay directory to write) is required, unless --fetch-only');
  if (fetchOnly && (options.overlayDir || options.partitionImage || options.bakeDir)) bad('--fetch-only writes only the lock and the cache: drop -o, --partition-image and --bake-dir');
  if (Boolean(options.partitionImage) !== Boolean(options.partitionDevice)) {
    bad('--partition-image FILE and --partition-device /dev/NODE go together: the image is written to FILE, the device mounts NODE');
  }
  const layout = options.layout ?? 'archive';
  if (!LOADER_LAYOUTS.includes(layout)) bad(`--layout must be one of ${LOADER_LAYOUTS.join(', ')}, got ${String(layout)}`);
  const init = options.init ?? 'busybox';
  if (!LOADER_INITS.includes(init)) bad(`--init must be one of ${LOADER_INITS.join(', ')}, got ${String(init)}`);
  if (options.engine !== undefined && !['docker', 'podman', 'containerd'].includes(options.engine)) bad(`--engine must be docker, podman or containerd, got ${String(options.engine)}`);
  const engines: readonly EngineName[] = layoutSpec(layout).engines;
  if (options.engine !== undefined && !engines.includes(options.engine)) {
    if (options.engine === 'podman') bad(`--layout ${layout} is a ${engines.join(' or ')} layout; with podman use ${listOr(layoutsFor('podman'))}`);
    bad(`--layout ${layout} needs --engine ${engines.join(' or ')}`);
  }
  const compression = options.compression ?? 'gzip';
  if (!SQUASHFS_COMPRESSIONS.includes(compression)) bad(`--compression must be one of ${SQUASHFS_COMPRESSIONS.join(', ')}`);
  const squashfsBackend = options.squashfsBackend ?? 'builtin';
  if (!SQUASHFS_BACKENDS.includes(squashfsBackend)) bad(`--squashfs-backend must be one of ${SQUASHFS_BACKENDS.join(', ')}`);
  // The loader (store layouts) and --partition-image pack a SquashFS after lock, fetch and
  // bake: a combination the backend refuses, or its missing tool, must fail before them.
  const squashfs = { backend: squashfsBackend, compression, workers: 1, sourceDateEpoch: 0, flags: SQUASHFS_SUBCOMMAND_FLAGS };
  resolveSquashfsOptions(squashfs, {});
  if (!fetchOnly && (layout !== 'archive' || options.partitionImage)) await checkSquashfsBackend(squashfs);
  let sourceDateEpoch = options.sourceDateEpoch;
  if (sourceDateEpoch === undefined) {
    try {
      sourceDateEpoch = parseSourceDateEpoch(env.SOURCE_DATE_EPOCH);
    } catch (error) {
      throw new ConfigError(E_BUILD_CONFIG, (error as Error).message, { cause: error });
    }
  }
  const payloadDir = devicePath('--payload-dir', options.payloadDir ?? '/usr/share/ctrbake');
  const target = await resolveTarget(options);
  const baked = bakeFor(layout, options.engine);
  if (options.builder !== undefined) {
    if (!BUILDERS.includes(options.builder)) bad(`--builder must be ${BUILDERS.join(' or ')}, got ${String(options.builder)}`);
    if (options.builder === 'native' && !nativeScopeRow(baked)) {
      bad(`--builder native: ctrbake's builder does not write the bake of --layout ${layout} yet (a ${baked.mode} for ${baked.engine}${baked.mode === 'store' ? ` ${baked.storageDriver}` : ''}): drop --builder native (the engine path bakes it)`);
    }
  }
  return Object.freeze({
    references: [...(options.references ?? [])],
    ...(options.imagesFile ? { imagesFile: resolve(options.imagesFile) } : {}),
    ...(options.composeFile ? { composeFile: resolve(options.composeFile) } : {}),
    target,
    platform: target.platform,
    cacheDir: resolve(options.cacheDir),
    ...(options.lockPath ? { lockPath: resolve(options.lockPath) } : {}),
    relock: options.relock ?? false,
    fetchOnly,
    offline,
    ...(options.overlayDir ? { overlayDir: resolve(options.overlayDir) } : {}),
    ...(options.partitionImage ? { partition: { image: resolve(options.partitionImage), device: devicePath('--partition-device', options.partitionDevice!) } } : {}),
    ...(options.bakeDir ? { bakeDir: resolve(options.bakeDir) } : {}),
    layout,
    ...baked,
    ...(options.builder ? { builder: options.builder } : {}),
    init,
    payloadDir,
    ...(options.dataDir ? { dataDir: devicePath('--data-dir', options.dataDir) } : {}),
    ...(options.dataRoot ? { dataRoot: devicePath('--data-root', options.dataRoot) } : {}),
    compression,
    squashfsBackend,
    fetcher: options.fetcher ?? 'auto',
    ...(options.authfile ? { authfile: options.authfile } : {}),
    insecureRegistries: [...(options.insecureRegistries ?? [])],
    sourceDateEpoch,
    reporter: options.reporter ?? silentReporter,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
