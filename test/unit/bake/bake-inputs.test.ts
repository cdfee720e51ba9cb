/**
 * A budgeted bake reads the lock once and checks the cache once (issue 13): the lock and a cache
 * blob are damaged right after the budget check; a bake that read or checked them again would
 * fail on them, this one goes on to the engine step (stopped there by an abort, no engine runs).
 */
import { truncateSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bake } from '../../../src/bake/bake.js';
import type { LockFile } from '../../../src/formats/lock.js';
import type { ProgressEvent, Reporter } from '../../../src/util/reporter.js';
import { buildLayer, sha256 } from '../../../devkit/layers.js';
import { testTempDir } from '../../fixtures/temp-dir.js';

/** A lock of one image and a cache that holds it, in a dir the test owns. */
async function lockAndCache(): Promise<{ dir: string; cacheDir: string; lockPath: string; layerBlob: string }> {
  const dir = await testTempDir('ctrbake-bake-inputs-');
  const cacheDir = join(dir, 'cache');
  await mkdir(join(cacheDir, 'blobs', 'sha256'), { recursive: true });
  const layer = await buildLayer([{ type: 'file', path: 'etc/hello', content: 'hello\n' }]);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
  const put = async (bytes: Buffer) => {
    const digest = sha256(bytes);
    const path = join(cacheDir, 'blobs', 'sha256', digest.slice(7));
    await writeFile(path, bytes);
    return { digest, size: bytes.length, path };
  };
  const c = await put(config);
  const l = await put(layer.gz);
  const manifestDigest = sha256(Buffer.from('manifest'));
  const lock: LockFile = {
    lockVersion: 1,
    platform: { os: 'linux', architecture: 'amd64' },
    images: [
      {
        reference: 'registry.test/app:1',
        registry: 'registry.test',
        repository: 'app',
        tag: '1',
        indexDigest: manifestDigest,
        indexMediaType: 'application/vnd.oci.image.manifest.v1+json',
        manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: 100 },
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.digest, size: c.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size }],
        platform: { os: 'linux', architecture: 'amd64' },
      },
    ],
  };
  const lockPath = join(dir, 'ctrbake.lock.json');
  await writeFile(lockPath, JSON.stringify(lock));
  return { dir, cacheDir, lockPath, layerBlob: l.path };
}

describe('bake reads its inputs once', () => {
  it.each(['archive', 'store'] as const)('%s mode: a lock and a cache damaged after the budget check are not read again', async (mode) => {
    const { dir, cacheDir, lockPath, layerBlob } = await lockAndCache();
    const abort = new AbortController();
    const events: string[] = [];
    const reporter: Reporter = {
      event: (e: ProgressEvent) => {
        events.push(e.event);
        if (e.event === 'bake.budget') {
          // Read again, this lock is E_LOCK_INVALID; checked again, this cache E_CACHE_DAMAGED.
          writeFileSync(lockPath, '{ not a lock');
          truncateSync(layerBlob, 3);
        }
        if (e.event === 'bake.start') {
          // archive: the signal is checked after the cache step, before the engine starts;
          // store: the cache step is behind us, stop before the engine starts.
          abort.abort();
          if (mode === 'store') throw new Error('stopped at bake.start');
        }
      },
      progress: () => {},
      result: () => {},
      error: () => {},
    };
    const bakeRun = bake({ lockPath, cacheDir, mode, outDir: join(dir, 'out'), fit: { budget: 1 << 30 }, reporter, signal: abort.signal });
    const error = await bakeRun.then(() => undefined, (e: unknown) => e as Error & { code?: string });
    expect(String(error?.code ?? '')).not.toMatch(/^E_/);
    expect(mode === 'archive' ? error?.name : error?.message).toBe(mode === 'archive' ? 'AbortError' : 'stopped at bake.start');
    expect(events.filter((e) => e === 'bake.budget' || e === 'bake.start')).toEqual(['bake.budget', 'bake.start']);
  });
});
