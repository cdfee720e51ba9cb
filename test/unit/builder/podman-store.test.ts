/** The podman store's names and records: containers/image's layer ids, containers/storage's big-data names, Go times. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bigDataFileName, goTimeOf, podmanLayerIds, podmanTarSplitFlavour } from '../../../src/builder/podman-store.js';
import { chainIds } from '../../../src/builder/store-ids.js';

// Read from a store `podman pull` (4.3) wrote here: the fidelity image's first two layers.
const DIFF0 = 'sha256:6ddcc647f1649ca7002071062cf0319c25c1322b46c60a7c793b313b22f5f56a';
const DIFF1 = 'sha256:7cfb717c96e40539a092f539cc7256471b9384d367312cafcaeb0bb030f2d423';
const ID1 = '4be158c7977ef27c796d80e97bf62be5dc4372d96ec316c9a62ef25a5b301dd3';

describe('podmanLayerIds', () => {
  it('gives the ids podman 4.3 gave on a pull: id(0) = diff(0), id(n) = sha256(id(n-1) + "+" + diff(n))', () => {
    expect(podmanLayerIds([DIFF0, DIFF1])).toEqual([DIFF0.slice(7), ID1]);
  });

  it('differs from OCI chain ids past the first layer', () => {
    expect(`sha256:${podmanLayerIds([DIFF0, DIFF1])[1]}`).not.toBe(chainIds([DIFF0, DIFF1])[1]);
    const three = podmanLayerIds([DIFF0, DIFF1, DIFF0]);
    expect(three[2]).toBe(createHash('sha256').update(`${ID1}+${DIFF0.slice(7)}`).digest('hex'));
  });
});

describe('bigDataFileName (containers/storage makeBigDataBaseName)', () => {
  it.each([
    ['manifest', 'manifest'],
    ['sha256:8a93', `=${Buffer.from('sha256:8a93').toString('base64')}`],
    ['manifest-sha256:cace', '=bWFuaWZlc3Qtc2hhMjU2OmNhY2U='],
    ['Manifest', '=TWFuaWZlc3Q='],
  ])('%s => %s', (key, name) => {
    expect(bigDataFileName(key)).toBe(name);
  });
});

describe('goTimeOf (a config time as Go writes it back)', () => {
  it.each([
    ['2020-09-13T12:26:40Z', '2020-09-13T12:26:40Z'],
    ['2020-09-13T12:26:40.120000000Z', '2020-09-13T12:26:40.12Z'],
    ['2020-09-13T12:26:40.000Z', '2020-09-13T12:26:40Z'],
    ['2020-09-13T14:26:40+02:00', '2020-09-13T14:26:40+02:00'],
    ['2020-09-13T12:26:40+00:00', '2020-09-13T12:26:40Z'],
  ])('%s => %s', (created, expected) => {
    expect(goTimeOf(created)).toBe(expected);
  });

  it.each([[undefined], [12], ['yesterday'], ['2020-09-13 12:26:40']])('%j => undefined (the builder then writes SOURCE_DATE_EPOCH)', (created) => {
    expect(goTimeOf(created)).toBeUndefined();
  });
});

describe('podmanTarSplitFlavour', () => {
  it('writes podman 4.x stores (containers/storage 1.43: trailing empty segment)', () => {
    expect(podmanTarSplitFlavour('4.3')).toBe('tar-split-0.11.1');
    expect(podmanTarSplitFlavour('4.3.1')).toBe('tar-split-0.11.1');
  });

  it.each(['5.4', '20.10', 'latest'])('refuses %s with the way out', (version) => {
    expect(() => podmanTarSplitFlavour(version)).toThrow(expect.objectContaining({ code: 'E_BUILDER_ENGINE_VERSION', message: expect.stringMatching(/--engine-version 4\.3 or --builder engine/) }));
  });
});
