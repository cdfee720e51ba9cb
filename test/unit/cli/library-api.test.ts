/**
 * index.ts promises that every command is a thin shell over an exported function: whatever
 * library function a command's `run` calls (imported from a stage or the floor, not from
 * src/cli or the small helpers of src/util) must be exported by src/index.ts, so that a
 * library caller can do all that the CLI does.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as api from '../../../src/index.js';
import { commands } from '../../../src/cli/commands.js';
import { commandName, SRC } from './flag-hints.js';

const CLI = resolve(SRC, 'cli');

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
}

/** The command modules commands.ts imports, as absolute .ts paths. */
function commandFiles(): string[] {
  return parse(resolve(CLI, 'commands.ts'))
    .statements.filter(ts.isImportDeclaration)
    .filter((st) => !st.importClause?.isTypeOnly)
    .map((st) => resolve(CLI, (st.moduleSpecifier as ts.StringLiteral).text.replace(/\.js$/, '.ts')));
}

/** Value imports of a file: local name -> module path relative to src/. */
function importsOf(sf: ts.SourceFile): Map<string, string> {
  const out = new Map<string, string>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || st.importClause?.isTypeOnly) continue;
    const from = resolve(dirname(sf.fileName), (st.moduleSpecifier as ts.StringLiteral).text).slice(SRC.length + 1);
    const bindings = st.importClause?.namedBindings;
    if (bindings && ts.isNamedImports(bindings)) for (const el of bindings.elements) if (!el.isTypeOnly) out.set(el.name.text, from);
  }
  return out;
}

/** The command's name and the library functions its `run` calls (imported from outside cli/ and util/). */
function libraryCalls(file: string): { name: string; calls: string[] } {
  const sf = parse(file);
  const imports = importsOf(sf);
  let name = '';
  const calls = new Set<string>();
  const visitRun = (node: ts.Node): void => {
    if ((ts.isCallExpression(node) || ts.isNewExpression(node)) && ts.isIdentifier(node.expression)) {
      const from = imports.get(node.expression.text);
      if (from && !from.startsWith('cli/') && !from.startsWith('util/')) calls.add(node.expression.text);
    }
    ts.forEachChild(node, visitRun);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'defineCommand') {
      const spec = node.arguments[0] as ts.ObjectLiteralExpression;
      for (const p of spec.properties) {
        if (!ts.isPropertyAssignment(p)) continue;
        if (p.name.getText(sf) === 'command') name = (p.initializer as ts.StringLiteral).text.split(' ')[0]!;
        if (p.name.getText(sf) === 'run') visitRun(p.initializer);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { name, calls: [...calls] };
}

describe('the library API: every command is a thin shell over an exported function', () => {
  const found = commandFiles().map(libraryCalls);

  it('finds every command of the CLI, each defined with defineCommand', () => {
    expect(found.map((f) => f.name).sort()).toEqual(commands.map(commandName).sort());
  });

  it.each(commandFiles().map((file) => [file.slice(SRC.length + 1), file]))('%s: its run calls a library function, and each one it calls is exported by src/index.ts', (_rel, file) => {
    const { name, calls } = libraryCalls(file);
    expect(calls.length, `ctrbake ${name} calls no library function`).toBeGreaterThan(0);
    const missing = calls.filter((c) => typeof (api as Record<string, unknown>)[c] !== 'function');
    expect(missing, `ctrbake ${name}: export these from src/index.ts`).toEqual([]);
  });

  it.each([
    ['lock', 'resolveLock'],
    ['fetch', 'fetchImages'],
    ['fetch', 'checkCacheOffline'],
    ['bake', 'bake'],
    ['report', 'writeReport'],
    ['squashfs', 'createSquashfs'],
    ['diff', 'diffImages'],
    ['loader', 'generateLoader'],
    ['verify-store', 'verifyStore'],
    ['build', 'buildStandalone'],
  ])('ctrbake %s runs %s', (command, fn) => {
    expect(found.find((f) => f.name === command)?.calls).toContain(fn);
  });
});
