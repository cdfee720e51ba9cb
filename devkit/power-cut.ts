/**
 * Power cuts and kill -9 at random points of a simulated device's first boot, seeded and
 * checked: every cut must land inside the real work it aims at (that boot step's process
 * running, or the engine starting: SimDevice.busyWith at the cut), never before it began or
 * after it ended. A cut whose point came after that work ended is not made: the case tries
 * again, earlier, and fails after CUT_TRIES misses in a row.
 *
 * CTRBAKE_POWERCUT_COUNT: cuts per case (default 1, the older name CTRBAKE_TEST_POWERCUTS also
 * works); CTRBAKE_POWERCUT_SEED replays a run's cut points. Cut number i of a case is a power
 * cut when (first + i) is even, a kill -9 when odd, and `first` differs between the cases of a
 * layout (its index among them): with one cut per case, every layout still gets power cuts and
 * kill -9 (and every aim of the case) across its init styles. `npm run test:soak` runs the
 * loader tests with CTRBAKE_POWERCUT_COUNT=10: every case gets every mode and aim, many times.
 */
import type { SimDevice } from './device.js';
import { prngFor, seedFrom } from './seeded-random.js';

export type CutMode = 'power cut' | 'kill -9';

export function powerCutCount(): number {
  const raw = process.env.CTRBAKE_POWERCUT_COUNT ?? process.env.CTRBAKE_TEST_POWERCUTS ?? '1';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`CTRBAKE_POWERCUT_COUNT must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

const SEED = seedFrom('CTRBAKE_POWERCUT_SEED');

/**
 * The cut plan of one case: cut numbers first .. first+count-1 (`first`: the case's index among
 * the cases of its layout, so they start on different modes and aims) and the case's own seeded
 * generator (replayable with `vitest -t` alone).
 */
export function powerCutPlan(caseName: string, first: number): { first: number; count: number; random: () => number } {
  const count = powerCutCount();
  console.log(`${caseName}: power-cut seed ${SEED}, cuts ${first}..${first + count - 1}; replay with CTRBAKE_POWERCUT_SEED=${SEED} CTRBAKE_POWERCUT_COUNT=${count}`);
  return { first, count, random: prngFor(SEED, caseName) };
}

/** A power-cut case's time limit: 5 min per cut (cut boot, look, converging boot, images checked; tries again included). */
export function powerCutTimeoutMs(): number {
  return 300_000 * powerCutCount();
}

/** Even cuts are power cuts, odd ones kill -9. */
export function cutMode(i: number): CutMode {
  return i % 2 === 0 ? 'power cut' : 'kill -9';
}

export interface CutRecord {
  mode: CutMode;
  /** The cut was made: the aimed work was in progress at its point. */
  landed: boolean;
  /** The work in progress at the cut point (SimDevice.busyWith): the aimed step, another, or none. */
  during?: string;
  /** ms from arming to the cut point. */
  ms: number;
}

/** Resolves after `ms`. */
export function after(ms: number): () => Promise<void> {
  return () => new Promise((r) => setTimeout(r, ms));
}

/**
 * One cut of a device's boot: armed from a boot hook (once), made when `wait` resolves if the
 * aimed work (a step name, 'engine', or any of `target` when it is a list) is in progress.
 */
export class Cut {
  private fired?: Promise<CutRecord>;

  constructor(
    private readonly d: SimDevice,
    readonly mode: CutMode,
    private readonly target: string | readonly string[],
  ) {}

  arm(wait: () => Promise<void>): void {
    if (this.fired) return;
    const armedAt = Date.now();
    this.fired = (async () => {
      await wait();
      const during = this.d.busyWith;
      const ms = Date.now() - armedAt;
      const aimed = typeof this.target === 'string' ? [this.target] : this.target;
      if (during === undefined || !aimed.includes(during)) return { mode: this.mode, landed: false, ...(during ? { during } : {}), ms };
      if (this.mode === 'power cut') await this.d.powerCut();
      else this.d.killAll();
      return { mode: this.mode, landed: true, during, ms };
    })();
  }

  /** What the cut did; throws if it was never armed (the aimed step never ran). */
  async result(): Promise<CutRecord> {
    if (!this.fired) throw new Error(`the ${this.mode} was never armed: the step it aimed at did not run`);
    return this.fired;
  }
}

/** Tries per cut before a case fails: each try after a miss halves the delay. */
export const CUT_TRIES = 4;

/**
 * Boots with `attempt(scale)` (scale 1, then 1/2, 1/4... of the random delay) until its cut lands
 * inside real work; returns the landed cut and what the attempt returned with it.
 */
export async function landCut<T>(label: string, attempt: (scale: number) => Promise<{ cut: CutRecord; value: T }>): Promise<{ cut: CutRecord; value: T }> {
  for (let tries = 0; tries < CUT_TRIES; tries++) {
    const r = await attempt(1 / 2 ** tries);
    if (r.cut.landed) return r;
    console.log(`${label}: the ${r.cut.mode} point ${r.cut.ms} ms in came after the aimed work (${r.cut.during ?? 'nothing'} running): not made; trying again, earlier`);
  }
  throw new Error(`${label}: ${CUT_TRIES} cut points in a row came after the aimed work ended: the delay window is too long for this machine`);
}
