import { describe, expect, it } from 'vitest';
import { resolveBakeOptions, type BakeOptions } from '../../../src/bake/options.js';
import { canonicalJson, inputFingerprint } from '../../../src/bake/up-to-date.js';
import type { LockFile } from '../../../src/formats/index.js';

const lock: LockFile = {
  lockVersion: 1,
  platform: { os: 'linux', architecture: 'amd64' },
  images: [
    {
      reference: '127.0.0.1:5000/a:1',
      registry: '127.0.0.1:5000',
      repository: 'a',
      tag: '1',
      indexDigest: `sha256:${'1'.repeat(64)}`,
      indexMediaType: 'application/vnd.oci.image.manifest.v1+json',
      manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'1'.repeat(64)}`, size: 10 },
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'2'.repeat(64)}`, size: 20 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'3'.repeat(64)}`, size: 30 }],
      platform: { os: 'linux', architecture: 'amd64' },
    },
  ],
};
const base: BakeOptions = { lockPath: 'l.json', cacheDir: 'cache', mode: 'archive', outDir: 'out' };
const fp = (options: Partial<BakeOptions> = {}, l: LockFile = lock, engineVersion = 'Docker version 20.10.24') =>
  inputFingerprint({ lock: l, config: resolveBakeOptions({ ...base, ...options }, {}), engineVersion });

describe('canonicalJson', () => {
  it('sorts keys at every level, keeps array order, drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined, b: null } })).toBe('{"a":{"b":null,"d":[2,1]},"b":1}');
    expect(canonicalJson({ x: 1, y: 2 })).toBe(canonicalJson({ y: 2, x: 1 }));
  });
});

describe('inputFingerprint', () => {
  it('is sha256:<hex> and ignores paths that do not change the output', () => {
    expect(fp()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(fp({ lockPath: 'other.json', cacheDir: 'c2', outDir: 'o2', offline: true, tmpBase: '/t' })).toBe(fp());
    const reordered = JSON.parse(JSON.stringify({ images: lock.images, platform: lock.platform, lockVersion: 1 })) as LockFile;
    expect(fp({}, reordered)).toBe(fp());
  });

  it.each([
    ['mode', { mode: 'store' }],
    ['engine', { engine: 'podman' }],
    ['storage driver', { storageDriver: 'vfs' }],
    ['archive format', { archiveFormat: 'oci-archive' }],
    ['SOURCE_DATE_EPOCH', { sourceDateEpoch: 1 }],
  ] as [string, Partial<BakeOptions>][])('changes with the %s', (_what, change) => {
    expect(fp(change)).not.toBe(fp());
  });

  it('changes with the lock content and the engine version', () => {
    const other: LockFile = { ...lock, images: [{ ...lock.images[0]!, tag: '2' }] };
    expect(fp({}, other)).not.toBe(fp());
    expect(fp({}, lock, 'Docker version 26.1.5')).not.toBe(fp());
  });
});
