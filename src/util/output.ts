/**
 * The output guard every command that writes an output runs first, before any work
 * (docs/errors.md, E_OUTPUT_*): ctrbake replaces only what it wrote.
 *
 * An output path may be written when it is absent, empty (an empty dir, a 0-byte file), or a
 * previous output of the same command, which the command recognises by what it wrote there
 * (`isOurs`). It is refused when it equals or contains an input of the run (lock, cache,
 * manifest, tar, images or compose file: replacing it would delete that input), when it is a
 * file where a directory is written (or the reverse), and when it holds anything else.
 * Paths are compared after realpath (symlinks, `.`, `..`, trailing slashes); a symlink given as
 * the output is followed: the write goes to its target and the link stays.
 * There is no override: a user who wants a foreign path replaced removes it first.
 */
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';

export interface OutputSpec {
  /** The output as the user gave it. */
  path: string;
  /** The flag that named it, for messages: "-o", "--partition-image". */
  flag: string;
  /** The command, for messages: "bake", "loader". */
  command: string;
  kind: 'directory' | 'file';
  /** What a previous output of this command holds, for messages: "manifest.json written by ctrbake bake". */
  signature: string;
  /** Recognises a previous output of this command at the (real) path. */
  isOurs(path: string): Promise<boolean>;
}

export interface NamedPath {
  path: string;
  /** "lock file", "cache", "manifest" */
  what: string;
}

export interface CheckedOutput {
  /** Where to write: the resolved path (a symlink's target). */
  path: string;
  /** Whether something (our previous output, or an empty dir/file) is there now. */
  exists: boolean;
}

/** realpath of a path that may not exist yet: its deepest existing ancestor resolved, the rest appended. */
export async function realpathLoose(path: string): Promise<string> {
  const abs = resolve(path);
  const tail: string[] = [];
  let head = abs;
  for (;;) {
    try {
      return join(await realpath(head), ...tail);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(head) === head) return abs;
      tail.unshift(basename(head));
      head = dirname(head);
    }
  }
}

/** True when `inner` is `outer` or below it (both real, absolute). */
export function pathContains(outer: string, inner: string): boolean {
  if (inner === outer) return true;
  return inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

function notOurs(spec: OutputSpec, shown: string, what: string): ConfigError {
  return new ConfigError(
    'E_OUTPUT_NOT_OURS',
    `${spec.flag} ${shown} ${what}, not a previous output of ctrbake ${spec.command} (${spec.signature}); ctrbake replaces only what it wrote: choose a new or empty ${spec.kind} for ${spec.flag}, or remove ${shown} yourself if nothing in it is needed`,
    { details: { output: shown, flag: spec.flag } },
  );
}

/**
 * Checks one output against the rules above; throws E_OUTPUT_IS_INPUT or E_OUTPUT_NOT_OURS
 * (exit 2). `inputs` may include other outputs of the same run: two outputs must not nest.
 */
export async function checkOutput(spec: OutputSpec, inputs: readonly NamedPath[]): Promise<CheckedOutput> {
  const shown = spec.path;
  const real = await realpathLoose(spec.path);
  for (const input of inputs) {
    const inputReal = await realpathLoose(input.path);
    if (pathContains(real, inputReal)) {
      const how = inputReal === real ? 'is' : 'contains';
      throw new ConfigError(
        'E_OUTPUT_IS_INPUT',
        `${spec.flag} ${shown} ${how} the ${input.what} ${input.path}: writing the output would replace it; choose another ${spec.flag} (e.g. a new directory next to it)`,
        { details: { output: shown, flag: spec.flag, input: input.path, inputKind: input.what } },
      );
    }
  }
  const link = await lstat(spec.path).catch(() => undefined);
  if (!link) return { path: resolve(spec.path), exists: false };
  const st = await stat(spec.path).catch(() => undefined);
  if (!st) throw notOurs(spec, shown, 'is a symbolic link to a missing path');
  const target = link.isSymbolicLink() ? real : resolve(spec.path);
  if (spec.kind === 'directory') {
    if (!st.isDirectory()) throw notOurs(spec, shown, `is ${st.isFile() ? 'a regular file' : 'not a directory'} and a directory is written there`);
    if ((await readdir(target)).length === 0) return { path: target, exists: true };
  } else {
    if (st.isDirectory()) throw notOurs(spec, shown, 'is a directory and a file is written there');
    if (!st.isFile()) throw notOurs(spec, shown, 'is not a regular file');
    if (st.size === 0) return { path: target, exists: true };
  }
  if (!(await spec.isOurs(target))) throw notOurs(spec, shown, spec.kind === 'directory' ? 'holds other files' : 'holds other content');
  return { path: target, exists: true };
}

/** isOurs for file outputs: the file starts with `magic`. */
export function startsWith(magic: Buffer): (path: string) => Promise<boolean> {
  return async (path) => {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(magic.length);
      const { bytesRead } = await fh.read(buf, 0, magic.length, 0);
      return bytesRead === magic.length && buf.equals(magic);
    } finally {
      await fh.close();
    }
  };
}
