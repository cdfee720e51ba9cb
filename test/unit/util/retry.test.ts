import { describe, expect, it } from 'vitest';
import { backoffDelay, DOWNLOAD_RETRY, isValidRetries, REQUEST_RETRY, withRetry, type RetryInfo, type RetryPolicy } from '../../../src/util/retry.js';

class Flaky extends Error {}
const transient = (error: unknown) => (error instanceof Flaky ? error.message : undefined);
const fast: RetryPolicy = { retries: 2, initialDelayMs: 1, maxDelayMs: 2 };

/** Runs withRetry over a scripted sequence of outcomes; returns what happened. */
async function run(policy: RetryPolicy, outcomes: Array<Error | 'ok'>) {
  let calls = 0;
  const retries: RetryInfo[] = [];
  const result = await withRetry(
    policy,
    async (attempt) => {
      calls++;
      expect(attempt).toBe(calls);
      const next = outcomes[calls - 1] ?? new Error('script ran out');
      if (next === 'ok') return 'done';
      throw next;
    },
    { transient, onRetry: (info) => void retries.push(info), exhausted: (error, attempts) => new Error(`gave up after ${attempts}: ${(error as Error).message}`) },
  ).then(
    (value) => ({ value }),
    (error: Error) => ({ error: error.message }),
  );
  return { calls, retried: retries.map((r) => r.attempt), reasons: retries.map((r) => r.reason), result };
}

describe('withRetry: the one retry policy', () => {
  it.each<[string, RetryPolicy, Array<Error | 'ok'>, { calls: number; retried: number[]; result: object }]>([
    ['success at once: one attempt', fast, ['ok'], { calls: 1, retried: [], result: { value: 'done' } }],
    ['transient then success', fast, [new Flaky('503'), 'ok'], { calls: 2, retried: [1], result: { value: 'done' } }],
    ['retries N means N + 1 attempts', fast, [new Flaky('a'), new Flaky('b'), new Flaky('c'), 'ok'], { calls: 3, retried: [1, 2], result: { error: 'gave up after 3: c' } }],
    ['retries 0: one attempt, no wait', { ...fast, retries: 0 }, [new Flaky('a'), 'ok'], { calls: 1, retried: [], result: { error: 'gave up after 1: a' } }],
    ['a non-transient error is thrown at once', fast, [new Error('404')], { calls: 1, retried: [], result: { error: '404' } }],
    ['a non-transient error after a transient one', fast, [new Flaky('503'), new Error('401')], { calls: 2, retried: [1], result: { error: '401' } }],
  ])('%s', async (_name, policy, outcomes, expected) => {
    expect(await run(policy, outcomes)).toMatchObject(expected);
  });

  it('passes the transient reason and the failed error to onRetry', async () => {
    const seen: RetryInfo[] = [];
    const flaky = new Flaky('ECONNRESET');
    let calls = 0;
    await withRetry(fast, async () => (++calls === 1 ? Promise.reject(flaky) : 'ok'), { transient, onRetry: (i) => void seen.push(i) });
    expect(seen).toEqual([{ attempt: 1, delayMs: 1, reason: 'ECONNRESET', error: flaky }]);
  });

  it('rethrows the last error itself when no exhausted hook is given', async () => {
    const last = new Flaky('still down');
    await expect(withRetry({ ...fast, retries: 1 }, async () => Promise.reject(last), { transient })).rejects.toBe(last);
  });

  it.each([
    ['request policy (lock)', REQUEST_RETRY, [250, 500, 1000, 2000, 4000, 4000]],
    ['download policy (fetch)', DOWNLOAD_RETRY, [1000, 2000, 4000, 8000, 15000, 15000]],
  ])('backs off exponentially within bounds: %s', (_name, policy, delays) => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(policy, a))).toEqual(delays);
  });

  it('waits the backoff delay between attempts', async () => {
    const policy = { retries: 2, initialDelayMs: 40, maxDelayMs: 60 };
    const times: number[] = [];
    await withRetry(policy, async () => {
      times.push(performance.now());
      throw new Flaky('x');
    }, { transient }).catch(() => undefined);
    expect(times).toHaveLength(3);
    // 40 then 60 (capped from 80): each wait at least its delay.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(39);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(59);
  });

  it('abort stops a wait at once with the signal reason, and no attempt runs after it', async () => {
    const controller = new AbortController();
    const reason = new Error('interrupted');
    let calls = 0;
    const pending = withRetry({ retries: 5, initialDelayMs: 60_000, maxDelayMs: 60_000 }, async () => {
      calls++;
      throw new Flaky('503');
    }, { transient, signal: controller.signal, onRetry: () => controller.abort(reason) });
    await expect(pending).rejects.toBe(reason);
    expect(calls).toBe(1);
  });

  it('an already aborted signal runs no attempt', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    let calls = 0;
    await expect(withRetry(fast, async () => ++calls, { transient, signal: controller.signal })).rejects.toThrow('stop');
    expect(calls).toBe(0);
  });

  it.each([
    [0, true],
    [4, true],
    [-1, false],
    [1.5, false],
    [Number.NaN, false],
    ['3', false],
  ])('isValidRetries(%j) is %s', (value, ok) => {
    expect(isValidRetries(value)).toBe(ok);
  });
});
