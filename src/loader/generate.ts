/**
 * `ctrbake loader`: from a bake's manifest and outputs, a rootfs overlay directory with
 * everything the device needs (paths are device paths below the overlay dir):
 *
 *   PAYLOAD/manifest.json, images.list, ctrbake.conf   what the device compares and reads
 *   PAYLOAD/archives/*  |  PAYLOAD/store.sqfs + STORE_MOUNT/   the images
 *   /usr/sbin/ctrbake-device                         prepare | load | check | reset
 *   /etc/docker/daemon.json | /etc/containers/storage.conf   the engine pinned to the store
 *   systemd: ctrbake-prepare.service (+ ctrbake-load.service for archive), the store's
 *            mount unit, and a drop-in that makes the engine require the prepare step
 *   sysvinit: /etc/init.d/ctrbake{,-load} and rc2..5 links; busybox: /etc/init.d/SNNctrbake{,-load}
 *
 * The directory is written in a staging dir and renamed into place: whole or not at all.
 */
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { recoverStagedOutputs, stageOutput } from '../util/staged-output.js';
import { checkOverlayOutput } from './loader-output.js';
import { sha256File, toJsonFile } from '../util/fs.js';
import { copyArchives, imagesList, listImages, writeStoreImage } from './payload.js';
import { resolveLoaderOptions, type LoaderLayout, type LoaderOptions, type ResolvedLoaderConfig } from './options.js';
import { mountUnitName } from './systemd.js';
import { dropEmptyUnitKeys, readTemplate, renderFile, renderTemplate } from './templates.js';

export interface LoaderResult {
  outDir: string;
  layout: LoaderLayout;
  init: string;
  engine: string;
  /** Every file written, relative to outDir, sorted. */
  files: string[];
  /** sha256 of the store image (store layouts). */
  storeId?: string;
  /** systemd: the mount unit of the store (store layouts). */
  mountUnit?: string;
}

class OverlayWriter {
  readonly files: string[] = [];
  constructor(readonly root: string) {}
  path(devicePath: string): string {
    return join(this.root, devicePath);
  }
  async write(devicePath: string, data: string | Buffer, mode = 0o644): Promise<void> {
    const target = this.path(devicePath);
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    await writeFile(target, data);
    await chmod(target, mode);
    this.files.push(devicePath.replace(/^\//, ''));
  }
  async link(devicePath: string, target: string): Promise<void> {
    const at = this.path(devicePath);
    await mkdir(dirname(at), { recursive: true, mode: 0o755 });
    await symlink(target, at);
    this.files.push(devicePath.replace(/^\//, ''));
  }
  note(devicePath: string): void {
    this.files.push(devicePath.replace(/^\//, ''));
  }
}

function usesStore(layout: LoaderLayout): boolean {
  return layout !== 'archive';
}

function dockerDaemonJson(config: ResolvedLoaderConfig): string {
  return toJsonFile({
    'data-root': config.dataRoot,
    'storage-driver': config.manifest.storageDriver,
    // Docker 29 and later default to the containerd image store and ignore a graph-driver
    // store; older daemons (20.10 checked) accept the unknown feature key.
    features: { 'containerd-snapshotter': false },
  });
}

/**
 * Docker on containerd's image store (a `moby` namespace bake): the store chosen explicitly,
 * never with a graph-driver storage-driver (that combination makes every container fail:
 * "snapshotter not loaded: overlay2"), on the system containerd the loader pins to the store.
 */
function dockerOnContainerdJson(): string {
  return toJsonFile({
    containerd: '/run/containerd/containerd.sock',
    features: { 'containerd-snapshotter': true },
  });
}

/** Writes the engine's config files: each pins the engine to the baked store. */
async function writeEngineConfig(config: ResolvedLoaderConfig, out: OverlayWriter): Promise<void> {
  if (config.engine === 'docker') return out.write('/etc/docker/daemon.json', dockerDaemonJson(config));
  if (config.engine === 'podman') return out.write('/etc/containers/storage.conf', await podmanStorageConf(config));
  // k3s runs its own containerd from its own generated config, rooted at the data-root default.
  if (config.manifest.namespace === 'k8s.io') return;
  await out.write('/etc/containerd/config.toml', await renderFile('containerd-config.toml.in', { DATA_ROOT: config.dataRoot }));
  if (config.manifest.namespace === 'moby') await out.write('/etc/docker/daemon.json', dockerOnContainerdJson());
}

async function podmanStorageConf(config: ResolvedLoaderConfig): Promise<string> {
  const q = (s: string) => JSON.stringify(s);
  return renderFile('podman-storage.conf.in', {
    STORAGE_DRIVER: config.manifest.storageDriver,
    DATA_ROOT: config.dataRoot,
    RUNROOT: '/run/containers/storage',
    ADDITIONAL_STORES: config.layout === 'podman-ro' ? q(config.storeMount) : '',
  });
}

async function writeSystemd(config: ResolvedLoaderConfig, out: OverlayWriter): Promise<string | undefined> {
  const unitDir = '/etc/systemd/system';
  const mountUnit = usesStore(config.layout) ? mountUnitName(config.storeMount) : undefined;
  const mountsFor = [config.dataDir, config.dataRoot, config.payloadDir].join(' ');
  const prepare = await renderFile('systemd/ctrbake-prepare.service.in', {
    MOUNT_AFTER: mountUnit ? ` ${mountUnit}` : '',
    MOUNT_REQUIRES: mountUnit ?? '',
    REQUIRES_MOUNTS_FOR: mountsFor,
    ENGINE_UNITS: config.engineUnits.join(' '),
    SBIN: config.sbinDir,
  });
  await out.write(`${unitDir}/ctrbake-prepare.service`, dropEmptyUnitKeys(prepare));
  await out.link(`${unitDir}/multi-user.target.wants/ctrbake-prepare.service`, '../ctrbake-prepare.service');
  if (config.layout === 'archive') {
    const engineService = config.engine === 'docker' ? ' docker.service' : '';
    const load = await renderFile('systemd/ctrbake-load.service.in', {
      ENGINE: config.engine,
      ENGINE_REQUIRES: engineService,
      ENGINE_AFTER: engineService,
      REQUIRES_MOUNTS_FOR: mountsFor,
      SBIN: config.sbinDir,
    });
    await out.write(`${unitDir}/ctrbake-load.service`, dropEmptyUnitKeys(load));
    await out.link(`${unitDir}/multi-user.target.wants/ctrbake-load.service`, '../ctrbake-load.service');
  }
  if (mountUnit) {
    const mount = await renderFile('systemd/store.mount.in', { PAYLOAD_DIR: config.payloadDir, STORE_IMAGE: config.storeImage, STORE_MOUNT: config.storeMount });
    await out.write(`${unitDir}/${mountUnit}`, mount);
    await out.link(`${unitDir}/local-fs.target.wants/${mountUnit}`, `../${mountUnit}`);
  }
  const dropin = await readTemplate('systemd/engine-dropin.conf.in');
  for (const unit of config.engineUnits) await out.write(`${unitDir}/${unit}.d/ctrbake.conf`, dropin);
  return mountUnit;
}

async function writeInitScripts(config: ResolvedLoaderConfig, out: OverlayWriter): Promise<void> {
  const template = await readTemplate('init/initd.sh.in');
  const pad = (n: number) => String(n).padStart(2, '0');
  const engineName = config.engineUnits.map((u) => u.replace(/\.service$/, '')).join(' ');
  const steps = [
    { name: 'ctrbake', step: 'prepare', order: config.startOrder.prepare, requiredStart: '', startBefore: engineName, description: 'ctrbake: prepare the container store before the engine starts' },
    ...(config.layout === 'archive'
      ? [{ name: 'ctrbake-load', step: 'load', order: config.startOrder.load, requiredStart: config.engine === 'docker' ? ' docker ctrbake' : ' ctrbake', startBefore: '', description: 'ctrbake: load the baked images' }]
      : []),
  ];
  for (const s of steps) {
    const text = renderTemplate(
      template,
      { NAME: s.name, REQUIRED_START: s.requiredStart, START_BEFORE: s.startBefore, DESCRIPTION: s.description, SBIN: config.sbinDir, STEP: s.step },
      'init/initd.sh.in',
    );
    if (config.init === 'sysvinit') {
      await out.write(`/etc/init.d/${s.name}`, text, 0o755);
      for (const level of [2, 3, 4, 5]) await out.link(`/etc/rc${level}.d/S${pad(s.order)}${s.name}`, `../init.d/${s.name}`);
    } else {
      // BusyBox init's rcS (Buildroot's convention) runs /etc/init.d/S??* in order with "start".
      await out.write(`/etc/init.d/S${pad(s.order)}${s.name}`, text, 0o755);
    }
  }
}

export async function generateLoader(options: LoaderOptions): Promise<LoaderResult> {
  const resolved = await resolveLoaderOptions(options);
  // Before any work: -o must be absent, empty or a previous overlay, and hold no input.
  const checked = await checkOverlayOutput(resolved.outDir, 'loader', [
    { path: resolved.manifestPath, what: 'manifest' },
    { path: resolved.bakeDir, what: 'bake output (the manifest\'s directory)' },
  ]);
  const config: Readonly<ResolvedLoaderConfig> = Object.freeze({ ...resolved, outDir: checked.path });
  const { reporter } = config;
  await recoverStagedOutputs(config.outDir);
  const images = listImages(config);
  const staged = await stageOutput(config.outDir, { label: 'loader staging', ...(config.signal ? { signal: config.signal } : {}) });
  try {
    const out = new OverlayWriter(staged.outTmp);
    const payload = config.payloadDir;
    let storeId = '';
    if (config.layout === 'archive') {
      reporter.event({ event: 'loader.payload', message: `copying ${images.length} archive(s) into ${payload}` });
      await copyArchives(config, out.path(payload), images);
      for (const l of images) out.note(`${payload}/${l.archive}`);
    } else {
      await writeStoreImage(config, out.path(config.storeImage));
      storeId = await sha256File(out.path(config.storeImage));
      out.note(config.storeImage);
      await mkdir(out.path(config.storeMount), { recursive: true, mode: 0o755 });
    }
    await out.write(`${payload}/manifest.json`, config.manifestBytes);
    await out.write(`${payload}/images.list`, imagesList(images));
    const conf = await renderFile('ctrbake.conf.in', {
      LAYOUT: config.layout,
      ENGINE: config.engine,
      STORAGE_DRIVER: config.manifest.storageDriver,
      PAYLOAD_DIR: payload,
      DATA_DIR: config.dataDir,
      DATA_ROOT: config.dataRoot,
      STORE_IMAGE: usesStore(config.layout) ? config.storeImage : '',
      STORE_MOUNT: usesStore(config.layout) ? config.storeMount : '',
      STORE_ID: storeId,
      KEEP_ARCHIVES: config.keepArchives ? 'yes' : 'no',
      VERIFY_ON_BOOT: config.verifyOnBoot ? 'yes' : 'no',
      SPACE_MARGIN_KB: String(config.spaceMarginKiB),
      ENGINE_PIDFILES: config.enginePidfiles.join(' '),
      ENGINE_WAIT_S: String(config.engineWaitS),
    });
    await out.write(`${payload}/ctrbake.conf`, conf);
    await out.write(`${config.sbinDir}/ctrbake-device`, await renderFile('ctrbake-device.sh', { CONF: `${payload}/ctrbake.conf`, ENGINE_STOP: config.engineStop, ENGINE_START: config.engineStart }), 0o755);
    await writeEngineConfig(config, out);
    let mountUnit: string | undefined;
    if (config.init === 'systemd') mountUnit = await writeSystemd(config, out);
    else await writeInitScripts(config, out);
    config.signal?.throwIfAborted();
    await staged.commit();
    reporter.event({ event: 'loader.done', message: `wrote ${out.files.length} file(s) for the ${config.layout} layout (${config.init}) into ${config.outDir}` });
    return {
      outDir: config.outDir,
      layout: config.layout,
      init: config.init,
      engine: config.engine,
      files: out.files.sort(),
      ...(storeId ? { storeId } : {}),
      ...(mountUnit ? { mountUnit } : {}),
    };
  } finally {
    await staged.discard();
  }
}
