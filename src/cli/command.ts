/**
 * One shape for every command module: its options (a yargs chain whose inferred type types
 * the handler, so no command needs a cast), its help examples, and the library call it makes.
 * The handler boilerplate (reporter, signal, printing, exit code) lives once, in runCommand.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { addExamples, type HelpExample } from './examples.js';
import { runCommand, type CommandContext, type GlobalArgs } from './run.js';

export interface CommandSpec<U extends GlobalArgs, R extends object> {
  /** yargs' command string, e.g. `lock [refs..]`. */
  command: string;
  describe: string;
  /** Adds the command's positionals and options; their types are what `run` receives. */
  options: (y: Argv<GlobalArgs>) => Argv<U>;
  examples: readonly HelpExample[];
  /** Calls the library; what it returns is the command's result. */
  run: (argv: ArgumentsCamelCase<U>, ctx: CommandContext) => Promise<R>;
  /** The result as human text on stdout (empty: nothing printed). */
  human: (result: R) => string;
}

export function defineCommand<U extends GlobalArgs, R extends object>(spec: CommandSpec<U, R>): CommandModule<GlobalArgs, U> {
  return {
    command: spec.command,
    describe: spec.describe,
    builder: (y) => addExamples(spec.options(y), spec.examples),
    handler: (argv) => runCommand(argv, (ctx) => spec.run(argv, ctx), spec.human),
  };
}

/** For a command that prints its own output (a report, a diff): nothing more on stdout. */
export const printsNothing = (): string => '';

type Present<T> = { [K in keyof T]?: Exclude<T[K], undefined> };

/**
 * The flags a user gave, for a library call: an absent flag (undefined) or an empty string is
 * left out, so the library applies its own default rather than receiving `undefined` or ''.
 */
export function givenOnly<T extends object>(values: T): Present<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined && v !== '')) as Present<T>;
}
