import { mkdtemp, rm, stat, symlink, utimes, writeFile, mkdir, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { base32, layerCacheId as cacheIdForChain, overlayLinkName as linkNameFor } from '../../../src/builder/store-ids.js';
import { clampBakeTimes, sourceDateEpochIso, writeTimeMarker } from '../../../src/bake/store-normalize.js';
import { resolveStoreDriver } from '../../../src/bake/store.js';

describe('base32', () => {
  it.each([
    ['', ''],
    ['f', 'MY'],
    ['fo', 'MZXQ'],
    ['foo', 'MZXW6'],
    ['foob', 'MZXW6YQ'],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI'],
  ])('RFC 4648 vector %j -> %s', (input, expected) => {
    expect(base32(Buffer.from(input))).toBe(expected);
  });
});

describe('content-derived names', () => {
  it('cache ids: 64 hex digits from the chain id, with or without the sha256: prefix', () => {
    const chain = 'a'.repeat(64);
    expect(cacheIdForChain(chain)).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheIdForChain(`sha256:${chain}`)).toBe(cacheIdForChain(chain));
    expect(cacheIdForChain('b'.repeat(64))).not.toBe(cacheIdForChain(chain));
  });

  it('link names have the engines\' shape (26 base32 chars) and differ per layer', () => {
    expect(linkNameFor('x')).toMatch(/^[A-Z2-7]{26}$/);
    expect(linkNameFor('x')).toBe(linkNameFor('x'));
    expect(linkNameFor('x')).not.toBe(linkNameFor('y'));
  });

  it('SOURCE_DATE_EPOCH as RFC 3339', () => {
    expect(sourceDateEpochIso(0)).toBe('1970-01-01T00:00:00Z');
    expect(sourceDateEpochIso(1_700_000_000)).toBe('2023-11-14T22:13:20Z');
  });
});

describe('clampBakeTimes', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sets what was written after the marker to SOURCE_DATE_EPOCH, symlinks included, and keeps older mtimes', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-clamp-'));
    const root = join(dir, 'root');
    await mkdir(root);
    await writeFile(join(root, 'from-image'), 'x');
    await utimes(join(root, 'from-image'), 1_600_000_000, 1_600_000_000);
    await writeTimeMarker(join(dir, 'marker'));
    await writeFile(join(root, 'written'), 'y');
    await symlink('written', join(root, 'link'));
    await clampBakeTimes(root, join(dir, 'marker'), 1234);
    expect((await stat(join(root, 'from-image'))).mtimeMs).toBe(1_600_000_000_000);
    expect((await stat(join(root, 'written'))).mtimeMs).toBe(1_234_000);
    expect((await lstat(join(root, 'link'))).mtimeMs).toBe(1_234_000);
    expect((await stat(root)).mtimeMs).toBe(1_234_000);
  });
});

describe('resolveStoreDriver', () => {
  it.each([
    ['docker', undefined, 'overlay2'],
    ['docker', 'vfs', 'vfs'],
    ['podman', undefined, 'overlay'],
    ['podman', 'overlay2', 'overlay'],
    ['podman', 'vfs', 'vfs'],
  ] as const)('%s %s -> %s', (engine, driver, expected) => {
    expect(resolveStoreDriver(engine, driver)).toBe(expected);
  });

  it.each([
    ['docker', 'overlay'],
    ['docker', 'btrfs'],
    ['podman', 'zfs'],
  ] as const)('%s %s -> E_STORE_DRIVER (exit 2)', (engine, driver) => {
    expect(() => resolveStoreDriver(engine, driver)).toThrow(expect.objectContaining({ code: 'E_STORE_DRIVER', exitCode: 2 }));
  });
});
