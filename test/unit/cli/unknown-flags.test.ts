import { describe, expect, it } from 'vitest';
import { editDistance, findUnknownFlags, suggestFlag, unknownFlagsMessage } from '../../../src/cli/unknown-flags.js';

const bakeLike = {
  key: { help: true, version: true, json: true, lock: true, cache: true, output: true, o: true, out: true, 'storage-driver': true, storageDriver: true, squashfs: true, 'squashfs-backend': true, compression: true },
  alias: { output: ['o', 'out'], 'storage-driver': ['storageDriver'], 'squashfs-backend': ['squashfsBackend'] },
};

describe('editDistance (optimal string alignment)', () => {
  it.each([
    ['cache', 'cache', 0],
    ['cahce', 'cache', 1],
    ['cach', 'cache', 1],
    ['cachee', 'cache', 1],
    ['kache', 'cache', 1],
    ['output', 'out', 3],
  ])('%s -> %s: %i', (a, b, d) => expect(editDistance(a, b)).toBe(d));
});

describe('suggestFlag', () => {
  const candidates = ['lock', 'cache', 'output', 'o', 'out', 'storage-driver', 'squashfs', 'squashfs-backend', 'compression', 'json'];
  it.each([
    ['cahce', 'cache'],
    ['storage-drivr', 'storage-driver'],
    ['squashfs-backnd', 'squashfs-backend'],
    ['outptu', 'output'],
    ['comp', 'compression'],
    ['jsno', 'json'],
    ['zzzzzz', undefined],
    ['backend', undefined],
  ])('%s -> %s', (typed, expected) => expect(suggestFlag(typed, candidates)).toBe(expected));
});

describe('findUnknownFlags', () => {
  it('reports a dashed unknown flag once (yargs also sets its camelCase twin)', () => {
    const argv = { _: ['bake'], $0: 'ctrbake', lock: 'l', 'cache-dir': 'c', cacheDir: 'c', storageDriver: 'vfs', 'storage-driver': 'vfs', x: true };
    expect(findUnknownFlags(argv, bakeLike)).toEqual(['cache-dir', 'x']);
  });

  it('one line per unknown flag, with the suggestion when close', () => {
    expect(unknownFlagsMessage(['cahce', 'x'], bakeLike)).toBe('Unknown argument: --cahce (did you mean --cache?)\nUnknown argument: -x');
  });
});
