/**
 * Error codes of the tar codec. A stage that reads a tar for its own purpose (normalising an
 * engine's save output, checking a saved archive) may wrap these in its own code, keeping
 * the decoder's error as `cause`.
 */
import { InputError, type CtrbakeErrorOptions } from '../../errors.js';

export const E_TAR_CORRUPT = 'E_TAR_CORRUPT';
export const E_TAR_UNSUPPORTED = 'E_TAR_UNSUPPORTED';
export const E_TAR_TRUNCATED = 'E_TAR_TRUNCATED';

/** The stream ends inside a header or an entry's data, or has no end-of-archive marker. */
export function truncatedError(detail: string, options: CtrbakeErrorOptions = {}): InputError {
  return new InputError(E_TAR_TRUNCATED, `the tar stream is truncated: ${detail}; check that the input was written completely`, options);
}

export function corruptError(detail: string): InputError {
  return new InputError(E_TAR_CORRUPT, `the tar stream is not a valid tar archive: ${detail}; check the input format (ustar, GNU or PAX tar, uncompressed)`);
}

export function unsupportedError(detail: string): InputError {
  return new InputError(E_TAR_UNSUPPORTED, `the tar stream holds something SquashFS images cannot be built from: ${detail}`);
}
