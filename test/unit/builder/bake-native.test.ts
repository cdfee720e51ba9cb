/** `--builder` and `--engine-version`: what the bake's resolve step accepts and refuses. */
import { describe, expect, it } from 'vitest';
import { resolveBakeOptions, type BakeOptions } from '../../../src/bake/options.js';
import { tarSplitFlavourFor } from '../../../src/builder/tar-split.js';

const base: BakeOptions = { lockPath: 'l.json', cacheDir: 'cache', mode: 'store', outDir: 'out' };

describe('--builder', () => {
  it('defaults to the engine path, and native to the docker 20.10 store format', () => {
    expect(resolveBakeOptions(base, {})).toMatchObject({ builder: 'engine', engineVersion: '20.10' });
    expect(resolveBakeOptions({ ...base, builder: 'native' }, {})).toMatchObject({ builder: 'native', engine: 'docker', storageDriver: 'overlay2' });
    expect(resolveBakeOptions({ ...base, builder: 'native', engineVersion: '26.1' }, {})).toMatchObject({ engineVersion: '26.1' });
    expect(resolveBakeOptions({ ...base, builder: 'native', storageDriver: 'vfs' }, {})).toMatchObject({ builder: 'native', storageDriver: 'vfs' });
  });

  it.each<[Partial<BakeOptions>]>([
    [{ engine: 'docker', archiveFormat: 'docker-archive' }],
    [{ engine: 'docker', archiveFormat: 'oci-archive' }],
    [{ engine: 'podman', archiveFormat: 'docker-archive' }],
    [{ engine: 'podman', storageDriver: 'vfs', archiveFormat: 'oci-archive' }],
  ])('native archives: %j is accepted', (opts) => {
    expect(resolveBakeOptions({ ...base, mode: 'archive', builder: 'native', ...opts }, {})).toMatchObject({ builder: 'native', mode: 'archive', ...opts });
  });

  it('serves podman overlay stores, for podman 4.3 by default', () => {
    expect(resolveBakeOptions({ ...base, builder: 'native', engine: 'podman' }, {})).toMatchObject({ builder: 'native', engine: 'podman', storageDriver: 'overlay', engineVersion: '4.3' });
    expect(resolveBakeOptions({ ...base, builder: 'native', engine: 'podman', storageDriver: 'overlay2' }, {})).toMatchObject({ storageDriver: 'overlay' });
  });

  it.each<[Partial<BakeOptions>, RegExp]>([
    [{ builder: 'native', engine: 'podman', storageDriver: 'vfs' }, /--builder native writes archives, docker overlay2 and vfs stores and podman overlay stores .*--engine podman --storage-driver vfs\): use --builder engine/],
    [{ engineVersion: '26.1' }, /--engine-version applies to --builder native/],
    [{ builder: 'daemonless' as BakeOptions['builder'] }, /--builder must be engine or native/],
  ])('%j => E_CONFIG (exit 2) naming the fix', (opts, message) => {
    const resolveIt = () => resolveBakeOptions({ ...base, ...opts }, {});
    expect(resolveIt).toThrow(message);
    expect(resolveIt).toThrow(expect.objectContaining({ code: 'E_CONFIG', exitCode: 2 }));
  });
});

describe('--engine-version decides the tar-split flavour', () => {
  const versions = { '20.10': 'tar-split-0.11.1', '20.10.24+dfsg1': 'tar-split-0.11.1', '26.1': 'tar-split-0.11.5', '28.5.2': 'tar-split-0.11.5' };
  it.each(Object.entries(versions))('%s => %s', (version, flavour) => {
    expect(tarSplitFlavourFor(version)).toBe(flavour);
  });

  it('refuses a version that is not MAJOR.MINOR', () => {
    expect(() => tarSplitFlavourFor('latest')).toThrow(expect.objectContaining({ code: 'E_BUILDER_ENGINE_VERSION' }));
  });
});
