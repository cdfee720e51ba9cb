/**
 * Unknown and misspelled flags. yargs' strict mode reports an unknown flag only after the
 * missing-required check, so `bake --cahce DIR` said "Missing required argument: cache".
 * This check runs first (a middleware before validation) and names the closest known flag.
 */
import type { Arguments } from 'yargs';

/** What yargs knows of a command's options (the shape of `yargs.getOptions()`). */
export interface KnownOptions {
  key: Record<string, unknown>;
  alias?: Record<string, string[]>;
}

export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** How a flag is typed on the command line: `-o`, `--cache`. */
export function flagSpelling(name: string): string {
  return name.length === 1 ? `-${name}` : `--${kebab(name)}`;
}

/** Every spelling a command accepts, kebab-case: option keys, their aliases and positionals. */
export function knownFlagNames(options: KnownOptions): string[] {
  const names = new Set<string>();
  for (const key of Object.keys(options.key)) names.add(kebab(key));
  for (const [key, aliases] of Object.entries(options.alias ?? {})) {
    names.add(kebab(key));
    for (const a of aliases) names.add(kebab(a));
  }
  return [...names];
}

/** Flags given on the command line that the command does not have, as typed (kebab-case). */
export function findUnknownFlags(argv: Arguments, options: KnownOptions): string[] {
  const known = new Set(knownFlagNames(options));
  const unknown = new Set<string>();
  for (const key of Object.keys(argv)) {
    if (key === '_' || key === '$0') continue;
    const name = kebab(key);
    // yargs also sets the camelCase twin of every dashed key: report the dashed one once.
    if (!known.has(name)) unknown.add(name);
  }
  return [...unknown];
}

/** Optimal-string-alignment distance: Levenshtein plus the swap of two neighbours (`cahce`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The known flag closest to `name`, when close enough to be a typo: at most one edit for
 * short names, two for longer ones; or `name` is the start of exactly one flag (`--comp`).
 */
export function suggestFlag(name: string, candidates: readonly string[]): string | undefined {
  // Any letter is one edit from any other: a one-letter flag gets no guess.
  if (name.length === 1) return undefined;
  const limit = name.length <= 4 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const c of candidates) {
    if (c.length === 1 && name.length > 2) continue;
    const distance = editDistance(name, c);
    if (distance <= limit && (!best || distance < best.distance)) best = { name: c, distance };
  }
  if (best) return best.name;
  const prefixed = candidates.filter((c) => name.length >= 3 && c.startsWith(name));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** "Unknown argument: --cahce (did you mean --cache?)", one line per unknown flag. */
export function unknownFlagsMessage(unknown: readonly string[], options: KnownOptions): string {
  const candidates = knownFlagNames(options);
  return unknown
    .map((name) => {
      const hint = suggestFlag(name, candidates);
      return `Unknown argument: ${flagSpelling(name)}${hint ? ` (did you mean ${flagSpelling(hint)}?)` : ''}`;
    })
    .join('\n');
}
