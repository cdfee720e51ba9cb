/**
 * The layer's shell task logic, outside BitBake: functions are taken from the .bbclass text,
 * `${VAR}` references expanded the way BitBake does (defined variables only, recursively;
 * unknown ones are left to the shell), and the result is a POSIX sh script that runs a task
 * with `set -e` after the same message helpers BitBake's base.bbclass defines.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

export const LAYER_DIR = resolve(import.meta.dirname, '..', '..');
export const CLASS_FILE = join(LAYER_DIR, 'bbclass', 'classes-recipe', 'ctrbake.bbclass');
export const ROOTFS_CLASS_FILE = join(LAYER_DIR, 'bbclass', 'classes-recipe', 'ctrbake-rootfs-store.bbclass');
export const PYLIB_DIR = join(LAYER_DIR, 'lib', 'ctrbake-bb');

/** Shell functions (`name() {` ... `}` at column 0) of a class, by name. */
export function shellFunctions(text: string): Map<string, string> {
  const found = new Map<string, string>();
  const re = /^([A-Za-z0-9_]+(?::[a-z]+)?)\(\) \{\n([\s\S]*?)\n\}$/gm;
  for (const m of text.matchAll(re)) found.set(m[1]!, m[2]!);
  return found;
}

/** `VAR ?= "value"` assignments (single line) of a class, by name. */
export function weakDefaults(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of text.matchAll(/^([A-Z][A-Z0-9_]*) \?= "(.*)"$/gm)) found.set(m[1]!, m[2]!);
  return found;
}

/** BitBake-style expansion of ${VAR} for defined variables; `${@...}` is refused here. */
export function expand(text: string, vars: Readonly<Record<string, string>>): string {
  let out = text;
  for (let i = 0; i < 20; i++) {
    const next = out.replace(/\$\{([A-Za-z0-9_+\-.:/~]+)\}/g, (whole, name: string) => (name in vars ? vars[name]! : whole));
    if (next === out) break;
    out = next;
  }
  if (out.includes('${@')) throw new Error('inline python in a shell function: not supported outside BitBake');
  return out;
}

const PRELUDE = `#!/bin/sh
set -e
bbnote() { echo "NOTE:" "$*"; }
bbwarn() { echo "WARNING:" "$*"; }
bbfatal() { echo "ERROR:" "$*"; exit 1; }
`;

/** A runnable script: every helper function of the class, then `task`. */
export function taskScript(classText: string, task: string, vars: Readonly<Record<string, string>>): string {
  const funcs = shellFunctions(classText);
  if (!funcs.has(task)) throw new Error(`no shell function ${task} in the class`);
  const parts = [PRELUDE];
  for (const [name, body] of funcs) parts.push(`${name}() {\n${expand(body, vars)}\n}\n`);
  parts.push(`${task}\n`);
  return parts.join('\n');
}

/** Runs python3 with the layer's lib on sys.path; returns stdout. */
export function python(code: string): string {
  return execFileSync('python3', ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(PYLIB_DIR)})\n${code}`], { encoding: 'utf8' });
}

export function readClass(path = CLASS_FILE): string {
  return readFileSync(path, 'utf8');
}

export function layerFile(...parts: string[]): string {
  return join(LAYER_DIR, ...parts);
}
