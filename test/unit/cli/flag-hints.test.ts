/**
 * Every flag a message names exists on the command that can print it (issue 12, rule 4: the
 * hint of `bake --squashfs --compression xz` named `--backend`, a flag bake does not have).
 * Messages are the string and template literals of src/; the commands that can print them are
 * found from the import graph of each command's module. The tables below are the exceptions,
 * each with its reason, and each checked to still be needed.
 */
import { describe, expect, it } from 'vitest';
import { commands } from '../../../src/cli/commands.js';
import { SQUASHFS_FLAGS, SQUASHFS_SUBCOMMAND_FLAGS } from '../../../src/squashfs/index.js';
import { allSourceFiles, commandFlags, commandName, flagHints, importClosure, type FlagHint } from './flag-hints.js';

/** Flags of other programs, named in messages about them. */
const FOREIGN_FLAGS: Record<string, string> = {
  '--privileged': 'docker run (a privileged build container)',
  '--dest-shared-blob-dir': 'skopeo copy',
  '--sort': 'GNU tar (--sort=name)',
  '--sparse': 'GNU tar (re-create the tar without --sparse)',
  '--network': 'the engine\'s run (--network none)',
  '--all': 'podman stop --all (the device message that says how to stop podman)',
};

/** Messages that name the flag of the command that makes the input: "bake with --mode store". */
const OTHER_COMMAND_FLAGS: [file: string, flag: string, command: string][] = [
  ['loader/options.ts', '--mode', 'bake'],
  ['loader/options.ts', '--storage-driver', 'bake'],
  ['loader/options.ts', '--engine', 'bake'],
  ['loader/payload.ts', '--mode', 'bake'],
  ['builder/archive-native.ts', '--fetcher', 'fetch'],
];

/** The import graph links these files to a command whose calls cannot print these messages. */
const UNREACHABLE: [file: string, flag: string, command: string, reason: string][] = [
  ['bake/options.ts', '*', 'build', 'build calls bake() with mode, engine and driver derived from --layout, and no archive format, budget or --squashfs'],
  ['bake/store.ts', '--storage-driver', 'build', 'build derives the driver from --layout, always one the store supports'],
  ['loader/options.ts', '--store-mount', 'build', 'build passes no store mount'],
  ['util/retry.ts', '--retries', 'build', 'build locks and fetches with the default retries'],
  ['builder/archive-native.ts', '--archive-format', 'build', 'build bakes docker-archives: the OCI archive message cannot reach it'],
  ['builder/podman-store.ts', '--engine-version', 'build', 'build passes no --engine-version: its bakes are for the default engine version'],
  ['loader/options.ts', '--space-margin', 'build', 'build passes no space margin'],
  ['registry/platform.ts', '--platform', 'bake', 'bake only compares platforms; parsePlatform runs in lock and build'],
  ['report/budget.ts', '*', 'diff', 'diff compares sizes: no budget'],
  ['util/fs-block-size.ts', '--fs-block-size', 'build', 'build bakes without a budget'],
  ['report/budget.ts', '*', 'build', 'build bakes without a budget'],
  ['builder/scope.ts', '*', 'build', 'build checks --builder native against the scope in its own resolve step (its own message); bake then only picks the row'],
  ['builder/tar-split.ts', '*', 'build', 'build passes no --engine-version: its bakes are for the default engine version'],
  ['report/report.ts', '--manifest', 'bake', 'report() runs only for report'],
  ['report/report.ts', '--manifest', 'build', 'report() runs only for report'],
  ['report/render-text.ts', '--format', 'bake', 'bake reaches render-text through report/index.ts but renders no table'],
  ['report/render-text.ts', '--format', 'build', 'build reaches render-text through report/index.ts but renders no table'],
  ['report/layout-model.ts', '--payload-on', 'build', 'build bakes without a budget'],
  ['report/report.ts', '--payload-on', 'build', 'report() runs only for report'],
];

const byName = new Map(commands.map((c) => [commandName(c), c]));
const flagsOf = new Map(commands.map((c) => [commandName(c), commandFlags(c)]));
const moduleOf = (name: string) => `cli/${name}.ts`;
// A command module is linked to other commands only for shared builders (bake uses report's
// budget flags): its messages are its own command's.
const commandModules = new Set([...byName.keys()].map(moduleOf));
const reach = new Map([...byName.keys()].map((name) => [name, [...importClosure(moduleOf(name))].filter((f) => !commandModules.has(f) || f === moduleOf(name))]));

function has(command: string, flag: string): boolean {
  const flags = flagsOf.get(command)!;
  const bare = flag.replace(/^--?/, '');
  // --no-keep-archives is yargs' negation of the boolean --keep-archives.
  return flags.has(bare) || (bare.startsWith('no-') && flags.has(bare.slice(3)));
}

/** The command a message names just before the flag: "`ctrbake lock --platform linux/arm64`". */
function namedCommand(hint: FlagHint): string | undefined {
  const before = hint.text.slice(0, hint.text.indexOf(hint.flag));
  const named = [...before.matchAll(/ctrbake ([a-z-]+)/g)].at(-1)?.[1];
  return named && byName.has(named) ? named : undefined;
}

interface Case {
  where: string;
  flag: string;
  command: string;
  text: string;
}

const used = { other: new Set<number>(), unreachable: new Set<number>() };
const cases: Case[] = [];
for (const file of allSourceFiles()) {
  for (const hint of flagHints(file)) {
    if (FOREIGN_FLAGS[hint.flag]) continue;
    const where = `${hint.file}:${hint.line}`;
    const named = namedCommand(hint);
    if (named) {
      cases.push({ where, flag: hint.flag, command: named, text: hint.text });
      continue;
    }
    const other = OTHER_COMMAND_FLAGS.findIndex(([f, flag]) => f === hint.file && flag === hint.flag);
    if (other >= 0) {
      used.other.add(other);
      cases.push({ where, flag: hint.flag, command: OTHER_COMMAND_FLAGS[other]![2], text: hint.text });
      continue;
    }
    for (const [command, files] of reach) {
      if (!files.includes(hint.file)) continue;
      const skip = UNREACHABLE.findIndex(([f, flag, c]) => f === hint.file && (flag === '*' || flag === hint.flag) && c === command);
      if (skip >= 0 && !has(command, hint.flag)) {
        used.unreachable.add(skip);
        continue;
      }
      cases.push({ where, flag: hint.flag, command, text: hint.text });
    }
  }
}

describe('flags named in messages exist on the command that prints them', () => {
  it('finds the hints (the scan works)', () => {
    expect(cases.length).toBeGreaterThan(100);
    expect(cases).toContainEqual(expect.objectContaining({ where: expect.stringMatching(/^bake\/options\.ts:/), flag: '--squashfs', command: 'bake' }));
  });

  it.each(cases.map((c) => [c.where, c.flag, c.command, c]))('%s: %s is a flag of ctrbake %s', (_where, flag, command, c) => {
    expect(has(command, flag), `${flag} named in ${JSON.stringify((c as Case).text)} is not a flag of ctrbake ${command}`).toBe(true);
  });

  // The SquashFS module names its flags through a table, as each command spells them.
  it.each([
    ['squashfs', SQUASHFS_FLAGS, ['backend', 'compression', 'level', 'blockSize', 'gzipImpl']],
    ['bake', SQUASHFS_SUBCOMMAND_FLAGS, ['backend', 'compression', 'blockSize', 'gzipImpl']],
    ['build', SQUASHFS_SUBCOMMAND_FLAGS, ['backend', 'compression']],
    ['loader', SQUASHFS_SUBCOMMAND_FLAGS, ['backend', 'compression']],
  ] as const)('ctrbake %s has the SquashFS flags for the options it passes', (command, table, options) => {
    for (const option of options) expect(has(command, table[option]), `${table[option]} (${option})`).toBe(true);
  });

  it('every exception is still needed', () => {
    expect(OTHER_COMMAND_FLAGS.filter((_, i) => !used.other.has(i))).toEqual([]);
    expect(UNREACHABLE.filter((_, i) => !used.unreachable.has(i))).toEqual([]);
  });
});
