import { RegistryError } from '../errors.js';
import { withRetry as retry, type RetryInfo, type RetryPolicy } from '../util/retry.js';
import { E_REGISTRY_UNREACHABLE } from './errors.js';

/** A failure worth another try: connection refused or reset, timeouts, HTTP 429 and 5xx. */
export class TransientError extends Error {}

/**
 * Runs one image download under the retry policy (src/util/retry.ts): TransientError is
 * retried; when the retries are used up it becomes E_REGISTRY_UNREACHABLE for `registry`.
 */
export async function withRetry<T>(
  registry: string,
  policy: Readonly<RetryPolicy>,
  fn: (attempt: number) => Promise<T>,
  hooks: { signal?: AbortSignal; onRetry?: (info: RetryInfo) => void } = {},
): Promise<T> {
  return retry(policy, fn, {
    transient: (error) => (error instanceof TransientError ? error.message : undefined),
    exhausted: (error, attempts) =>
      new RegistryError(
        E_REGISTRY_UNREACHABLE,
        `registry ${registry} did not answer successfully after ${attempts} attempt(s): ${(error as Error).message}. ` +
          'Check that the registry is up and reachable (network, proxy, DNS); for a plain-HTTP registry pass --insecure-registry HOST:PORT.',
        { cause: error, details: { registry, attempts } },
      ),
    ...hooks,
  });
}
