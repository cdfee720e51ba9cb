/** The builder's scope table: the default builder of each bake and the error outside it. */
import { describe, expect, it } from 'vitest';
import { checkNativeScope, defaultBuilder, NATIVE_SCOPE, nativeScopeRow, nativeScopeText } from '../../../src/builder/scope.js';
import { ENGINE_STORAGE_DRIVERS } from '../../../src/layouts.js';

describe('NATIVE_SCOPE', () => {
  it('serves the docker overlay2 store, and names it in flags', () => {
    expect(nativeScopeRow({ mode: 'store', engine: 'docker', storageDriver: 'overlay2' })).toBe(NATIVE_SCOPE[0]);
    expect(nativeScopeText()).toContain('--mode store --engine docker --storage-driver overlay2');
  });

  it('every row is a bake the resolve step accepts (engine and driver from the layout table)', () => {
    for (const row of NATIVE_SCOPE) {
      if (row.storageDriver !== undefined) expect(ENGINE_STORAGE_DRIVERS[row.engine]).toContain(row.storageDriver);
      expect(typeof row.write).toBe('function');
    }
  });

  // Every combination the bake accepts: native by default exactly where a default row matches
  // (rows with byDefault: false are served on request only), and the check agrees.
  it('native is the default for every store it writes (docker overlay2 and vfs, podman overlay, containerd), on request for archives', () => {
    for (const shape of [
      { mode: 'store', engine: 'docker', storageDriver: 'overlay2' },
      { mode: 'store', engine: 'docker', storageDriver: 'vfs' },
      { mode: 'store', engine: 'podman', storageDriver: 'overlay' },
      { mode: 'store', engine: 'containerd', storageDriver: 'overlayfs' },
    ]) expect(defaultBuilder(shape)).toBe('native');
    for (const shape of [
      { mode: 'archive', engine: 'docker', storageDriver: 'overlay2', archiveFormat: 'oci-archive' },
      { mode: 'archive', engine: 'podman', storageDriver: 'overlay', archiveFormat: 'docker-archive' },
    ]) {
      expect(defaultBuilder(shape)).toBe('engine');
      expect(() => checkNativeScope(shape)).not.toThrow();
    }
  });

  const shapes = (['docker', 'podman'] as const).flatMap((engine) => [
    ...ENGINE_STORAGE_DRIVERS[engine].map((storageDriver) => ({ mode: 'store', engine, storageDriver })),
    ...(['docker-archive', 'oci-archive'] as const).map((archiveFormat) => ({ mode: 'archive', engine, storageDriver: ENGINE_STORAGE_DRIVERS[engine][0], archiveFormat })),
  ]);
  it.each(shapes)('%j: default builder and --builder native agree with the table', (shape) => {
    const row = nativeScopeRow(shape);
    const served = row !== undefined;
    expect(defaultBuilder(shape)).toBe(served && row.byDefault !== false ? 'native' : 'engine');
    if (served) expect(() => checkNativeScope(shape)).not.toThrow();
    else expect(() => checkNativeScope(shape)).toThrow(expect.objectContaining({ code: 'E_CONFIG', message: expect.stringMatching(/use --builder engine/) }));
  });
});
