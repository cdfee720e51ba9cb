/**
 * One error base class with a stable `code` and the process exit code it maps to.
 * Subclasses group errors by who must act: the user's config, the input data,
 * the container engine, an external command, the registry.
 * Every code is listed in docs/errors.md.
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** The result does not fit the storage budget (report/bake with a budget). */
export const EXIT_DOES_NOT_FIT = 3;

export interface CtrbakeErrorOptions {
  cause?: unknown;
  /** Extra structured detail for --json output (never secrets). */
  details?: Record<string, unknown>;
  exitCode?: number;
}

export class CtrbakeError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, options: CtrbakeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT_FAILURE;
    this.details = options.details;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Bad flags or options: exit code 2. */
export class ConfigError extends CtrbakeError {
  constructor(code: string, message: string, options: CtrbakeErrorOptions = {}) {
    super(code, message, { exitCode: EXIT_USAGE, ...options });
  }
}

/** Bad input data: lock file, image list, tar stream, cache content. */
export class InputError extends CtrbakeError {}

/** The container engine is missing, fails to start or fails an operation. */
export class EngineError extends CtrbakeError {}

/** An external command (skopeo, tar, mksquashfs...) failed. */
export class CommandError extends CtrbakeError {}

/** The registry is unreachable, refuses authentication, or serves bad content. */
export class RegistryError extends CtrbakeError {}

/** The result does not fit the budget: exit code 3. */
export class DoesNotFitError extends CtrbakeError {
  constructor(message: string, options: CtrbakeErrorOptions = {}) {
    super('E_DOES_NOT_FIT', message, { exitCode: EXIT_DOES_NOT_FIT, ...options });
  }
}

export function isCtrbakeError(error: unknown): error is CtrbakeError {
  return error instanceof CtrbakeError;
}
