import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/** The absolute path of an executable on PATH, or undefined. */
export async function findExecutable(name: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The command prefix that makes a child die with ctrbake even on SIGKILL (parent-death signal
 * via util-linux setpriv), so a killed fetch leaves no downloader writing into the cache.
 */
export async function dieWithParentPrefix(): Promise<string[]> {
  const setpriv = await findExecutable('setpriv');
  return setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : [];
}

/** The `msg="..."` of a containers tool's fatal log line, or the tail of its stderr. */
export function toolErrorText(stderr: string, max = 2000): string {
  const m = /level=fatal msg="((?:[^"\\]|\\.)*)"/.exec(stderr);
  const text = m ? m[1]!.replace(/\\(.)/g, '$1') : stderr.trim();
  return text.length > max ? `...${text.slice(-max)}` : text;
}
