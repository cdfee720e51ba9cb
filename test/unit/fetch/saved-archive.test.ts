import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { useTempDir } from '../../fixtures/temp-dir.js';
import { blobPath, ensureCacheLayout, makeCacheWorkDir } from '../../../src/fetch/cache.js';
import { commitSavedImage, unpackSavedImage } from '../../../src/fetch/saved-archive.js';
import type { LockedImage } from '../../../src/formats/index.js';

const digestOf = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

const temp = useTempDir('ctrbake-unit-saved-');
let cache: string;
beforeEach(async () => {
  cache = temp.path();
  await ensureCacheLayout(cache);
});

/** A docker-archive like `docker save` writes: layer dirs, a config file, manifest.json; layer 2 is a symlink to layer 1. */
function savedArchive(layerTars: string[], configText: string, linkSecond = false): Readable {
  const p = pack();
  const configName = `${digestOf(configText).slice(7)}.json`;
  const layerPaths = layerTars.map((_t, i) => `layer${i}/layer.tar`);
  p.entry({ name: configName }, configText);
  layerTars.forEach((t, i) => {
    if (linkSecond && i === 1) p.entry({ name: layerPaths[1]!, type: 'symlink', linkname: '../layer0/layer.tar' });
    else p.entry({ name: layerPaths[i]! }, t);
  });
  p.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: configName, RepoTags: null, Layers: layerPaths }]));
  p.finalize();
  return Readable.from(p);
}

function lockedFor(configText: string, layerCount: number): LockedImage {
  return {
    reference: 'r/app:1',
    registry: 'r',
    repository: 'app',
    tag: '1',
    indexDigest: digestOf('m'),
    indexMediaType: 'x',
    manifest: { mediaType: 'x', digest: digestOf('m'), size: 1 },
    config: { mediaType: 'c', digest: digestOf(configText), size: configText.length },
    layers: Array.from({ length: layerCount }, (_v, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(`gz${i}`), size: 3 })),
    platform: { os: 'linux', architecture: 'amd64' },
  };
}

const config = (diffIds: string[]) => JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds } });

describe('commitSavedImage', () => {
  it('stores the config and each layer uncompressed under its diff_id (a repeated layer once)', async () => {
    const cfg = config([digestOf('tar-a'), digestOf('tar-a')]);
    const dir = await makeCacheWorkDir(cache, 'docker');
    const saved = await unpackSavedImage(savedArchive(['tar-a', 'tar-a'], cfg, true), dir);
    const blobs = await commitSavedImage(cache, saved, lockedFor(cfg, 2), 'docker save');
    expect(blobs.map((b) => [b.kind, b.digest, b.uncompressed ?? false])).toEqual([
      ['config', digestOf(cfg), false],
      ['layer', digestOf('tar-a'), true],
    ]);
    expect(await readFile(blobPath(cache, digestOf('tar-a')), 'utf8')).toBe('tar-a');
  });

  it.each([
    ['a layer whose tar is not its diff_id', config([digestOf('tar-a'), digestOf('other')]), ['tar-a', 'tar-b'], 2],
    ['a config that is not the locked one', config([digestOf('tar-a')]), ['tar-a'], -1],
    ['fewer layers than the lock', config([digestOf('tar-a')]), ['tar-a'], 2],
  ])('E_DIGEST_MISMATCH for %s; nothing in blobs/', async (_n, cfg, tars, layerCount) => {
    const dir = await makeCacheWorkDir(cache, 'docker');
    const saved = await unpackSavedImage(savedArchive(tars, cfg), dir);
    const image = layerCount === -1 ? lockedFor(config([digestOf('x')]), 1) : lockedFor(cfg, layerCount);
    await expect(commitSavedImage(cache, saved, image, 'docker save')).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    expect(await readdir(join(cache, 'blobs', 'sha256'))).toEqual([]);
  });

  // Before the docker-archive module validated manifest.json, a broken one escaped as a bare SyntaxError (no code).
  it.each([
    ['not JSON', '[{', /manifest\.json is not JSON/],
    ['without Layers', '[{"Config":"c.json"}]', /manifest\.json\[0\]\.Layers/],
  ])('E_FETCHER_FAILED naming the field for a manifest.json %s', async (_n, manifestText, message) => {
    const p = pack();
    p.entry({ name: 'manifest.json' }, manifestText);
    p.finalize();
    const saved = await unpackSavedImage(Readable.from(p), await makeCacheWorkDir(cache, 'docker'));
    await expect(commitSavedImage(cache, saved, lockedFor(config([]), 0), 'docker save')).rejects.toMatchObject({ code: 'E_FETCHER_FAILED', message: expect.stringMatching(message) });
  });

  it('E_TAR_CORRUPT when the engine writes something that is not a tar', async () => {
    const junk = Readable.from([Buffer.alloc(1024, 7)]);
    await expect(unpackSavedImage(junk, await makeCacheWorkDir(cache, 'docker'))).rejects.toMatchObject({ code: 'E_TAR_CORRUPT' });
  });
});
