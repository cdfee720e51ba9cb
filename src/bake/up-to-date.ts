/**
 * The up-to-date check of `ctrbake bake` (docs/bake.md): a bake whose inputs have not changed
 * since the last one into the same OUT does nothing. The inputs are summed up in one
 * fingerprint recorded in OUT/manifest.json (`inputFingerprint`):
 *   sha256 over canonical JSON of the lock's content, every option that changes the output
 *   (mode, engine, storage driver, archive format, SOURCE_DATE_EPOCH), ctrbake's version and
 *   the engine binary's `--version` line.
 * The cache is not in it: it is content-addressed and the lock pins every digest.
 *
 * Outputs are checked cheaply by default (present, regular, recorded size, not modified after
 * manifest.json was written); `verifyOutputs` also re-hashes them against the recorded sha256.
 */
import { createHash } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { engineBinaryVersion as engineVersionLine } from '../engine/index.js';
import type { BakeManifest, LockFile } from '../formats/index.js';
import { readManifest } from '../formats/manifest.js';
import { sha256File } from '../util/fs.js';
import { VERSION } from '../version.js';
import { runnableEngine, type ResolvedBakeConfig } from './options.js';

export const FINGERPRINT_VERSION = 1;

/** JSON with object keys sorted at every level: the same content always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The engine binary's own `--version` line (dockerd: ~0.2 s, podman: ~0.1 s; no daemon starts). */
export function engineBinaryVersion(config: Readonly<ResolvedBakeConfig>): Promise<string> {
  return engineVersionLine(runnableEngine(config.engine), config.engineBinary, config.signal);
}

export interface FingerprintInputs {
  lock: LockFile;
  config: Readonly<ResolvedBakeConfig>;
  engineVersion: string;
}

export function inputFingerprint({ lock, config, engineVersion }: FingerprintInputs): string {
  const inputs = {
    fingerprintVersion: FINGERPRINT_VERSION,
    ctrbakeVersion: VERSION,
    engineBinary: engineVersion,
    mode: config.mode,
    engine: config.engine,
    storageDriver: config.storageDriver,
    ...(config.namespace !== undefined ? { namespace: config.namespace } : {}),
    ...(config.mode === 'archive' ? { archiveFormat: config.archiveFormat } : {}),
    ...(config.squashfs ? { squashfs: config.squashfs } : {}),
    sourceDateEpoch: config.sourceDateEpoch,
    lock,
  };
  return `sha256:${createHash('sha256').update(canonicalJson(inputs)).digest('hex')}`;
}

export type UpToDate = { upToDate: true; manifest: BakeManifest } | { upToDate: false; reason: string; manifestFound: boolean };

/** Compares OUT against the fingerprint; never throws for a missing or damaged OUT (that just means: bake). */
export async function checkUpToDate(outDir: string, fingerprint: string, verifyOutputs: boolean): Promise<UpToDate> {
  const manifestPath = join(outDir, 'manifest.json');
  let manifestMtimeMs: number;
  try {
    manifestMtimeMs = (await lstat(manifestPath)).mtimeMs;
  } catch (error) {
    return unreadable(error);
  }
  const read = await readManifest(manifestPath);
  if (read.problem?.kind === 'unreadable') return unreadable(read.problem.cause);
  const stale = (reason: string): UpToDate => ({ upToDate: false, reason, manifestFound: true });
  if (read.problem) return stale(`OUT/manifest.json is not a bake manifest (${read.problem.message})`);
  const manifest = read.manifest;
  if (!manifest.inputFingerprint) return stale('OUT/manifest.json records no input fingerprint');
  if (manifest.inputFingerprint !== fingerprint) return stale('the inputs changed (lock, options, ctrbake or engine version)');
  for (const output of manifest.outputs) {
    const path = join(outDir, output.path);
    const st = await lstat(path).catch(() => undefined);
    if (!st || !st.isFile()) return stale(`${output.path} is missing`);
    if (st.size !== output.size) return stale(`${output.path} has ${st.size} bytes, the manifest records ${output.size}`);
    // Outputs are written before manifest.json: one modified later has been touched since.
    if (st.mtimeMs > manifestMtimeMs) return stale(`${output.path} was modified after manifest.json`);
    if (verifyOutputs && (await sha256File(path)) !== output.sha256) return stale(`${output.path} does not match its recorded sha256`);
  }
  return { upToDate: true, manifest };
}

function unreadable(error: unknown): UpToDate {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return { upToDate: false, reason: 'no previous bake in OUT', manifestFound: false };
  return { upToDate: false, reason: `OUT/manifest.json is unreadable (${(error as Error).message})`, manifestFound: true };
}
