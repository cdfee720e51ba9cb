/** `--builder` and `--engine-version`: what the bake's resolve step accepts and refuses. */
import { describe, expect, it } from 'vitest';
import { resolveBakeOptions, type BakeOptions } from '../../../src/bake/options.js';
import { tarSplitFlavourFor } from '../../../src/builder/tar-split.js';

const base: BakeOptions = { lockPath: 'l.json', cacheDir: 'cache', mode: 'store', outDir: 'out' };

describe('--builder', () => {
  it('defaults to native where it serves the bake (docker overlay2 store, for docker 20.10), else to the engine path', () => {
    expect(resolveBakeOptions(base, {})).toMatchObject({ builder: 'native', engine: 'docker', storageDriver: 'overlay2', engineVersion: '20.10' });
    expect(resolveBakeOptions({ ...base, builder: 'engine' }, {})).toMatchObject({ builder: 'engine' });
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

  it.each<[Partial<BakeOptions>]>([
    [{ mode: 'archive' }],
    [{ mode: 'archive', engine: 'podman', archiveFormat: 'oci-archive' }],
  ])('served on request, not yet by default: %j bakes with the engine path unless --builder native', (opts) => {
    expect(resolveBakeOptions({ ...base, ...opts }, {})).toMatchObject({ builder: 'engine' });
    expect(resolveBakeOptions({ ...base, ...opts, builder: 'native' }, {})).toMatchObject({ builder: 'native' });
  });

  it('serves podman overlay stores, for podman 4.3 by default', () => {
    expect(resolveBakeOptions({ ...base, builder: 'native', engine: 'podman' }, {})).toMatchObject({ builder: 'native', engine: 'podman', storageDriver: 'overlay', engineVersion: '4.3' });
    expect(resolveBakeOptions({ ...base, builder: 'native', engine: 'podman', storageDriver: 'overlay2' }, {})).toMatchObject({ storageDriver: 'overlay' });
  });

  it.each<[Partial<BakeOptions>, RegExp]>([
    [{ builder: 'native', engine: 'podman', storageDriver: 'vfs' }, /--builder native does not write --mode store --engine podman --storage-driver vfs yet \(it writes: .*\): use --builder engine for this bake, or leave --builder out/],
    [{ builder: 'engine', engineVersion: '26.1' }, /--engine-version applies to --builder native.*drop it or drop --builder engine/],
    [{ mode: 'archive', engineVersion: '26.1' }, /--engine-version applies to --builder native \(the engine path uses the installed engine\): drop it$/],
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
