import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { checkSavedArchive } from '../../../src/bake/verify-saved-archive.js';
import { listedName, normalizeListedReference, repositoryOf } from '../../../src/bake/verify-store.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function archive(files: Record<string, Buffer>): Promise<Readable> {
  const pack = tarStream.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, size: content.length }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Readable.from([Buffer.concat(chunks)]);
}

function savedImage(layers: Buffer[], declared = layers.map(sha), layerNames = layers.map((_, i) => `l${i}/layer.tar`)): Record<string, Buffer> {
  const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: declared } }));
  const files: Record<string, Buffer> = { 'cfg.json': config };
  layers.forEach((l, i) => (files[layerNames[i]!] = l));
  files['manifest.json'] = Buffer.from(JSON.stringify([{ Config: 'cfg.json', RepoTags: ['reg/app:1'], Layers: layerNames }]));
  return files;
}

describe('checkSavedArchive', () => {
  const l1 = Buffer.from('layer one'.padEnd(1024, '.'));
  const l2 = Buffer.from('layer two'.padEnd(2048, '.'));

  it('accepts layers that hash to the diff ids (plain or gzip, docker-archive or blobs/ names)', async () => {
    expect(await checkSavedArchive(await archive(savedImage([l1, l2])), 'x')).toEqual([
      { repoTags: ['reg/app:1'], layers: 2, configDigest: expect.stringMatching(/^sha256:/) },
    ]);
    const gz = gzipSync(l2);
    expect((await checkSavedArchive(await archive(savedImage([l1, gz], [sha(l1), sha(l2)], ['blobs/sha256/a', 'blobs/sha256/b'])), 'x'))[0]!.layers).toBe(2);
  });

  it.each([
    ['a layer with other bytes', savedImage([l1, l2], [sha(l1), sha(l1)])],
    ['a missing layer', (() => { const f = savedImage([l1, l2]); delete f['l1/layer.tar']; return f; })()],
    ['fewer layers than the config declares', savedImage([l1], [sha(l1), sha(l2)])],
    ['no manifest.json', { 'cfg.json': Buffer.from('{}') }],
  ])('rejects %s with E_STORE_VERIFY', async (_what, files) => {
    await expect(checkSavedArchive(await archive(files), 'docker save x')).rejects.toMatchObject({ code: 'E_STORE_VERIFY' });
  });
});

describe('reference helpers', () => {
  it.each([
    ['busybox:1', 'docker.io/library/busybox:1'],
    ['me/app:1', 'docker.io/me/app:1'],
    ['127.0.0.1:5000/a/b:1', '127.0.0.1:5000/a/b:1'],
    ['localhost/x:1', 'localhost/x:1'],
    ['docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
  ])('normalizeListedReference(%s) = %s', (input, expected) => {
    expect(normalizeListedReference(input)).toBe(expected);
  });

  it.each([
    ['reg:5000/app:1', 'reg:5000/app:1'],
    [`reg:5000/app:1@sha256:${'a'.repeat(64)}`, 'reg:5000/app:1'],
    [`reg:5000/app@sha256:${'a'.repeat(64)}`, undefined],
  ])('listedName(%s) = %s', (input, expected) => {
    expect(listedName(input)).toBe(expected);
  });
});

describe('repositoryOf', () => {
  it.each([
    ['reg:5000/a/app:1', 'reg:5000/a/app'],
    [`reg:5000/app:1@sha256:${'a'.repeat(64)}`, 'reg:5000/app'],
    [`reg:5000/app@sha256:${'a'.repeat(64)}`, 'reg:5000/app'],
    ['docker.io/library/busybox:1.36', 'docker.io/library/busybox'],
  ])('%s -> %s', (input, expected) => {
    expect(repositoryOf(input)).toBe(expected);
  });
});
