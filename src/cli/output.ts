/**
 * What a command tells its user while it works.
 * - `--json`: NDJSON on stdout, one `{"type":"event",...}` per step and one final
 *   `{"type":"result",...}` or `{"type":"error",...}` object.
 * - otherwise: human lines on stderr; a progress line redrawn in place only on a TTY.
 */

import type { Reporter } from '../util/reporter.js';

export type { Reporter, ProgressEvent } from '../util/reporter.js';
export { silentReporter } from '../util/reporter.js';

export interface ReporterOptions {
  json: boolean;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createReporter(options: ReporterOptions): Reporter {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  if (options.json) {
    const write = (obj: Record<string, unknown>) => stdout.write(`${JSON.stringify(obj)}\n`);
    return {
      event: (e) => write({ type: 'event', ...e }),
      progress: (e) => write({ type: 'progress', ...e }),
      result: (value) => write({ type: 'result', ...value }),
      error: (err) => write({ type: 'error', ...err }),
    };
  }
  const tty = Boolean(stderr.isTTY);
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) {
      stderr.write('\r\x1b[K');
      progressShown = false;
    }
  };
  return {
    event(e) {
      clearProgress();
      if (e.message) stderr.write(`${e.message}\n`);
    },
    progress(e) {
      if (!tty) return;
      const pct = e.total ? ` ${Math.floor(((e.current ?? 0) / e.total) * 100)}%` : '';
      const text = `${e.message ?? e.event}${pct}`;
      // A TTY may report 0 columns (e.g. under `script` without stty): fall back to 100.
      stderr.write(`\r\x1b[K${text.slice(0, (stderr as { columns?: number }).columns || 100)}`);
      progressShown = true;
    },
    result() {
      clearProgress();
    },
    error(err) {
      clearProgress();
      stderr.write(`ctrbake: error ${err.code}: ${err.message}\n`);
    },
  };
}
