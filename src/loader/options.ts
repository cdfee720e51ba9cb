/**
 * `ctrbake loader` options: what a caller gives, and the one resolve step that checks them
 * against the bake's manifest and fills the device path defaults.
 */
import { readFile } from 'node:fs/promises';
import { dirname, posix, resolve } from 'node:path';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { ConfigError, InputError } from '../errors.js';
import type { BakeManifest, TargetEngine as EngineName } from '../formats/index.js';
import { parseManifest } from '../formats/manifest.js';
import { checkSquashfsBackend, resolveSquashfsOptions, SQUASHFS_SUBCOMMAND_FLAGS, type SquashfsBackendName, type SquashfsCompression } from '../squashfs/index.js';
import { LAYOUTS, layoutFits, type LayoutName } from '../layouts.js';

export const LOADER_LAYOUTS = LAYOUTS;
export type LoaderLayout = LayoutName;
export const LOADER_INITS = ['systemd', 'sysvinit', 'busybox'] as const;
export type LoaderInit = (typeof LOADER_INITS)[number];

export interface LoaderOptions {
  /** OUT/manifest.json of a bake; the outputs it lists are read from beside it. */
  manifestPath: string;
  layout: LoaderLayout;
  init: LoaderInit;
  /** The rootfs overlay directory to write (replaced as a whole). */
  outDir: string;
  /** Read-only payload dir in the rootfs. Default /usr/share/ctrbake. */
  payloadDir?: string;
  /** Writable loader state (data partition). Default /var/lib/ctrbake. */
  dataDir?: string;
  /** Engine data-root / graphroot. Default /var/lib/docker, podman /var/lib/containers/storage. */
  dataRoot?: string;
  /** Where the store SquashFS is mounted. Default PAYLOAD/store. */
  storeMount?: string;
  /** archive: keep archives after loading (default true; false needs a writable payload dir). */
  keepArchives?: boolean;
  /** archive: after each load, save every loaded image (re-reads all layers) and reload damaged ones. Default false. */
  verifyOnBoot?: boolean;
  /** archive: free space required beyond twice the archives' size. Default 16 MiB. */
  spaceMarginKiB?: number;
  /** sysvinit/busybox start order of the prepare and load scripts (around the engine's). */
  startOrder?: { prepare?: number; load?: number };
  /** Store layouts, when the bake has store.tar and no .sqfs: how to build the SquashFS. */
  squashfsBackend?: SquashfsBackendName;
  compression?: SquashfsCompression;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface ResolvedLoaderConfig {
  manifestPath: string;
  bakeDir: string;
  manifest: BakeManifest;
  manifestBytes: Buffer;
  layout: LoaderLayout;
  init: LoaderInit;
  engine: EngineName;
  outDir: string;
  payloadDir: string;
  dataDir: string;
  dataRoot: string;
  storeMount: string;
  storeImage: string;
  keepArchives: boolean;
  verifyOnBoot: boolean;
  spaceMarginKiB: number;
  startOrder: { prepare: number; load: number };
  engineUnits: string[];
  /** Pid files the engine's init scripts write (prepare and reset refuse while one names a live process). */
  enginePidfiles: string[];
  /** The commands that stop and start the engine on the device, named in messages. */
  engineStop: string;
  engineStart: string;
  /** load/verify: seconds to wait for the engine to answer. */
  engineWaitS: number;
  sbinDir: string;
  squashfsBackend: SquashfsBackendName;
  compression: SquashfsCompression;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** Start orders matching the engines' own scripts: Yocto's docker init (S20), Buildroot's S60dockerd. */
const DEFAULT_ORDER: Record<LoaderInit, { prepare: number; load: number }> = {
  systemd: { prepare: 0, load: 0 },
  sysvinit: { prepare: 19, load: 21 },
  busybox: { prepare: 59, load: 61 },
};

/**
 * How the engine is found running, stopped and started under each init style: dockerd writes
 * /var/run/docker.pid itself, Buildroot's S60dockerd and meta-virtualization's init script
 * write /var/run/dockerd.pid (/var/run is often a link to /run).
 */
function engineControl(engine: EngineName, init: LoaderInit, units: readonly string[]): Pick<ResolvedLoaderConfig, 'enginePidfiles' | 'engineStop' | 'engineStart' | 'engineWaitS'> {
  if (engine === 'podman') return { enginePidfiles: [], engineStop: 'podman stop --all', engineStart: 'podman has no daemon', engineWaitS: 0 };
  if (engine === 'containerd') {
    const names = units.map((u) => u.replace(/\.service$/, ''));
    const control = {
      systemd: { engineStop: `systemctl stop ${[...units].reverse().join(' ')}`, engineStart: `systemctl start ${units.join(' ')}` },
      sysvinit: { engineStop: names.map((n) => `/etc/init.d/${n} stop`).join('; '), engineStart: names.map((n) => `/etc/init.d/${n} start`).join('; ') },
      busybox: { engineStop: names.map((n) => `/etc/init.d/S??${n} stop`).join('; '), engineStart: names.map((n) => `/etc/init.d/S??${n} start`).join('; ') },
    }[init];
    return { enginePidfiles: [], ...control, engineWaitS: 120 };
  }
  const pidfiles = ['/var/run/dockerd.pid', '/var/run/docker.pid', '/run/dockerd.pid', '/run/docker.pid'];
  const control = {
    systemd: { engineStop: 'systemctl stop docker.socket docker.service', engineStart: 'systemctl start docker.service' },
    sysvinit: { engineStop: '/etc/init.d/docker stop', engineStart: '/etc/init.d/docker start' },
    busybox: { engineStop: '/etc/init.d/S60dockerd stop', engineStart: '/etc/init.d/S60dockerd start' },
  }[init];
  return { enginePidfiles: pidfiles, ...control, engineWaitS: 120 };
}

function devicePath(flag: string, value: string): string {
  if (!value.startsWith('/')) throw new ConfigError('E_LOADER_CONFIG', `${flag} must be an absolute device path, got ${JSON.stringify(value)}`);
  if (!/^[A-Za-z0-9/._+-]+$/.test(value)) {
    throw new ConfigError('E_LOADER_CONFIG', `${flag} ${JSON.stringify(value)} has characters the device scripts do not accept: use letters, digits and / . _ + -`);
  }
  const normalized = posix.normalize(value).replace(/\/$/, '');
  if (normalized === '' || normalized === '/') throw new ConfigError('E_LOADER_CONFIG', `${flag} cannot be /`);
  return normalized;
}

/** What each layout needs, as the user fixes it (the condition is the layout table's). */
const LAYOUT_NEEDS: Record<LoaderLayout, string> = {
  archive: 'a bake with --mode archive',
  'overlay-vfs': 'a docker store baked with --storage-driver vfs',
  split: 'a docker store baked with --storage-driver overlay2',
  copy: 'a bake with --mode store',
  'podman-ro': 'a podman store (--mode store --engine podman)',
  containerd: 'a containerd store (--mode store --engine containerd)',
};

/**
 * containerd stores: who serves the namespace the bake recorded the images in, its default
 * root, and the units that must wait for the prepare step. moby is Docker's containerd image
 * store (the system containerd, dockerd on top); k8s.io is k3s's own containerd.
 */
function containerdTarget(namespace: string | undefined): { dataRoot: string; units: string[] } {
  if (namespace === 'k8s.io') return { dataRoot: '/var/lib/rancher/k3s/agent/containerd', units: ['k3s.service'] };
  if (namespace === 'moby') return { dataRoot: '/var/lib/containerd', units: ['containerd.service', 'docker.service'] };
  return { dataRoot: '/var/lib/containerd', units: ['containerd.service'] };
}

/** Which bakes each layout takes. */
export function checkLayoutFits(layout: LoaderLayout, manifest: BakeManifest): void {
  const { mode, storageDriver } = manifest;
  const engine = manifest.engine.name;
  if (!layoutFits(layout, { mode, engine, storageDriver })) {
    throw new ConfigError('E_LOADER_LAYOUT', `--layout ${layout} needs ${LAYOUT_NEEDS[layout]}; the manifest is a ${mode} bake with ${engine} (${storageDriver}): bake again or pick another layout (docs/loader.md)`, {
      details: { layout, mode, engine, storageDriver },
    });
  }
}

export async function resolveLoaderOptions(options: LoaderOptions): Promise<Readonly<ResolvedLoaderConfig>> {
  if (!LOADER_LAYOUTS.includes(options.layout)) throw new ConfigError('E_LOADER_CONFIG', `--layout must be one of ${LOADER_LAYOUTS.join(', ')}, got ${String(options.layout)}`);
  if (!LOADER_INITS.includes(options.init)) throw new ConfigError('E_LOADER_CONFIG', `--init must be one of ${LOADER_INITS.join(', ')}, got ${String(options.init)}`);
  if (!options.outDir) throw new ConfigError('E_LOADER_CONFIG', '-o (the rootfs overlay directory) is required');
  const manifestPath = resolve(options.manifestPath);
  let manifestBytes: Buffer;
  let parsed: unknown;
  try {
    manifestBytes = await readFile(manifestPath);
  } catch (error) {
    throw new InputError('E_LOADER_INPUT', `cannot read the manifest ${manifestPath}: ${(error as Error).message}; run ctrbake bake first`, { cause: error });
  }
  try {
    parsed = JSON.parse(manifestBytes.toString('utf8'));
  } catch (error) {
    throw new InputError('E_LOADER_INPUT', `${manifestPath} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const read = parseManifest(parsed);
  if (read.problem) throw new InputError('E_LOADER_INPUT', `${manifestPath} is not a ctrbake manifest (manifestVersion 1): ${read.problem.message}; run ctrbake bake again`);
  const manifest = read.manifest;
  if (manifest.images.length === 0) throw new InputError('E_LOADER_INPUT', `${manifestPath} lists no image`);
  checkLayoutFits(options.layout, manifest);
  const squashfsBackend = options.squashfsBackend ?? 'builtin';
  const compression = options.compression ?? 'gzip';
  // A store layout packs store.tar when the bake made no .sqfs: refuse a combination the
  // backend cannot write (the builtin one with xz) or a missing tool before writing anything.
  const squashfs = { backend: squashfsBackend, compression, workers: 1, sourceDateEpoch: 0, flags: SQUASHFS_SUBCOMMAND_FLAGS };
  resolveSquashfsOptions(squashfs, {});
  if (options.layout !== 'archive' && !manifest.outputs.some((o) => o.path.endsWith('.sqfs'))) await checkSquashfsBackend(squashfs);
  const engine = manifest.engine.name;
  const payloadDir = devicePath('--payload-dir', options.payloadDir ?? '/usr/share/ctrbake');
  const dataDir = devicePath('--data-dir', options.dataDir ?? '/var/lib/ctrbake');
  const containerd = containerdTarget(manifest.namespace);
  const defaultDataRoot = { docker: '/var/lib/docker', podman: '/var/lib/containers/storage', containerd: containerd.dataRoot }[engine];
  const dataRoot = devicePath('--data-root', options.dataRoot ?? defaultDataRoot);
  const engineUnits = { docker: ['docker.service'], podman: ['podman.service'], containerd: containerd.units }[engine];
  const storeMount = devicePath('--store-mount', options.storeMount ?? `${payloadDir}/store`);
  for (const [a, b] of [[dataDir, dataRoot], [dataRoot, dataDir], [storeMount, dataRoot], [dataRoot, storeMount], [payloadDir, dataRoot], [dataRoot, payloadDir]] as const) {
    if (a === b || a.startsWith(`${b}/`)) throw new ConfigError('E_LOADER_CONFIG', `${a} must not be inside (or equal to) ${b}: the loader wipes and rebuilds these separately`);
  }
  const spaceMarginKiB = options.spaceMarginKiB ?? 16 * 1024;
  if (!Number.isInteger(spaceMarginKiB) || spaceMarginKiB < 0) throw new ConfigError('E_LOADER_CONFIG', `--space-margin must be a non-negative number of KiB, got ${spaceMarginKiB}`);
  const startOrder = { ...DEFAULT_ORDER[options.init], ...(options.startOrder ?? {}) };
  for (const n of [startOrder.prepare, startOrder.load]) {
    if (options.init !== 'systemd' && (!Number.isInteger(n) || n < 1 || n > 99)) throw new ConfigError('E_LOADER_CONFIG', `start orders must be 1..99, got ${n}`);
  }
  return Object.freeze({
    manifestPath,
    bakeDir: dirname(manifestPath),
    manifest,
    manifestBytes,
    layout: options.layout,
    init: options.init,
    engine,
    outDir: resolve(options.outDir),
    payloadDir,
    dataDir,
    dataRoot,
    storeMount,
    storeImage: `${payloadDir}/store.sqfs`,
    keepArchives: options.keepArchives ?? true,
    verifyOnBoot: options.verifyOnBoot ?? false,
    spaceMarginKiB,
    startOrder,
    engineUnits,
    ...engineControl(engine, options.init, engineUnits),
    sbinDir: '/usr/sbin',
    squashfsBackend,
    compression,
    reporter: options.reporter ?? silentReporter,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
