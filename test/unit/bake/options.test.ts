import { describe, expect, it } from 'vitest';
import { resolveBakeOptions, type BakeOptions } from '../../../src/bake/options.js';

const base: BakeOptions = { lockPath: 'l.json', cacheDir: 'cache', mode: 'archive', outDir: 'out' };

describe('resolveBakeOptions', () => {
  it('fills defaults: docker, overlay2, docker-archive, SOURCE_DATE_EPOCH 0, absolute paths; frozen', () => {
    const c = resolveBakeOptions(base, {});
    expect(c).toMatchObject({ engine: 'docker', storageDriver: 'overlay2', archiveFormat: 'docker-archive', sourceDateEpoch: 0, mode: 'archive' });
    expect('offline' in c).toBe(false);
    expect(c.lockPath.startsWith('/')).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ engine: 'podman' }, {}, { storageDriver: 'overlay' }],
    [{ engine: 'podman', storageDriver: 'overlay2' }, {}, { storageDriver: 'overlay' }],
    [{ engine: 'podman', storageDriver: 'vfs' }, {}, { storageDriver: 'vfs' }],
    [{ storageDriver: 'vfs' }, {}, { storageDriver: 'vfs' }],
    [{}, { SOURCE_DATE_EPOCH: '1700000000' }, { sourceDateEpoch: 1700000000 }],
    [{ sourceDateEpoch: 5 }, { SOURCE_DATE_EPOCH: '1700000000' }, { sourceDateEpoch: 5 }],
    [{}, { CTRBAKE_TMPDIR: '/t' }, { tmpBase: '/t' }],
    [{ archiveFormat: 'oci-archive' }, {}, { archiveFormat: 'oci-archive' }],
    [{ mode: 'store', squashfs: { gzipImplementation: 'canonical' } }, {}, { squashfs: { backend: 'builtin', compression: 'gzip', gzipImplementation: 'canonical' } }],
  ] as [Partial<BakeOptions>, NodeJS.ProcessEnv, Record<string, unknown>][])('%j with env %j => %j', (opts, env, expected) => {
    expect(resolveBakeOptions({ ...base, ...opts }, env)).toMatchObject(expected);
  });

  it.each([
    [{ storageDriver: 'overlay' }, {}, /does not work with docker: use overlay2 or vfs/],
    [{ engine: 'podman', storageDriver: 'btrfs' }, {}, /does not work with podman/],
    [{ engine: 'rkt' }, {}, /--engine must be docker, podman or containerd/],
    [{ mode: 'tarball' }, {}, /--mode must be archive or store/],
    [{ archiveFormat: 'zip' }, {}, /--archive-format/],
    [{}, { SOURCE_DATE_EPOCH: 'yesterday' }, /SOURCE_DATE_EPOCH/],
    [{ sourceDateEpoch: -1 }, {}, /non-negative/],
    [{ outDir: '' }, {}, /-o is required/],
    [{ mode: 'store', squashfs: { backend: 'tar2sqfs', gzipImplementation: 'canonical' } }, {}, /--gzip-impl applies to the builtin backend with gzip/],
    [{ mode: 'store', squashfs: { compression: 'zstd', gzipImplementation: 'canonical' } }, {}, /--gzip-impl applies to the builtin backend with gzip/],
    [{ mode: 'store', squashfs: { gzipImplementation: 'fast' } }, {}, /--gzip-impl must be one of node, canonical/],
    // The CLI's --compression and friends without --squashfs: refused by the library, first.
    [{ squashfs: { pack: false, compression: 'xz' } }, {}, /--compression, --squashfs-backend, --block-size and --gzip-impl apply to --squashfs: add --squashfs/],
    [{ mode: 'store', squashfs: { pack: false, blockSize: 4096 } }, {}, /apply to --squashfs: add --squashfs/],
    [{ engine: 'rkt', squashfs: { pack: false, backend: 'tar2sqfs' } }, {}, /apply to --squashfs: add --squashfs/],
  ] as [Partial<BakeOptions>, NodeJS.ProcessEnv, RegExp][])('%j with env %j => E_CONFIG (exit 2)', (opts, env, message) => {
    expect(() => resolveBakeOptions({ ...base, ...opts } as BakeOptions, env)).toThrow(expect.objectContaining({ code: 'E_CONFIG', exitCode: 2, message: expect.stringMatching(message) }));
  });

  it('squashfs.pack false alone: no SquashFS, as without the squashfs field', () => {
    const c = resolveBakeOptions({ ...base, mode: 'store', squashfs: { pack: false } }, {});
    expect(c.squashfs).toBeUndefined();
    expect(c).toEqual(resolveBakeOptions({ ...base, mode: 'store' }, {}));
  });
});
