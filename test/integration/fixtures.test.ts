import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLayer } from '../../devkit/layers.js';
import { assertFidelityOutput, MULTI_AMD64_OUTPUT, pushFixtureImages, SAMPLE_OUTPUT, type FixtureImages } from '../fixtures/images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';

const run = promisify(execFile);

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

async function getManifest(host: string, repository: string, reference: string, headers: Record<string, string> = {}) {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { headers: { Accept: ACCEPT, ...headers } });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, digest: res.headers.get('docker-content-digest'), body, json: res.status === 200 ? JSON.parse(body.toString()) : undefined };
}

async function blobStatus(host: string, repository: string, digest: string): Promise<number> {
  const res = await fetch(`http://${host}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
  return res.status;
}

function split(ref: string): { host: string; repository: string; tag: string } {
  const m = /^([^/]+)\/(.+):([^:/]+)$/.exec(ref)!;
  return { host: m[1]!, repository: m[2]!, tag: m[3]! };
}

describe('fixture registry and images', () => {
  let registry: TestRegistry;
  let images: FixtureImages;

  beforeAll(async () => {
    registry = await startRegistry();
    images = await pushFixtureImages(registry);
  });
  afterAll(async () => {
    await registry?.close();
  });

  it('serves each image under its tag with the digests the fixture reports', async () => {
    for (const [ref, image] of [
      [images.sample, images.sampleImage],
      [images.fidelity, images.fidelityImage],
    ] as const) {
      const { host, repository, tag } = split(ref);
      const m = await getManifest(host, repository, tag);
      expect(m.status).toBe(200);
      expect(m.digest).toBe(image.manifest.digest);
      expect(m.json.config.digest).toBe(image.config.digest);
      expect(m.json.layers.map((l: { digest: string }) => l.digest)).toEqual(image.layers.map((l) => l.digest));
      for (const l of image.layers) expect(await blobStatus(host, repository, l.digest)).toBe(200);
      expect(await blobStatus(host, repository, image.config.digest)).toBe(200);
    }
  });

  it('serves the multi-platform tag as an OCI index with linux/amd64 and linux/arm64/v8 manifests that differ', async () => {
    const { host, repository, tag } = split(images.multi);
    const index = await getManifest(host, repository, tag);
    expect(index.digest).toBe(images.multiIndex.digest);
    expect(index.json.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.json.manifests.map((m: { platform: unknown; digest: string }) => [m.platform, m.digest])).toEqual([
      [{ os: 'linux', architecture: 'amd64' }, images.multiAmd64.manifest.digest],
      [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, images.multiArm64.manifest.digest],
    ]);
    const arm = await getManifest(host, repository, images.multiArm64.manifest.digest);
    expect(arm.status).toBe(200);
    const amdLayers = new Set(images.multiAmd64.layers.map((l) => l.digest));
    expect(images.multiArm64.layers.some((l) => amdLayers.has(l.digest))).toBe(false);
    const config = await fetch(`http://${host}/v2/${repository}/blobs/${images.multiArm64.config.digest}`).then((r) => r.json() as Promise<{ os: string; architecture: string; variant?: string }>);
    expect([config.os, config.architecture, config.variant]).toEqual(['linux', 'arm64', 'v8']);
  });

  it('pushes the same digests every time (deterministic layers)', async () => {
    const again = await startRegistry();
    try {
      const second = await pushFixtureImages(again);
      expect(second.multiIndex).toEqual(images.multiIndex);
      expect(second.fidelityImage).toEqual(images.fidelityImage);
    } finally {
      await again.close();
    }
    const entries = [{ type: 'file' as const, path: 'b/x', content: 'x' }, { type: 'dir' as const, path: 'a' }];
    const [one, two] = await Promise.all([buildLayer(entries), buildLayer([...entries].reverse())]);
    expect(one.digest).toBe(two.digest);
  });

  it('keeps its content across stop() and start() on the same port', async () => {
    const { host, repository, tag } = split(images.sample);
    await registry.stop();
    await registry.stop();
    await expect(fetch(`http://${host}/v2/`)).rejects.toThrow();
    await registry.start();
    expect((await getManifest(host, repository, tag)).digest).toBe(images.sampleImage.manifest.digest);
  });

  it('runs: the images work in a real engine (podman) and the fidelity image shows every property', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ctrbake-fixture-podman-'));
    const storageConf = join(dir, 'storage.conf');
    await writeFile(storageConf, `[storage]\ndriver = "vfs"\nrunroot = "${dir}/runroot"\ngraphroot = "${dir}/root"\n`);
    const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf };
    const base = ['--root', `${dir}/root`, '--runroot', `${dir}/runroot`, '--storage-driver', 'vfs', '--tmpdir', `${dir}/tmp`, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
    const podman = async (...args: string[]) => {
      try {
        return (await run('podman', [...base, ...args], { env })).stdout;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('test prerequisite missing: podman (Debian package podman)');
        throw error;
      }
    };
    const runImage = async (ref: string) => {
      await podman('pull', '-q', '--tls-verify=false', ref);
      return podman('run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', ref);
    };
    try {
      assertFidelityOutput(await runImage(images.fidelity));
      expect((await runImage(images.sample)).trim()).toBe(SAMPLE_OUTPUT);
      expect((await runImage(images.multi)).trim()).toBe(MULTI_AMD64_OUTPUT);
    } finally {
      await podman('system', 'reset', '-f').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('fixture registry with auth', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: true });
  });
  afterAll(async () => {
    await registry?.close();
  });

  it('refuses requests without credentials and accepts pushes with the authfile', async () => {
    const res = await fetch(`http://${registry.host}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
    const images = await pushFixtureImages(registry);
    const { host, repository, tag } = split(images.sample);
    expect((await getManifest(host, repository, tag)).status).toBe(401);
    const basic = `Basic ${Buffer.from(`${registry.auth!.username}:${registry.auth!.password}`).toString('base64')}`;
    const ok = await getManifest(host, repository, tag, { Authorization: basic });
    expect(ok.digest).toBe(images.sampleImage.manifest.digest);
  });
});
