/**
 * The private podman: private root/runroot/configs, loads and runs a trivial image, stop
 * leaves no process, mount or directory. Real podman 4.3, no mocks.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDockerArchive } from '../../src/formats/docker-archive.js';
import { mountsUnder } from '../../src/engine/mounts.js';
import { PODMAN_RUN_ARGS, startPodman, type RunningPodman } from '../../src/engine/podman.js';
import { isRunning, processesMentioning } from '../../src/engine/processes.js';
import { pendingCleanups, runCleanups } from '../../src/util/cleanup.js';
import { buildLayer } from '../../devkit/layers.js';

const OUTPUT = 'hello from the private podman';
const TAG = 'localhost/ctrbake-test/engine:1';

async function writeTrivialArchive(dir: string): Promise<{ path: string; imageId: string }> {
  const busybox = await readFile('/bin/busybox').catch(() => {
    throw new Error('test prerequisite missing: /bin/busybox (Debian package busybox-static)');
  });
  const layer = await buildLayer([
    { type: 'file', path: 'bin/busybox', content: busybox, mode: 0o755 },
    { type: 'symlink', path: 'bin/echo', target: 'busybox' },
    { type: 'symlink', path: 'bin/sleep', target: 'busybox' },
  ]);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/echo', OUTPUT] }, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }),
  );
  const hex = createHash('sha256').update(config).digest('hex');
  await writeFile(join(dir, 'layer.tar.gz'), layer.gz);
  const path = join(dir, 'image.tar');
  await writeDockerArchive(path, [{ configBytes: config, configName: `${hex}.json`, layers: [{ path: join(dir, 'layer.tar.gz'), name: 'layer.tar.gz' }], repoTags: [TAG] }]);
  return { path, imageId: hex };
}

async function expectNothingLeft(p: RunningPodman): Promise<void> {
  expect(await processesMentioning(p.privateDir), 'processes naming the private dir').toEqual([]);
  expect(await processesMentioning(p.root), 'processes naming the root').toEqual([]);
  expect(await mountsUnder([p.privateDir, p.root]), 'mounts left').toEqual([]);
  await expect(stat(p.privateDir), 'private dir left').rejects.toMatchObject({ code: 'ENOENT' });
}

describe('startPodman', () => {
  let work: string;
  let archive: { path: string; imageId: string };
  let hostStorage: string[];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ctrbake-podman-test-'));
    archive = await writeTrivialArchive(work);
    hostStorage = await readdir('/var/lib/containers/storage').catch(() => []);
  });
  afterAll(async () => {
    await runCleanups();
    await rm(work, { recursive: true, force: true });
  });

  it.each(['overlay', 'vfs'] as const)('%s: loads, runs with --network none, stop unmounts and removes everything', async (driver) => {
    const p = await startPodman({ storageDriver: driver });
    try {
      expect(p.version).toMatch(/^\d+\.\d+/);
      const info = JSON.parse((await p.exec(['info', '--format', 'json'])).stdout) as { store: { graphRoot: string; runRoot: string; graphDriverName: string; configFile: string } };
      expect(info.store).toMatchObject({ graphRoot: p.root, runRoot: p.runroot, graphDriverName: driver });
      expect(info.store.configFile.startsWith(p.privateDir)).toBe(true);
      await p.exec(['load', '-i', archive.path]);
      expect((await p.exec(['image', 'inspect', '--format', '{{.Id}}', TAG])).stdout).toBe(archive.imageId);
      expect((await p.exec(['run', '--rm', ...PODMAN_RUN_ARGS, TAG])).stdout).toBe(OUTPUT);
      if (driver === 'overlay') {
        // Leave a real podman overlay mount behind (an image mounted and never unmounted):
        // stop() must undo it.
        const mountpoint = (await p.exec(['image', 'mount', TAG])).stdout.trim();
        expect(mountpoint.startsWith(p.root)).toBe(true);
        expect(await mountsUnder([p.root])).toContain(mountpoint);
      }
    } finally {
      await p.stop();
    }
    await expectNothingLeft(p);
    await p.stop();
    expect(await readdir('/var/lib/containers/storage').catch(() => [])).toEqual(hostStorage);
  });

  it('keeps an external root after stop when asked, with nothing mounted', async () => {
    const root = join(work, 'root');
    const p = await startPodman({ storageDriver: 'overlay', root, keepRoot: true });
    try {
      await p.exec(['load', '-i', archive.path]);
    } finally {
      await p.stop();
    }
    await expectNothingLeft(p);
    expect(await readdir(join(root, 'overlay-images'))).toContain(archive.imageId);
  });

  it('stop() with a detached container running: container process, conmon and mounts gone', async () => {
    const p = await startPodman({ storageDriver: 'overlay' });
    let pid = 0;
    try {
      await p.exec(['load', '-i', archive.path]);
      const id = (await p.exec(['run', '-d', ...PODMAN_RUN_ARGS, TAG, '/bin/sleep', '1000'])).stdout.trim();
      pid = Number((await p.exec(['inspect', '--format', '{{.State.Pid}}', id])).stdout.trim());
      expect(await isRunning(pid)).toBe(true);
      expect((await mountsUnder([p.root])).length).toBeGreaterThan(0);
    } finally {
      await p.stop();
    }
    expect(await isRunning(pid), 'container process left').toBe(false);
    await expectNothingLeft(p);
  });

  it('is torn down by the process cleanup registry (what SIGINT/SIGTERM run)', async () => {
    const p = await startPodman({ storageDriver: 'overlay' });
    await p.exec(['load', '-i', archive.path]);
    expect(pendingCleanups()).toContain(`private podman ${p.privateDir}`);
    expect(await runCleanups()).toEqual([]);
    await expectNothingLeft(p);
  });

  it('says which package to install when podman is missing', async () => {
    await expect(startPodman({ storageDriver: 'overlay', binary: '/nonexistent/podman' })).rejects.toMatchObject({
      code: 'E_ENGINE_MISSING',
      message: expect.stringContaining('podman'),
    });
  });

  it('reports a failing command with E_ENGINE_COMMAND and its stderr', async () => {
    const p = await startPodman({ storageDriver: 'vfs' });
    try {
      await expect(p.exec(['image', 'inspect', 'no-such-image'])).rejects.toMatchObject({ code: 'E_ENGINE_COMMAND', message: expect.stringContaining('no-such-image') });
    } finally {
      await p.stop();
    }
    await expectNothingLeft(p);
  });
});
