import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runCleanups } from '../util/cleanup.js';
import { VERSION } from '../version.js';
import { commands } from './commands.js';
import { abortForShutdown } from './run.js';
import { helpWidth, reportUsageError, unknownFlagsMiddleware, UsageError } from './usage.js';

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** Set when a signal arrived; never resolves: the handler exits the process once the cleanups ran. */
let shuttingDown: Promise<never> | undefined;

function installSignalHandlers(): void {
  for (const sig of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) {
    process.on(sig, () => {
      if (shuttingDown) return;
      process.stderr.write(`ctrbake: ${sig} received, cleaning up\n`);
      abortForShutdown(sig);
      shuttingDown = runCleanups().then((errors) => {
        for (const e of errors) process.stderr.write(`ctrbake: ${e.message}: ${String((e as Error).cause)}\n`);
        process.exit(SIGNAL_EXIT[sig]);
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
        '130/143 interrupted by SIGINT/SIGTERM.\n' +
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
  // A command interrupted by a signal must not exit before the cleanups finished: wait for the
  // handler, which exits with the signal's code (143 for SIGTERM).
  if (shuttingDown) await shuttingDown;
  return Number(process.exitCode ?? 0);
}
