import { describe, expect, it } from 'vitest';
import { formatPlatform, type LockFile } from '../../../src/formats/index.js';
import { bakeFor, resolveStandaloneOptions, type StandaloneBuildOptions } from '../../../src/standalone/options.js';
import { defaultLockPath, lockMismatch } from '../../../src/standalone/lock-step.js';

const base: StandaloneBuildOptions = { references: ['example.com/a:1'], cacheDir: '/tmp/c', br2Arch: 'aarch64', overlayDir: '/tmp/o' };

describe('resolveStandaloneOptions', () => {
  it.each([
    [{ cacheDir: '' }, /--cache DIR is required/],
    [{ fetchOnly: true, offline: true, overlayDir: undefined }, /--fetch-only downloads, --offline forbids/],
    [{ overlayDir: undefined }, /-o DIR .* is required, unless --fetch-only/],
    [{ fetchOnly: true }, /--fetch-only writes only the lock and the cache: drop -o/],
    [{ partitionImage: '/tmp/p.sqfs' }, /--partition-image FILE and --partition-device \/dev\/NODE go together/],
    [{ partitionDevice: '/dev/mmcblk0p3' }, /go together/],
    [{ partitionImage: '/tmp/p.sqfs', partitionDevice: 'mmcblk0p3' }, /--partition-device "mmcblk0p3" must be an absolute device path/],
    [{ partitionImage: '/tmp/p.sqfs', partitionDevice: '/dev/../etc/x' }, /must be an absolute device path/],
    [{ layout: 'flat' as never }, /--layout must be one of archive, overlay-vfs, split, copy, podman-ro/],
    [{ init: 'openrc' as never }, /--init must be one of systemd, sysvinit, busybox/],
    [{ engine: 'podman', layout: 'split' }, /--layout split is a docker layout; with podman use archive, copy or podman-ro$/],
    [{ engine: 'podman', layout: 'overlay-vfs' }, /--layout overlay-vfs is a docker layout; with podman use archive, copy or podman-ro$/],
    [{ engine: 'docker', layout: 'podman-ro' }, /--layout podman-ro needs --engine podman/],
    [{ compression: 'bzip2' as never }, /--compression must be one of/],
    [{ br2Arch: 'armeb' }, /BR2_ARCH "armeb" has no OCI platform/],
  ] as Array<[Partial<StandaloneBuildOptions>, RegExp]>)('%j', async (change, message) => {
    const error = await resolveStandaloneOptions({ ...base, ...change }, {}).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 2 });
    expect((error as Error).message).toMatch(message);
  });

  it('fills defaults: archive layout, docker, busybox init, the payload dir, SOURCE_DATE_EPOCH', async () => {
    const config = await resolveStandaloneOptions(base, { SOURCE_DATE_EPOCH: '1700000000' });
    expect(config).toMatchObject({ layout: 'archive', mode: 'archive', engine: 'docker', init: 'busybox', payloadDir: '/usr/share/ctrbake', sourceDateEpoch: 1700000000, offline: false, fetchOnly: false });
    expect(formatPlatform(config.platform)).toBe('linux/arm64/v8');
  });

  it('rejects a bad SOURCE_DATE_EPOCH as a usage error', async () => {
    await expect(resolveStandaloneOptions(base, { SOURCE_DATE_EPOCH: 'yesterday' })).rejects.toMatchObject({ code: 'E_STANDALONE_CONFIG' });
  });
});

describe('what each layout bakes', () => {
  it.each([
    ['archive', undefined, { mode: 'archive', engine: 'docker', storageDriver: 'overlay2' }],
    ['archive', 'podman', { mode: 'archive', engine: 'podman', storageDriver: 'overlay' }],
    ['split', undefined, { mode: 'store', engine: 'docker', storageDriver: 'overlay2' }],
    ['overlay-vfs', undefined, { mode: 'store', engine: 'docker', storageDriver: 'vfs' }],
    ['copy', 'podman', { mode: 'store', engine: 'podman', storageDriver: 'overlay' }],
    ['podman-ro', undefined, { mode: 'store', engine: 'podman', storageDriver: 'overlay' }],
  ] as const)('%s %s', (layout, engine, want) => {
    expect(bakeFor(layout, engine)).toEqual(want);
  });
});

describe('the kept lock', () => {
  const lock = {
    lockVersion: 1,
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    images: [{ reference: 'example.com/a:1' }, { reference: 'example.com/b:2' }],
  } as unknown as LockFile;

  it.each([
    [['example.com/a:1', 'example.com/b:2'], 'linux/arm64', undefined],
    [['example.com/a:1', 'example.com/b:2'], 'linux/arm/v7', /it is for linux\/arm64\/v8, the target is linux\/arm\/v7/],
    [['example.com/a:1', 'example.com/b:2', 'example.com/c:3'], 'linux/arm64', /it lacks example.com\/c:3/],
    [['example.com/a:1'], 'linux/arm64', /it also holds example.com\/b:2/],
  ] as const)('%j for %s', (refs, platform, why) => {
    const [os, architecture, variant] = platform.split('/') as [string, string, string | undefined];
    const got = lockMismatch(lock, refs, { os, architecture, ...(variant ? { variant } : {}) });
    if (why === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(why);
  });

  it('lives in the cache under a name of the list and the platform', () => {
    const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    const a = defaultLockPath('/dl/ctrbake', ['x/a:1', 'x/b:1'], arm64);
    expect(a).toMatch(/^\/dl\/ctrbake\/locks\/[0-9a-f]{24}\.lock\.json$/);
    expect(defaultLockPath('/dl/ctrbake', ['x/a:1', 'x/b:1'], arm64)).toBe(a);
    expect(defaultLockPath('/dl/ctrbake', ['x/a:1'], arm64)).not.toBe(a);
    expect(defaultLockPath('/dl/ctrbake', ['x/a:1', 'x/b:1'], { os: 'linux', architecture: 'amd64' })).not.toBe(a);
  });
});
