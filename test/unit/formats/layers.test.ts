import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../fixtures/temp-dir.js';
import { LAYERS_FILE, readLayersFile, validateLayersFile, writeLayers, type LayersFile } from '../../../src/formats/layers.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const layer = { digest: D('a'), diffId: D('b'), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 10, unpackedSize: 4096 };
const ok: LayersFile = {
  layersVersion: 1,
  platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
  blockSize: 4096,
  images: [{ reference: 'r/app:1', digest: D('c'), imageId: D('d'), configSize: 300, compressedSize: 310, unpackedSize: 4096, layers: [layer, { ...layer, diffId: null }] }],
};
const withLayer = (patch: Record<string, unknown>) => ({ ...ok, images: [{ ...ok.images[0]!, layers: [{ ...layer, ...patch }] }] });


describe('layers.json', () => {
  it('writes a file that reads back equal', async () => {
    const dir = await testTempDir('ctrbake-unit-layers-');
    const path = join(dir, LAYERS_FILE);
    await writeLayers(path, ok);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(ok);
    expect(await readLayersFile(path)).toEqual(ok);
  });
  it.each([
    ['another version', { ...ok, layersVersion: 2 }, /is not a layers\.json \(layersVersion 1\)/],
    ['no platform', { ...ok, platform: 'linux' }, /: platform must be a platform object/],
    ['a bad block size', { ...ok, blockSize: -4096 }, /: blockSize must be a non-negative integer/],
    ['a bad image id', { ...ok, images: [{ ...ok.images[0]!, imageId: 'x' }] }, /: images\[0\]\.imageId must be "sha256:"/],
    ['a bad layer digest', withLayer({ digest: 'sha256:' }), /: images\[0\]\.layers\[0\]\.digest must be/],
    ['a missing unpacked size', withLayer({ unpackedSize: undefined }), /: images\[0\]\.layers\[0\]\.unpackedSize must be a non-negative integer/],
  ])('refuses %s with E_REPORT_INPUT naming the field', (_name, value, message) => {
    expect(() => validateLayersFile(value, '/out/layers.json')).toThrow(expect.objectContaining({ code: 'E_REPORT_INPUT', message: expect.stringMatching(message) }));
  });
  it('a file that is not JSON: E_REPORT_INPUT naming it', async () => {
    const dir = await testTempDir('ctrbake-unit-layers-');
    const path = join(dir, LAYERS_FILE);
    await writeFile(path, '{');
    await expect(readLayersFile(path)).rejects.toMatchObject({ code: 'E_REPORT_INPUT', message: expect.stringContaining(`cannot read ${path}`) });
  });
});
