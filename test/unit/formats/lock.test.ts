import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../fixtures/temp-dir.js';
import { lockPathOf, looksLikeLock, readLock, serializeLock, validateLock, writeLock, type LockFile, type LockedImage } from '../../../src/formats/lock.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const image: LockedImage = {
  reference: '127.0.0.1:5000/app:1',
  registry: '127.0.0.1:5000',
  repository: 'app',
  tag: '1',
  indexDigest: D('a'),
  indexMediaType: 'application/vnd.oci.image.index.v1+json',
  manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('b'), size: 400 },
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D('c'), size: 300 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D('d'), size: 1000 }],
  platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
};
const ok: LockFile = { lockVersion: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, images: [image, { ...image, tag: null, reference: '127.0.0.1:5000/app@' + D('a') }] };
const withImage = (i: number, patch: Record<string, unknown>) => ({ ...ok, images: ok.images.map((img, n) => (n === i ? { ...img, ...patch } : img)) });


describe('validateLock', () => {
  it('accepts a valid lock (a tag or null, a platform with or without variant)', () => {
    expect(validateLock(ok)).toBe(ok);
  });
  it.each([
    ['not an object', [], /not a JSON object/],
    ['wrong version', { ...ok, lockVersion: 2 }, /unsupported lockVersion 2/],
    ['no platform', { ...ok, platform: undefined }, /platform must be a platform object/],
    ['platform without architecture', { ...ok, platform: { os: 'linux' } }, /platform\.architecture must be a non-empty string/],
    ['no images', { ...ok, images: undefined }, /"images" must be an array/],
    ['an image that is a string', { ...ok, images: ['x'] }, /images\[0\] must be an object/],
    ['bad manifest digest', withImage(1, { manifest: { ...image.manifest, digest: 'sha256:../../x' } }), /images\[1\]\.manifest\.digest must be "sha256:" and 64 hex digits/],
    ['upper-case hex', withImage(0, { config: { ...image.config, digest: D('C') } }), /images\[0\]\.config\.digest must be/],
    ['negative layer size', withImage(0, { layers: [{ ...image.layers[0]!, size: -1 }] }), /images\[0\]\.layers\[0\]\.size must be a non-negative integer/],
    ['fractional size', withImage(1, { config: { ...image.config, size: 1.5 } }), /images\[1\]\.config\.size must be a non-negative integer/],
    ['no media type', withImage(0, { layers: [{ digest: D('d'), size: 1 }] }), /images\[0\]\.layers\[0\]\.mediaType must be a string/],
    ['layers not an array', withImage(0, { layers: {} }), /images\[0\]\.layers must be an array/],
    ['bad registry', withImage(0, { registry: 'http://x' }), /images\[0\]\.registry "http:\/\/x" is not HOST\[:PORT\]/],
    ['bad repository', withImage(1, { repository: '-rm -rf' }), /images\[1\]\.repository "-rm -rf" is not a repository path/],
    ['empty reference', withImage(0, { reference: '' }), /images\[0\]\.reference must be a non-empty string/],
    ['numeric tag', withImage(0, { tag: 1 }), /images\[0\]\.tag must be a non-empty string/],
    ['bad index digest', withImage(0, { indexDigest: 'latest' }), /images\[0\]\.indexDigest must be "sha256:"/],
    ['no image platform', withImage(1, { platform: null }), /images\[1\]\.platform must be a platform object/],
  ])('rejects %s with E_LOCK_INVALID naming the file and the field', (_name, lock, message) => {
    let error: unknown;
    try {
      validateLock(lock, '/work/ctrbake.lock.json');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'E_LOCK_INVALID', exitCode: 1 });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/^\/work\/ctrbake\.lock\.json: .*; run `ctrbake lock` again$/);
  });
});

describe('readLock / writeLock', () => {
  it('writes a lock that reads back equal, and remembers the path it was read from', async () => {
    const dir = await testTempDir('ctrbake-unit-lock-');
    const path = join(dir, 'ctrbake.lock.json');
    await writeLock(path, ok);
    expect(await readFile(path, 'utf8')).toBe(serializeLock(ok));
    expect(serializeLock(ok).endsWith('}\n')).toBe(true);
    const read = await readLock(path);
    expect(read).toEqual(ok);
    expect(lockPathOf(read)).toBe(path);
    expect(lockPathOf(ok)).toBeUndefined();
    expect(looksLikeLock(read)).toBe(true);
  });
  it.each([
    ['a missing file', undefined, /cannot read lock file .*missing\.json.*run `ctrbake lock` first/],
    ['a file that is not JSON', '{"lockVersion": 1,', /lock file .*missing\.json is not valid JSON; run `ctrbake lock` again/],
    ['a lock with a bad field', JSON.stringify({ ...ok, images: [{ ...image, layers: [{ ...image.layers[0], digest: 'sha256:00' }] }] }), /missing\.json: images\[0\]\.layers\[0\]\.digest must be/],
  ])('refuses %s with E_LOCK_INVALID', async (_name, content, message) => {
    const dir = await testTempDir('ctrbake-unit-lock-');
    const path = join(dir, 'missing.json');
    if (content !== undefined) await writeFile(path, content);
    await expect(readLock(path)).rejects.toMatchObject({ code: 'E_LOCK_INVALID', message: expect.stringMatching(message) });
  });
  it('looksLikeLock recognizes a lock by its top-level fields only', () => {
    expect(looksLikeLock({ lockVersion: 1, platform: {}, images: [] })).toBe(true);
    expect(looksLikeLock({ manifestVersion: 1 })).toBe(false);
    expect(looksLikeLock(null)).toBe(false);
  });
});
