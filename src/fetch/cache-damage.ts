/**
 * The one error every command gives for a cache that lacks or holds wrong blobs of a lock
 * (bake, fetch --offline, build, report, diff): each blob by image, digest and file, what is
 * wrong with it, and the exact `ctrbake fetch` that repairs it (docs/fetch.md, "Damaged cache").
 */
import { InputError } from '../errors.js';
import { E_CACHE_DAMAGED, E_CACHE_MISS } from './errors.js';
import { describeProblem, type BlobProblem } from './integrity.js';
import type { BlobKind } from './types.js';

export type CacheDamage = BlobProblem & {
  /** The lock's reference of the image. */
  reference: string;
  kind: BlobKind;
  /** Layers: index in the manifest. */
  index?: number;
  /** The digest the file is named by (an uncompressed layer: its diff_id). */
  digest: string;
  /** Missing layers: the uncompressed form bake also accepts. */
  diffId?: string;
  path: string;
};

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that repairs a cache for a lock: plain fetch verifies every blob and re-downloads wrong ones. */
export function repairCommand(lockPath: string | undefined, cacheDir: string): string {
  return `ctrbake fetch --lock ${lockPath ? shellWord(lockPath) : 'LOCK'} --cache ${shellWord(cacheDir)}`;
}

function blobLabel(d: Pick<CacheDamage, 'kind' | 'index'>): string {
  return d.kind === 'layer' && d.index !== undefined ? `layer ${d.index}` : d.kind;
}

/** One line per blob: "layer 1 sha256:...: /cache/blobs/sha256/...: 12 bytes, the lock says 34 (truncated)". */
export function describeDamage(d: CacheDamage): string {
  const alt = d.problem === 'missing' && d.diffId ? ` (nor its uncompressed form ${d.diffId})` : '';
  return `${blobLabel(d)} ${d.digest}: ${d.path}${d.problem === 'missing' ? ' is missing' : `: ${describeProblem(d)}`}${alt}`;
}

export interface CacheDamageContext {
  cacheDir: string;
  /** The lock to name in the repair command; without it, a placeholder (e.g. report of a manifest). */
  lockPath?: string;
  /** Said in place of the lock when it is unknown, e.g. "the lock OUT was baked from". */
  lockHint?: string;
  /** More structured detail for --json. */
  details?: Record<string, unknown>;
}

/**
 * E_CACHE_DAMAGED when a blob is there but wrong, E_CACHE_MISS when blobs are only missing.
 * The last line is the repair command alone, so it can be copied as is.
 */
export function cacheDamageError(damage: readonly CacheDamage[], ctx: CacheDamageContext): InputError {
  const damaged = damage.filter((d) => d.problem !== 'missing');
  const missing = damage.length - damaged.length;
  const byImage = new Map<string, CacheDamage[]>();
  for (const d of damage) byImage.set(d.reference, [...(byImage.get(d.reference) ?? []), d]);
  const lines: string[] = [];
  for (const [reference, list] of byImage) {
    lines.push(`  ${reference}:`);
    for (const d of list) lines.push(`    ${describeDamage(d)}`);
  }
  const counts = [damaged.length ? `${damaged.length} damaged` : '', missing ? `${missing} missing` : ''].filter(Boolean).join(', ');
  const command = repairCommand(ctx.lockPath, ctx.cacheDir);
  const lockNote = ctx.lockPath ? '' : ` (LOCK: ${ctx.lockHint ?? 'the lock file these images come from'})`;
  const message =
    `the cache ${ctx.cacheDir} does not hold the blobs the lock needs (${counts}):\n${lines.join('\n')}\n` +
    `Repair it with network access (fetch checks every blob of the lock and downloads again only the wrong or missing ones; ` +
    `add the ctrbake fetch options --insecure-registry/--authfile your registry needs)${lockNote}:\n  ${command}`;
  return new InputError(damaged.length ? E_CACHE_DAMAGED : E_CACHE_MISS, message, {
    details: {
      cacheDir: ctx.cacheDir,
      ...(ctx.lockPath ? { lockPath: ctx.lockPath } : {}),
      repair: command,
      blobs: damage.map((d) => ({ ...d })),
      ...ctx.details,
    },
  });
}
