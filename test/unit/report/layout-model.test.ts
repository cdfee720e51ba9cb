import { describe, expect, it } from 'vitest';
import { defaultLayout, ENGINE_FIRST_START, modelFirstBoot, type FirstBootModel, type LayoutLayer } from '../../../src/report/layout-model.js';

const B = 4096;
const layers = new Map<string, LayoutLayer>([
  ['base', { key: 'base', unpackedBytes: 100 * B, tarBytes: 90 * B, inodes: 200, directories: 20, tarSplitBytes: 9000 }],
  ['a', { key: 'a', unpackedBytes: 10 * B, tarBytes: 9 * B, inodes: 20, directories: 2, tarSplitBytes: 900 }],
  ['b', { key: 'b', unpackedBytes: 20 * B, tarBytes: 19 * B, inodes: 40, directories: 4, tarSplitBytes: 1800 }],
]);
const images = [
  { reference: 'A', configSize: 1000, layers: ['base', 'a'], archiveBytes: 120 * B },
  { reference: 'B', configSize: 1000, layers: ['base', 'b'], archiveBytes: 130 * B },
];
const item = (m: FirstBootModel, name: string) => m.items.find((i) => i.name === name);
const sum = (m: FirstBootModel, pick: (i: FirstBootModel['items'][number]) => boolean, field: 'bytes' | 'heldBytes' = 'bytes') =>
  m.items.filter(pick).reduce((s, i) => s + i[field], 0);

describe('first-boot model', () => {
  it('archive (docker): the archives stay in the rootfs by default; the data partition gets the layers, their records and the staging', () => {
    const m = modelFirstBoot('archive', images, layers, B, { engine: 'docker' });
    expect(item(m, 'archives')).toMatchObject({ bytes: 250 * B, partition: 'rootfs', kind: 'payload' });
    expect(item(m, 'unpacked layers')).toMatchObject({ bytes: 130 * B, partition: 'data', kind: 'boot' });
    // docker load extracts every archive under data-root/tmp: each written once, the largest held at once.
    expect(item(m, 'load staging')).toMatchObject({ bytes: 250 * B, heldBytes: 130 * B, partition: 'data', kind: 'transient' });
    expect(m.rootfsBytes).toBe(250 * B);
    expect(m.writtenBytes).toBe(sum(m, (i) => i.partition === 'data' && (i.kind === 'boot' || i.kind === 'transient')));
    expect(m.totalBytes).toBe(sum(m, (i) => i.partition === 'data', 'heldBytes'));
    expect(m.totalBytes).toBeLessThan(m.writtenBytes);
    expect(m.totalBytes).toBeGreaterThan(130 * B + 130 * B);
  });

  it('archive with the payload on the data partition: the archives count against it', () => {
    const rootfs = modelFirstBoot('archive', images, layers, B, { engine: 'docker' });
    const data = modelFirstBoot('archive', images, layers, B, { engine: 'docker', payloadPartition: 'data' });
    expect(item(data, 'archives')).toMatchObject({ partition: 'data', kind: 'payload' });
    expect(data.totalBytes - rootfs.totalBytes).toBe(250 * B);
    expect(data.writtenBytes).toBe(rootfs.writtenBytes);
    expect(data.rootfsBytes).toBe(0);
  });

  it('layer records include each layer tar-split, rounded to blocks', () => {
    const small = modelFirstBoot('split', images, layers, B);
    const big = modelFirstBoot('split', images, new Map([...layers].map(([k, l]) => [k, { ...l, tarSplitBytes: (l.tarSplitBytes ?? 0) + 10 * B }])), B);
    expect(item(big, 'layer records')!.bytes - item(small, 'layer records')!.bytes).toBe(3 * 10 * B);
  });

  it('archive (podman): no staging on the data partition, podman engine start', () => {
    const m = modelFirstBoot('archive', images, layers, B, { engine: 'podman' });
    expect(m.engine).toBe('podman');
    expect(item(m, 'load staging')).toBeUndefined();
    expect(item(m, 'engine first start')!.bytes).toBe(ENGINE_FIRST_START.podman);
  });

  it('archive before baking: archives estimated from the layer tars', () => {
    const m = modelFirstBoot('archive', images.map(({ archiveBytes: _, ...i }) => i), layers, B);
    expect(item(m, 'archives')!.bytes).toBe(2 * (1000 + 16 * 1024) + (90 + 9 + 90 + 19) * B);
  });

  it('split writes records only: no layer contents, diff links into the store', () => {
    const m = modelFirstBoot('split', images, layers, B, { storeImageBytes: 12345 });
    expect(item(m, 'unpacked layers')).toBeUndefined();
    expect(item(m, 'store.sqfs')).toMatchObject({ bytes: 12345, partition: 'rootfs' });
    expect(m.writtenBytes).toBeLessThan(modelFirstBoot('copy', images, layers, B).writtenBytes - 130 * B);
    expect(m.writtenBytes).toBeGreaterThan(ENGINE_FIRST_START.docker);
  });

  it('copy writes the store: contents, records, and the filesystem metadata of every inode', () => {
    const copy = modelFirstBoot('copy', images, layers, B);
    const split = modelFirstBoot('split', images, layers, B);
    expect(item(copy, 'unpacked layers')!.bytes).toBe(130 * B);
    expect(copy.writtenBytes - split.writtenBytes).toBeGreaterThan(130 * B);
    const meta = item(copy, 'filesystem metadata')!;
    expect(meta.heldBytes).toBe(0);
    expect(meta.note).toMatch(/\d+ inodes/);
  });

  it('overlay-vfs: the engine writes into the upper layer; containers copy their image (held, not written at boot)', () => {
    const m = modelFirstBoot('overlay-vfs', images, layers, B);
    expect(item(m, 'container copies')).toMatchObject({ bytes: (110 + 120) * B, kind: 'containers' });
    expect(m.writtenBytes).toBeLessThan(ENGINE_FIRST_START.docker + 64 * B);
    expect(m.totalBytes).toBeGreaterThan((110 + 120) * B);
    expect(m.storeBytes).toBeGreaterThan((100 + 110 + 120) * B);
  });

  it('podman-ro: the graphroot starts empty', () => {
    const m = modelFirstBoot('podman-ro', images, layers, B, { engine: 'podman' });
    expect(m.writtenBytes).toBeLessThan(ENGINE_FIRST_START.podman + 32 * B);
  });

  it.each([
    [undefined, undefined, undefined, 'archive'],
    ['archive', 'docker', 'overlay2', 'archive'],
    ['store', 'docker', 'overlay2', 'split'],
    ['store', 'docker', 'vfs', 'overlay-vfs'],
    ['store', 'podman', 'overlay', 'podman-ro'],
  ])('default layout for mode %s, engine %s, driver %s: %s', (mode, engine, driver, layout) => {
    expect(defaultLayout(mode, engine, driver)).toBe(layout);
  });
});
