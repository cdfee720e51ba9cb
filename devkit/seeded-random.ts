/**
 * A small seeded PRNG and the seed policy of the randomised tests: a run prints its seed, and
 * the same seed (from an environment variable) replays the same choices.
 */

/** mulberry32: enough to pick cut points and random trees reproducibly; not for secrets. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed in `envVar` (a non-negative integer), or a fresh random one. */
export function seedFrom(envVar: string): number {
  const raw = process.env[envVar];
  if (raw === undefined || raw === '') return Math.floor(Math.random() * 2 ** 31);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${envVar} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** A generator per case, so one case replays alone (`vitest -t`) with the same choices as in a whole run. */
export function prngFor(seed: number, caseName: string): () => number {
  let h = seed >>> 0;
  for (const c of caseName) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return prng(h);
}
