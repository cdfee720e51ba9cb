import { RegistryError, type CtrbakeErrorOptions } from '../errors.js';

/**
 * Error codes of the fetch stage (docs/errors.md, "Fetch and cache"; codes shared with lock
 * keep the meaning they have there). Messages never carry
 * credentials: text from external tools goes through redactSecrets() before it lands here.
 */
export const E_REGISTRY_UNREACHABLE = 'E_REGISTRY_UNREACHABLE';
export const E_AUTH_REFUSED = 'E_AUTH_REFUSED';
export const E_DIGEST_MISMATCH = 'E_DIGEST_MISMATCH';
export const E_MANIFEST_UNKNOWN = 'E_MANIFEST_UNKNOWN';
export const E_BLOB_UNKNOWN = 'E_BLOB_UNKNOWN';
export const E_LOCK_INVALID = 'E_LOCK_INVALID';
export const E_FETCHER_MISSING = 'E_FETCHER_MISSING';
export const E_FETCHER_FAILED = 'E_FETCHER_FAILED';
export const E_CACHE_MISS = 'E_CACHE_MISS';
export const E_CACHE_DAMAGED = 'E_CACHE_DAMAGED';
export const E_CACHE_IO = 'E_CACHE_IO';
export const E_BAD_OPTION = 'E_BAD_OPTION';
export const E_BAD_INSECURE_REGISTRY = 'E_BAD_INSECURE_REGISTRY';

/** A blob's bytes (or size) are not what the lock says. Nothing was moved into blobs/. */
export class DigestMismatchError extends RegistryError {
  constructor(what: string, expected: string, actual: string, options: CtrbakeErrorOptions = {}) {
    super(
      E_DIGEST_MISMATCH,
      `${what}: expected ${expected}, got ${actual}; nothing was stored in the cache. ` +
        'The registry serves different content than the lock pins (tampered or damaged storage), ' +
        'or the lock was edited: fix the registry, or run `ctrbake lock` again and review the change.',
      { ...options, details: { ...options.details, what, expected, actual } },
    );
  }
}
