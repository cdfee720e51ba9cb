import { spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockFile } from '../../src/formats/index.js';
import type { ProgressEvent, Reporter } from '../../src/util/reporter.js';
import { resolveLock } from '../../src/lock/resolve.js';
import { RegistryClient } from '../../src/registry/client.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST } from '../../src/formats/media-types.js';
import { pushManifest } from '../../src/registry/push.js';
import { pushFixtureImages, type FixtureImages } from '../fixtures/images.js';
import { sha256 } from '../../devkit/layers.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/ctrbake.js');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real CLI, built by `npm run build`. */
async function ctrbake(args: string[], cwd: string): Promise<CliResult> {
  try {
    await access(join(ROOT, 'dist/cli/main.js'));
  } catch {
    throw new Error('dist/ is missing: run `npm run build` before the integration tests (npm test does)');
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

function collectingReporter(): Reporter & { events: ProgressEvent[] } {
  const events: ProgressEvent[] = [];
  return { events, event: (e) => events.push(e), progress: () => undefined, result: () => undefined, error: () => undefined };
}

async function readLock(path: string): Promise<LockFile> {
  return JSON.parse(await readFile(path, 'utf8')) as LockFile;
}

const FAST = { retries: 1, initialDelayMs: 50 };

describe('ctrbake lock against a real registry', () => {
  let registry: TestRegistry;
  let images: FixtureImages;
  let dir: string;

  beforeAll(async () => {
    registry = await startRegistry();
    images = await pushFixtureImages(registry);
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-lock-test-'));
  });
  afterAll(async () => {
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('locks references given as arguments: sorted, every digest as the registry has it, one line per image', async () => {
    const out = join(dir, 'args.lock.json');
    const r = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', registry.host, images.sample, images.multi, images.fidelity, '-o', out], dir);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    const lock = await readLock(out);
    // One fact once on a terminal (stdout and stderr together): each digest, and the file written.
    for (const i of lock.images) expect((r.stdout + r.stderr).split(i.manifest.digest).length - 1, i.reference).toBe(1);
    expect((r.stdout + r.stderr).split(`wrote ${out}`).length - 1).toBe(1);
    expect(lock.lockVersion).toBe(1);
    expect(lock.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(lock.images.map((i) => i.reference)).toEqual([images.fidelity, images.multi, images.sample]);
    const [fidelity, multi, sample] = lock.images as [LockFile['images'][number], LockFile['images'][number], LockFile['images'][number]];
    expect(fidelity).toEqual({
      reference: images.fidelity,
      registry: registry.host,
      repository: 'ctrbake/fidelity',
      tag: '1.0',
      indexDigest: images.fidelityImage.manifest.digest,
      indexMediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      manifest: images.fidelityImage.manifest,
      config: images.fidelityImage.config,
      layers: images.fidelityImage.layers,
      platform: { os: 'linux', architecture: 'amd64' },
    });
    expect(multi.indexDigest).toBe(images.multiIndex.digest);
    expect(multi.indexMediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(multi.manifest).toEqual(images.multiAmd64.manifest);
    expect(multi.config).toEqual(images.multiAmd64.config);
    expect(multi.layers).toEqual(images.multiAmd64.layers);
    expect(sample.manifest).toEqual(images.sampleImage.manifest);
    expect(sample.indexDigest).toBe(images.sampleImage.manifest.digest);
    expect(r.stdout.trim().split('\n').slice(0, 3)).toEqual(lock.images.map((i) => `${i.reference} ${i.manifest.digest} linux/amd64`));
  });

  it('gives the same bytes from --images FILE, --compose FILE and arguments', async () => {
    const imagesFile = join(dir, 'images.txt');
    await writeFile(imagesFile, `# fixture images\n${images.multi}\n\n  ${images.sample}   # sample\n${images.fidelity}\n${images.sample}\n`);
    const composeFile = join(dir, 'compose.yaml');
    await writeFile(
      composeFile,
      `services:\n  app:\n    image: ${images.sample}\n  multi:\n    image: "${images.multi}"\n  fid:\n    image: ${images.fidelity}\n    read_only: true\n  built:\n    build: .\n`,
    );
    const outs = ['a', 'b', 'c'].map((n) => join(dir, `${n}.lock.json`));
    const common = ['--platform', 'linux/amd64', '--insecure-registry', registry.host];
    const results = [
      await ctrbake(['lock', ...common, '--images', imagesFile, '-o', outs[0]!], dir),
      await ctrbake(['lock', ...common, '--compose', composeFile, '-o', outs[1]!], dir),
      await ctrbake(['lock', ...common, images.fidelity, images.sample, images.multi, '-o', outs[2]!], dir),
    ];
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const [a, b, c] = await Promise.all(outs.map((o) => readFile(o)));
    expect(a!.equals(b!)).toBe(true);
    expect(a!.equals(c!)).toBe(true);
    expect((JSON.parse(a!.toString()) as LockFile).images).toHaveLength(3);
  });

  it('writes ctrbake.lock.json in the current directory by default', async () => {
    const cwd = await mkdtemp(join(dir, 'default-'));
    const r = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', registry.host, images.sample], cwd);
    expect(r.code).toBe(0);
    expect(await readdir(cwd)).toEqual(['ctrbake.lock.json']);
  });

  it('locked for linux/arm64, picks the arm64 manifest, config and layers from the index', async () => {
    const out = join(dir, 'arm64.lock.json');
    const r = await ctrbake(['lock', '--platform', 'linux/arm64', '--insecure-registry', registry.host, images.multi, '-o', out], dir);
    expect(r.code).toBe(0);
    const lock = await readLock(out);
    expect(lock.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    const [image] = lock.images;
    expect(image!.indexDigest).toBe(images.multiIndex.digest);
    expect(image!.manifest).toEqual(images.multiArm64.manifest);
    expect(image!.config).toEqual(images.multiArm64.config);
    expect(image!.layers).toEqual(images.multiArm64.layers);
    expect(image!.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(images.multiArm64.manifest.digest).not.toBe(images.multiAmd64.manifest.digest);
  });

  it('fails with E_PLATFORM_NOT_FOUND naming the platforms the image has, exit 1, and writes no file', async () => {
    const out = join(dir, 'armv7.lock.json');
    const r = await ctrbake(['lock', '--platform', 'linux/arm/v7', '--insecure-registry', registry.host, images.multi, '-o', out], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_PLATFORM_NOT_FOUND');
    expect(r.stderr).toContain('linux/amd64, linux/arm64/v8');
    await expect(access(out)).rejects.toThrow();

    const json = await ctrbake(['lock', '--json', '--platform', 'linux/s390x', '--insecure-registry', registry.host, images.multi, '-o', out], dir);
    expect(json.code).toBe(1);
    const last = JSON.parse(json.stdout.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ type: 'error', code: 'E_PLATFORM_NOT_FOUND', details: { available: ['linux/amd64', 'linux/arm64/v8'] } });

    await expect(resolveLock({ references: [images.sample], platform: 'linux/arm64', insecureRegistries: [registry.host], retry: FAST })).rejects.toMatchObject({
      code: 'E_PLATFORM_NOT_FOUND',
      message: expect.stringContaining('it has: linux/amd64'),
    });
  });

  it('keeps a reference pinned by digest and checks it', async () => {
    const byIndex = `${registry.host}/ctrbake/multi@${images.multiIndex.digest}`;
    const tagAndDigest = `${images.sample}@${images.sampleImage.manifest.digest}`;
    const byPlatformManifest = `${registry.host}/ctrbake/multi@${images.multiArm64.manifest.digest}`;
    const reporter = collectingReporter();
    const common = { platform: 'linux/arm64', insecureRegistries: [registry.host], reporter, retry: FAST };
    const pinnedIndex = (await resolveLock({ ...common, references: [byIndex] })).lock.images[0];
    const pinnedManifest = (await resolveLock({ ...common, references: [byPlatformManifest] })).lock.images[0];
    expect(pinnedIndex).toMatchObject({ reference: byIndex, tag: null, indexDigest: images.multiIndex.digest, manifest: images.multiArm64.manifest });
    expect(pinnedManifest).toMatchObject({ reference: byPlatformManifest, tag: null, indexDigest: images.multiArm64.manifest.digest, manifest: images.multiArm64.manifest });

    const amd = await resolveLock({ references: [tagAndDigest], platform: 'linux/amd64', insecureRegistries: [registry.host], reporter, retry: FAST });
    expect(amd.lock.images[0]).toMatchObject({ reference: tagAndDigest, tag: '1.0', indexDigest: images.sampleImage.manifest.digest });
    expect(reporter.events.filter((e) => e.event === 'lock.image').map((e) => e.reference)).toContain(tagAndDigest);
  });

  it('reads a Docker manifest list: arm64 without variant matches linux/arm64, attestation entries are ignored', async () => {
    // The multi image's blobs again, as Docker v2s2 manifests in a Docker manifest list.
    const client = await RegistryClient.create({ insecureRegistries: [registry.host] });
    const repo = { registry: registry.host, repository: 'ctrbake/multi' };
    const asDocker = async (image: FixtureImages['multiAmd64']) => {
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: DOCKER_MANIFEST,
          config: { ...image.config, mediaType: DOCKER_CONFIG },
          layers: image.layers.map((l) => ({ ...l, mediaType: DOCKER_LAYER_GZIP })),
        }),
      );
      return { mediaType: DOCKER_MANIFEST, digest: await pushManifest(client, repo, sha256(bytes), bytes, DOCKER_MANIFEST), size: bytes.length };
    };
    const amd = await asDocker(images.multiAmd64);
    const arm = await asDocker(images.multiArm64);
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST_LIST,
        manifests: [
          { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
          { ...amd, platform: { os: 'unknown', architecture: 'unknown' } },
          { ...arm, platform: { os: 'linux', architecture: 'arm64' } },
        ],
      }),
    );
    const listDigest = await pushManifest(client, repo, 'docker-list', list, DOCKER_MANIFEST_LIST);
    const ref = `${registry.host}/ctrbake/multi:docker-list`;
    const { lock } = await resolveLock({ references: [ref], platform: 'linux/arm64', insecureRegistries: [registry.host], retry: FAST });
    expect(lock.images[0]).toMatchObject({
      indexDigest: listDigest,
      indexMediaType: DOCKER_MANIFEST_LIST,
      manifest: arm,
      config: { ...images.multiArm64.config, mediaType: DOCKER_CONFIG },
      platform: { os: 'linux', architecture: 'arm64' },
    });
    await expect(resolveLock({ references: [ref], platform: 'linux/riscv64', insecureRegistries: [registry.host], retry: FAST })).rejects.toMatchObject({
      code: 'E_PLATFORM_NOT_FOUND',
      details: { available: ['linux/amd64', 'linux/arm64/v8'] },
    });
  });

  it('fails on a pinned digest the registry does not have: E_MANIFEST_UNKNOWN, exit 1', async () => {
    const wrong = `${images.sample.replace(/:1\.0$/, '')}@sha256:${'0'.repeat(64)}`;
    const r = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', registry.host, wrong, '-o', join(dir, 'x.json')], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_MANIFEST_UNKNOWN');
    await expect(resolveLock({ references: [`${registry.host}/ctrbake/nope:1`], platform: 'linux/amd64', insecureRegistries: [registry.host], retry: FAST })).rejects.toMatchObject({
      code: 'E_MANIFEST_UNKNOWN',
    });
  });

  it.each([
    [['lock', '--platform', 'linux', 'busybox'], 'E_BAD_PLATFORM'],
    [['lock', '--platform', 'linux/sparc', 'busybox'], 'E_BAD_PLATFORM'],
    [['lock', 'busybox'], 'platform'],
    [['lock', '--platform', 'linux/amd64'], 'E_NO_IMAGES'],
    [['lock', '--platform', 'linux/amd64', 'Not/A/Valid:Ref'], 'E_BAD_REFERENCE'],
    [['lock', '--platform', 'linux/amd64', '--insecure-registry', 'http://x', 'busybox'], 'E_BAD_INSECURE_REGISTRY'],
  ])('usage errors exit 2: %j', async (args, text) => {
    const r = await ctrbake(args, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(text);
  });

  it('a bad reference in an images file exits 1 and names the file and line', async () => {
    const f = join(dir, 'bad-images.txt');
    await writeFile(f, `${images.sample}\nNOT VALID\n`);
    const r = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', registry.host, '--images', f], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_BAD_REFERENCE');
    expect(r.stderr).toContain(`${f}:2`);
  });

  it('refuses a plain-HTTP registry not listed with --insecure-registry: E_REGISTRY_UNREACHABLE with the hint', async () => {
    const r = await ctrbake(['lock', '--platform', 'linux/amd64', '--retries', '0', images.sample, '-o', join(dir, 'y.json')], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_REGISTRY_UNREACHABLE');
    expect(r.stderr).toContain(`--insecure-registry ${registry.host}`);
  });

  it('fails with E_DIGEST_MISMATCH when the registry serves other bytes than the digest names', async () => {
    const corrupt = await startRegistry();
    try {
      const pushed = await pushFixtureImages(corrupt);
      // Same length, still a valid manifest for the registry, other bytes: the registry serves it as is.
      const blobPath = (digest: string) => join(corrupt.dataDir, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
      const { manifest, config } = pushed.sampleImage;
      const original = await readFile(blobPath(manifest.digest), 'utf8');
      const tampered = original.replace(`"size":${config.size}`, `"size":${config.size + 1}`);
      expect(tampered.length).toBe(original.length);
      await writeFile(blobPath(manifest.digest), tampered);
      const r = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', corrupt.host, `${pushed.sample}@${manifest.digest}`, '-o', join(dir, 'z.json')], dir);
      expect(r.stderr).toContain('E_DIGEST_MISMATCH');
      expect(r.stderr).toContain(manifest.digest);
      expect(r.code).toBe(1);

      // A tampered config is caught too (configs are read whole and hashed).
      const fidelityConfig = pushed.fidelityImage.config;
      const configText = await readFile(blobPath(fidelityConfig.digest), 'utf8');
      await writeFile(blobPath(fidelityConfig.digest), configText.replace('"os":"linux"', '"os":"LINUX"'));
      await expect(resolveLock({ references: [pushed.fidelity], platform: 'linux/amd64', insecureRegistries: [corrupt.host], retry: FAST })).rejects.toMatchObject({
        code: 'E_DIGEST_MISMATCH',
        message: expect.stringContaining(fidelityConfig.digest),
      });
    } finally {
      await corrupt.close();
    }
  });

  it('retries transient 503 and 429 answers with backoff and still writes the same lock', async () => {
    // A proxy in front of the real registry that fails the first two tries of every request.
    const tries = new Map<string, number>();
    const proxy = createServer((req, res) => {
      const key = `${req.method} ${req.url}`;
      const n = (tries.get(key) ?? 0) + 1;
      tries.set(key, n);
      if (n <= 2) {
        res.writeHead(n === 1 ? 503 : 429).end();
        return;
      }
      const upstream = httpRequest({ host: '127.0.0.1', port: Number(registry.host.split(':')[1]), method: req.method, path: req.url, headers: req.headers }, (up) => {
        // The registry's absolute URLs stay valid: lock only reads.
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const proxyHost = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const out = join(dir, 'flaky.lock.json');
      const r = await ctrbake(['lock', '--platform', 'linux/arm64', '--insecure-registry', proxyHost, `${proxyHost}/ctrbake/multi:1.0`, '-o', out], dir);
      expect(r.stderr).toContain('HTTP 503, retrying');
      expect(r.stderr).toContain('HTTP 429, retrying');
      expect(r.code).toBe(0);
      const lock = await readLock(out);
      expect(lock.images[0]!.manifest).toEqual(images.multiArm64.manifest);
      expect(lock.images[0]!.indexDigest).toBe(images.multiIndex.digest);
      expect([...tries.values()].every((n) => n === 3)).toBe(true);
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });

  it('fails with E_REGISTRY_UNREACHABLE, exit 1, when the registry is down', async () => {
    await registry.stop();
    try {
      const r = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', registry.host, '--retries', '1', images.sample, '-o', join(dir, 'down.json')], dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('E_REGISTRY_UNREACHABLE');
      expect(r.stderr).toContain('ECONNREFUSED');
      expect(r.stderr).toContain('after 2 attempts');
    } finally {
      await registry.start();
    }
  });
});

describe('ctrbake lock against a registry with authentication', () => {
  let registry: TestRegistry;
  let images: FixtureImages;
  let dir: string;

  beforeAll(async () => {
    registry = await startRegistry({ auth: true });
    images = await pushFixtureImages(registry);
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-lock-auth-'));
  });
  afterAll(async () => {
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('works with --authfile, and the password appears in no output', async () => {
    const out = join(dir, 'auth.lock.json');
    const human = await ctrbake(['lock', '--platform', 'linux/arm64', '--insecure-registry', registry.host, '--authfile', registry.authfile!, images.multi, '-o', out], dir);
    const json = await ctrbake(['lock', '--json', '--platform', 'linux/arm64', '--insecure-registry', registry.host, '--authfile', registry.authfile!, images.multi, '-o', out], dir);
    expect([human.code, json.code]).toEqual([0, 0]);
    const lock = await readFile(out, 'utf8');
    expect((JSON.parse(lock) as LockFile).images[0]!.manifest).toEqual(images.multiArm64.manifest);
    const encoded = Buffer.from(`${registry.auth!.username}:${registry.auth!.password}`).toString('base64');
    for (const text of [human.stdout, human.stderr, json.stdout, json.stderr, lock]) {
      expect(text).not.toContain(registry.auth!.password);
      expect(text).not.toContain(encoded);
    }
  });

  it('fails with E_AUTH_REFUSED without credentials and with wrong ones, saying to check --authfile', async () => {
    const none = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', registry.host, images.sample, '-o', join(dir, 'n.json')], dir);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('E_AUTH_REFUSED');
    expect(none.stderr).toContain('--authfile');

    const wrongPassword = 'definitely-wrong-password-123';
    const wrongFile = join(dir, 'wrong.json');
    await writeFile(wrongFile, JSON.stringify({ auths: { [registry.host]: { username: registry.auth!.username, password: wrongPassword } } }));
    const wrong = await ctrbake(['lock', '--json', '--platform', 'linux/amd64', '--insecure-registry', registry.host, '--authfile', wrongFile, images.sample, '-o', join(dir, 'w.json')], dir);
    expect(wrong.code).toBe(1);
    const last = JSON.parse(wrong.stdout.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ type: 'error', code: 'E_AUTH_REFUSED', message: expect.stringContaining('check --authfile') });
    expect(wrong.stdout + wrong.stderr).not.toContain(wrongPassword);

    const missing = await ctrbake(['lock', '--platform', 'linux/amd64', '--insecure-registry', registry.host, '--authfile', join(dir, 'missing.json'), images.sample], dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('E_AUTHFILE_INVALID');
  });
});
