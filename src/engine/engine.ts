/**
 * The one Engine interface: what bake, store verification, the engine fetchers and the
 * up-to-date check need from docker or podman. Callers never branch on the engine's name for
 * an engine operation; docker-engine.ts and podman-engine.ts implement it over a private
 * dockerd (dockerd.ts) and a private podman (podman.ts), or over any daemon or podman a test
 * brings (a newer version in a Debian tree, say).
 */
import { EngineError } from '../errors.js';
import type { EngineName } from '../formats/index.js';
import { runProgram } from '../util/process.js';
import type { EngineNetwork } from './dockerd.js';
import { resolveBinary } from './prerequisites.js';

export interface EngineImage {
  /** "sha256:<hex>": the config digest. */
  id: string;
  os: string;
  architecture: string;
  variant?: string;
  /** Uncompressed layer digests, base first. */
  diffIds: string[];
}

export interface ListedImage {
  /** "sha256:<hex>" */
  id: string;
  /** References the engine lists the image under, as it writes them. */
  names: string[];
}

export interface ContainerRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface PullOptions {
  /** docker config.json / containers auth.json; podman reads it (none: no credentials at all). */
  authfile?: string;
  /** The credentials for this registry; dockerd gets them over its API. */
  credentials?: { username: string; password: string };
  /** Plain HTTP / no TLS verification for this registry. */
  insecure?: boolean;
  onProgress?: (progress: { status: string; current: number; total: number }) => void;
  signal?: AbortSignal;
}

/** What the engine's store recorded about a pull, to check it against what was asked for. */
export interface PullRecords {
  /**
   * Compressed layer digest -> the diff_id the engine recorded for it (dockerd keeps these
   * records); 'unrecorded': this engine version should and does not; undefined: this engine
   * never keeps them.
   */
  layerDiffIds?: ReadonlyMap<string, string | undefined> | 'unrecorded';
  /** Files of the store that may hold the pulled manifest byte for byte (podman keeps it). */
  manifestCandidates: string[];
}

/** A pull the engine reported as failed; `detail` is the engine's own text, for classification. */
export class EnginePullError extends EngineError {
  constructor(
    readonly reference: string,
    readonly detail: string,
    options: { cause?: unknown } = {},
  ) {
    super('E_ENGINE_COMMAND', `pull of ${reference} failed: ${detail}`, options);
  }
}

export interface Engine {
  name: EngineName;
  /** The program that does the work, as messages name it: "dockerd" or "podman". */
  program: string;
  version: string;
  storageDriver: string;
  /** The engine's private dir (sockets, configs, logs), for diagnostics; '' when not ours. */
  privateDir: string;
  /** Its data-root (docker) or graphroot (podman). */
  root: string;
  /** Loads a docker-archive. */
  load(archivePath: string): Promise<void>;
  /** Undefined when the engine does not have the image. */
  inspect(ref: string): Promise<EngineImage | undefined>;
  listImages(): Promise<ListedImage[]>;
  /** Writes the image as a docker-archive. */
  save(ref: string, outPath: string): Promise<void>;
  /** Runs the image's default command with no network and removes the container. */
  run(ref: string): Promise<ContainerRun>;
  pull(ref: string, options?: PullOptions): Promise<void>;
  pullRecords(imageId: string, layerDigests: readonly string[]): Promise<PullRecords>;
  /** Idempotent; always safe to call, also after a failed operation or an abort. */
  stop(): Promise<void>;
}

export interface EngineStartOptions {
  engine: EngineName;
  storageDriver: string;
  /** Where the engine keeps images (default: inside its private dir; removed at stop unless keepDataRoot). */
  dataRoot?: string;
  /** Keep dataRoot after stop (a store bake captures it, verification owns it). */
  keepDataRoot?: boolean;
  /** dockerd / podman: a name in PATH or a path. */
  binary?: string;
  /** 'none' (default): no network at all; 'host' only to pull. */
  network?: EngineNetwork;
  insecureRegistries?: readonly string[];
  /** podman: an empty graphroot with this store (read-only) in additionalimagestores. */
  additionalImageStore?: string;
  tmpBase?: string;
  signal?: AbortSignal;
}

/** "sha256:<hex>" whether the engine wrote the prefix or not. */
export function withSha256Prefix(id: string): string {
  return id.startsWith('sha256:') ? id : `sha256:${id}`;
}

/** The options dockerd.ts and podman.ts take the same way, without the undefined ones. */
export function sharedStartOptions(options: EngineStartOptions): { binary?: string; network?: EngineNetwork; insecureRegistries?: string[]; tmpBase?: string; signal?: AbortSignal } {
  return {
    ...(options.binary ? { binary: options.binary } : {}),
    ...(options.network ? { network: options.network } : {}),
    ...(options.insecureRegistries ? { insecureRegistries: [...options.insecureRegistries] } : {}),
    ...(options.tmpBase ? { tmpBase: options.tmpBase } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

const ENGINE_PROGRAM: Record<EngineName, { binary: string; debianPackage: string }> = {
  docker: { binary: 'dockerd', debianPackage: 'docker.io' },
  podman: { binary: 'podman', debianPackage: 'podman' },
};

/** The engine binary's own `--version` line (dockerd: ~0.2 s, podman: ~0.1 s; no daemon starts). */
export async function engineBinaryVersion(engine: EngineName, binary?: string, signal?: AbortSignal): Promise<string> {
  const { debianPackage } = ENGINE_PROGRAM[engine];
  const path = await resolveBinary(binary ?? ENGINE_PROGRAM[engine].binary, debianPackage);
  const r = await runProgram(path, ['--version'], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) {
    const why = (r.failure ?? (r.stderr || `exit code ${r.exitCode}`)).split('\n')[0];
    throw new EngineError('E_ENGINE_MISSING', `${path} --version failed: ${why}; install the engine (apt-get install ${debianPackage}) or pass its path`);
  }
  return r.stdout.trim();
}
