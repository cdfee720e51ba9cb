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
export function abortForShutdown(reason: string): void {
  shutdownController.abort(new CtrbakeError('E_INTERRUPTED', `interrupted by ${reason}`));
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
export async function runCommand<T extends Record<string, unknown>>(
  argv: ArgumentsCamelCase<GlobalArgs>,
  fn: (ctx: CommandContext) => Promise<T>,
  human: (result: T) => string,
): Promise<void> {
  const json = Boolean(argv.json);
  const reporter = createReporter({ json });
  try {
    const result = await fn({ reporter, json, signal: shutdownSignal() });
    reporter.result(result);
    if (!json) {
      const text = human(result);
      if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  } catch (error) {
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
