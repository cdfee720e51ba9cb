/**
 * Helpers shared by the docker and podman store normalizers: identifiers derived from
 * content instead of the engine's random ones, and timestamps of what the bake wrote.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runProgram } from '../util/process.js';
import { CommandError } from '../errors.js';

/** RFC 3339 form of SOURCE_DATE_EPOCH, as Go writes times in engine metadata. */
export function sourceDateEpochIso(sourceDateEpoch: number): string {
  return new Date(sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * Marks the start of what a bake writes: every file in the engine root newer than the
 * marker was written by the engine or by ctrbake during the bake (metadata, layer roots,
 * whiteouts), not taken from an image layer. Waits past the filesystem's timestamp
 * granularity (a kernel tick) so nothing written afterwards shares the marker's mtime.
 */
export async function writeTimeMarker(path: string): Promise<void> {
  await writeFile(path, '');
  await sleep(50);
}

/**
 * Sets the mtime (and atime) of every entry under `root` newer than `marker` to
 * SOURCE_DATE_EPOCH, symlinks included (not their targets). Mtimes that come from the image
 * layers stay as the image defines them: containers see the files the image describes.
 */
export async function clampBakeTimes(root: string, marker: string, sourceDateEpoch: number): Promise<void> {
  const result = await runProgram('find', [root, '-newer', marker, '-exec', 'touch', '--no-dereference', '--no-create', `--date=@${sourceDateEpoch}`, '{}', '+']);
  if (result.exitCode !== 0) {
    throw new CommandError('E_STORE_NORMALIZE', `setting bake timestamps under ${root} failed: ${result.stderr || `exit code ${result.exitCode}`}`);
  }
}

/**
 * Rewrites the `lower` file of an overlay layer dir (`l/<link>:l/<link>...`, docker overlay2
 * and containers-storage overlay alike) with every link name mapped to its new one. A layer
 * without lower layers has no such file (or an empty one). `unknown` makes the error for an
 * entry that names no layer of the store.
 */
export async function rewriteLowerLinks(layerDir: string, oldToNew: ReadonlyMap<string, string>, unknown: (entry: string) => Error): Promise<void> {
  let lower: string;
  try {
    lower = (await readFile(join(layerDir, 'lower'), 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (lower === '') return;
  const rewritten = lower.split(':').map((entry) => {
    const mapped = entry.startsWith('l/') ? oldToNew.get(entry.slice(2)) : undefined;
    if (mapped === undefined) throw unknown(entry);
    return `l/${mapped}`;
  });
  await writeFile(join(layerDir, 'lower'), rewritten.join(':'));
}

/**
 * Gives every overlay layer dir under `dir` its new link name: its `link` file, the entries of
 * its `lower` file, and the `l/` symlinks (the dir recreated with `linkDirMode`).
 */
export async function relinkOverlayLayers(
  dir: string,
  layers: ReadonlyArray<{ name: string; link: string; label: string }>,
  oldToNew: ReadonlyMap<string, string>,
  linkDirMode: number,
  unknown: (label: string, entry: string) => Error,
): Promise<void> {
  for (const layer of layers) {
    const layerDir = join(dir, layer.name);
    await writeFile(join(layerDir, 'link'), layer.link);
    await rewriteLowerLinks(layerDir, oldToNew, (entry) => unknown(layer.label, entry));
  }
  const linkDir = join(dir, 'l');
  await rm(linkDir, { recursive: true, force: true });
  await mkdir(linkDir, { mode: linkDirMode });
  for (const layer of layers) await symlink(`../${layer.name}/diff`, join(linkDir, layer.link));
}
