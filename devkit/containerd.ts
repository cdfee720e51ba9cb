/**
 * A private containerd for tests (the host's /usr/bin/containerd, 1.6 on Debian 12): root,
 * state and sockets in one private 0700 temp dir (or a given root), the CRI plugin off, never
 * the host's socket or /var/lib/containerd. `ctr` talks to it through `--address`.
 * stop() ends only this process (SIGTERM, then SIGKILL) and unmounts what it left under its
 * own dirs; close() also removes the temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type Result } from 'execa';

export const CONTAINERD_BINARY = '/usr/bin/containerd';
export const CTR_BINARY = '/usr/bin/ctr';
const READY_DEADLINE_MS = 20_000;

export interface TestContainerd {
  /** The containerd root (content store, meta.db, snapshotters). */
  root: string;
  address: string;
  version: string;
  /** `ctr --address ADDRESS -n NAMESPACE ARGS`; rejects on a non-zero exit with ctr's output. */
  ctr(namespace: string, args: readonly string[], options?: { reject?: boolean }): Promise<Result>;
  /** The daemon's log so far. */
  log(): string;
  stop(): Promise<void>;
  close(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Starts containerd on `root` (default: a fresh dir in the private temp dir); `prefix` runs it through e.g. nsenter (a device's mount namespace). */
export async function startContainerd(options: { root?: string; prefix?: readonly string[] } = {}): Promise<TestContainerd> {
  for (const binary of [CONTAINERD_BINARY, CTR_BINARY]) {
    if (!(await exists(binary))) throw new Error(`${binary} is missing: install Debian's containerd package (apt-get install containerd) to run this test`);
  }
  // Short path: the socket path must stay under 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'cd-'));
  const root = options.root ?? join(dir, 'root');
  const state = join(dir, 'state');
  const address = join(dir, 'c.sock');
  if (!options.prefix) await mkdir(root, { recursive: true, mode: 0o711 });
  await mkdir(state, { mode: 0o711 });
  const config = [
    'version = 2',
    `root = ${JSON.stringify(root)}`,
    `state = ${JSON.stringify(state)}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]',
    '[grpc]',
    `  address = ${JSON.stringify(address)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '  level = "debug"',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(dir, 'opt'))}`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.toml'), config);
  const logPath = join(dir, 'containerd.log');
  const logFd = openSync(logPath, 'a');
  const [command, ...args] = [...(options.prefix ?? []), CONTAINERD_BINARY, '--config', join(dir, 'config.toml')];
  let child: ChildProcess | undefined = spawn(command!, args, { stdio: ['ignore', logFd, logFd], detached: false });
  closeSync(logFd);
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const ctr = (namespace: string, args: readonly string[], opts: { reject?: boolean } = {}) =>
    // In the same mount namespace as the daemon: ctr mounts a snapshot itself (to read the
    // image's /etc/passwd for `run`), from where the daemon's root is visible.
    execa(options.prefix?.[0] ?? CTR_BINARY, [...(options.prefix ? [...options.prefix.slice(1), CTR_BINARY] : []), '--address', address, '--namespace', namespace, ...args], {
      all: true,
      reject: opts.reject ?? true,
      timeout: 120_000,
    });
  const stop = async () => {
    const c = child;
    child = undefined;
    if (c && c.exitCode === null && c.pid !== undefined) {
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // Mounts containerd leaves under its own dirs only (tmpmounts, snapshots of a killed run).
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
    for (const m of mounts.filter((p) => p.startsWith(`${dir}/`) || p.startsWith(`${root}/`)).reverse()) await execa('umount', ['-l', m], { reject: false });
  };
  const deadline = Date.now() + READY_DEADLINE_MS;
  let version = '';
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited at start (code ${child.exitCode}):\n${log().slice(-4000)}`);
    const r = await execa(CTR_BINARY, ['--address', address, 'version'], { reject: false, all: true, timeout: 5000 });
    const m = /Server:[\s\S]*?Version:\s*(\S+)/.exec(String(r.all));
    if (r.exitCode === 0 && m) {
      version = m[1]!;
      break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`containerd did not answer on ${address} within ${READY_DEADLINE_MS} ms:\n${log().slice(-4000)}`);
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return {
    root,
    address,
    version,
    ctr,
    log,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
