import type { ArgumentsCamelCase } from 'yargs';
import { CtrbakeError, EXIT_FAILURE } from '../errors.js';
import { createReporter, type Reporter } from './output.js';

export interface GlobalArgs {
  json?: boolean;
}

export interface CommandContext {
  reporter: Reporter;
  json: boolean;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
}

let shutdownController = new AbortController();
export function shutdownSignal(): AbortSignal {
  return shutdownController.signal;
}
/** The error every command reports when SIGINT/SIGTERM stopped it (exit 130/143). */
export function interruptedError(signal: string, exitCode: number): CtrbakeError {
  return new CtrbakeError(
    'E_INTERRUPTED',
    `interrupted by ${signal}: what the command started was stopped and removed, and its output was left as it was before the run; run the command again`,
    { exitCode, details: { signal } },
  );
}
export function abortForShutdown(signal: string, exitCode: number): void {
  shutdownController.abort(interruptedError(signal, exitCode));
}

/** The running command's reporter, until it reported its result or error. */
let pending: Reporter | undefined;
/**
 * For the CLI entry's last resort, when a command does not return after a signal: reports
 * the interruption as the command's final error (once) and returns true if it did.
 */
export function reportInterruptionIfPending(): boolean {
  const reporter = pending;
  if (!reporter || !shutdownController.signal.aborted) return false;
  pending = undefined;
  reporter.error((shutdownController.signal.reason as CtrbakeError).toJSON() as { code: string; message: string });
  return true;
}
/** For tests that drive several commands in one process. */
export function resetShutdown(): void {
  shutdownController = new AbortController();
}

/**
 * Wraps a command handler: builds the reporter, runs the library call, prints the result
 * (human text on stdout or one JSON result object), and turns errors into exit codes.
 * It never calls process.exit: it sets process.exitCode; only bin/ctrbake.js exits.
 */
export async function runCommand<T extends object>(
  argv: ArgumentsCamelCase<GlobalArgs>,
  fn: (ctx: CommandContext) => Promise<T>,
  human: (result: T) => string,
): Promise<void> {
  const json = Boolean(argv.json);
  const reporter = createReporter({ json });
  const signal = shutdownSignal();
  pending = reporter;
  try {
    const result = await fn({ reporter, json, signal });
    if (pending !== reporter) return;
    pending = undefined;
    reporter.result(result);
    if (!json) {
      const text = human(result);
      if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  } catch (caught) {
    if (pending !== reporter) return;
    pending = undefined;
    // After SIGINT/SIGTERM, whatever failed next (an engine torn down under a request, an
    // aborted child) is a consequence: the user sees the interruption.
    const error = signal.aborted ? (signal.reason as unknown) : caught;
    if (error instanceof CtrbakeError) {
      reporter.error(error.toJSON() as { code: string; message: string });
      process.exitCode = error.exitCode;
    } else {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      reporter.error({ code: 'E_INTERNAL', message: `unexpected error, please report it: ${message}` });
      process.exitCode = EXIT_FAILURE;
    }
  }
}
