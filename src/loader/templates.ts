/**
 * Device files live as templates under templates/loader/ (shell scripts, units, configs),
 * never as strings in TypeScript. Placeholders are `@NAME@`; rendering fails on a
 * placeholder without a value, so a template and its caller cannot drift apart silently.
 */
import { readFile } from 'node:fs/promises';
import { CtrbakeError } from '../errors.js';

/** Resolves from src/loader and from dist/loader alike: both sit two levels below the package root. */
const TEMPLATE_ROOT = new URL('../../templates/loader/', import.meta.url);

export async function readTemplate(name: string): Promise<string> {
  try {
    return await readFile(new URL(name, TEMPLATE_ROOT), 'utf8');
  } catch (error) {
    throw new CtrbakeError('E_INTERNAL', `the loader template ${name} is missing from this ctrbake install (${TEMPLATE_ROOT.pathname}); reinstall ctrbake`, { cause: error });
  }
}

export function renderTemplate(text: string, values: Readonly<Record<string, string>>, name = 'template'): string {
  return text.replace(/@([A-Z][A-Z0-9_]*)@/g, (_match, key: string) => {
    const value = values[key];
    if (value === undefined) throw new CtrbakeError('E_INTERNAL', `${name}: no value for @${key}@`);
    return value;
  });
}

/** Unit files: a `Key=` line left empty by rendering would reset the key; drop it instead. */
export function dropEmptyUnitKeys(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^[A-Za-z]+=\s*$/.test(line))
    .join('\n');
}

export async function renderFile(name: string, values: Readonly<Record<string, string>>): Promise<string> {
  return renderTemplate(await readTemplate(name), values, name);
}
