/**
 * A private podman for one run. Podman has no daemon: "starting" it means preparing a private
 * directory with its own configuration, so no host config or storage is read or written:
 *
 *   PRIVATE=/tmp/ctrbake-p-XXXXXX (0700)
 *     root/             --root (graphroot), unless the caller gives one (store mode keeps it)
 *     run/              --runroot
 *     tmp/              libpod tmp_dir (file locks, exit files), image copy staging
 *     storage.conf      CONTAINERS_STORAGE_CONF
 *     containers.conf   CONTAINERS_CONF (only this file is read): cgroupfs, no events log,
 *                       file locks (not the host-wide /dev/shm/libpod_lock), network none
 *     registries.conf   CONTAINERS_REGISTRIES_CONF: no search registries; insecure ones if asked
 *     home/.config/containers/policy.json, registries.d/   HOME is private: c/image reads
 *                       these instead of /etc/containers/
 *
 * network 'none' (the default) runs every podman command inside a new, empty network
 * namespace (`unshare --net`), so nothing can reach a registry. Containers run by tests
 * need `--network none` and, on this kind of machine, `--ulimit nofile=1024:1024
 * --ulimit nproc=1024:1024` (see RUN_ARGS).
 *
 * stop() (also registered with registerCleanup) ends any process whose command line names
 * PRIVATE or the root (conmon, containers), unmounts everything under them (podman's overlay
 * driver bind-mounts its own home, containers leave overlay and shm mounts), then removes
 * PRIVATE (and an external root unless keepRoot).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, EngineError } from '../errors.js';
import { registerCleanup } from '../util/cleanup.js';
import { runProgram } from '../util/process.js';
import type { EngineNetwork } from './dockerd.js';
import { mountsUnder } from './mounts.js';
import { checkPrivileges, resolveBinary } from './prerequisites.js';
import { DEFAULT_ENGINE_TMP_BASE, makeEnginePrivateDir, removeEngineDirs } from './private-dir.js';
import { descendantsOf, processesMentioning, signalProcess, terminateProcess } from './processes.js';

export type PodmanStorageDriver = 'overlay' | 'vfs';

/** Flags a containerized `podman run` needs here (DESIGN.md, checked facts). */
export const PODMAN_RUN_ARGS: readonly string[] = ['--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export interface PodmanOptions {
  storageDriver: PodmanStorageDriver;
  /** External graph root (created if missing). Default: PRIVATE/root, removed at stop. */
  root?: string;
  /** Keep the external root at stop. Needs root. */
  keepRoot?: boolean;
  /** podman binary: name in PATH or a path. Default "podman". */
  binary?: string;
  /** 'none' (default): every podman command runs in an empty network namespace. */
  network?: EngineNetwork;
  insecureRegistries?: string[];
  /**
   * A store (mounted read-only by the caller) to list in additionalimagestores. podman 4.3
   * ignores additionalimagestores when --root, --runroot or --storage-driver are on its
   * command line, so those then come from storage.conf only.
   */
  additionalImageStore?: string;
  tmpBase?: string;
  signal?: AbortSignal;
}

export interface PodmanExecOptions {
  signal?: AbortSignal;
  /** Bytes or a file for stdin. */
  input?: string | Uint8Array;
  inputFile?: string;
  /** Write stdout to this file instead of returning it. */
  stdoutFile?: string;
  /** Do not throw on a non-zero exit. */
  reject?: boolean;
}

export interface PodmanExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunningPodman {
  privateDir: string;
  root: string;
  runroot: string;
  storageDriver: PodmanStorageDriver;
  /** e.g. "4.3.1". */
  version: string;
  /** The environment every podman command gets (points at the private configs). */
  env: Record<string, string>;
  /** Global flags every podman command gets (--root, --runroot, --storage-driver...). */
  globalArgs: readonly string[];
  /** Runs `podman <globalArgs> <args>`; a failure throws E_ENGINE_COMMAND with stderr. */
  exec(args: readonly string[], options?: PodmanExecOptions): Promise<PodmanExecResult>;
  stop(): Promise<void>;
}

function toml(s: string): string {
  return JSON.stringify(s);
}

export async function startPodman(options: PodmanOptions): Promise<RunningPodman> {
  if (options.keepRoot && !options.root) throw new ConfigError('E_CONFIG', 'keepRoot needs an external root to keep');
  if (options.storageDriver !== 'overlay' && options.storageDriver !== 'vfs') {
    throw new ConfigError('E_CONFIG', `podman storage driver must be overlay or vfs, got ${String(options.storageDriver)}`);
  }
  options.signal?.throwIfAborted();
  const network = options.network ?? 'none';
  const podman = await resolveBinary(options.binary ?? 'podman', 'podman');
  const unshare = network === 'none' ? await resolveBinary('unshare', 'util-linux') : '';
  await checkPrivileges('a private podman');

  // A caller's filesystem mounted at or under an external root is not ours to unmount.
  const preexistingMounts = new Set(options.root ? await mountsUnder([resolve(options.root)]) : []);
  const privateDir = await makeEnginePrivateDir('ctrbake-p-', options.tmpBase ?? DEFAULT_ENGINE_TMP_BASE);
  const root = options.root ? resolve(options.root) : join(privateDir, 'root');
  const runroot = join(privateDir, 'run');
  const tmp = join(privateDir, 'tmp');
  const home = join(privateDir, 'home');
  let stopping: Promise<void> | undefined;
  let exec: RunningPodman['exec'] | undefined;
  const teardown = (): Promise<void> => {
    stopping ??= (async () => {
      // Containers first, through podman itself (unmounts their rootfs, ends conmon).
      if (exec) await exec(['rm', '--all', '--force', '--time', '2'], { reject: false, signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
      // Then anything still naming our dirs (a hung conmon, a podman killed mid-way) and its children.
      for (const dir of [privateDir, root]) {
        for (const p of await processesMentioning(dir)) {
          if (p.pid === process.pid) continue;
          for (const child of (await descendantsOf(p.pid)).reverse()) signalProcess(child.pid, 'SIGKILL');
          await terminateProcess(p.pid, 10_000);
        }
      }
      await removeEngineDirs('podman', privateDir, root, Boolean(options.root && !options.keepRoot), preexistingMounts);
      unregister();
    })();
    return stopping;
  };
  const unregister = registerCleanup(`private podman ${privateDir}`, teardown);

  try {
    const configDir = join(home, '.config', 'containers');
    await Promise.all([root, runroot, tmp, join(tmp, 'copy'), join(configDir, 'registries.d'), join(privateDir, 'networks')].map((d) => mkdir(d, { recursive: true, mode: 0o700 })));
    const storageConf = join(privateDir, 'storage.conf');
    const additional = options.additionalImageStore === undefined ? '' : `[storage.options]\nadditionalimagestores = [${toml(options.additionalImageStore)}]\n`;
    await writeFile(storageConf, `[storage]\ndriver = ${toml(options.storageDriver)}\ngraphroot = ${toml(root)}\nrunroot = ${toml(runroot)}\n${additional}`);
    const containersConf = join(privateDir, 'containers.conf');
    await writeFile(
      containersConf,
      [
        '[containers]',
        'netns = "none"',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "none"',
        'lock_type = "file"',
        `tmp_dir = ${toml(join(tmp, 'libpod'))}`,
        `static_dir = ${toml(join(root, 'libpod'))}`,
        `volume_path = ${toml(join(root, 'volumes'))}`,
        `image_copy_tmp_dir = ${toml(join(tmp, 'copy'))}`,
        '[network]',
        `network_config_dir = ${toml(join(privateDir, 'networks'))}`,
        '',
      ].join('\n'),
    );
    const registriesConf = join(privateDir, 'registries.conf');
    await writeFile(
      registriesConf,
      ['unqualified-search-registries = []', ...(options.insecureRegistries ?? []).map((r) => `[[registry]]\nlocation = ${toml(r)}\ninsecure = true`), ''].join('\n'),
    );
    await writeFile(join(configDir, 'policy.json'), `${JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] })}\n`);

    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      TMPDIR: tmp,
      CONTAINERS_CONF: containersConf,
      CONTAINERS_STORAGE_CONF: storageConf,
      CONTAINERS_REGISTRIES_CONF: registriesConf,
    };
    const storageArgs = options.additionalImageStore === undefined ? ['--root', root, '--runroot', runroot, '--storage-driver', options.storageDriver] : [];
    const globalArgs = [...storageArgs, '--tmpdir', join(tmp, 'libpod'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];

    exec = async (args: readonly string[], execOptions: PodmanExecOptions = {}): Promise<PodmanExecResult> => {
      const file = network === 'none' ? unshare : podman;
      const argv = network === 'none' ? ['--net', '--', podman, ...globalArgs, ...args] : [...globalArgs, ...args];
      const signal = execOptions.signal ?? options.signal;
      const result = await runProgram(file, argv, {
        env,
        ...(signal ? { signal } : {}),
        ...(execOptions.input !== undefined ? { input: execOptions.input } : {}),
        ...(execOptions.inputFile !== undefined ? { inputFile: execOptions.inputFile } : {}),
        ...(execOptions.stdoutFile !== undefined ? { stdoutFile: execOptions.stdoutFile } : {}),
      });
      const out = { stdout: result.stdout, stderr: result.failure ?? result.stderr, exitCode: result.exitCode };
      if (out.exitCode !== 0 && execOptions.reject !== false) {
        throw new EngineError('E_ENGINE_COMMAND', `podman ${args.join(' ')} failed (exit ${out.exitCode}): ${out.stderr.trim().split('\n').slice(-10).join('\n')}`, {
          details: { args: [...args], exitCode: out.exitCode },
        });
      }
      return out;
    };
    const version = (await exec(['version', '--format', '{{.Client.Version}}'])).stdout.trim();
    const run = exec;
    return { privateDir, root, runroot, storageDriver: options.storageDriver, version, env, globalArgs, exec: run, stop: teardown };
  } catch (error) {
    await teardown();
    throw error;
  }
}
