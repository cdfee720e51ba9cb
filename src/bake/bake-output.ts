/**
 * OUT of `ctrbake bake`: what a previous bake output looks like (the output guard's
 * recognizer, src/util/output.ts), and how a staging dir left by a killed bake is released
 * (its engine stopped, its mounts undone) before src/util/staged-output.ts restores OUT.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_ENGINE_TMP_BASE } from '../engine/private-dir.js';
import { unmountUnder } from '../engine/mounts.js';
import { stopEverythingNaming, sweepOrphanedEngineDirs } from '../engine/orphans.js';
import type { OutputFile } from '../formats/index.js';
import { looksLikeManifest, MANIFEST_FILE } from '../formats/manifest.js';
import { LAYERS_FILE } from '../formats/layers.js';
import { checkOutput, type CheckedOutput, type NamedPath } from '../util/output.js';
import { recoverStagedOutputs, type RecoveredOutput } from '../util/staged-output.js';

/** Everything a bake (and `report`, which adds layers.json) writes at the top of OUT. */
const BAKE_ENTRIES = new Set([MANIFEST_FILE, 'archives', 'store.tar', 'store.sqfs', LAYERS_FILE]);

/**
 * A previous bake output: manifest.json with ctrbake's fields, nothing at the top but what a
 * bake writes, and nothing in archives/ that the manifest does not list.
 */
export async function isBakeOutput(dir: string): Promise<boolean> {
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8'));
  } catch {
    return false;
  }
  if (!looksLikeManifest(manifest)) return false;
  const entries = await readdir(dir);
  if (!entries.every((e) => BAKE_ENTRIES.has(e))) return false;
  if (entries.includes('archives')) {
    const listed = new Set(manifest.outputs.map((o: Partial<OutputFile> | null) => o?.path));
    const archives = await readdir(join(dir, 'archives')).catch(() => undefined);
    if (!archives || !archives.every((a) => listed.has(`archives/${a}`))) return false;
  }
  return true;
}

export const BAKE_OUTPUT_SIGNATURE = 'manifest.json written by ctrbake bake next to its archives/, store.tar or store.sqfs';

/** The bake's output guard: before anything else (docs/errors.md, E_OUTPUT_*). */
export function checkBakeOutput(outDir: string, inputs: readonly NamedPath[]): Promise<CheckedOutput> {
  return checkOutput({ path: outDir, flag: '-o', command: 'bake', kind: 'directory', signature: BAKE_OUTPUT_SIGNATURE, isOurs: isBakeOutput }, inputs);
}

/**
 * Ends what a dead run left using a staging dir: its private engine (the owner-checked sweep
 * of engine dirs) and any process naming the dir (dockerd's --data-root, podman's --root, a
 * podman pull still running), then the mounts under it. False: a mount could not be undone.
 */
export function releaseEngineStaging(tmpBase: string | undefined): (staging: string) => Promise<boolean> {
  return async (staging) => {
    await sweepOrphanedEngineDirs([tmpBase ?? DEFAULT_ENGINE_TMP_BASE]);
    await stopEverythingNaming(staging);
    return (await unmountUnder([staging])).length === 0;
  };
}

/** Restores OUT from what a killed run left next to it (util/staged-output.ts). */
export function recoverBakeOutput(outDir: string, tmpBase: string | undefined): Promise<RecoveredOutput[]> {
  return recoverStagedOutputs(outDir, releaseEngineStaging(tmpBase));
}
