/**
 * What the SquashFS stage and its backends share: the names of backends and compressors, the
 * resolved options a backend is run with, and the backend interface. Apart from index.ts so
 * that the backends, which index.ts picks from, do not import it back.
 */
import type { GzipImplementation } from '../writer/compressor.js';

export const SQUASHFS_BACKENDS = ['builtin', 'tar2sqfs', 'sqfstar'] as const;
export type SquashfsBackendName = (typeof SQUASHFS_BACKENDS)[number];
export const SQUASHFS_COMPRESSIONS = ['gzip', 'zstd', 'lz4', 'xz'] as const;
export type SquashfsCompression = (typeof SQUASHFS_COMPRESSIONS)[number];
/**
 * How the calling command spells the SquashFS flags: a hint names the flag the user can type
 * (`ctrbake squashfs --backend`, but `bake`/`build`/`loader --squashfs-backend`).
 */
export interface SquashfsFlagNames {
  backend: string;
  compression: string;
  level: string;
  blockSize: string;
  gzipImpl: string;
}
export const SQUASHFS_FLAGS: Readonly<SquashfsFlagNames> = Object.freeze({ backend: '--backend', compression: '--compression', level: '--level', blockSize: '--block-size', gzipImpl: '--gzip-impl' });
/** The spelling of `bake --squashfs`, `build` and `loader`, where `--backend` would be ambiguous. */
export const SQUASHFS_SUBCOMMAND_FLAGS: Readonly<SquashfsFlagNames> = Object.freeze({ ...SQUASHFS_FLAGS, backend: '--squashfs-backend' });

export interface ResolvedSquashfsOptions {
  readonly backend: SquashfsBackendName;
  readonly compression: SquashfsCompression;
  readonly level?: number;
  readonly blockSize: number;
  readonly sourceDateEpoch: number;
  readonly workers: number;
  readonly gzipImplementation?: GzipImplementation;
  readonly flags: Readonly<SquashfsFlagNames>;
  readonly signal?: AbortSignal;
  /**
   * Progress hook: input bytes consumed so far, and image bytes written so far when the
   * backend knows them (the builtin writer); otherwise the caller reads the output's size.
   */
  readonly onInputBytes?: (bytes: number, imageBytes?: number) => void;
  /** A backend's warning for the user (a limitation of the host tool, say). */
  readonly onWarning?: (message: string) => void;
}

/** What one backend run reports back. */
export interface SquashfsBackendRun {
  entries?: number;
  inputBytes?: number;
  inodes?: number;
}

export interface PreparedSquashfsBackend {
  tool: { name: string; version: string };
  write(input: AsyncIterable<Uint8Array>, tmpPath: string, config: ResolvedSquashfsOptions): Promise<SquashfsBackendRun>;
}

/** A backend: `prepare` checks its prerequisites (tools, versions) before any input is read. */
export interface SquashfsBackendImpl {
  name: SquashfsBackendName;
  prepare(config: ResolvedSquashfsOptions): Promise<PreparedSquashfsBackend>;
}
