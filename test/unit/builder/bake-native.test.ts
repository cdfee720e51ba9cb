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
  });

  it.each<[Partial<BakeOptions>, RegExp]>([
    [{ builder: 'native', mode: 'archive' }, /--builder native writes docker overlay2 stores and containerd stores only .*--mode archive.*use --builder engine/],
    [{ builder: 'native', engine: 'podman' }, /--builder native writes docker overlay2 stores and containerd stores only .*--engine podman/],
    [{ builder: 'native', storageDriver: 'vfs' }, /--storage-driver vfs\): use --builder engine/],
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
