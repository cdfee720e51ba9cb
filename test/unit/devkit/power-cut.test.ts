import { describe, expect, it } from 'vitest';
import type { SimDevice } from '../../../devkit/device.js';
import { Cut, CUT_TRIES, landCut, type CutRecord } from '../../../devkit/power-cut.js';
import { prng, prngFor, seedFrom } from '../../../devkit/seeded-random.js';

/** A device whose current work is scripted; records the cuts made on it. */
function fakeDevice(busy: () => string | undefined): { d: SimDevice; cuts: string[] } {
  const cuts: string[] = [];
  const d = {
    get busyWith() {
      return busy();
    },
    powerCut: async () => void cuts.push('power cut'),
    killAll: () => void cuts.push('kill -9'),
  } as unknown as SimDevice;
  return { d, cuts };
}

describe('Cut', () => {
  it('cuts when the aimed step is running at the cut point', async () => {
    const { d, cuts } = fakeDevice(() => 'init:S19ctrbake');
    const c = new Cut(d, 'power cut', 'init:S19ctrbake');
    c.arm(async () => undefined);
    expect(await c.result()).toMatchObject({ landed: true, during: 'init:S19ctrbake' });
    expect(cuts).toEqual(['power cut']);
  });

  it('does not cut after the work ended, nor inside another step than the aimed one', async () => {
    for (const busy of [undefined, 'engine']) {
      const { d, cuts } = fakeDevice(() => busy);
      const c = new Cut(d, 'kill -9', 'init:S19ctrbake');
      c.arm(async () => undefined);
      expect(await c.result()).toMatchObject({ landed: false });
      expect(cuts).toEqual([]);
    }
  });

  it('fails a case whose aimed step never ran', async () => {
    const { d } = fakeDevice(() => undefined);
    await expect(new Cut(d, 'power cut', 'engine').result()).rejects.toThrow(/never armed: the step it aimed at did not run/);
  });
});

describe('landCut', () => {
  it('tries again with the delay halved after a miss, and fails after CUT_TRIES misses naming the fix', async () => {
    const scales: number[] = [];
    const missed: CutRecord = { mode: 'power cut', landed: false, ms: 10 };
    const landed = await landCut('case', async (scale) => {
      scales.push(scale);
      return { cut: scales.length === 3 ? { ...missed, landed: true, during: 'engine' } : missed, value: scales.length };
    });
    expect(scales).toEqual([1, 0.5, 0.25]);
    expect(landed.value).toBe(3);
    await expect(landCut('case', async () => ({ cut: missed, value: 0 }))).rejects.toThrow(
      new RegExp(`case: ${CUT_TRIES} cut points in a row came after the aimed work ended: the delay window is too long`),
    );
  });
});

describe('seeded random', () => {
  it('replays the same sequence from the same seed, per case, and another from another case', () => {
    const a = prngFor(42, 'store split/systemd');
    const b = prngFor(42, 'store split/systemd');
    const c = prngFor(42, 'store copy/systemd');
    const seqA = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(seqA);
    expect([c(), c(), c()]).not.toEqual(seqA);
    for (const x of seqA) expect(x >= 0 && x < 1).toBe(true);
    expect(prng(7)()).toBe(prng(7)());
  });

  it('reads the seed from its variable and rejects one that is not a non-negative integer', () => {
    process.env.CTRBAKE_TEST_SEED_X = '123';
    expect(seedFrom('CTRBAKE_TEST_SEED_X')).toBe(123);
    process.env.CTRBAKE_TEST_SEED_X = 'abc';
    expect(() => seedFrom('CTRBAKE_TEST_SEED_X')).toThrow(/CTRBAKE_TEST_SEED_X must be a non-negative integer, got "abc"/);
    delete process.env.CTRBAKE_TEST_SEED_X;
    expect(Number.isInteger(seedFrom('CTRBAKE_TEST_SEED_X'))).toBe(true);
  });
});
