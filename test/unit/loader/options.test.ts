/**
 * Which bakes each loader layout takes (the layout table, src/layouts.ts) and the message
 * that names the fix when a manifest does not fit.
 */
import { describe, expect, it } from 'vitest';
import { checkLayoutFits, LOADER_LAYOUTS, type LoaderLayout } from '../../../src/loader/options.js';
import type { BakeManifest } from '../../../src/formats/index.js';

const bakes = {
  'archive docker': ['archive', 'docker', 'overlay2'],
  'archive podman': ['archive', 'podman', 'overlay'],
  'docker overlay2 store': ['store', 'docker', 'overlay2'],
  'docker vfs store': ['store', 'docker', 'vfs'],
  'podman overlay store': ['store', 'podman', 'overlay'],
  'podman vfs store': ['store', 'podman', 'vfs'],
  'containerd store': ['store', 'containerd', 'overlayfs'],
} as const;
type Bake = keyof typeof bakes;

function manifest(bake: Bake): BakeManifest {
  const [mode, engine, storageDriver] = bakes[bake];
  return { mode, engine: { name: engine, version: '1' }, storageDriver } as unknown as BakeManifest;
}

const takes: Record<LoaderLayout, Bake[]> = {
  archive: ['archive docker', 'archive podman'],
  'overlay-vfs': ['docker vfs store'],
  split: ['docker overlay2 store'],
  copy: ['docker overlay2 store', 'docker vfs store', 'podman overlay store', 'podman vfs store'],
  'podman-ro': ['podman overlay store', 'podman vfs store'],
  containerd: ['containerd store'],
};
const needs: Record<LoaderLayout, string> = {
  archive: 'a bake with --mode archive',
  'overlay-vfs': 'a docker store baked with --storage-driver vfs',
  split: 'a docker store baked with --storage-driver overlay2',
  copy: 'a bake with --mode store',
  'podman-ro': 'a podman store (--mode store --engine podman)',
  containerd: 'a containerd store (--mode store --engine containerd)',
};

describe('checkLayoutFits', () => {
  it.each(LOADER_LAYOUTS.flatMap((layout) => (Object.keys(bakes) as Bake[]).map((bake) => [layout, bake] as const)))('--layout %s with a %s bake', (layout, bake) => {
    if (takes[layout].includes(bake)) {
      expect(() => checkLayoutFits(layout, manifest(bake))).not.toThrow();
      return;
    }
    const [mode, engine, driver] = bakes[bake];
    expect(() => checkLayoutFits(layout, manifest(bake))).toThrow(
      expect.objectContaining({
        code: 'E_LOADER_LAYOUT',
        message: `--layout ${layout} needs ${needs[layout]}; the manifest is a ${mode} bake with ${engine} (${driver}): bake again or pick another layout (docs/loader.md)`,
      }),
    );
  });
});
