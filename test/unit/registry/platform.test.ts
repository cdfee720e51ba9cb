import { describe, expect, it } from 'vitest';
import type { Platform } from '../../../src/formats/index.js';
import { configMatchesPlatform, describePlatforms, parsePlatform, platformMatches } from '../../../src/registry/platform.js';

const p = (os: string, architecture: string, variant?: string): Platform => (variant ? { os, architecture, variant } : { os, architecture });

describe('parsePlatform', () => {
  it.each([
    ['linux/amd64', p('linux', 'amd64')],
    ['linux/amd64/v1', p('linux', 'amd64')],
    ['linux/amd64/v3', p('linux', 'amd64', 'v3')],
    ['linux/x86_64', p('linux', 'amd64')],
    ['linux/arm64', p('linux', 'arm64', 'v8')],
    ['linux/arm64/v8', p('linux', 'arm64', 'v8')],
    ['linux/aarch64', p('linux', 'arm64', 'v8')],
    ['linux/arm64/8', p('linux', 'arm64', 'v8')],
    ['linux/arm', p('linux', 'arm', 'v7')],
    ['linux/arm/v7', p('linux', 'arm', 'v7')],
    ['linux/arm/v6', p('linux', 'arm', 'v6')],
    ['linux/armhf', p('linux', 'arm', 'v7')],
    ['linux/armel', p('linux', 'arm', 'v6')],
    ['Linux/ARM64', p('linux', 'arm64', 'v8')],
    ['linux/riscv64', p('linux', 'riscv64')],
    ['linux/386', p('linux', '386')],
  ])('%s', (input, expected) => {
    expect(parsePlatform(input)).toEqual(expected);
  });

  it.each(['linux', 'linux/', '/amd64', 'linux/amd64/v3/x', 'linux/sparc', 'linux/riscv64/v1', 'linux/arm/seven', 'li nux/amd64', ''])(
    'rejects %j with E_BAD_PLATFORM (exit 2)',
    (input) => {
      expect(() => parsePlatform(input)).toThrow(expect.objectContaining({ code: 'E_BAD_PLATFORM', exitCode: 2 }));
    },
  );
});

describe('platformMatches (an index entry against the wanted platform)', () => {
  it.each([
    [p('linux', 'arm64', 'v8'), p('linux', 'arm64'), true],
    [p('linux', 'arm64'), p('linux', 'arm64', 'v8'), true],
    [p('linux', 'arm64', 'v8'), p('linux', 'arm64', 'v8'), true],
    [p('linux', 'arm64', 'v8'), p('linux', 'arm64', 'v9'), false],
    [p('linux', 'arm', 'v7'), p('linux', 'arm', 'v7'), true],
    [p('linux', 'arm', 'v7'), p('linux', 'arm', 'v6'), false],
    [p('linux', 'arm', 'v6'), p('linux', 'arm', 'v7'), false],
    [p('linux', 'arm', 'v7'), p('linux', 'arm'), true],
    [p('linux', 'amd64'), p('linux', 'amd64'), true],
    [p('linux', 'amd64'), p('linux', 'amd64', 'v1'), true],
    [p('linux', 'amd64'), p('linux', 'amd64', 'v3'), false],
    [p('linux', 'amd64'), p('linux', 'arm64', 'v8'), false],
    [p('linux', 'amd64'), p('windows', 'amd64'), false],
    [p('linux', 'amd64'), p('unknown', 'unknown'), false],
  ])('want %j, have %j -> %s', (want, have, expected) => {
    expect(platformMatches(want, have)).toBe(expected);
  });
});

describe('configMatchesPlatform (an image config, often without variant)', () => {
  it.each([
    [p('linux', 'arm', 'v6'), p('linux', 'arm'), true],
    [p('linux', 'arm', 'v6'), p('linux', 'arm', 'v7'), false],
    [p('linux', 'arm64', 'v8'), p('linux', 'arm64'), true],
    [p('linux', 'amd64'), p('linux', 'arm64'), false],
  ])('want %j, config %j -> %s', (want, config, expected) => {
    expect(configMatchesPlatform(want, config)).toBe(expected);
  });
});

it('describePlatforms leaves out attestation entries', () => {
  expect(describePlatforms([p('linux', 'amd64'), p('unknown', 'unknown'), p('linux', 'arm64')])).toEqual(['linux/amd64', 'linux/arm64/v8']);
});
