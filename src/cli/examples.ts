/**
 * Help examples that a terminal never wraps mid-command: yargs lays `.example(cmd, desc)` out in
 * two columns and wraps a long command inside the left one. Here an example is a `# what` line
 * and the command, given as lines of at most EXAMPLE_WIDTH characters joined with shell
 * continuations, in one full-width block: it can be copied as it is, at 80 columns and more.
 */
import type { Argv } from 'yargs';

/** 80 columns minus yargs' indentation (2) and right padding (2). */
export const EXAMPLE_WIDTH = 76;

export interface HelpExample {
  what: string;
  /** The command, `$0` for ctrbake; one string per line, continued with `\`. */
  lines: string[];
}

export function addExamples<T>(y: Argv<T>, examples: readonly HelpExample[]): Argv<T> {
  examples.forEach((e, i) => {
    for (const [n, line] of e.lines.entries()) {
      const shown = `${line.replaceAll('$0', 'ctrbake')}${n < e.lines.length - 1 ? ' \\' : ''}`;
      if (shown.length > EXAMPLE_WIDTH) throw new Error(`help example line longer than ${EXAMPLE_WIDTH} characters: ${shown}`);
    }
    const last = i === examples.length - 1;
    y = y.example(`# ${e.what}\n${e.lines.join(' \\\n')}${last ? '' : '\n'}`, '');
  });
  return y;
}
