/**
 * The one layout table (src/layouts.ts) and the BitBake classes' copy of it
 * (lib/ctrbake-bb/ctrbake_bb/layouts.py, run with python3 as BitBake runs it) agree on every
 * layout, engine, driver and mode: what each accepts and what each bakes by default.
 */
import { describe, expect, it } from 'vitest';
import { defaultLayoutFor, ENGINE_STORAGE_DRIVERS, LAYOUTS, layoutBake, layoutFits, layoutsFor, listOr, type LayoutName } from '../../src/layouts.js';
import type { EngineName } from '../../src/formats/index.js';
import { python } from '../integration/bitbake-shell.js';
import { defaultBuilder } from '../../src/builder/scope.js';

/** The BitBake-only layout: the store extracted into the rootfs by ctrbake-rootfs-store.bbclass. */
const BITBAKE_ONLY = ['rootfs'];
const ENGINES = Object.keys(ENGINE_STORAGE_DRIVERS) as EngineName[];
const DRIVERS = [...new Set([...Object.values(ENGINE_STORAGE_DRIVERS).flat(), 'btrfs'])];
const MODES = ['archive', 'store'];
const FORMATS = ['docker-archive', 'oci-archive'];

interface PythonSide {
  layouts: string[];
  engineDrivers: Record<string, string[]>;
  defaults: Record<string, [string, string, string]>;
  /** layout/mode/engine/driver -> check()'s reason, or null when it accepts. */
  checks: Record<string, string | null>;
  /** mode/engine/driver/format -> default_builder(). */
  builders: Record<string, string>;
}

const py = JSON.parse(
  python(`
import json
from ctrbake_bb import layouts
engines, drivers, modes, formats = json.loads(${JSON.stringify(JSON.stringify([ENGINES, DRIVERS, MODES, FORMATS]))})
print(json.dumps({
    "layouts": list(layouts.LAYOUTS),
    "engineDrivers": {e: list(d) for e, d in layouts.ENGINE_DRIVERS.items()},
    "defaults": {l: layouts.defaults(l) for l in layouts.LAYOUTS},
    "checks": {f"{l}/{m}/{e}/{d}": layouts.check(l, m, e, d) for l in layouts.LAYOUTS for m in modes for e in engines for d in drivers},
    "builders": {f"{m}/{e}/{d}/{f}": layouts.default_builder(m, e, d, f) for m in modes for e in engines for d in drivers for f in formats},
}))`),
) as PythonSide;

const key = (...parts: string[]) => parts.join('/');
const cases = LAYOUTS.flatMap((layout) => MODES.flatMap((mode) => ENGINES.flatMap((engine) => DRIVERS.map((driver) => [layout, mode, engine, driver] as const))));

describe('the layout table and the BitBake side agree', () => {
  it('same layouts (BitBake adds rootfs) and the same drivers per engine', () => {
    expect(py.layouts).toEqual([...LAYOUTS, ...BITBAKE_ONLY]);
    expect(py.engineDrivers).toEqual(ENGINE_STORAGE_DRIVERS);
  });

  it.each(LAYOUTS)('%s: the same default bake', (layout) => {
    const { mode, engine, storageDriver } = layoutBake(layout);
    expect(py.defaults[layout]).toEqual([mode, engine, storageDriver]);
  });

  it.each(cases)('%s, mode %s, %s with %s: accepted by both or refused by both', (layout, mode, engine, driver) => {
    const ts = layoutFits(layout, { mode, engine, storageDriver: driver }) && ENGINE_STORAGE_DRIVERS[engine].includes(driver);
    const reason = py.checks[key(layout, mode, engine, driver)];
    expect(reason === null, `python: ${String(reason)}`).toBe(ts);
    if (reason !== null) expect(reason).toMatch(/CTRBAKE_(LAYOUT|MODE|ENGINE|STORAGE_DRIVER)/);
  });

  it.each(MODES.flatMap((mode) => ENGINES.flatMap((engine) => DRIVERS.flatMap((driver) => FORMATS.map((format) => [mode, engine, driver, format] as const)))))(
    '%s, %s with %s, %s: the same default builder (src/builder/scope.ts NATIVE_SCOPE)',
    (mode, engine, driver, format) => {
      const ts = defaultBuilder({ mode, engine, storageDriver: driver, ...(mode === 'archive' ? { archiveFormat: format } : {}) });
      expect(py.builders[key(mode, engine, driver, format)]).toBe(ts);
    },
  );

  it('rootfs bakes a docker store only (ctrbake-rootfs-store.bbclass extracts a docker data-root)', () => {
    expect(py.defaults.rootfs).toEqual(['store', 'docker', 'overlay2']);
    expect(py.checks[key('rootfs', 'store', 'docker', 'vfs')]).toBeNull();
    expect(py.checks[key('rootfs', 'store', 'podman', 'overlay')]).toContain("needs CTRBAKE_ENGINE 'docker'");
  });
});

describe('the layout table', () => {
  it.each(LAYOUTS.flatMap((layout) => ENGINES.map((engine) => [layout, engine] as const)))('%s with %s: the default bake fits the layout', (layout, engine) => {
    const bake = layoutBake(layout, engine);
    expect(layoutFits(layout, bake)).toBe(true);
    expect(ENGINE_STORAGE_DRIVERS[bake.engine]).toContain(bake.storageDriver);
  });

  it.each<[string | undefined, string | undefined, string | undefined, LayoutName]>([
    [undefined, undefined, undefined, 'archive'],
    ['archive', 'podman', 'overlay', 'archive'],
    ['store', 'docker', 'overlay2', 'split'],
    ['store', undefined, undefined, 'split'],
    ['store', 'docker', 'vfs', 'overlay-vfs'],
    ['store', 'podman', 'overlay', 'podman-ro'],
    ['store', 'podman', 'vfs', 'podman-ro'],
  ])('a %s bake with %s (%s) is made for %s', (mode, engine, driver, layout) => {
    expect(defaultLayoutFor(mode, engine, driver)).toBe(layout);
  });

  it('names the layouts each engine can use, for messages', () => {
    expect(listOr(layoutsFor('podman'))).toBe('archive, copy or podman-ro');
    expect(layoutsFor('docker')).toEqual(['archive', 'overlay-vfs', 'split', 'copy']);
  });
});
