/**
 * A private dockerd for one run: nothing of the host's docker is used or touched.
 *
 *   PRIVATE=/tmp/ctrbake-d-XXXXXX (0700; short, unix sockets live here)
 *     d.sock            the only API socket (never TCP, never /var/run/docker.sock)
 *     daemon.json       empty config (--config-file), so /etc/docker/daemon.json is not read
 *     x/                --exec-root (runtime state, netns, runc state)
 *     d.pid             --pidfile
 *     data/             --data-root, unless the caller gives one (store mode keeps it)
 *     c.sock, containerd/, containerd.toml   a private containerd that we start ourselves
 *     dockerd.log, containerd.log
 *
 * Why our own containerd: dockerd 20.10 uses the host's system containerd whenever
 * /run/containerd/containerd.sock exists (and only otherwise starts one under exec-root).
 * Starting containerd ourselves with a private config and passing --containerd makes the
 * daemon private in every case, and gives us its pid for teardown.
 *
 * network 'none' (the default) runs containerd and dockerd inside a new, empty network
 * namespace (`unshare --net`): the daemon cannot reach any registry, so an offline bake
 * cannot touch the network even by mistake. Fetchers that pull pass network 'host'.
 *
 * Teardown (stop(), also registered with registerCleanup for SIGINT/SIGTERM) is idempotent:
 * SIGTERM dockerd, SIGKILL after a deadline; containerd shims that name our containerd socket
 * and their children; containerd; any other process whose command line names PRIVATE; then
 * unmount everything under PRIVATE and the data-root (deepest first, lazy as last resort),
 * then remove PRIVATE (and an external data-root unless keepDataRoot).
 *
 * Known host touch, only when containers run (tests; bake never runs containers): containerd
 * 1.6 shims put their sockets in /run/containerd/s/<hash of our socket path>, removed when
 * the shim exits.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// dockerode is imported when a daemon starts: it costs ~0.5 s of start-up that a CLI call
// with nothing to do (an up-to-date bake) should not pay.
import type Dockerode from 'dockerode';
import { execa, type Options } from 'execa';
import { ConfigError, EngineError } from '../errors.js';
import { registerCleanup } from '../util/cleanup.js';
import { mountsUnder } from './mounts.js';
import { checkPrivileges, resolveBinary } from './prerequisites.js';
import { checkSocketPath, DEFAULT_ENGINE_TMP_BASE, makeEnginePrivateDir, removeEngineDirs } from './private-dir.js';
import { descendantsOf, processesMentioning, signalProcess, terminateProcess, waitForExit } from './processes.js';

export type DockerStorageDriver = 'overlay2' | 'vfs';
export type EngineNetwork = 'none' | 'host';

export interface DockerdOptions {
  storageDriver: DockerStorageDriver;
  /** External data-root (created if missing). Default: PRIVATE/data, removed at stop. */
  dataRoot?: string;
  /** Keep the external data-root at stop (store capture after a clean stop). Needs dataRoot. */
  keepDataRoot?: boolean;
  /** dockerd binary: name in PATH or a path. Default "dockerd". */
  binary?: string;
  /** containerd binary. Default "containerd". */
  containerdBinary?: string;
  /** Default 60 s. */
  startTimeoutMs?: number;
  /** Grace time after SIGTERM before SIGKILL. Default 20 s. */
  stopTimeoutMs?: number;
  /** Plain-HTTP registries (network 'host' only makes sense with these). */
  insecureRegistries?: string[];
  /** 'none' (default): the daemon runs in an empty network namespace. */
  network?: EngineNetwork;
  /** Base of the private dir. Default /tmp (short: socket paths must stay < 100 bytes). */
  tmpBase?: string;
  /**
   * Extra daemon.json keys (a device's generated config, say). A `storage-driver` here must
   * equal storageDriver and replaces the flag (dockerd refuses a directive given twice).
   */
  daemonConfig?: Record<string, unknown>;
  signal?: AbortSignal;
}

export interface RunningDockerd {
  socketPath: string;
  dataRoot: string;
  privateDir: string;
  /** dockerd's server version, e.g. "20.10.24+dfsg1". */
  version: string;
  storageDriver: DockerStorageDriver;
  /** pid of dockerd (and of our containerd), for tests and diagnostics. */
  pid: number;
  containerdPid: number;
  docker: Dockerode;
  logTail(lines?: number): Promise<string>;
  /** Idempotent; always safe to call, also after a failed operation. */
  stop(): Promise<void>;
}

interface Started {
  pid: number;
  exited: () => boolean;
  exitCode: () => number | undefined;
}

function spawnDaemon(binary: string, args: string[], logPath: string, network: EngineNetwork, unshare: string): Started {
  const file: string = network === 'none' ? unshare : binary;
  const argv: string[] = network === 'none' ? ['--net', '--', binary, ...args] : args;
  // A clean environment: no proxies, no DOCKER_* or TMPDIR from the caller.
  const spawnOptions: Options = {
    detached: true,
    cleanup: false,
    reject: false,
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    stdin: 'ignore',
    stdout: { file: logPath, append: true },
    stderr: { file: logPath, append: true },
  };
  const child = execa(file, argv, spawnOptions);
  let done = false;
  let code: number | undefined;
  void child.then((r) => {
    done = true;
    code = r.exitCode;
  });
  if (child.pid === undefined) throw new EngineError('E_ENGINE_START', `could not start ${binary}`);
  return { pid: child.pid, exited: () => done, exitCode: () => code };
}

async function tail(path: string, lines: number): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').filter((l) => l !== '').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function containerdConfig(dir: string, socket: string): string {
  // TOML strings: our paths hold no quotes or backslashes (mkdtemp names), JSON quoting is valid TOML.
  const q = (s: string) => JSON.stringify(s);
  return [
    'version = 2',
    `root = ${q(join(dir, 'containerd', 'root'))}`,
    `state = ${q(join(dir, 'containerd', 'state'))}`,
    // No CRI (CNI, its own registry access), no snapshotters we do not use.
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
    '[grpc]',
    `  address = ${q(socket)}`,
    '  tcp_address = ""',
    '[ttrpc]',
    `  address = ${q(`${socket}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '[plugins]',
    '  [plugins."io.containerd.internal.v1.opt"]',
    `    path = ${q(join(dir, 'containerd', 'opt'))}`,
    '',
  ].join('\n');
}

/**
 * Where a containerd 1.6 shim listens: /run/containerd/s/<sha256 of "ADDRESS/NAMESPACE/ID">
 * (containerd's runtime/v2/shim SocketAddress), from the shim's own -namespace/-id flags.
 */
export function shimSocketPath(containerdSocket: string, shimArgv: readonly string[]): string {
  const flag = (name: string) => shimArgv[shimArgv.indexOf(name) + 1] ?? '';
  const hash = createHash('sha256').update(join(containerdSocket, flag('-namespace'), flag('-id'))).digest('hex');
  return join('/run/containerd/s', hash);
}

/** What to do about failures we know. */
function hintFor(logTail: string): string {
  if (/driver not supported|backing file system is unsupported|overlay.*not supported/i.test(logTail)) {
    return ': the data-root filesystem does not support overlay2 (it may itself be an overlay); use the vfs storage driver or a data-root on ext4/xfs';
  }
  return '';
}

async function waitFor(
  what: string,
  ready: () => Promise<boolean>,
  proc: Started,
  deadline: number,
  logPath: string,
  signal?: AbortSignal,
): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    if (await ready()) return;
    if (proc.exited()) {
      const logTail = await tail(logPath, 30);
      throw new EngineError(
        'E_ENGINE_START',
        `${what} exited during start (exit code ${proc.exitCode()})${hintFor(logTail)}; last lines of its log:\n${logTail}`,
        { details: { logTail: await tail(logPath, 30) } },
      );
    }
    if (Date.now() > deadline) {
      throw new EngineError(
        'E_ENGINE_START',
        `${what} did not become ready in time; last lines of its log:\n${await tail(logPath, 30)}`,
        { details: { logTail: await tail(logPath, 30) } },
      );
    }
    await sleep(100);
  }
}

export async function startDockerd(options: DockerdOptions): Promise<RunningDockerd> {
  if (options.keepDataRoot && !options.dataRoot) {
    throw new ConfigError('E_CONFIG', 'keepDataRoot needs an external dataRoot to keep');
  }
  if (options.storageDriver !== 'overlay2' && options.storageDriver !== 'vfs') {
    throw new ConfigError('E_CONFIG', `docker storage driver must be overlay2 or vfs, got ${String(options.storageDriver)}`);
  }
  options.signal?.throwIfAborted();
  const network = options.network ?? 'none';
  const dockerd = await resolveBinary(options.binary ?? 'dockerd', 'docker.io');
  const containerd = await resolveBinary(options.containerdBinary ?? 'containerd', 'containerd');
  const unshare = network === 'none' ? await resolveBinary('unshare', 'util-linux') : '';
  await checkPrivileges('a private dockerd');

  // A caller's filesystem mounted at or under an external data-root is not ours to unmount.
  const preexistingMounts = new Set(options.dataRoot ? await mountsUnder([resolve(options.dataRoot)]) : []);
  const privateDir = await makeEnginePrivateDir('ctrbake-d-', options.tmpBase ?? DEFAULT_ENGINE_TMP_BASE);
  const socketPath = join(privateDir, 'd.sock');
  const containerdSocket = join(privateDir, 'c.sock');
  const dataRoot = options.dataRoot ? resolve(options.dataRoot) : join(privateDir, 'data');
  const logPath = join(privateDir, 'dockerd.log');
  const containerdLog = join(privateDir, 'containerd.log');
  let dockerdProc: Started | undefined;
  let containerdProc: Started | undefined;
  let stopping: Promise<void> | undefined;

  const teardown = (): Promise<void> => {
    stopping ??= (async () => {
      const grace = options.stopTimeoutMs ?? 20_000;
      if (dockerdProc) await terminateProcess(dockerdProc.pid, grace);
      // Shims are not our children (they re-parent): they name our containerd socket.
      const shims = (await processesMentioning(containerdSocket)).filter((p) => /containerd-shim/.test(p.argv[0] ?? ''));
      for (const shim of shims) {
        for (const child of (await descendantsOf(shim.pid)).reverse()) signalProcess(child.pid, 'SIGKILL');
        signalProcess(shim.pid, 'SIGKILL');
        await waitForExit(shim.pid, 5_000);
        // A killed shim leaves its socket behind; its name is a hash of our socket path.
        await rm(shimSocketPath(containerdSocket, shim.argv), { force: true });
      }
      if (containerdProc) await terminateProcess(containerdProc.pid, grace);
      for (const stray of await processesMentioning(privateDir)) {
        if (stray.pid === process.pid) continue;
        await terminateProcess(stray.pid, 5_000);
      }
      await removeEngineDirs('dockerd', privateDir, dataRoot, Boolean(options.dataRoot && !options.keepDataRoot), preexistingMounts);
      unregister();
    })();
    return stopping;
  };
  const unregister = registerCleanup(`private dockerd ${privateDir}`, teardown);

  try {
    checkSocketPath(socketPath);
    checkSocketPath(`${containerdSocket}.ttrpc`);
    const configFile = join(privateDir, 'daemon.json');
    // dockerd 20.10 otherwise writes its identity key to /etc/docker/key.json.
    const extra = options.daemonConfig ?? {};
    for (const key of ['data-root', 'exec-root', 'pidfile', 'hosts', 'containerd', 'bridge', 'iptables', 'ip6tables']) {
      if (key in extra) throw new ConfigError('E_CONFIG', `daemonConfig must not set ${key}: the private dockerd owns it`);
    }
    if ('storage-driver' in extra && extra['storage-driver'] !== options.storageDriver) {
      throw new ConfigError('E_CONFIG', `daemonConfig storage-driver ${String(extra['storage-driver'])} differs from storageDriver ${options.storageDriver}`);
    }
    await writeFile(configFile, `${JSON.stringify({ ...extra, 'deprecated-key-path': join(privateDir, 'key.json') })}\n`, { mode: 0o600 });
    await writeFile(join(privateDir, 'containerd.toml'), containerdConfig(privateDir, containerdSocket), { mode: 0o600 });
    await mkdir(dataRoot, { recursive: true, mode: 0o710 });
    const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);

    containerdProc = spawnDaemon(containerd, ['--config', join(privateDir, 'containerd.toml'), '--log-level', 'warn'], containerdLog, network, unshare);
    const socketExists = async () => {
      try {
        return (await stat(containerdSocket)).isSocket();
      } catch {
        return false;
      }
    };
    await waitFor('containerd', socketExists, containerdProc, deadline, containerdLog, options.signal);

    const args = [
      '--data-root', dataRoot,
      '--exec-root', join(privateDir, 'x'),
      '--pidfile', join(privateDir, 'd.pid'),
      '--host', `unix://${socketPath}`,
      '--config-file', configFile,
      '--containerd', containerdSocket,
      ...('storage-driver' in extra ? [] : ['--storage-driver', options.storageDriver]),
      '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--userland-proxy=false',
      ...(options.insecureRegistries ?? []).flatMap((r) => ['--insecure-registry', r]),
    ];
    dockerdProc = spawnDaemon(dockerd, args, logPath, network, unshare);
    const { default: DockerodeClass } = await import('dockerode');
    const docker = new DockerodeClass({ socketPath });
    const ping = async () => {
      try {
        await docker.ping();
        return true;
      } catch {
        return false;
      }
    };
    await waitFor('dockerd', ping, dockerdProc, deadline, logPath, options.signal);
    const info = (await docker.version()) as { Version: string };
    const actualDriver = ((await docker.info()) as { Driver: string }).Driver;
    if (actualDriver !== options.storageDriver) {
      throw new EngineError('E_ENGINE_START', `dockerd runs storage driver ${actualDriver}, asked for ${options.storageDriver}`);
    }
    return {
      socketPath,
      dataRoot,
      privateDir,
      version: info.Version,
      storageDriver: options.storageDriver,
      pid: dockerdProc.pid,
      containerdPid: containerdProc.pid,
      docker,
      logTail: (lines = 30) => tail(logPath, lines),
      stop: teardown,
    };
  } catch (error) {
    await teardown();
    throw error;
  }
}
