/**
 * One name for the output flag (issue 12, rule 4): every command that writes takes
 * `-o/--output`, and the old spellings still work. Parsed by the command modules themselves,
 * strict, with a handler that only records what the command would get.
 */
import { describe, expect, it } from 'vitest';
import yargs, { type CommandModule } from 'yargs';
import { commands } from '../../../src/cli/commands.js';
import { commandName } from './flag-hints.js';

/** The rest of a valid command line for each command that writes something. */
const REQUIRED: Record<string, string[]> = {
  lock: ['--platform', 'linux/amd64', 'a:1'],
  bake: ['--lock', 'l.json', '--cache', 'c', '--mode', 'archive'],
  build: ['--cache', 'c', 'a:1'],
  loader: ['--manifest', 'm.json', '--layout', 'archive', '--init', 'systemd'],
  report: ['--manifest', 'm.json'],
  squashfs: ['in.tar'],
  'verify-store': [],
};
/** Spellings that existed before -o/--output was the one name. */
const OLD: Record<string, string[]> = { bake: ['--out'], 'verify-store': ['--out'] };

async function parse(name: string, args: string[]): Promise<Record<string, unknown>> {
  const command = commands.find((c) => commandName(c) === name)!;
  let seen: Record<string, unknown> | undefined;
  const capture: CommandModule<object, any> = { ...command, handler: (argv) => void (seen = argv) };
  await yargs([name, ...args])
    .option('json', { type: 'boolean' })
    .command(capture)
    .strict()
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
  return seen!;
}

describe('-o/--output on every command that writes', () => {
  const cases = Object.keys(REQUIRED).flatMap((name) => ['-o', '--output', ...(OLD[name] ?? [])].map((flag) => [name, flag] as const));
  it.each(cases)('ctrbake %s %s DEST: the command gets output = DEST', async (name, flag) => {
    const argv = await parse(name, [...REQUIRED[name]!, flag, 'dest']);
    expect(argv.output).toBe('dest');
  });
});
