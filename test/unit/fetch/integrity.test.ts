/**
 * assertCacheComplete checks every blob of the lock by size and sha256 and names, for each
 * damaged or missing one, the image, the digest, the file, what is wrong and the repair command.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blobPath, commitBlob, ensureCacheLayout, makeCacheWorkDir } from '../../../src/fetch/cache.js';
import { cacheDamageError } from '../../../src/fetch/cache-damage.js';
import { assertCacheComplete } from '../../../src/fetch/complete.js';
import { readLock } from '../../../src/formats/lock.js';
import type { LockedImage, LockFile } from '../../../src/formats/index.js';

const digestOf = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

let dir: string;
let cache: string;
let lockPath: string;
let lock: LockFile;
let blobs: { config: string; layers: string[]; manifest: string };

async function put(content: string): Promise<void> {
  const work = await makeCacheWorkDir(cache, 'unit');
  await writeFile(join(work, 'b'), content);
  await commitBlob(cache, join(work, 'b'), { digest: digestOf(content), what: 'unit' });
  await rm(work, { recursive: true });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-unit-integrity-'));
  cache = join(dir, 'cache');
  await ensureCacheLayout(cache);
  const layers = ['layer-a-gz-bytes', 'layer-b-gz-bytes'];
  const config = JSON.stringify({ rootfs: { type: 'layers', diff_ids: [digestOf('a-tar'), digestOf('b-tar')] } });
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length };
  const layerDescs = layers.map((l) => ({ mediaType: GZ, digest: digestOf(l), size: l.length }));
  const manifest = JSON.stringify({ schemaVersion: 2, config: configDesc, layers: layerDescs });
  const manifestDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length };
  const image: LockedImage = {
    reference: '127.0.0.1:5000/app:1',
    registry: '127.0.0.1:5000',
    repository: 'app',
    tag: '1',
    indexDigest: manifestDesc.digest,
    indexMediaType: manifestDesc.mediaType,
    manifest: manifestDesc,
    config: configDesc,
    layers: layerDescs,
    platform: { os: 'linux', architecture: 'amd64' },
  };
  blobs = { config, layers, manifest };
  for (const b of [config, ...layers, manifest]) await put(b);
  lockPath = join(dir, 'my lock.json');
  await writeFile(lockPath, JSON.stringify({ lockVersion: 1, platform: { os: 'linux', architecture: 'amd64' }, images: [image] }));
  lock = await readLock(lockPath);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const REPAIR = () => `ctrbake fetch --lock '${lockPath}' --cache ${cache}`;

describe('assertCacheComplete: damaged and missing blobs', () => {
  it('an intact cache passes', async () => {
    await expect(assertCacheComplete(cache, lock)).resolves.toMatchObject({ complete: true });
  });

  it.each([
    ['a truncated layer', 'layer 1', (p: string) => writeFile(p, 'layer-b'), 'E_CACHE_DAMAGED', /: 7 bytes, the lock says 16 \(truncated\)/],
    ['a layer with a flipped byte (same size)', 'layer 0', async (p: string) => {
      const b = await readFile(p);
      b[3] ^= 0x01;
      await writeFile(p, b);
    }, 'E_CACHE_DAMAGED', /: its bytes hash to sha256:[0-9a-f]{64}, not to its name/],
    ['a deleted layer', 'layer 1', (p: string) => unlink(p), 'E_CACHE_MISS', / is missing \(nor its uncompressed form sha256:[0-9a-f]{64}\)/],
    ['a replaced config', 'config', (p: string) => writeFile(p, '{"rootfs":{}}'), 'E_CACHE_DAMAGED', /: 13 bytes, the lock says \d+ \(truncated\)/],
    ['a manifest overwritten with the same size', 'manifest', async (p: string) => writeFile(p, 'x'.repeat((await readFile(p)).length)), 'E_CACHE_DAMAGED', /not to its name/],
  ])('%s: %s is named with its file, the problem and the repair command', async (_name, which, damage, code, problem) => {
    const image = lock.images[0]!;
    const digest = which === 'config' ? image.config.digest : which === 'manifest' ? image.manifest.digest : image.layers[Number(which.split(' ')[1])]!.digest;
    const path = blobPath(cache, digest);
    await damage(path);
    const error = await assertCacheComplete(cache, lock).catch((e: unknown) => e);
    expect(error).toMatchObject({ code, details: { repair: REPAIR(), lockPath } });
    const message = (error as Error).message;
    expect(message).toContain(`  ${image.reference}:\n    ${which} ${digest}: ${path}`);
    expect(message).toMatch(problem);
    // The last line is the command alone, ready to copy.
    expect(message.split('\n').at(-1)).toBe(`  ${REPAIR()}`);
  });

  it('lists every damaged blob at once, so one fetch repairs them all', async () => {
    await writeFile(blobPath(cache, digestOf(blobs.layers[0]!)), 'short');
    await unlink(blobPath(cache, digestOf(blobs.layers[1]!)));
    const error = (await assertCacheComplete(cache, lock).catch((e: unknown) => e)) as { code: string; details: { blobs: unknown[] }; message: string };
    expect(error.code).toBe('E_CACHE_DAMAGED');
    expect(error.details.blobs).toHaveLength(2);
    expect(error.message).toContain('(1 damaged, 1 missing)');
  });

  it('an explicit lockPath wins; a lock built in memory gets a placeholder', async () => {
    await unlink(blobPath(cache, digestOf(blobs.layers[0]!)));
    await expect(assertCacheComplete(cache, lock, { lockPath: '/x/y.lock.json' })).rejects.toMatchObject({ details: { repair: `ctrbake fetch --lock /x/y.lock.json --cache ${cache}` } });
    await expect(assertCacheComplete(cache, { images: lock.images })).rejects.toMatchObject({ details: { repair: `ctrbake fetch --lock LOCK --cache ${cache}` } });
  });
});

describe('cacheDamageError without a lock path (report or diff of a bake manifest)', () => {
  it('names LOCK and says which lock it stands for', () => {
    const error = cacheDamageError([{ reference: 'r/a:1', kind: 'layer', index: 2, digest: `sha256:${'a'.repeat(64)}`, path: '/c/blobs/sha256/aaa', problem: 'missing' }], {
      cacheDir: '/c',
      lockHint: 'the lock /out/manifest.json was baked from',
    });
    expect(error.code).toBe('E_CACHE_MISS');
    expect(error.message).toContain('    layer 2 sha256:aaaa');
    expect(error.message).toContain('(LOCK: the lock /out/manifest.json was baked from):\n  ctrbake fetch --lock LOCK --cache /c');
  });
});
