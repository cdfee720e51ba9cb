import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  blobPath,
  commitBlob,
  ensureCacheLayout,
  hasBlob,
  makeCacheWorkDir,
  parseDigest,
  resolveLayerBlob,
  tmpEntryOwnerPid,
} from '../../../src/fetch/cache.js';
import { DigestMismatchError } from '../../../src/fetch/errors.js';

const digestOf = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let cache: string;
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'ctrbake-unit-cache-'));
  await ensureCacheLayout(cache);
});
afterEach(async () => {
  await rm(cache, { recursive: true, force: true });
});

async function tmpFile(content: string): Promise<string> {
  const dir = await makeCacheWorkDir(cache, 'unit');
  const path = join(dir, 'blob');
  await writeFile(path, content);
  await chmod(path, 0o600);
  return path;
}

describe('parseDigest', () => {
  it.each(['sha256:abc', 'sha512:' + 'a'.repeat(64), 'sha256:' + 'A'.repeat(64), '../../etc/passwd', ''])('rejects %j', (d) => {
    expect(() => parseDigest(d)).toThrow(/not a sha256 digest/);
  });
  it('keeps the hex', () => {
    expect(parseDigest(`sha256:${'a'.repeat(64)}`)).toBe('a'.repeat(64));
  });
});

describe('commitBlob', () => {
  it('moves a verified file into blobs/ and removes the temp file', async () => {
    const file = await tmpFile('hello');
    const outcome = await commitBlob(cache, file, { digest: digestOf('hello'), size: 5, what: 'test blob' });
    expect(outcome).toBe('stored');
    expect(await readFile(blobPath(cache, digestOf('hello')), 'utf8')).toBe('hello');
    expect((await stat(blobPath(cache, digestOf('hello')))).mode & 0o777).toBe(0o644);
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ['wrong digest', { digest: digestOf('other'), size: 5 }],
    ['wrong size', { digest: digestOf('hello'), size: 6 }],
  ])('%s: E_DIGEST_MISMATCH, nothing in blobs/, temp file gone', async (_name, expected) => {
    const file = await tmpFile('hello');
    const error = await commitBlob(cache, file, { ...expected, what: 'test blob' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect((error as DigestMismatchError).code).toBe('E_DIGEST_MISMATCH');
    expect(await readdir(join(cache, 'blobs', 'sha256'))).toEqual([]);
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
  });

  it('an existing blob wins', async () => {
    await commitBlob(cache, await tmpFile('hello'), { digest: digestOf('hello'), what: 'first' });
    const second = await tmpFile('hello');
    expect(await commitBlob(cache, second, { digest: digestOf('hello'), what: 'second' })).toBe('existed');
    await expect(readFile(second)).rejects.toThrow(/ENOENT/);
  });
});

describe('resolveLayerBlob', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf('gz'), size: 2 };
  const diffId = digestOf('tar');

  it('prefers the published digest', async () => {
    await commitBlob(cache, await tmpFile('gz'), { digest: digestOf('gz'), what: 'gz' });
    await commitBlob(cache, await tmpFile('tar'), { digest: diffId, what: 'tar' });
    expect(await resolveLayerBlob(cache, layer, diffId)).toEqual({ path: blobPath(cache, layer.digest), digest: layer.digest, asPublished: true, compressed: true });
  });

  it('falls back to the uncompressed layer under its diff_id', async () => {
    await commitBlob(cache, await tmpFile('tar'), { digest: diffId, what: 'tar' });
    expect(await resolveLayerBlob(cache, layer, diffId)).toEqual({ path: blobPath(cache, diffId), digest: diffId, asPublished: false, compressed: false });
    expect(await resolveLayerBlob(cache, layer)).toBeUndefined();
  });

  it('undefined when neither is cached', async () => {
    expect(await resolveLayerBlob(cache, layer, diffId)).toBeUndefined();
    expect(await hasBlob(cache, layer.digest)).toBe(false);
  });
});

describe('tmp entry owners', () => {
  it('reads the pid of a work dir made by this process', async () => {
    const dir = await makeCacheWorkDir(cache, 'skopeo');
    expect(tmpEntryOwnerPid(dir.split('/').pop()!)).toBe(process.pid);
  });
  it.each(['skopeo.otherhost.12.deadbeef', 'random', 'skopeo.x'])('ignores %s', (name) => {
    expect(tmpEntryOwnerPid(name)).toBeUndefined();
  });
});
