/**
 * The one retry policy of ctrbake. `--retries N` means the same in every command: after a
 * transient failure of one registry operation, up to N more attempts (N + 1 in all), waiting
 * `initialDelayMs`, doubling each time, at most `maxDelayMs`. What an operation is, and so the
 * default delays, depends on its weight: `lock` retries each registry request (cheap), `fetch`
 * each image download (a pull of many blobs). Callers decide which errors are transient and
 * what error to give when the retries are used up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../errors.js';

export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/** One registry request (lock, the registry client): 250 ms, 500 ms, 1 s, at most 4 s. */
export const REQUEST_RETRY: Readonly<RetryPolicy> = Object.freeze({ retries: 3, initialDelayMs: 250, maxDelayMs: 4000 });
/** One image download (fetch): 1 s, 2 s, 4 s, 8 s, at most 15 s. */
export const DOWNLOAD_RETRY: Readonly<RetryPolicy> = Object.freeze({ retries: 4, initialDelayMs: 1000, maxDelayMs: 15_000 });

/** A whole number of retries, 0 or more (what `--retries` accepts). */
export function isValidRetries(retries: unknown): retries is number {
  return typeof retries === 'number' && Number.isInteger(retries) && retries >= 0;
}

/** The one check of `--retries` (lock, fetch): a usage error with one code and message everywhere. */
export function checkRetries(retries: unknown): void {
  if (retries !== undefined && !isValidRetries(retries)) {
    throw new ConfigError('E_BAD_RETRIES', `--retries must be a whole number of retries, 0 or more, got ${String(retries)}; e.g. --retries 3`);
  }
}

/** The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed. */
export function backoffDelay(policy: Readonly<RetryPolicy>, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
}

export interface RetryInfo {
  /** The attempt that failed (1-based). */
  attempt: number;
  delayMs: number;
  reason: string;
  /** The error of the failed attempt. */
  error: unknown;
}

export interface RetryHooks {
  /** A short reason when `error` is worth another attempt; undefined: rethrow it at once. */
  transient(error: unknown): string | undefined;
  /** What to throw when the last allowed attempt failed transiently (default: its error). */
  exhausted?(error: unknown, attempts: number, reason: string): unknown;
  /** Called before each wait (progress output, releasing a response). */
  onRetry?(info: RetryInfo): void | Promise<void>;
  /** Stops the retries: checked before each attempt and ends a wait at once, with its reason. */
  signal?: AbortSignal;
}

/** Runs `fn` until it succeeds, fails for good, or the policy's retries are used up. */
export async function withRetry<T>(policy: Readonly<RetryPolicy>, fn: (attempt: number) => Promise<T>, hooks: RetryHooks): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    hooks.signal?.throwIfAborted();
    let failure: { error: unknown; reason: string };
    try {
      return await fn(attempt);
    } catch (error) {
      const reason = hooks.transient(error);
      if (reason === undefined) throw error;
      if (attempt > policy.retries) throw hooks.exhausted ? hooks.exhausted(error, attempt, reason) : error;
      failure = { error, reason };
    }
    const delayMs = backoffDelay(policy, attempt);
    await hooks.onRetry?.({ attempt, delayMs, ...failure });
    try {
      await sleep(delayMs, undefined, hooks.signal ? { signal: hooks.signal } : undefined);
    } catch (abort) {
      throw hooks.signal?.reason ?? abort;
    }
  }
}
