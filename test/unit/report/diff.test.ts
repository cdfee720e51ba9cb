import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { diffImages } from '../../../src/report/diff.js';
import type { LayersFile } from '../../../src/formats/layers.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const layer = (c: string, size: number, unpacked: number) => ({ digest: d(c), diffId: null, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size, unpackedSize: unpacked });
const file = (images: LayersFile['images']): LayersFile => ({ layersVersion: 1, platform: { os: 'linux', architecture: 'amd64' }, blockSize: 4096, images });
const image = (reference: string, layers: ReturnType<typeof layer>[]) => ({ reference, digest: d('f'), imageId: d('e'), configSize: 0, compressedSize: 0, unpackedSize: 0, layers });

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function write(name: string, value: LayersFile): Promise<string> {
  dir ??= await mkdtemp(join(tmpdir(), 'ctrbake-diff-unit-'));
  const p = join(dir, name);
  await writeFile(p, JSON.stringify(value));
  return p;
}

describe('diffImages on layers.json files', () => {
  it('an update of one image: adds and drops layers; a layer the device has from another image is not downloaded', async () => {
    const oldP = await write('old.json', file([image('r/app:1', [layer('a', 100, 4096), layer('b', 10, 8192)]), image('r/db:1', [layer('a', 100, 4096), layer('c', 20, 12288)])]));
    const newP = await write('new.json', file([image('r/app:2', [layer('a', 100, 4096), layer('c', 20, 12288), layer('d', 30, 40960)]), image('r/db:1', [layer('a', 100, 4096), layer('c', 20, 12288)]), image('r/new:1', [layer('e', 5, 4096)])]));
    const r = await diffImages({ oldPath: oldP, newPath: newP });
    const app = r.images.find((i) => i.repository === 'r/app')!;
    expect(app.status).toBe('changed');
    expect(app.addedLayers.map((l) => l.digest)).toEqual([d('c'), d('d')]);
    expect(app.droppedLayers.map((l) => l.digest)).toEqual([d('b')]);
    expect(app.downloadBytes).toBe(30);
    expect(app.storeBytes).toBe(40960);
    expect(r.images.find((i) => i.repository === 'r/db')!.status).toBe('unchanged');
    expect(r.images.find((i) => i.repository === 'r/new')!.status).toBe('added');
    expect(r.totals).toEqual({ addedLayers: 2, droppedLayers: 1, downloadBytes: 35, storeBytes: 45056, freedBytes: 8192 });
  });

  it('a removed image frees its layers', async () => {
    const oldP = await write('old.json', file([image('r/app:1', [layer('a', 100, 4096)]), image('r/gone:1', [layer('b', 10, 8192)])]));
    const newP = await write('new.json', file([image('r/app:1', [layer('a', 100, 4096)])]));
    const r = await diffImages({ oldPath: oldP, newPath: newP });
    expect(r.images.find((i) => i.repository === 'r/gone')!.status).toBe('removed');
    expect(r.totals).toEqual({ addedLayers: 0, droppedLayers: 1, downloadBytes: 0, storeBytes: 0, freedBytes: 8192 });
  });

  it('a file that is neither lock, manifest nor layers.json is an input error', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-diff-unit-'));
    const bad = join(dir, 'x.json');
    await writeFile(bad, '{"hello": 1}');
    await expect(diffImages({ oldPath: bad, newPath: bad })).rejects.toMatchObject({ code: 'E_REPORT_INPUT' });
  });
});
