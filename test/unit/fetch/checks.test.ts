import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redactSecrets, secretsOf } from '../../../src/fetch/auth.js';
import { blobPath, commitBlob, ensureCacheLayout, makeCacheWorkDir } from '../../../src/fetch/cache.js';
import { classifyRegistryFailure } from '../../../src/fetch/classify.js';
import { assertCacheComplete, checkCacheComplete } from '../../../src/fetch/complete.js';
import { fetchImages } from '../../../src/fetch/fetch.js';
import { TransientError, withRetry } from '../../../src/fetch/retry.js';
import { checkManifestMatchesLock } from '../../../src/fetch/verify.js';
import type { LockedImage } from '../../../src/formats/index.js';
import { Secret } from '../../../src/registry/auth.js';

const digestOf = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

function makeImage(): { image: LockedImage; blobs: Record<string, string> } {
  const layerA = 'layer-a-gz';
  const layerB = 'layer-b-gz';
  const config = JSON.stringify({ rootfs: { type: 'layers', diff_ids: [digestOf('layer-a-tar'), digestOf('layer-b-tar')] } });
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length };
  const layers = [layerA, layerB].map((l) => ({ mediaType: GZ, digest: digestOf(l), size: l.length }));
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers });
  const manifestDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length };
  return {
    image: {
      reference: '127.0.0.1:5000/app:1',
      registry: '127.0.0.1:5000',
      repository: 'app',
      tag: '1',
      indexDigest: manifestDesc.digest,
      indexMediaType: manifestDesc.mediaType,
      manifest: manifestDesc,
      config: configDesc,
      layers,
      platform: { os: 'linux', architecture: 'amd64' },
    },
    blobs: { manifest, config, layerA, layerB, tarA: 'layer-a-tar', tarB: 'layer-b-tar' },
  };
}

let cache: string;
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'ctrbake-unit-checks-'));
  await ensureCacheLayout(cache);
});
afterEach(async () => {
  await rm(cache, { recursive: true, force: true });
});

async function put(content: string): Promise<void> {
  const dir = await makeCacheWorkDir(cache, 'unit');
  await writeFile(join(dir, 'b'), content);
  await commitBlob(cache, join(dir, 'b'), { digest: digestOf(content), what: 'unit' });
  await rm(dir, { recursive: true });
}

describe('checkCacheComplete', () => {
  it('lists every missing blob of an empty cache', async () => {
    const { image } = makeImage();
    const result = await checkCacheComplete(cache, { images: [image] });
    expect(result.complete).toBe(false);
    expect(result.images[0]!.missing.map((m) => m.kind)).toEqual(['config', 'layer', 'layer']);
    await expect(assertCacheComplete(cache, { images: [image] })).rejects.toMatchObject({ code: 'E_CACHE_MISS' });
  });

  it('complete with compressed layers', async () => {
    const { image, blobs } = makeImage();
    for (const b of [blobs.config, blobs.layerA, blobs.layerB]) await put(b);
    const result = await checkCacheComplete(cache, { images: [image] });
    expect(result.complete).toBe(true);
    expect(result.images[0]!.manifestCached).toBe(false);
    expect(result.images[0]!.layers.map((l) => l!.asPublished)).toEqual([true, true]);
  });

  it('complete with uncompressed layers under their diff_ids', async () => {
    const { image, blobs } = makeImage();
    for (const b of [blobs.config, blobs.tarA, blobs.layerB, blobs.manifest]) await put(b);
    const result = await checkCacheComplete(cache, { images: [image] });
    expect(result.complete).toBe(true);
    expect(result.images[0]!.manifestCached).toBe(true);
    expect(result.images[0]!.layers.map((l) => l!.digest)).toEqual([digestOf(blobs.tarA), image.layers[1]!.digest]);
  });

  it('a blob of the wrong size counts as missing, with the reason', async () => {
    const { image, blobs } = makeImage();
    for (const b of [blobs.config, blobs.layerA, blobs.layerB]) await put(b);
    await writeFile(blobPath(cache, image.layers[1]!.digest), 'truncated');
    const result = await checkCacheComplete(cache, { images: [image] });
    expect(result.images[0]!.missing).toEqual([{ kind: 'layer', digest: image.layers[1]!.digest, diffId: digestOf(blobs.tarB), index: 1, reason: 'wrong size' }]);
  });
});

describe('checkManifestMatchesLock', () => {
  it('accepts the manifest the lock was made from', () => {
    const { image, blobs } = makeImage();
    expect(() => checkManifestMatchesLock(blobs.manifest, image)).not.toThrow();
  });
  it.each([
    ['config digest', (i: LockedImage) => ({ ...i, config: { ...i.config, digest: digestOf('x') } })],
    ['layer size', (i: LockedImage) => ({ ...i, layers: [i.layers[0]!, { ...i.layers[1]!, size: 1 }] })],
    ['layer count', (i: LockedImage) => ({ ...i, layers: [i.layers[0]!] })],
    ['layer order', (i: LockedImage) => ({ ...i, layers: [i.layers[1]!, i.layers[0]!] })],
  ])('rejects a lock with another %s', (_n, edit) => {
    const { image, blobs } = makeImage();
    expect(() => checkManifestMatchesLock(blobs.manifest, edit(image))).toThrow(expect.objectContaining({ code: 'E_DIGEST_MISMATCH' }));
  });
});

describe('classifyRegistryFailure', () => {
  const { image } = makeImage();
  it.each([
    ['writing blob: happened during read: Digest did not match, expected sha256:aa, got sha256:bb', 'E_DIGEST_MISMATCH'],
    ['reading manifest sha256:00 in 127.0.0.1:5000/app: manifest unknown: manifest unknown', 'E_MANIFEST_UNKNOWN'],
    ['pinging container registry 127.0.0.1:5000: Get "https://127.0.0.1:5000/v2/": http: server gave HTTP response to HTTPS client', 'E_REGISTRY_UNREACHABLE'],
    ['initializing source: reading manifest: unauthorized: authentication required', 'E_AUTH_REFUSED'],
    ['unable to retrieve auth token: invalid username/password: unauthorized', 'E_AUTH_REFUSED'],
    ['something odd happened', 'E_FETCHER_FAILED'],
    ['writing blob: write /cache/tmp/x/dir-put-blob123: no space left on device', 'E_CACHE_IO'],
  ])('%s -> %s', (text, code) => {
    expect(classifyRegistryFailure(text, image, 'skopeo', [])).toMatchObject({ code });
  });
  it.each([
    'pinging container registry 127.0.0.1:1: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused',
    'reading manifest: received unexpected HTTP status: 503 Service Unavailable',
    'reading blob: unexpected EOF',
    'toomanyrequests: rate limit',
  ])('transient: %s', (text) => {
    expect(classifyRegistryFailure(text, image, 'skopeo', [])).toBeInstanceOf(TransientError);
  });
  it('scrubs secrets from the message', () => {
    const error = classifyRegistryFailure('login as bob with hunter22 failed: unauthorized', image, 'skopeo', ['hunter22']);
    expect(error.message).not.toContain('hunter22');
    expect(error.message).toContain('--authfile');
  });
});

describe('secrets', () => {
  it('hides passwords, user names and their base64 form', () => {
    const secrets = secretsOf({ path: 'x', entries: [{ key: 'h', credentials: { username: 'alice', password: new Secret('s3cret!') } }] });
    const b64 = Buffer.from('alice:s3cret!').toString('base64');
    expect(redactSecrets(`user alice pw s3cret! auth ${b64}`, secrets)).toBe('user *** pw *** auth ***');
  });
});

describe('withRetry', () => {
  const policy = { retries: 2, initialDelayMs: 1, maxDelayMs: 2 };
  it('retries transient errors, then succeeds', async () => {
    let calls = 0;
    const retries: number[] = [];
    const value = await withRetry('r', policy, async () => {
      calls++;
      if (calls < 3) throw new TransientError('503');
      return 'ok';
    }, { onRetry: (i) => retries.push(i.attempt) });
    expect(value).toBe('ok');
    expect(retries).toEqual([1, 2]);
  });
  it('gives E_REGISTRY_UNREACHABLE when retries are used up', async () => {
    await expect(withRetry('r:1', policy, async () => { throw new TransientError('connection refused'); })).rejects.toMatchObject({
      code: 'E_REGISTRY_UNREACHABLE',
    });
  });
  it('does not retry other errors', async () => {
    let calls = 0;
    await expect(withRetry('r', policy, async () => { calls++; throw new Error('no'); })).rejects.toThrow('no');
    expect(calls).toBe(1);
  });
});

describe('fetchImages and the cache filesystem', () => {
  it('E_CACHE_IO when the cache cannot be created', async () => {
    const file = join(cache, 'a-file');
    await writeFile(file, '');
    const { image } = makeImage();
    await expect(
      fetchImages({ lock: { lockVersion: 1, platform: image.platform, images: [image] }, cacheDir: join(file, 'cache') }),
    ).rejects.toMatchObject({ code: 'E_CACHE_IO', message: expect.stringContaining('--cache') });
  });
});
