/**
 * Verifies a baked store the way a device uses it: extract store.tar as root (owners, modes,
 * xattrs, device nodes) into a fresh data-root / graphroot, start a fresh private engine on
 * it with the recorded storage driver, then for every image: listed under its reference,
 * runs with `--network none` (native platform only), and `docker save` / `podman save`
 * succeeds with every layer hashing to its diff_id (re-reads every layer).
 * podman: also as a read-only additional image store of a second, empty podman.
 */
import { readFile, rm, mkdir } from 'node:fs/promises';
import { arch } from 'node:os';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import { ConfigError, InputError } from '../errors.js';
import type { BakeManifest, EngineName, Platform } from '../formats/index.js';
import { startEngine, unmountUnder, type Engine } from '../engine/index.js';
import { MANIFEST_FILE, readManifest } from '../formats/manifest.js';
import { makeEnginePrivateDir } from '../engine/private-dir.js';
import { registerCleanup } from '../util/cleanup.js';
import { runProgram } from '../util/process.js';
import { extractStoreTar } from './store-tar.js';
import { checkSavedArchive } from './verify-saved-archive.js';

/** A docker engine to verify with, on the extracted data-root: a private host dockerd by default; tests plug in newer ones. */
export type StartVerifyDocker = (dataRoot: string, storageDriver: 'overlay2' | 'vfs') => Promise<Engine>;

export interface StartVerifyPodmanOptions {
  storageDriver: 'overlay' | 'vfs';
  /** Use this graphroot (the extracted store). */
  graphroot?: string;
  /** An empty graphroot, with this store (mounted read-only) in additionalimagestores. */
  additionalImageStore?: string;
  /** Where commands write files (podman save --output). */
  workDir: string;
}

/** A podman to verify with: a private host podman by default; tests plug in newer ones. */
export type StartVerifyPodman = (options: StartVerifyPodmanOptions) => Promise<Engine>;

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

/** Lists, runs and saves every target under `engine`; `digestRefs` are resolved where the targets carry them. */
async function checkImages(engine: Engine, scratch: string, targets: readonly VerifyTarget[]): Promise<VerifiedImage[]> {
  const label = `${engine.program} ${engine.version}`;
  const list = await engine.listImages();
  const listed = new Set(list.flatMap((i) => i.names).map(normalizeListedReference));
  const ids = new Set(list.map((i) => i.id));
  const images: VerifiedImage[] = [];
  for (const [index, target] of targets.entries()) {
    const { reference } = target;
    const handle = checkListed(target, listed, ids, label);
    const notRun = canRunHere(target.platform);
    let output: string | undefined;
    if (!notRun) {
      const run = await engine.run(handle);
      if (run.exitCode !== 0) throw verifyError(`${reference} exited with ${run.exitCode} under ${engine.name}: ${run.stderr}`);
      output = run.stdout;
    }
    const archive = join(scratch, `save-${index}.tar`);
    await engine.save(handle, archive);
    const saved = await checkSavedArchive(createReadStream(archive), `${engine.name} save ${handle}`);
    await rm(archive, { force: true });
    const digestReferences: string[] = [];
    for (const ref of target.digestRefs ?? []) {
      const image = await engine.inspect(ref).catch((error: unknown) => {
        throw verifyError(`${ref} does not resolve under ${label}`, error);
      });
      if (!image) throw verifyError(`${ref} does not resolve under ${label}`);
      if (target.imageId && image.id !== target.imageId) throw verifyError(`${ref} resolves to ${image.id}, not ${target.imageId}`);
      digestReferences.push(ref);
    }
    images.push({ reference, ...(digestReferences.length > 0 ? { digestReferences } : {}), ...(output !== undefined ? { output } : {}), ...(notRun ? { notRun } : {}), savedLayers: saved.reduce((n, s) => n + s.layers, 0) });
  }
  return images;
}

const defaultStartDocker: StartVerifyDocker = (dataRoot, storageDriver) => startEngine({ engine: 'docker', storageDriver, dataRoot, keepDataRoot: true });

const defaultStartPodman: StartVerifyPodman = (options) =>
  startEngine({
    engine: 'podman',
    storageDriver: options.storageDriver,
    ...(options.graphroot ? { dataRoot: options.graphroot, keepDataRoot: true } : {}),
    ...(options.additionalImageStore ? { additionalImageStore: options.additionalImageStore } : {}),
  });

/** Starts an engine, checks every target under it, stops it whatever happens. */
async function verifyWith(start: () => Promise<Engine>, scratch: string, targets: readonly VerifyTarget[]): Promise<{ engine: Engine; images: VerifiedImage[] }> {
  const engine = await start();
  try {
    return { engine, images: await checkImages(engine, scratch, targets) };
  } finally {
    await engine.stop();
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
      const start = options.startDocker ?? defaultStartDocker;
      const docker = await verifyWith(() => start(root, driver), scratch, targets);
      return { engine: 'docker', engineVersion: docker.engine.version, storageDriver: driver, images: docker.images };
    }
    if (driver !== 'overlay' && driver !== 'vfs') throw new ConfigError('E_STORE_VERIFY_INPUT', `podman store driver ${driver} is not overlay or vfs`);
    const start = options.startPodman ?? defaultStartPodman;
    const asGraphroot = await verifyWith(() => start({ storageDriver: driver, graphroot: root, workDir: scratch }), scratch, targets);
    const result: VerifyStoreResult = { engine: 'podman', engineVersion: asGraphroot.engine.version, storageDriver: driver, images: asGraphroot.images };
    if (options.checkAdditionalStore ?? true) {
      // A fresh copy, bind-mounted read-only: proves podman never writes to it.
      const ro = join(scratch, 'ro');
      await mkdir(ro, { mode: 0o710 });
      await extractStoreTar(storeTar, ro, options.signal);
      await mountOrFail(['--bind', ro, ro]);
      try {
        await mountOrFail(['-o', 'remount,bind,ro', ro]);
        result.additionalStore = (await verifyWith(() => start({ storageDriver: driver, additionalImageStore: ro, workDir: scratch }), scratch, targets)).images;
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

async function mountOrFail(args: readonly string[]): Promise<void> {
  const r = await runProgram('mount', args);
  if (r.exitCode !== 0) throw verifyError(`mount ${args.join(' ')} failed: ${r.failure ?? r.stderr.trim()}`);
}
