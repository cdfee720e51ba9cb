import { describe, expect, it } from 'vitest';
import { defaultLayout, METADATA_BLOCKS_PER_IMAGE, METADATA_BLOCKS_PER_LAYER, modelFirstBoot, type LayoutLayer } from '../../../src/report/layout-model.js';

const B = 4096;
const layers = new Map<string, LayoutLayer>([
  ['base', { key: 'base', unpackedBytes: 100 * B, tarBytes: 90 * B }],
  ['a', { key: 'a', unpackedBytes: 10 * B, tarBytes: 9 * B }],
  ['b', { key: 'b', unpackedBytes: 20 * B, tarBytes: 19 * B }],
]);
const images = [
  { reference: 'A', configSize: 1000, layers: ['base', 'a'], archiveBytes: 120 * B },
  { reference: 'B', configSize: 1000, layers: ['base', 'b'], archiveBytes: 130 * B },
];
const metadata = 3 * METADATA_BLOCKS_PER_LAYER * B + 2 * (B + METADATA_BLOCKS_PER_IMAGE * B);
const item = (m: ReturnType<typeof modelFirstBoot>, name: string) => m.items.find((i) => i.name === name)?.bytes;

describe('first-boot model', () => {
  it('archive: archives + distinct unpacked layers + the largest archive staged + metadata', () => {
    const m = modelFirstBoot('archive', images, layers, B);
    expect(item(m, 'archives')).toBe(250 * B);
    expect(item(m, 'unpacked layers')).toBe(130 * B);
    expect(item(m, 'load staging')).toBe(130 * B);
    expect(item(m, 'engine metadata')).toBe(metadata);
    expect(m.totalBytes).toBe(250 * B + 130 * B + 130 * B + metadata);
  });

  it('archive before baking: archives estimated from the layer tars', () => {
    const m = modelFirstBoot('archive', images.map(({ archiveBytes: _, ...i }) => i), layers, B);
    expect(item(m, 'archives')).toBe(2 * (1000 + 16 * 1024) + (90 + 9 + 90 + 19) * B);
  });

  it('overlay-vfs: the vfs store holds each layer with its parents; every container copies its image', () => {
    const m = modelFirstBoot('overlay-vfs', images, layers, B);
    expect(m.storeBytes).toBe((100 + 110 + 120) * B + metadata);
    expect(item(m, 'container copies')).toBe((110 + 120) * B);
  });

  it('split writes only metadata; copy copies the store; podman-ro writes a few blocks', () => {
    expect(modelFirstBoot('split', images, layers, B).totalBytes).toBe(metadata);
    expect(modelFirstBoot('copy', images, layers, B).totalBytes).toBe(130 * B + metadata);
    expect(modelFirstBoot('podman-ro', images, layers, B).totalBytes).toBe(2 * METADATA_BLOCKS_PER_IMAGE * B);
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
