/**
 * What ctrbake's own builder writes: one row per output it serves, with the function that
 * writes it. The bake takes its default builder from this table (native wherever a row
 * matches, the engine path elsewhere) and `--builder native` outside it is a usage error that
 * lists the rows. A new output of the builder (vfs, podman stores, archives) is one row here.
 */
import { ConfigError } from '../errors.js';
import type { ArchiveFormat, BakeManifest, BakeMode, LockFile, TargetEngine } from '../formats/index.js';
import type { Reporter } from '../util/reporter.js';
import type { StagedOutput } from '../util/staged-output.js';
import type { CacheCheckResult } from '../fetch/complete.js';
import { bakeNativeArchiveInto } from './archive-native.js';
import { bakeNativeStoreFromConfigInto } from './bake-native.js';

export const BUILDERS = ['engine', 'native'] as const;
export type BuilderName = (typeof BUILDERS)[number];

/** The resolved bake config as the builder reads it (structurally: builder/ does not import bake/). */
export interface NativeBakeConfig {
  mode: BakeMode;
  engine: TargetEngine;
  namespace?: string;
  cacheDir: string;
  storageDriver: string;
  archiveFormat: ArchiveFormat;
  engineVersion: string;
  sourceDateEpoch: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

export interface NativeBakeInputs {
  lock: LockFile;
  checkCache: () => Promise<CacheCheckResult>;
}

/** Writes the outputs into the bake's staging dir and returns the manifest (not yet written). */
export type NativeBakeWriter = (config: Readonly<NativeBakeConfig>, inputs: Readonly<NativeBakeInputs>, staged: StagedOutput) => Promise<BakeManifest>;

export interface NativeScopeRow {
  mode: BakeMode;
  engine: TargetEngine;
  /** Absent: any (archive mode has no storage driver). */
  storageDriver?: string;
  /** Archive mode: the format; absent: any. */
  archiveFormat?: ArchiveFormat;
  write: NativeBakeWriter;
  /**
   * false: served on request (`--builder native`) but not yet the default: the engine path stays
   * the default until the device tests (loader-*, size model, report) run on this output by default.
   */
  byDefault?: false;
}

/** Archives are for docker or podman to load (containerd's store is `--mode store --engine containerd`). */
const writeArchive: NativeBakeWriter = (config, inputs, staged) => {
  if (config.engine === 'containerd') {
    throw new ConfigError('E_CONFIG', 'archives are baked for --engine docker or podman; for containerd bake its store: --mode store --engine containerd');
  }
  return bakeNativeArchiveInto({ ...config, engine: config.engine }, inputs, staged);
};

export const NATIVE_SCOPE: readonly NativeScopeRow[] = Object.freeze([
  { mode: 'store', engine: 'docker', storageDriver: 'overlay2', write: bakeNativeStoreFromConfigInto },
  { mode: 'store', engine: 'docker', storageDriver: 'vfs', write: bakeNativeStoreFromConfigInto },
  { mode: 'store', engine: 'podman', storageDriver: 'overlay', write: bakeNativeStoreFromConfigInto },
  // containerd has no engine path: the builder is the only way to bake its store.
  { mode: 'store', engine: 'containerd', storageDriver: 'overlayfs', write: bakeNativeStoreFromConfigInto },
  { mode: 'archive', engine: 'docker', write: writeArchive, byDefault: false },
  { mode: 'archive', engine: 'podman', write: writeArchive, byDefault: false },
]);

export interface BakeShape {
  mode: string;
  engine: string;
  storageDriver: string;
  archiveFormat?: string;
}

/** The row of the builder that writes this bake, if it serves it. */
export function nativeScopeRow(bake: BakeShape): NativeScopeRow | undefined {
  return NATIVE_SCOPE.find(
    (row) =>
      row.mode === bake.mode &&
      row.engine === bake.engine &&
      (row.storageDriver === undefined || row.storageDriver === bake.storageDriver) &&
      (row.archiveFormat === undefined || bake.archiveFormat === undefined || row.archiveFormat === bake.archiveFormat),
  );
}

/** The builder a bake uses when none is named: native wherever it serves the bake. */
export function defaultBuilder(bake: BakeShape): BuilderName {
  const row = nativeScopeRow(bake);
  return row && row.byDefault !== false ? 'native' : 'engine';
}

function describeRow(row: NativeScopeRow): string {
  const parts = [`--mode ${row.mode}`, `--engine ${row.engine}`];
  if (row.storageDriver) parts.push(`--storage-driver ${row.storageDriver}`);
  if (row.archiveFormat) parts.push(`--archive-format ${row.archiveFormat}`);
  return parts.join(' ');
}

/** What the builder serves, as flags: "--mode store --engine docker --storage-driver overlay2; ...". */
export function nativeScopeText(): string {
  return NATIVE_SCOPE.map(describeRow).join('; ');
}

/** Where native is the default builder, as flags. */
export function defaultScopeText(): string {
  return NATIVE_SCOPE.filter((row) => row.byDefault !== false).map(describeRow).join('; ');
}

function describeBake(bake: BakeShape): string {
  return bake.mode === 'archive'
    ? `--mode archive --engine ${bake.engine}${bake.archiveFormat ? ` --archive-format ${bake.archiveFormat}` : ''}`
    : `--mode ${bake.mode} --engine ${bake.engine} --storage-driver ${bake.storageDriver}`;
}

/** `--builder native` on a bake the builder does not serve: a usage error naming what it serves and the way out. */
export function checkNativeScope(bake: BakeShape): NativeScopeRow {
  const row = nativeScopeRow(bake);
  if (row) return row;
  throw new ConfigError(
    'E_CONFIG',
    `--builder native does not write ${describeBake(bake)} yet (it writes: ${nativeScopeText()}): use --builder engine for this bake, or leave --builder out`,
  );
}
