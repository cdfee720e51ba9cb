/**
 * The private dockerd: starts, loads and runs a trivial image, stops leaving nothing behind,
 * never touches the host's docker. Real dockerd 20.10 + containerd, no mocks.
 */
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDockerArchive } from '../../src/formats/docker-archive.js';
import { shimSocketPath, startDockerd, type RunningDockerd } from '../../src/engine/dockerd.js';
import { mountsUnder } from '../../src/engine/mounts.js';
import { isRunning, processesMentioning } from '../../src/engine/processes.js';
import { pendingCleanups, runCleanups } from '../../src/util/cleanup.js';
import { buildLayer } from '../../devkit/layers.js';
import { writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';

const OUTPUT = 'hello from the private dockerd';
const TAG = 'ctrbake-test/engine:1';

async function hostDockerState(): Promise<string> {
  const probe = async (p: string) => {
    try {
      const s = await stat(p);
      return `${p}:${s.mtimeMs}`;
    } catch {
      return `${p}:absent`;
    }
  };
  return (await Promise.all(['/var/run/docker.sock', '/run/docker.sock', '/var/lib/docker', '/etc/docker/daemon.json'].map(probe))).join(' ');
}

/** A one-layer busybox image as a docker-archive, tagged TAG. */
async function writeTrivialArchive(dir: string): Promise<{ path: string; imageId: string }> {
  const busybox = await readFile('/bin/busybox').catch(() => {
    throw new Error('test prerequisite missing: /bin/busybox (Debian package busybox-static)');
  });
  const layer = await buildLayer([
    { type: 'file', path: 'bin/busybox', content: busybox, mode: 0o755 },
    { type: 'symlink', path: 'bin/echo', target: 'busybox' },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'symlink', path: 'bin/sleep', target: 'busybox' },
  ]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/echo', OUTPUT] },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    }),
  );
  const hex = createHash('sha256').update(config).digest('hex');
  await writeFile(join(dir, 'layer.tar.gz'), layer.gz);
  const path = join(dir, 'image.tar');
  await writeDockerArchive(path, [{ configBytes: config, configName: `${hex}.json`, layers: [{ path: join(dir, 'layer.tar.gz'), name: 'layer.tar.gz' }], repoTags: [TAG] }]);
  return { path, imageId: `sha256:${hex}` };
}

/** docker run --rm --network none IMAGE; returns stdout (non-TTY log frames demultiplexed). */
async function runOnce(docker: Dockerode, image: string): Promise<string> {
  const container = await docker.createContainer({ Image: image, HostConfig: { NetworkMode: 'none' } });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    let out = '';
    for (let i = 0; i + 8 <= raw.length; ) {
      const size = raw.readUInt32BE(i + 4);
      if (raw[i] === 1) out += raw.subarray(i + 8, i + 8 + size).toString();
      i += 8 + size;
    }
    expect(StatusCode, out).toBe(0);
    return out;
  } finally {
    await container.remove({ force: true });
  }
}

async function expectNothingLeft(d: RunningDockerd): Promise<void> {
  expect(await isRunning(d.pid), 'dockerd still running').toBe(false);
  expect(await isRunning(d.containerdPid), 'containerd still running').toBe(false);
  expect(await processesMentioning(d.privateDir), 'processes naming the private dir').toEqual([]);
  expect(await mountsUnder([d.privateDir, d.dataRoot]), 'mounts left').toEqual([]);
  await expect(stat(d.privateDir), 'private dir left').rejects.toMatchObject({ code: 'ENOENT' });
}

describe('startDockerd', () => {
  let work: string;
  let archive: { path: string; imageId: string };
  let hostBefore: string;

  beforeAll(async () => {
    hostBefore = await hostDockerState();
    work = await mkdtemp(join(tmpdir(), 'ctrbake-engine-test-'));
    archive = await writeTrivialArchive(work);
  });
  afterAll(async () => {
    await runCleanups();
    await rm(work, { recursive: true, force: true });
    expect(await hostDockerState(), 'host docker paths changed').toBe(hostBefore);
  });

  it('runs a private overlay2 daemon: load, run with --network none, stop leaves nothing', async () => {
    const d = await startDockerd({ storageDriver: 'overlay2' });
    try {
      expect(d.version).toMatch(/^\d+\.\d+/);
      expect(d.socketPath.startsWith(d.privateDir)).toBe(true);
      expect(((await stat(d.privateDir)).mode & 0o777).toString(8)).toBe('700');
      // Its identity key and config live in the private dir, not /etc/docker.
      await stat(join(d.privateDir, 'key.json'));
      // The daemon sits in its own network namespace with only a loopback device.
      expect(await readlink(`/proc/${d.pid}/ns/net`)).not.toBe(await readlink('/proc/self/ns/net'));
      const devices = (await readFile(`/proc/${d.pid}/net/dev`, 'utf8')).split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim());
      expect(devices).toEqual(['lo']);

      await d.docker.loadImage(archive.path).then(
        (stream) =>
          new Promise((resolve, reject) => {
            d.docker.modem.followProgress(stream, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res)));
          }),
      );
      const info = await d.docker.getImage(TAG).inspect();
      expect(info.Id).toBe(archive.imageId);
      expect(await runOnce(d.docker, TAG)).toBe(`${OUTPUT}\n`);
      // While running, overlay mounts live only under the private dir (checked gone below).
    } finally {
      await d.stop();
    }
    await expectNothingLeft(d);
    expect(pendingCleanups().filter((n) => n.includes(d.privateDir))).toEqual([]);
    await d.stop(); // idempotent
  });

  it('runs vfs with an external data-root kept after a clean stop', async () => {
    const dataRoot = join(work, 'data-root');
    const d = await startDockerd({ storageDriver: 'vfs', dataRoot, keepDataRoot: true });
    try {
      expect(d.dataRoot).toBe(dataRoot);
      const stream = await d.docker.loadImage(archive.path);
      await new Promise((resolve, reject) => d.docker.modem.followProgress(stream, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
      expect(await runOnce(d.docker, TAG)).toBe(`${OUTPUT}\n`);
    } finally {
      await d.stop();
    }
    await expectNothingLeft(d);
    expect((await readdir(dataRoot)).sort()).toEqual(expect.arrayContaining(['image', 'vfs']));
    expect(await readdir(join(dataRoot, 'image', 'vfs', 'imagedb', 'content', 'sha256'))).toEqual([archive.imageId.slice(7)]);
  });

  it('after dockerd was SIGKILLed with a container running: kills shim and container, unmounts, removes', async () => {
    const d = await startDockerd({ storageDriver: 'overlay2' });
    const stream = await d.docker.loadImage(archive.path);
    await new Promise((resolve, reject) => d.docker.modem.followProgress(stream, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
    const container = await d.docker.createContainer({ Image: TAG, Cmd: ['/bin/sleep', '1000'], HostConfig: { NetworkMode: 'none' } });
    await container.start();
    const { State } = await container.inspect();
    const shims = (await processesMentioning(join(d.privateDir, 'c.sock'))).filter((p) => p.argv[0]!.includes('containerd-shim'));
    expect(shims.length).toBe(1);
    expect(await isRunning(State.Pid)).toBe(true);
    expect((await mountsUnder([d.dataRoot])).length).toBeGreaterThan(0);
    const shimSocket = shimSocketPath(join(d.privateDir, 'c.sock'), shims[0]!.argv);
    expect((await stat(shimSocket)).isSocket()).toBe(true);
    process.kill(d.pid, 'SIGKILL');
    await d.stop();
    await expectNothingLeft(d);
    expect(await isRunning(State.Pid), 'container process left').toBe(false);
    expect(await isRunning(shims[0]!.pid), 'shim left').toBe(false);
    await expect(stat(shimSocket), 'shim socket left in /run/containerd/s').rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is torn down by the process cleanup registry (what SIGINT/SIGTERM run)', async () => {
    const d = await startDockerd({ storageDriver: 'overlay2' });
    expect(pendingCleanups()).toContain(`private dockerd ${d.privateDir}`);
    expect(await runCleanups()).toEqual([]);
    await expectNothingLeft(d);
  });

  it('fails with E_ENGINE_START and the daemon log tail, and cleans up', async () => {
    const base = await mkdtemp(join(work, 'b'));
    const error = await startDockerd({ storageDriver: 'overlay2', insecureRegistries: ['not a registry!'], tmpBase: base }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_ENGINE_START' });
    expect((error as Error).message).toMatch(/last lines of its log:\n.*not a registry/s);
    expect(await readdir(base), 'private dir left').toEqual([]);
  });

  it('overlay2 on an overlayfs data-root: E_ENGINE_START suggesting vfs; the caller\'s mount stays', async () => {
    const base = join(work, 'ovl');
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(base, d), { recursive: true });
    const merged = join(base, 'merged');
    await execa('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${join(base, 'lower')},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, merged]);
    try {
      const error = await startDockerd({ storageDriver: 'overlay2', dataRoot: merged, keepDataRoot: true }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'E_ENGINE_START', message: expect.stringContaining('use the vfs storage driver') });
      expect(await mountsUnder([merged])).toEqual([merged]);
    } finally {
      await execa('umount', [merged]);
    }
  });

  it('says which package to install when dockerd is missing', async () => {
    await expect(startDockerd({ storageDriver: 'overlay2', binary: '/nonexistent/dockerd' })).rejects.toMatchObject({
      code: 'E_ENGINE_MISSING',
      message: expect.stringContaining('docker.io'),
    });
  });

  it('refuses a socket path that is too long', async () => {
    const base = await mkdtemp(join(work, 'x'.repeat(80)));
    await expect(startDockerd({ storageDriver: 'overlay2', tmpBase: base })).rejects.toMatchObject({ code: 'E_ENGINE_START', message: expect.stringContaining('under 100') });
    expect(await readdir(base)).toEqual([]);
  });
});
