/**
 * Usage errors of the CLI shell (exit 2): unknown flags, found before yargs' own checks, and
 * whatever yargs rejects. They print like every other error, with a stable code, and end
 * `--json` output with an error object.
 */
import type { Arguments } from 'yargs';
import { EXIT_USAGE } from '../errors.js';
import { findUnknownFlags, unknownFlagsMessage, type KnownOptions } from './unknown-flags.js';

export const E_UNKNOWN_ARGUMENT = 'E_UNKNOWN_ARGUMENT';
export const E_USAGE = 'E_USAGE';

export class UsageError extends Error {
  readonly code: string;
  constructor(message: string, code = E_USAGE) {
    super(message);
    this.name = 'UsageError';
    this.code = code;
  }
}

/**
 * A middleware run before yargs' validation: yargs would report `--cahce` as a missing
 * `--cache`. yargs calls it with the command's own parser as second argument; its types do not
 * declare it, hence optional here (without it, yargs' strict mode still rejects the flag).
 */
export function unknownFlagsMiddleware(args: Arguments, parser?: { getOptions(): KnownOptions }): void {
  if (!parser) return;
  const known = parser.getOptions();
  const unknown = findUnknownFlags(args, known);
  if (unknown.length > 0) throw new UsageError(unknownFlagsMessage(unknown, known), E_UNKNOWN_ARGUMENT);
}

/** Prints a usage error once: as the `--json` error object, or as one text block on stderr. */
export function reportUsageError(error: UsageError, argv: readonly string[]): number {
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ type: 'error', name: error.name, code: error.code, message: error.message })}\n`);
  } else {
    process.stderr.write(`ctrbake: error ${error.code}: ${error.message}\nRun 'ctrbake --help' or 'ctrbake <command> --help'.\n`);
  }
  return EXIT_USAGE;
}

/**
 * Help width: the terminal's, else COLUMNS (set by shells, CI and tests), else 80; at most
 * 120 so that text stays readable on wide screens.
 */
export function helpWidth(stdout: { isTTY?: boolean; columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  const columns = (stdout.isTTY ? stdout.columns : undefined) || Number(env.COLUMNS) || 80;
  return Math.max(40, Math.min(120, columns));
}
