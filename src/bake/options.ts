/**
 * Bake options: what a library caller or the CLI gives, and the one resolve step that checks
 * them, fills defaults and reads the environment (SOURCE_DATE_EPOCH, CTRBAKE_TMPDIR).
 */
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { ArchiveFormat, BakeMode, TargetEngine as EngineName } from '../formats/index.js';
import { resolveBudget, type BudgetOptions, type Layout } from '../report/index.js';
import { resolveBlockSize } from '../util/fs-block-size.js';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { checkSquashfsBackend, resolveSquashfsOptions, SQUASHFS_SUBCOMMAND_FLAGS, type GzipImplementation, type SquashfsBackendName, type SquashfsCompression } from '../squashfs/index.js';
import { parseSourceDateEpoch } from '../util/sde.js';
import { ENGINE_STORAGE_DRIVERS } from '../layouts.js';
import { defaultEngineVersion } from '../builder/bake-native.js';
import { BUILDERS, checkNativeScope, defaultBuilder, type BuilderName } from '../builder/scope.js';

export interface BakeOptions {
  lockPath: string;
  cacheDir: string;
  mode: BakeMode;
  outDir: string;
  /** Default docker. containerd: its image store, written by ctrbake's builder (docs/containerd.md). */
  engine?: EngineName;
  /** containerd stores: the namespace the images are recorded in. Default `default` (ctr, nerdctl); `moby` for Docker's containerd store, `k8s.io` for k3s. */
  namespace?: string;
  /** Default: overlay2 for docker, overlay for podman. */
  storageDriver?: string;
  /** Archive mode: default docker-archive. */
  archiveFormat?: ArchiveFormat;
  /**
   * Accepted and ignored: bake never uses the network (engines run in an empty network
   * namespace, everything comes from the cache), so there is nothing to switch off. Kept for
   * `--offline` (docs/bake.md), which build systems pass to every step.
   */
  offline?: boolean;
  /** Default: SOURCE_DATE_EPOCH from the environment, else 0. */
  sourceDateEpoch?: number;
  /** Engine binary (dockerd or podman); default from PATH. */
  engineBinary?: string;
  /** Base for the engine's private dir (unix sockets: keep it short). Default CTRBAKE_TMPDIR or /tmp. */
  tmpBase?: string;
  /** Storage budget checked before anything is written (docs/report.md); over budget: exit 3, no OUT. */
  fit?: BudgetOptions & { layout?: Layout; blockSize?: number };
  /** Store mode: also pack store.tar into OUT/store.sqfs (docs/bake.md). */
  squashfs?: BakeSquashfsOptions;
  /**
   * `native`: ctrbake writes the output itself, no engine, no root (docs/builder.md); `engine`:
   * a private engine bakes it (the oracle). Default: native wherever it serves the bake
   * (builder/scope.ts), else engine.
   */
  builder?: BuilderName;
  /** With builder native: the docker version the store is for (default 20.10). */
  engineVersion?: string;
  /** Bake even when OUT is up to date with these inputs (docs/bake.md). */
  force?: boolean;
  /** Up-to-date check: also re-hash every output against its recorded sha256 (default: size and mtime only). */
  verifyOutputs?: boolean;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface BakeSquashfsOptions {
  /**
   * Default true. false: no SquashFS is written, and the other fields are refused (they apply
   * to the SquashFS): how the CLI passes --compression and friends given without --squashfs.
   */
  pack?: boolean;
  /** Default builtin. */
  backend?: SquashfsBackendName;
  /** Default gzip. */
  compression?: SquashfsCompression;
  blockSize?: number;
  /** builtin with gzip only: node (default) or canonical. */
  gzipImplementation?: GzipImplementation;
}

export interface ResolvedBakeConfig {
  lockPath: string;
  cacheDir: string;
  mode: BakeMode;
  outDir: string;
  engine: EngineName;
  storageDriver: string;
  /** containerd stores only. */
  namespace?: string;
  archiveFormat: ArchiveFormat;
  sourceDateEpoch: number;
  engineBinary?: string;
  tmpBase?: string;
  squashfs?: Readonly<Required<Omit<BakeSquashfsOptions, 'pack' | 'blockSize' | 'gzipImplementation'>> & { blockSize: number; gzipImplementation?: GzipImplementation }>;
  builder: BuilderName;
  engineVersion: string;
  force: boolean;
  verifyOutputs: boolean;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** The engine the engine path starts: containerd stores never reach it (the builder writes them). */
export function runnableEngine(engine: EngineName): Exclude<EngineName, 'containerd'> {
  if (engine === 'containerd') throw new ConfigError('E_CONFIG', 'containerd stores are written by ctrbake\'s builder only: use --builder native (the default with --engine containerd)');
  return engine;
}

export function resolveBakeOptions(options: BakeOptions, env: NodeJS.ProcessEnv = process.env): Readonly<ResolvedBakeConfig> {
  const bad = (message: string): never => {
    throw new ConfigError('E_CONFIG', message);
  };
  checkSquashfsWanted(options.squashfs, bad);
  if (options.mode !== 'archive' && options.mode !== 'store') bad(`--mode must be archive or store, got ${String(options.mode)}`);
  const engine = options.engine ?? 'docker';
  if (engine !== 'docker' && engine !== 'podman' && engine !== 'containerd') bad(`--engine must be docker, podman or containerd, got ${String(engine)}`);
  if (engine === 'containerd' && options.mode !== 'store') bad('--engine containerd bakes a store (containerd\'s content store and meta.db): use --mode store; for archives containerd imports, bake --mode archive with docker or podman');
  if (engine === 'containerd' && options.builder === 'engine') bad('--engine containerd is written by ctrbake\'s builder only (no engine path): drop --builder engine');
  if (options.namespace !== undefined && engine !== 'containerd') bad('--namespace applies to --engine containerd: drop it or bake a containerd store');
  const namespace = engine === 'containerd' ? (options.namespace ?? 'default') : undefined;
  if (namespace !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,75}$/.test(namespace)) bad(`--namespace must be a containerd namespace name (letters, digits, . _ -), got ${JSON.stringify(namespace)}`);
  let storageDriver = options.storageDriver ?? ENGINE_STORAGE_DRIVERS[engine][0];
  // One spelling for both engines is convenient in build recipes: podman calls overlay2 "overlay".
  if (engine === 'podman' && storageDriver === 'overlay2') storageDriver = 'overlay';
  if (!ENGINE_STORAGE_DRIVERS[engine].includes(storageDriver)) {
    bad(`--storage-driver ${storageDriver} does not work with ${engine}: use ${ENGINE_STORAGE_DRIVERS[engine].join(' or ')}`);
  }
  if (options.mode === 'store' && options.archiveFormat !== undefined) {
    bad('--archive-format applies to --mode archive; a store bake writes store.tar: drop --archive-format or use --mode archive');
  }
  const archiveFormat = options.archiveFormat ?? 'docker-archive';
  if (archiveFormat !== 'docker-archive' && archiveFormat !== 'oci-archive') bad(`--archive-format must be docker-archive or oci-archive, got ${String(archiveFormat)}`);
  let sourceDateEpoch = options.sourceDateEpoch;
  if (sourceDateEpoch === undefined) {
    try {
      sourceDateEpoch = parseSourceDateEpoch(env.SOURCE_DATE_EPOCH);
    } catch (error) {
      throw new ConfigError('E_CONFIG', (error as Error).message, { cause: error });
    }
  }
  if (!Number.isInteger(sourceDateEpoch) || sourceDateEpoch < 0) bad(`sourceDateEpoch must be a non-negative integer, got ${sourceDateEpoch}`);
  for (const [flag, value] of [['--lock', options.lockPath], ['--cache', options.cacheDir], ['-o', options.outDir]] as const) {
    if (!value) bad(`${flag} is required`);
  }
  checkBudgetModel(options.fit, bad);
  const shape = { mode: options.mode, engine, storageDriver, ...(options.mode === 'archive' ? { archiveFormat } : {}) };
  const builder = options.builder ?? defaultBuilder(shape);
  if (!BUILDERS.includes(builder)) bad(`--builder must be ${BUILDERS.join(' or ')}, got ${String(builder)}`);
  if (builder === 'native') checkNativeScope(shape);
  else if (options.engineVersion !== undefined) bad(`--engine-version applies to --builder native (the engine path uses the installed engine): drop it${options.builder === 'engine' ? ' or drop --builder engine' : ''}`);
  const tmpBase = options.tmpBase ?? (env.CTRBAKE_TMPDIR || undefined);
  const squashfs = options.squashfs && options.squashfs.pack !== false ? resolveSquashfs(options.squashfs, options.mode, bad) : undefined;
  return Object.freeze({
    lockPath: resolve(options.lockPath),
    cacheDir: resolve(options.cacheDir),
    mode: options.mode,
    outDir: resolve(options.outDir),
    engine,
    storageDriver,
    ...(namespace !== undefined ? { namespace } : {}),
    archiveFormat,
    sourceDateEpoch,
    ...(options.engineBinary ? { engineBinary: options.engineBinary } : {}),
    ...(tmpBase ? { tmpBase } : {}),
    ...(squashfs ? { squashfs } : {}),
    builder,
    engineVersion: options.engineVersion ?? defaultEngineVersion(engine),
    force: options.force ?? false,
    verifyOutputs: options.verifyOutputs ?? false,
    reporter: options.reporter ?? silentReporter,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** `--layout` and `--fs-block-size` shape the budget's model: alone they would be ignored. */
function checkBudgetModel(fit: BakeOptions['fit'], bad: (message: string) => never): void {
  if (!fit || (fit.layout === undefined && fit.blockSize === undefined)) return;
  if (!resolveBudget(fit)) bad('--layout and --fs-block-size set the model of the budget check: add --budget SIZE or --partition-size SIZE, or drop them (`ctrbake report` shows the model without a budget)');
  if (fit.blockSize !== undefined) resolveBlockSize(fit.blockSize);
}

/** SquashFS settings without the SquashFS would be silently ignored. */
function checkSquashfsWanted(squashfs: BakeSquashfsOptions | undefined, bad: (message: string) => never): void {
  if (squashfs?.pack !== false) return;
  const { compression, backend, blockSize, gzipImplementation } = squashfs;
  if (compression || backend || blockSize !== undefined || gzipImplementation) {
    bad('--compression, --squashfs-backend, --block-size and --gzip-impl apply to --squashfs: add --squashfs (store mode)');
  }
}

function resolveSquashfs(
  { pack: _pack, ...options }: BakeSquashfsOptions,
  mode: BakeMode,
  bad: (message: string) => never,
): NonNullable<ResolvedBakeConfig['squashfs']> {
  if (mode !== 'store') {
    bad('--squashfs packs a store: use it with --mode store (archive mode ships the archives as files; pack OUT/archives with `ctrbake squashfs` if you want them in a SquashFS)');
  }
  // The SquashFS module's own check, with bake's flag names: a combination it refuses (the
  // builtin backend with xz, a bad block size) fails here, not after the whole bake.
  let checked: ReturnType<typeof resolveSquashfsOptions>;
  try {
    checked = resolveSquashfsOptions({ ...options, workers: 1, sourceDateEpoch: 0, flags: SQUASHFS_SUBCOMMAND_FLAGS }, {});
  } catch (error) {
    // bake's usage errors keep their one code.
    throw new ConfigError('E_CONFIG', (error as Error).message, { cause: error });
  }
  const { backend, compression } = checked;
  const gzip = options.gzipImplementation;
  // Only when set: the up-to-date fingerprint of a bake without it stays what it was.
  return Object.freeze({ backend, compression, blockSize: checked.blockSize, ...(gzip !== undefined ? { gzipImplementation: gzip } : {}) });
}

/**
 * What the resolve step cannot check without the host: the SquashFS backend's tool and its
 * version, checked before any engine starts so that `--squashfs` does not fail after the bake.
 */
export async function checkBakePrerequisites(config: Readonly<ResolvedBakeConfig>): Promise<void> {
  if (config.squashfs) await checkSquashfsBackend({ ...config.squashfs, sourceDateEpoch: config.sourceDateEpoch, workers: 1, flags: SQUASHFS_SUBCOMMAND_FLAGS });
}
