import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runCleanups } from '../util/cleanup.js';
import { VERSION } from '../version.js';
import { commands } from './commands.js';
import { abortForShutdown, reportInterruptionIfPending } from './run.js';
import { helpWidth, reportUsageError, unknownFlagsMiddleware, UsageError } from './usage.js';

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
/** How long a command may take to return after its cleanups ran before the entry gives up on it. */
const RETURN_GRACE_MS = 30_000;

/** Set when a signal arrived: the signal and the cleanups it started. */
let interrupted: { signal: NodeJS.Signals; cleanups: Promise<void> } | undefined;

function installSignalHandlers(): void {
  for (const sig of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) {
    process.on(sig, () => {
      if (interrupted) return;
      const code = SIGNAL_EXIT[sig]!;
      process.stderr.write(`ctrbake: ${sig} received, cleaning up\n`);
      // The command sees the abort and reports E_INTERRUPTED as its final error; the cleanups
      // end what it started (engines, staging dirs) even while it is still waiting on them.
      abortForShutdown(sig, code);
      const cleanups = runCleanups().then((errors) => {
        for (const e of errors) process.stderr.write(`ctrbake: ${e.message}: ${String((e as Error).cause)}\n`);
      });
      interrupted = { signal: sig, cleanups };
      void cleanups.then(() => {
        setTimeout(() => {
          reportInterruptionIfPending();
          process.exit(code);
        }, RETURN_GRACE_MS).unref();
      });
    });
  }
}

export async function main(argv: string[] = hideBin(process.argv)): Promise<number> {
  installSignalHandlers();
  let parser = yargs(argv)
    .scriptName('ctrbake')
    .usage('$0 <command> [options]\n\nBake container images into embedded Linux images at build time.')
    .option('json', { type: 'boolean', default: false, describe: 'NDJSON events on stdout and one final result object' })
    .version(VERSION)
    .strict()
    .demandCommand(1, 'Give a command; see --help.')
    .recommendCommands()
    // Before yargs' own validation: an unknown flag must not be reported as a missing one.
    .middleware(unknownFlagsMiddleware, true)
    .epilogue(
      'Exit codes: 0 ok, 1 failure, 2 usage error, 3 does not fit the budget,\n' +
        '130/143 interrupted by SIGINT/SIGTERM (E_INTERRUPTED).\n' +
        'Every command, flag and example: docs/cli.md; error codes: docs/errors.md.',
    )
    .fail((msg, err) => {
      // Throwing stops yargs: a command whose arguments were rejected must not run.
      throw err ?? new UsageError(msg);
    })
    .wrap(helpWidth());
  for (const c of commands) parser = parser.command(c);
  try {
    await parser.parseAsync();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.exitCode = reportUsageError(error, argv);
  }
  // A command interrupted by a signal must not exit before the cleanups finished. It reported
  // E_INTERRUPTED (exit 130/143); one that completed anyway (the signal came after its commit)
  // keeps its result and exit code.
  if (interrupted) {
    await interrupted.cleanups;
    if (reportInterruptionIfPending() || Number(process.exitCode ?? 0) !== 0) process.exitCode = SIGNAL_EXIT[interrupted.signal];
  }
  return Number(process.exitCode ?? 0);
}
