/**
 * The one table of device layouts (docs/loader.md): what each one needs of a bake (mode,
 * engines, storage drivers), and which storage drivers each engine bakes with. The loader
 * checks a manifest against it, `ctrbake build` derives its bake from it, the report picks
 * its default first-boot model from it; the BitBake classes' lib/ctrbake-bb/ctrbake_bb/
 * layouts.py holds the same table (test/unit/layouts.test.ts runs both and compares).
 */
import type { BakeMode, TargetEngine as EngineName } from './formats/index.js';

/** Storage drivers a store of each engine is baked with; the first is the default. */
export const ENGINE_STORAGE_DRIVERS: Readonly<Record<EngineName, readonly [string, ...string[]]>> = Object.freeze({
  docker: ['overlay2', 'vfs'],
  podman: ['overlay', 'vfs'],
  // containerd: the snapshotter the device unpacks the baked content into.
  containerd: ['overlayfs'],
});

export interface LayoutSpec {
  mode: BakeMode;
  /** Engines whose bake the layout takes; the first is the default. */
  engines: readonly [EngineName, ...EngineName[]];
  /** Storage drivers it takes (the first is the default); absent: any of the engine's. */
  storageDrivers?: readonly [string, ...string[]];
  /** Takes any store: never the layout a bake is assumed to be made for. */
  generic?: boolean;
}

export const LAYOUT_TABLE = Object.freeze({
  archive: { mode: 'archive', engines: ['docker', 'podman'] },
  'overlay-vfs': { mode: 'store', engines: ['docker'], storageDrivers: ['vfs'] },
  split: { mode: 'store', engines: ['docker'], storageDrivers: ['overlay2'] },
  copy: { mode: 'store', engines: ['docker', 'podman'], generic: true },
  'podman-ro': { mode: 'store', engines: ['podman'] },
  containerd: { mode: 'store', engines: ['containerd'] },
} as const satisfies Record<string, LayoutSpec>);

export type LayoutName = keyof typeof LAYOUT_TABLE;
export const LAYOUTS = Object.freeze(Object.keys(LAYOUT_TABLE) as LayoutName[]);

export function layoutSpec(layout: LayoutName): LayoutSpec {
  return LAYOUT_TABLE[layout];
}

export interface LayoutBake {
  mode: BakeMode;
  engine: EngineName;
  storageDriver: string;
}

/** What a layout bakes: its mode, the given engine (else its default) and its default driver for that engine. */
export function layoutBake(layout: LayoutName, engine?: EngineName): LayoutBake {
  const spec = layoutSpec(layout);
  const chosen = engine !== undefined && spec.engines.includes(engine) ? engine : spec.engines[0];
  return { mode: spec.mode, engine: chosen, storageDriver: spec.storageDrivers?.[0] ?? ENGINE_STORAGE_DRIVERS[chosen][0] };
}

/** Does a bake of this mode, engine and driver fit the layout? (The driver is not checked against the engine here.) */
export function layoutFits(layout: LayoutName, bake: { mode: string; engine: string; storageDriver: string }): boolean {
  const spec = layoutSpec(layout);
  return bake.mode === spec.mode && (spec.engines as readonly string[]).includes(bake.engine) && (spec.storageDrivers === undefined || (spec.storageDrivers as readonly string[]).includes(bake.storageDriver));
}

/** Layouts that take bakes of this engine, in table order. */
export function layoutsFor(engine: EngineName): LayoutName[] {
  return LAYOUTS.filter((l) => (layoutSpec(l).engines as readonly string[]).includes(engine));
}

/**
 * The layout a bake is made for, when nobody names one: archive unless it is a store; for a
 * store, the first specific layout that takes it (an unknown engine reads as docker, an
 * unknown driver as the engine's default).
 */
export function defaultLayoutFor(mode: string | undefined, engine: string | undefined, storageDriver: string | undefined): LayoutName {
  if (mode !== 'store') return 'archive';
  const e: EngineName = engine === 'podman' || engine === 'containerd' ? engine : 'docker';
  const drivers = ENGINE_STORAGE_DRIVERS[e];
  const driver = storageDriver !== undefined && drivers.includes(storageDriver) ? storageDriver : drivers[0];
  const found = LAYOUTS.find((l) => !(layoutSpec(l) as LayoutSpec).generic && layoutFits(l, { mode, engine: e, storageDriver: driver }));
  return found ?? 'copy';
}

/** "a, b or c" for messages. */
export function listOr(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}
