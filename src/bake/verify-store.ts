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
import type { BakeManifest, EngineName, Platform } from '../formats.js';
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
  /** podman only: also check the store as a read-only additional image store. Default true. */
  checkAdditionalStore?: boolean;
  signal?: AbortSignal;
}

export interface VerifiedImage {
  reference: string;
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

async function verifyDocker(dataRoot: string, driver: DockerStorageDriver, references: string[], platforms: Record<string, Platform>, start: StartVerifyDocker): Promise<VerifyStoreResult> {
  const engine = await start(dataRoot, driver);
  try {
    const listed = new Set(
      ((await engine.docker.listImages()) as Array<{ RepoTags?: string[] | null }>).flatMap((i) => i.RepoTags ?? []).map(normalizeListedReference),
    );
    const images: VerifiedImage[] = [];
    for (const reference of references) {
      if (!listed.has(normalizeListedReference(reference))) {
        throw verifyError(`${reference} is not listed by dockerd ${engine.version} (listed: ${[...listed].join(', ') || 'nothing'})`);
      }
      const notRun = canRunHere(platforms[reference]);
      const output = notRun ? undefined : await runDockerImage(engine.docker, reference);
      const saved = await checkSavedArchive((await engine.docker.getImage(reference).get()) as unknown as Readable, `docker save ${reference}`);
      images.push({ reference, ...(output !== undefined ? { output } : {}), ...(notRun ? { notRun } : {}), savedLayers: saved.reduce((n, s) => n + s.layers, 0) });
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
  references: string[],
  platforms: Record<string, Platform>,
): Promise<VerifiedImage[]> {
  const listed = new Set(
    (JSON.parse((await exec(['images', '--format', 'json'])).stdout || '[]') as Array<{ Names?: string[] | null }>)
      .flatMap((i) => i.Names ?? [])
      .map(normalizeListedReference),
  );
  const images: VerifiedImage[] = [];
  for (const [index, reference] of references.entries()) {
    if (!listed.has(normalizeListedReference(reference))) {
      throw verifyError(`${reference} is not listed by podman ${version} (listed: ${[...listed].join(', ') || 'nothing'})`);
    }
    const notRun = canRunHere(platforms[reference]);
    const output = notRun ? undefined : (await exec(['run', '--rm', ...PODMAN_RUN_ARGS, reference])).stdout;
    const archive = join(scratch, `save-${index}.tar`);
    await exec(['save', '--format', 'docker-archive', '--output', archive, reference]);
    const saved = await checkSavedArchive(createReadStream(archive), `podman save ${reference}`);
    await rm(archive, { force: true });
    images.push({ reference, ...(output !== undefined ? { output: `${output}\n` } : {}), ...(notRun ? { notRun } : {}), savedLayers: saved.reduce((n, s) => n + s.layers, 0) });
  }
  return images;
}

/**
 * A second, empty podman that sees the store only through `additionalimagestores`, the store
 * mounted read-only. Podman ignores additionalimagestores when --root, --runroot or
 * --storage-driver are on its command line (podman 4.3): those come from storage.conf here.
 */
async function verifyPodmanAdditionalStore(
  storeDir: string,
  driver: 'overlay' | 'vfs',
  scratch: string,
  references: string[],
  platforms: Record<string, Platform>,
): Promise<VerifiedImage[]> {
  await execa('mount', ['--bind', storeDir, storeDir]);
  try {
    await execa('mount', ['-o', 'remount,bind,ro', storeDir]);
    const podman: RunningPodman = await startPodman({ storageDriver: driver });
    try {
      const storageConf = podman.env.CONTAINERS_STORAGE_CONF!;
      const conf = await readFile(storageConf, 'utf8');
      await writeFile(storageConf, `${conf}[storage.options]\nadditionalimagestores = [${JSON.stringify(storeDir)}]\n`);
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
      return await checkPodmanImages(exec, podman.version, scratch, references, platforms);
    } finally {
      await podman.stop();
    }
  } finally {
    await unmountUnder([storeDir]);
  }
}

async function verifyPodman(
  graphroot: string,
  driver: 'overlay' | 'vfs',
  references: string[],
  platforms: Record<string, Platform>,
  scratch: string,
): Promise<VerifyStoreResult> {
  const podman = await startPodman({ storageDriver: driver, root: graphroot, keepRoot: true });
  try {
    const images = await checkPodmanImages((args) => podman.exec(args), podman.version, scratch, references, platforms);
    return { engine: 'podman', engineVersion: podman.version, storageDriver: driver, images };
  } finally {
    await podman.stop();
  }
}

export async function verifyStore(options: VerifyStoreOptions): Promise<VerifyStoreResult> {
  let manifest: BakeManifest | undefined;
  if (options.outDir) {
    manifest = JSON.parse(await readFile(join(options.outDir, 'manifest.json'), 'utf8')) as BakeManifest;
    if (manifest.mode !== 'store') throw new ConfigError('E_STORE_VERIFY_INPUT', `${options.outDir}/manifest.json is a ${manifest.mode} bake, not a store bake`);
  }
  const storeTar = options.storeTar ?? (options.outDir ? join(options.outDir, 'store.tar') : undefined);
  const engine = options.engine ?? manifest?.engine.name;
  const driver = options.storageDriver ?? manifest?.storageDriver;
  if (!storeTar || !engine || !driver) {
    throw new ConfigError('E_STORE_VERIFY_INPUT', 'verifyStore needs an OUT dir of a store bake, or storeTar with engine and storageDriver');
  }
  const references = options.references ?? manifest?.images.map((i) => i.reference) ?? [];
  const platforms = options.platforms ?? Object.fromEntries((manifest?.images ?? []).map((i) => [i.reference, i.platform]));

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
      return await verifyDocker(root, driver, references, platforms, options.startDocker ?? defaultStartDocker);
    }
    if (driver !== 'overlay' && driver !== 'vfs') throw new ConfigError('E_STORE_VERIFY_INPUT', `podman store driver ${driver} is not overlay or vfs`);
    const result = await verifyPodman(root, driver, references, platforms, scratch);
    if (options.checkAdditionalStore ?? true) {
      const ro = join(scratch, 'ro');
      await mkdir(ro, { mode: 0o710 });
      await extractStoreTar(storeTar, ro, options.signal);
      result.additionalStore = await verifyPodmanAdditionalStore(ro, driver, scratch, references, platforms);
    }
    return result;
  } finally {
    await cleanup();
    unregister();
  }
}
