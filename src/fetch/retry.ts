import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../errors.js';
import { E_REGISTRY_UNREACHABLE } from './errors.js';

/** Retry policy for transient registry errors: exponential backoff with a cap. */
export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ retries: 4, initialDelayMs: 1000, maxDelayMs: 15_000 });

/** A failure worth another try: connection refused or reset, timeouts, HTTP 429 and 5xx. */
export class TransientError extends Error {}

export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
}

/**
 * Runs `fn` until it succeeds, throws a non-transient error, or the retries are used up;
 * then the last transient error becomes E_REGISTRY_UNREACHABLE for `registry`.
 */
export async function withRetry<T>(
  registry: string,
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  hooks: { signal?: AbortSignal; onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      if (attempt > policy.retries) {
        throw new RegistryError(
          E_REGISTRY_UNREACHABLE,
          `registry ${registry} did not answer successfully after ${attempt} attempt(s): ${error.message}. ` +
            'Check that the registry is up and reachable (network, proxy, DNS); for a plain-HTTP registry pass --insecure-registry HOST:PORT.',
          { cause: error, details: { registry, attempts: attempt } },
        );
      }
      const delayMs = backoffDelay(policy, attempt);
      hooks.onRetry?.({ attempt, delayMs, reason: error.message });
      try {
        await sleep(delayMs, undefined, { signal: hooks.signal });
      } catch (abort) {
        throw hooks.signal?.reason ?? abort;
      }
    }
  }
}
