/**
 * Help answers the question (issue 12, rule 6): `ctrbake --help` points to docs that exist,
 * docs/cli.md documents every command and flag, examples are never wrapped mid-command at 80
 * or 120 columns, no help line is wider than the terminal, and a failing command prints its
 * error once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import yargs, { type Argv } from 'yargs';
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands.js';
import { commandFlags, commandName } from '../unit/cli/flag-hints.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = resolve(ROOT, 'bin/ctrbake.js');
const names = commands.map(commandName);

async function help(args: string[], columns: number): Promise<string> {
  const r = await execa(process.execPath, [BIN, ...args, '--help'], { env: { COLUMNS: String(columns) }, reject: false });
  expect(r.exitCode).toBe(0);
  return String(r.stdout);
}

/** The examples a command module gives yargs, as lines a user reads ($0 is ctrbake). */
function examplesOf(name: string): string[][] {
  const command = commands.find((c) => commandName(c) === name)!;
  const y = yargs([]);
  const seen: string[][] = [];
  const original = y.example.bind(y);
  (y as unknown as { example: (cmd: string, desc: string) => Argv }).example = (cmd: string, desc: string) => {
    seen.push([cmd, desc]);
    return original(cmd, desc);
  };
  (command.builder as (y: Argv) => Argv)(y);
  return seen.map(([cmd, desc]) => [...cmd.replaceAll('$0', 'ctrbake').split('\n'), ...(desc ? [desc] : [])].map((l) => l.trim()).filter(Boolean));
}

describe('ctrbake --help', () => {
  it('points to docs/cli.md, and every doc any help names exists', async () => {
    const top = await help([], 80);
    expect(top).toContain('docs/cli.md');
    expect(top).toMatch(/130\/143 interrupted by SIGINT\/SIGTERM/);
    const all = [top, ...(await Promise.all(names.map((n) => help([n], 120))))].join('\n');
    for (const doc of new Set(all.match(/docs\/[a-z0-9-]+\.md/g))) expect(existsSync(resolve(ROOT, doc)), doc).toBe(true);
  });

  it('docs/cli.md documents every command, every flag, the exit codes and the environment', () => {
    const doc = readFileSync(resolve(ROOT, 'docs/cli.md'), 'utf8');
    for (const command of commands) {
      const name = commandName(command);
      expect(doc).toContain(`## \`ctrbake ${name}`);
      const section = doc.split(`## \`ctrbake ${name}`)[1]!.split('\n## ')[0]!;
      const positionals = [...String(command.command).matchAll(/[<[]([a-z]+)/g)].map((m) => m[1]);
      for (const flag of commandFlags(command)) {
        if (['help', 'version', 'json', ...positionals].includes(flag) || /[A-Z]/.test(flag)) continue;
        expect(section, `ctrbake ${name} ${flag}`).toContain(flag.length === 1 ? `\`-${flag}` : `--${flag}\``);
      }
    }
    for (const code of ['| 0 |', '| 1 |', '| 2 |', '| 3 |', '| 130 |', '| 143 |', 'SOURCE_DATE_EPOCH', 'CTRBAKE_TMPDIR']) expect(doc).toContain(code);
  });

  it.each([80, 120])('at %i columns: every example line is whole on one line, and no line is wider', async (columns) => {
    for (const name of names) {
      const text = await help([name], columns);
      const lines = text.split('\n').map((l) => l.trim());
      const examples = examplesOf(name);
      expect(examples.length, `ctrbake ${name} has examples`).toBeGreaterThan(0);
      for (const example of examples) for (const line of example) expect(lines, `ctrbake ${name} --help at ${columns} columns`).toContain(line);
      expect(text.split('\n').filter((l) => l.length > columns)).toEqual([]);
    }
  });
});

describe('a failing command prints its error once', () => {
  it.each([
    [['bake', '--lock', '/nonexistent/ctrbake.lock.json', '--cache', '/nonexistent/cache', '--mode', 'archive', '-o', '/nonexistent/out'], 'E_LOCK_INVALID'],
    [['report', '--manifest', '/nonexistent/manifest.json'], 'E_REPORT_INPUT'],
    [['lock', '--platform', 'linux/amd64', '--retries', '0', '-o', join(tmpdir(), 'ctrbake-never-written.lock.json'), '127.0.0.1:1/a:1', '127.0.0.1:1/b:1'], 'E_REGISTRY_UNREACHABLE'],
    [['bake', '--cahce', 'x'], 'E_UNKNOWN_ARGUMENT'],
  ])('%j: one error line with %s, its message not repeated', async (args, code) => {
    const r = await execa(process.execPath, [BIN, ...args], { reject: false });
    expect(r.exitCode).not.toBe(0);
    const all = `${r.stdout}\n${r.stderr}`;
    const errorLines = all.split('\n').filter((l) => l.startsWith('ctrbake: error '));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain(code);
    const message = errorLines[0]!.replace(/^ctrbake: error [A-Z_]+: /, '');
    expect(all.split(message.slice(0, 60)).length - 1, `"${message}" printed once`).toBe(1);
  });
});
