/**
 * For the flag-hint test: which flags each command has (from its yargs module), which source
 * files each command's code can run (the static import closure of its module), and which
 * flags the messages in a source file name (string and template literals, from the TS AST).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { knownFlagNames, type KnownOptions } from '../../../src/cli/unknown-flags.js';

export const SRC = resolve(import.meta.dirname, '../../../src');

/** The flags (kebab-case, with aliases; `-o` as `o`) a command module accepts, plus the global ones. */
export function commandFlags(command: CommandModule<object, any>): Set<string> {
  const y = yargs([]).option('json', { type: 'boolean' });
  const builder = command.builder as (y: Argv) => Argv;
  const built = builder(y) ?? y;
  return new Set(knownFlagNames((built as unknown as { getOptions(): KnownOptions }).getOptions()));
}

export function commandName(command: CommandModule<object, any>): string {
  return String(command.command).split(' ')[0]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Value imports and re-exports of a file, as absolute .ts paths (type-only imports run no code). */
function imports(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  for (const st of sf.statements) {
    let spec: ts.Expression | undefined;
    if (ts.isImportDeclaration(st) && !st.importClause?.isTypeOnly) spec = st.moduleSpecifier;
    if (ts.isExportDeclaration(st) && !st.isTypeOnly) spec = st.moduleSpecifier;
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.')) out.push(resolve(dirname(file), spec.text.replace(/\.js$/, '.ts')));
  }
  return out;
}

/** Every src file (relative to src/) the module `entry` runs, itself included. */
export function importClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [resolve(SRC, entry)];
  while (todo.length) {
    const f = todo.pop()!;
    const rel = relative(SRC, f);
    if (seen.has(rel)) continue;
    seen.add(rel);
    todo.push(...imports(f));
  }
  return seen;
}

export interface FlagHint {
  file: string;
  line: number;
  flag: string;
  text: string;
}

// A flag in prose: `--name` or `-o`, after a space, quote, backtick or bracket.
const FLAG = /(?:^|[\s`'"(\[,/])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*|-[a-zA-Z])(?![\w-])/g;

/**
 * Flags named in the text of string and template literals that read as messages (they contain
 * a space), or that are passed alone to a function (a flag name given to a checker such as
 * devicePath('--data-root', ...)). Literals in arrays are argv for other programs.
 */
export function flagHints(file: string): FlagHint[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const hints: FlagHint[] = [];
  const visit = (node: ts.Node): void => {
    let literal: string | undefined;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) literal = node.text;
    if (literal !== undefined && !inArgvArray(node) && !isImportSpecifier(node)) {
      const isMessage = /\s/.test(literal);
      const isFlagArgument = /^--?[a-z][a-z0-9-]*$/i.test(literal) && ts.isCallExpression(node.parent) && node.parent.arguments.includes(node as ts.Expression);
      if (isMessage || isFlagArgument) {
        for (const m of literal.matchAll(FLAG)) {
          hints.push({ file: relative(SRC, file), line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, flag: m[1]!, text: literal });
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return hints;
}

function inArgvArray(node: ts.Node): boolean {
  let p = node.parent;
  while (p && (ts.isTemplateExpression(p) || ts.isTemplateSpan(p) || ts.isConditionalExpression(p) || ts.isParenthesizedExpression(p) || ts.isSpreadElement(p))) p = p.parent;
  return Boolean(p && ts.isArrayLiteralExpression(p));
}

function isImportSpecifier(node: ts.Node): boolean {
  return ts.isImportDeclaration(node.parent) || ts.isExportDeclaration(node.parent);
}

export function allSourceFiles(): string[] {
  return sourceFiles(SRC);
}
