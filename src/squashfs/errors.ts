/**
 * Error codes shared by every SquashFS backend (builtin writer, tar2sqfs, sqfstar) for bad
 * tar input. The same input gives the same code whichever backend runs.
 */
import { InputError, type CtrbakeErrorOptions } from '../errors.js';

export const E_TAR_UNSAFE_PATH = 'E_TAR_UNSAFE_PATH';
export const E_TAR_DUPLICATE = 'E_TAR_DUPLICATE';
export const E_TAR_BAD_LINK = 'E_TAR_BAD_LINK';

/** An entry name escapes the image root (`..` component, absolute after normalising) or is empty. */
export function unsafePathError(name: string, options: CtrbakeErrorOptions = {}): InputError {
  return new InputError(
    E_TAR_UNSAFE_PATH,
    `tar entry ${JSON.stringify(name)} escapes the image root (a ".." component or an absolute path); fix the tar so every name stays inside it`,
    { ...options, details: { entry: name, ...options.details } },
  );
}

/** An entry lies under a path that is not a directory (e.g. a symlink): writing it would go through that path. */
export function notUnderDirectoryError(name: string, parent: string, options: CtrbakeErrorOptions = {}): InputError {
  return new InputError(
    E_TAR_UNSAFE_PATH,
    `tar entry ${JSON.stringify(name)} lies under ${JSON.stringify(parent)}, which is not a directory in the tar; fix the tar so every parent is a directory`,
    { ...options, details: { entry: name, parent, ...options.details } },
  );
}

/** Two entries normalise to the same path. */
export function duplicateError(name: string, options: CtrbakeErrorOptions = {}): InputError {
  return new InputError(
    E_TAR_DUPLICATE,
    `tar entry ${JSON.stringify(name)} appears more than once; SquashFS images are built from a tar with unique paths, so merge or drop the duplicates first`,
    { ...options, details: { entry: name, ...options.details } },
  );
}

/** A hard link points outside the image, to a path not seen before it, or to a directory. */
export function badLinkError(name: string, target: string, why: string, options: CtrbakeErrorOptions = {}): InputError {
  return new InputError(
    E_TAR_BAD_LINK,
    `hard link ${JSON.stringify(name)} -> ${JSON.stringify(target)} is invalid: ${why}; a hard link must name a regular file that appears earlier in the tar`,
    { ...options, details: { entry: name, target, ...options.details } },
  );
}
