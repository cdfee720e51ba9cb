/**
 * Verifies a baked store the way a device uses it: extract store.tar as root (owners, modes,
 * xattrs, device nodes) into a fresh data-root / graphroot, start a fresh private engine on
 * it with the recorded storage driver, then for every image: listed under its reference,
 * runs with `--network none` (native platform only), and `docker save` / `podman save`
 * succeeds with every layer hashing to its diff_id (re-reads every layer).
 * podman: also as a read-only additional image store of a second, empty podman.
 */
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { arch } from 'node:os';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { execa } from 'execa';
import { ConfigError, InputError } from '../errors.js';
import type { BakeManifest, EngineName, Platform } from '../formats/index.js';
import { MANIFEST_FILE, readManifest } from '../formats/manifest.js';
import { startDockerd, type DockerStorageDriver } from '../engine/dockerd.js';
import { unmountUnder } from '../engine/mounts.js';
import { PODMAN_RUN_ARGS, startPodman, type RunningPodman } from '../engine/podman.js';
import { makeEnginePrivateDir } from '../engine/private-dir.js';
import { registerCleanup } from '../util/cleanup.js';
import { extractStoreTar } from './store-tar.js';
import { checkSavedArchive } from './verify-saved-archive.js';

/** A docker engine to verify with: the host's dockerd by default; tests plug in newer ones. */
export interface VerifyDockerEngine {
  docker: Dockerode;
  version: string;
  stop(): Promise<void>;
}

export type StartVerifyDocker = (dataRoot: string, storageDriver: DockerStorageDriver) => Promise<VerifyDockerEngine>;

/** A podman to verify with: runs `podman ARGS` against one configured storage. */
export interface VerifyPodmanEngine {
  version: string;
  exec(args: readonly string[]): Promise<{ stdout: string }>;
  stop(): Promise<void>;
}

export interface StartVerifyPodmanOptions {
  storageDriver: 'overlay' | 'vfs';
  /** Use this graphroot (the extracted store). */
  graphroot?: string;
  /** An empty graphroot, with this store (mounted read-only) in additionalimagestores. */
  additionalImageStore?: string;
  /** Where commands write files (podman save --output). */
  workDir: string;
}

export type StartVerifyPodman = (options: StartVerifyPodmanOptions) => Promise<VerifyPodmanEngine>;

export interface VerifyStoreOptions {
  /** OUT dir of a store bake (reads manifest.json and store.tar), or give storeTar + engine + storageDriver. */
  outDir?: string;
  storeTar?: string;
  engine?: EngineName;
  storageDriver?: string;
  /** References to check; default: every image of the manifest. */
  references?: string[];
  /** Platforms by reference, to decide what can run here; default from the manifest. */
  platforms?: Record<string, Platform>;
  /** docker only: start the engine on the extracted data-root (default: a private host dockerd). */
  startDocker?: StartVerifyDocker;
  /** podman only: the podman to verify with (default: a private host podman); tests plug in newer ones. */
  startPodman?: StartVerifyPodman;
  /** podman only: also check the store as a read-only additional image store. Default true. */
  checkAdditionalStore?: boolean;
  signal?: AbortSignal;
}

interface VerifyTarget {
  reference: string;
  /** What the engine lists it as; undefined for a reference pinned by digest only. */
  name?: string;
  imageId?: string;
  platform?: Platform;
  /** `repository@digest` references the store should resolve (docker stores). */
  digestRefs?: string[];
}

export interface VerifiedImage {
  reference: string;
  /** Digest references (`repository@sha256:...`) that resolved to the image (docker). */
  digestReferences?: string[];
  /** What the container printed (stdout), when it ran. */
  output?: string;
  /** Why it did not run (foreign platform). */
  notRun?: string;
  savedLayers: number;
}

export interface VerifyStoreResult {
  engine: EngineName;
  engineVersion: string;
  storageDriver: string;
  images: VerifiedImage[];
  /** podman: the same checks through additionalimagestores. */
  additionalStore?: VerifiedImage[];
}

const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

function canRunHere(platform: Platform | undefined): string | undefined {
  if (!platform) return undefined;
  const host = HOST_ARCH[arch()] ?? arch();
  if (platform.os !== 'linux' || platform.architecture !== host) {
    return `platform ${platform.os}/${platform.architecture} does not run on this ${host} host`;
  }
  return undefined;
}

function verifyError(what: string, cause?: unknown): InputError {
  return new InputError('E_STORE_VERIFY', `store verification failed: ${what}`, cause === undefined ? {} : { cause });
}

/** Splits docker's multiplexed log stream (non-TTY containers) into stdout and stderr. */
export function demuxDockerLogs(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + size);
    (type === 2 ? err : out).push(payload);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** The name an image is listed under in a store: the reference without a digest (undefined: digest only). */
export function listedName(reference: string): string | undefined {
  const name = reference.replace(/@sha256:[0-9a-f]{64}$/, '');
  const lastSlash = name.lastIndexOf('/');
  return name.slice(lastSlash + 1).includes(':') ? name : undefined;
}

/** The repository part of a reference: without digest and tag. */
export function repositoryOf(reference: string): string {
  const name = reference.replace(/@sha256:[0-9a-f]{64}$/, '');
  const lastSlash = name.lastIndexOf('/');
  const colon = name.indexOf(':', lastSlash + 1);
  return colon === -1 ? name : name.slice(0, colon);
}

/** Normalizes a reference the way engines list them: docker.io/library/ for Hub short names. */
export function normalizeListedReference(ref: string): string {
  const first = ref.split('/')[0]!;
  const hasHost = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost) return ref;
  return ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

async function runDockerImage(docker: Dockerode, reference: string): Promise<string> {
  const container = await docker.createContainer({ Image: reference, HostConfig: { NetworkMode: 'none' }, NetworkDisabled: true });
  try {
    await container.start();
    const exit = (await container.wait()) as { StatusCode: number };
    const logs = demuxDockerLogs((await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
    if (exit.StatusCode !== 0) throw verifyError(`${reference} exited with ${exit.StatusCode} under docker: ${logs.stderr}`);
    return logs.stdout;
  } finally {
    await container.remove({ force: true });
  }
}

function checkListed(target: VerifyTarget, listed: ReadonlySet<string>, ids: ReadonlySet<string>, engine: string): string {
  if (target.name !== undefined) {
    if (!listed.has(normalizeListedReference(target.name))) {
      throw verifyError(`${target.name} is not listed by ${engine} (listed: ${[...listed].join(', ') || 'nothing'})`);
    }
    return target.name;
  }
  if (!target.imageId || !ids.has(target.imageId)) throw verifyError(`image ${target.imageId ?? target.reference} is not in the store under ${engine}`);
  return target.imageId;
}

async function verifyDocker(dataRoot: string, driver: DockerStorageDriver, targets: readonly VerifyTarget[], start: StartVerifyDocker): Promise<VerifyStoreResult> {
  const engine = await start(dataRoot, driver);
  try {
    const list = (await engine.docker.listImages()) as Array<{ Id: string; RepoTags?: string[] | null }>;
    const listed = new Set(list.flatMap((i) => i.RepoTags ?? []).map(normalizeListedReference));
    const ids = new Set(list.map((i) => i.Id));
    const images: VerifiedImage[] = [];
    for (const target of targets) {
      const { reference } = target;
      const handle = checkListed(target, listed, ids, `dockerd ${engine.version}`);
      const notRun = canRunHere(target.platform);
      const output = notRun ? undefined : await runDockerImage(engine.docker, handle);
      const saved = await checkSavedArchive((await engine.docker.getImage(handle).get()) as unknown as Readable, `docker save ${handle}`);
      const digestReferences: string[] = [];
      for (const ref of target.digestRefs ?? []) {
        let id: string | undefined;
        try {
          id = ((await engine.docker.getImage(ref).inspect()) as { Id: string }).Id;
        } catch (error) {
          throw verifyError(`${ref} does not resolve under dockerd ${engine.version}`, error);
        }
        if (target.imageId && id !== target.imageId) throw verifyError(`${ref} resolves to ${id}, not ${target.imageId}`);
        digestReferences.push(ref);
      }
      images.push({ reference, ...(digestReferences.length > 0 ? { digestReferences } : {}), ...(output !== undefined ? { output } : {}), ...(notRun ? { notRun } : {}), savedLayers: saved.reduce((n, s) => n + s.layers, 0) });
    }
    return { engine: 'docker', engineVersion: engine.version, storageDriver: driver, images };
  } finally {
    await engine.stop();
  }
}

const defaultStartDocker: StartVerifyDocker = async (dataRoot, storageDriver) => {
  const d = await startDockerd({ storageDriver, dataRoot, keepDataRoot: true });
  return { docker: d.docker, version: d.version, stop: d.stop };
};

async function checkPodmanImages(
  exec: (args: readonly string[]) => Promise<{ stdout: string }>,
  version: string,
  scratch: string,
  targets: readonly VerifyTarget[],
): Promise<VerifiedImage[]> {
  const list = JSON.parse((await exec(['images', '--format', 'json'])).stdout || '[]') as Array<{ Id: string; Names?: string[] | null }>;
  const listed = new Set(list.flatMap((i) => i.Names ?? []).map(normalizeListedReference));
  const ids = new Set(list.map((i) => (i.Id.startsWith('sha256:') ? i.Id : `sha256:${i.Id}`)));
  const images: VerifiedImage[] = [];
  for (const [index, target] of targets.entries()) {
    const { reference } = target;
    const handle = checkListed(target, listed, ids, `podman ${version}`);
    const notRun = canRunHere(target.platform);
    const output = notRun ? undefined : (await exec(['run', '--rm', ...PODMAN_RUN_ARGS, handle])).stdout;
    const archive = join(scratch, `save-${index}.tar`);
    await exec(['save', '--format', 'docker-archive', '--output', archive, handle]);
    const saved = await checkSavedArchive(createReadStream(archive), `podman save ${handle}`);
    await rm(archive, { force: true });
    images.push({ reference, ...(output !== undefined ? { output: `${output}\n` } : {}), ...(notRun ? { notRun } : {}), savedLayers: saved.reduce((n, s) => n + s.layers, 0) });
  }
  return images;
}

/**
 * The host's podman, private (src/engine/podman.ts). For an additional image store: podman
 * 4.3 ignores additionalimagestores when --root, --runroot or --storage-driver are on its
 * command line, so those come from storage.conf there.
 */
const defaultStartPodman: StartVerifyPodman = async (options) => {
  if (options.graphroot) {
    const p = await startPodman({ storageDriver: options.storageDriver, root: options.graphroot, keepRoot: true });
    return { version: p.version, exec: (args) => p.exec(args), stop: p.stop };
  }
  const podman: RunningPodman = await startPodman({ storageDriver: options.storageDriver });
  try {
    const storageConf = podman.env.CONTAINERS_STORAGE_CONF!;
    const conf = await readFile(storageConf, 'utf8');
    await writeFile(storageConf, `${conf}[storage.options]\nadditionalimagestores = [${JSON.stringify(options.additionalImageStore)}]\n`);
  } catch (error) {
    await podman.stop();
    throw error;
  }
  const global: string[] = [];
  for (let i = 0; i < podman.globalArgs.length; i++) {
    const flag = podman.globalArgs[i]!;
    if (flag === '--root' || flag === '--runroot' || flag === '--storage-driver') i++;
    else global.push(flag);
  }
  const exec = async (args: readonly string[]) => {
    const r = await execa('unshare', ['--net', '--', 'podman', ...global, ...args], { extendEnv: false, env: podman.env, reject: false });
    if (r.exitCode !== 0) throw verifyError(`podman (additional image store) ${args.join(' ')} failed: ${r.stderr}`);
    return { stdout: r.stdout };
  };
  return { version: podman.version, exec, stop: podman.stop };
};

async function verifyPodman(
  options: StartVerifyPodmanOptions,
  start: StartVerifyPodman,
  targets: readonly VerifyTarget[],
  scratch: string,
): Promise<{ version: string; images: VerifiedImage[] }> {
  const podman = await start(options);
  try {
    return { version: podman.version, images: await checkPodmanImages((args) => podman.exec(args), podman.version, scratch, targets) };
  } finally {
    await podman.stop();
  }
}

export async function verifyStore(options: VerifyStoreOptions): Promise<VerifyStoreResult> {
  let manifest: BakeManifest | undefined;
  if (options.outDir) {
    const path = join(options.outDir, MANIFEST_FILE);
    const read = await readManifest(path);
    if (read.problem) {
      throw new ConfigError('E_STORE_VERIFY_INPUT', `${path}: ${read.problem.message}; pass the OUT dir of \`ctrbake bake --mode store\``, { cause: read.problem.cause });
    }
    manifest = read.manifest;
    if (manifest.mode !== 'store') throw new ConfigError('E_STORE_VERIFY_INPUT', `${options.outDir}/manifest.json is a ${manifest.mode} bake, not a store bake`);
  }
  const storeTar = options.storeTar ?? (options.outDir ? join(options.outDir, 'store.tar') : undefined);
  const engine = options.engine ?? manifest?.engine.name;
  const driver = options.storageDriver ?? manifest?.storageDriver;
  if (!storeTar || !engine || !driver) {
    throw new ConfigError('E_STORE_VERIFY_INPUT', 'verifyStore needs an OUT dir of a store bake, or storeTar with engine and storageDriver');
  }
  const fromManifest = new Map((manifest?.images ?? []).map((i) => [i.reference, i]));
  const targets: VerifyTarget[] = (options.references ?? [...fromManifest.keys()]).map((reference) => {
    const image = fromManifest.get(reference);
    const name = listedName(reference);
    const platform = options.platforms?.[reference] ?? image?.platform;
    const digestRefs =
      engine === 'docker' && image ? [...new Set([image.indexDigest, image.digest])].map((d) => `${repositoryOf(reference)}@${d}`) : undefined;
    return { reference, ...(name ? { name } : {}), ...(image ? { imageId: image.imageId } : {}), ...(platform ? { platform } : {}), ...(digestRefs ? { digestRefs } : {}) };
  });

  const scratch = await makeEnginePrivateDir('ctrbake-v-', '/tmp');
  const cleanup = async () => {
    await unmountUnder([scratch]);
    await rm(scratch, { recursive: true, force: true, maxRetries: 3 });
  };
  const unregister = registerCleanup(`store verification ${scratch}`, cleanup);
  try {
    const root = join(scratch, 'root');
    await mkdir(root, { mode: 0o710 });
    await extractStoreTar(storeTar, root, options.signal);
    if (engine === 'docker') {
      if (driver !== 'overlay2' && driver !== 'vfs') throw new ConfigError('E_STORE_VERIFY_INPUT', `docker store driver ${driver} is not overlay2 or vfs`);
      return await verifyDocker(root, driver, targets, options.startDocker ?? defaultStartDocker);
    }
    if (driver !== 'overlay' && driver !== 'vfs') throw new ConfigError('E_STORE_VERIFY_INPUT', `podman store driver ${driver} is not overlay or vfs`);
    const start = options.startPodman ?? defaultStartPodman;
    const asGraphroot = await verifyPodman({ storageDriver: driver, graphroot: root, workDir: scratch }, start, targets, scratch);
    const result: VerifyStoreResult = { engine: 'podman', engineVersion: asGraphroot.version, storageDriver: driver, images: asGraphroot.images };
    if (options.checkAdditionalStore ?? true) {
      // A fresh copy, bind-mounted read-only: proves podman never writes to it.
      const ro = join(scratch, 'ro');
      await mkdir(ro, { mode: 0o710 });
      await extractStoreTar(storeTar, ro, options.signal);
      await execa('mount', ['--bind', ro, ro]);
      try {
        await execa('mount', ['-o', 'remount,bind,ro', ro]);
        result.additionalStore = (await verifyPodman({ storageDriver: driver, additionalImageStore: ro, workDir: scratch }, start, targets, scratch)).images;
      } finally {
        await unmountUnder([ro]);
      }
    }
    return result;
  } finally {
    await cleanup();
    unregister();
  }
}
