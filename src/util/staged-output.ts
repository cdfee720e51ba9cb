/**
 * A directory output appears whole or not at all, and an interrupted run leaves the previous
 * one exactly as it was (docs/bake.md, "Output"):
 *
 *   PARENT/.NAME.ctrbake-PID-START-NS-XXXXXX/   staging dir, same filesystem as OUT (renames stay atomic)
 *   (the owner's pid, start time and pid namespace are in the name, util/owner.ts: no window
 *   in which a staging dir exists without naming its owner)
 *     out/                         what becomes OUT, written completely first
 *     work/                        scratch, goes with the staging dir
 *     committing                   written (and synced) once out/ is complete, just before the renames
 *     old/                         the previous OUT, between the two renames
 *
 * The commit is synchronous from its last check to the second rename: no JS signal handler
 * runs in between, so SIGINT/SIGTERM see OUT either old or new. After a SIGKILL (or a power
 * loss) between the renames OUT is missing: the next run of the command finds the staging dir
 * of the dead owner and restores OUT (out/ when `committing` exists, else nothing to restore)
 * before anything else. Staging dirs of live processes (and of other pid namespaces) are
 * never touched.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CtrbakeError } from '../errors.js';
import { registerCleanup } from './cleanup.js';
import { currentOwner, isGone, ownerFromName, ownerTag } from './owner.js';

const COMMIT_MARKER = 'committing';

export interface StagedOutput {
  /** The private staging dir (0700): scratch space lives here too. */
  staging: string;
  /** What becomes OUT. */
  outTmp: string;
  /** Scratch dir inside staging (removed with it). */
  work: string;
  /** Renames outTmp to OUT (replacing an existing OUT) and removes the staging dir. */
  commit(): Promise<void>;
  /** Removes the staging dir; idempotent. */
  discard(): Promise<void>;
}

export interface StageOptions {
  /** Aborted on SIGINT/SIGTERM: checked, synchronously, right before the renames. */
  signal?: AbortSignal;
  /** Name of the cleanup registered for SIGINT/SIGTERM (diagnostics). */
  label?: string;
}

function stagingPrefix(outDir: string): string {
  return `.${basename(outDir)}.ctrbake-`;
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function removeStaging(staging: string): Promise<void> {
  return rm(staging, { recursive: true, force: true, maxRetries: 3 });
}

export async function stageOutput(outDir: string, options: StageOptions = {}): Promise<StagedOutput> {
  const parent = dirname(outDir);
  await mkdir(parent, { recursive: true });
  const staging = await mkdtemp(join(parent, `${stagingPrefix(outDir)}${ownerTag(await currentOwner())}-`));
  let discarded: Promise<void> | undefined;
  // Every call removes the dir again (after the previous removal): a signal's cleanup may run
  // while an engine still starts and recreates its data-root in the dir; the owner's own
  // discard, after the engine stopped, is the one that leaves nothing.
  const discard = (): Promise<void> => {
    discarded = (discarded ?? Promise.resolve()).catch(() => undefined).then(() => removeStaging(staging)).then(() => unregister());
    return discarded;
  };
  const unregister = registerCleanup(`${options.label ?? 'output staging'} ${staging}`, discard);
  const outTmp = join(staging, 'out');
  const work = join(staging, 'work');
  try {
    await mkdir(outTmp, { mode: 0o755 });
    await mkdir(work);
  } catch (error) {
    await discard();
    throw error;
  }
  return {
    staging,
    outTmp,
    work,
    async commit() {
      // From here to the second rename nothing awaits: a signal handler cannot run in between.
      if (discarded) throw new CtrbakeError('E_INTERRUPTED', `the staging dir ${staging} was removed (interrupted) before the commit; ${outDir} was left as it was`);
      options.signal?.throwIfAborted();
      const marker = join(staging, COMMIT_MARKER);
      writeFileSync(marker, `${outDir}\n`);
      syncPath(marker);
      syncPath(staging);
      try {
        renameSync(outTmp, outDir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
        renameSync(outDir, join(staging, 'old'));
        renameSync(outTmp, outDir);
      }
      syncPath(parent);
      await discard();
    },
    discard,
  };
}

export interface RecoveredOutput {
  staging: string;
  /** new: the completed output was moved into place; old: the previous one; none: OUT was complete, the staging dir only removed. */
  restored: 'new' | 'old' | 'none';
}

/**
 * Finishes or undoes what a dead run left next to `outDir` (see above), before a new run
 * touches it. `release` ends what may still use a staging dir (e.g. an engine whose data-root
 * is in it) and returns false when the dir cannot be removed safely (a mount left).
 */
export async function recoverStagedOutputs(outDir: string, release?: (staging: string) => Promise<boolean>): Promise<RecoveredOutput[]> {
  const parent = dirname(outDir);
  const prefix = stagingPrefix(outDir);
  let names: string[];
  try {
    names = (await readdir(parent)).filter((n) => n.startsWith(prefix)).sort();
  } catch {
    return [];
  }
  const self = await currentOwner();
  const recovered: RecoveredOutput[] = [];
  for (const name of names) {
    const staging = join(parent, name);
    const owner = ownerFromName(name, prefix, self);
    if (!owner || !(await isGone(owner, self))) continue;
    if (release && !(await release(staging))) continue;
    let restored: RecoveredOutput['restored'] = 'none';
    if (existsSync(join(staging, COMMIT_MARKER)) && !existsSync(outDir)) {
      // Killed between the renames: out/ is complete (the marker says so), else old/ is.
      if (existsSync(join(staging, 'out'))) {
        renameSync(join(staging, 'out'), outDir);
        restored = 'new';
      } else if (existsSync(join(staging, 'old'))) {
        renameSync(join(staging, 'old'), outDir);
        restored = 'old';
      }
      syncPath(parent);
    }
    await removeStaging(staging);
    recovered.push({ staging, restored });
  }
  return recovered;
}
