/**
 * The progress port every stage reports through: library calls take a `Reporter` and the CLI
 * (src/cli/output.ts) turns it into human lines or NDJSON. A floor module: it imports nothing.
 */

export interface ProgressEvent {
  /** Stable machine name of the step, e.g. "fetch.blob". */
  event: string;
  /** Human text. */
  message?: string;
  /** Bytes or items done / total, for progress bars. */
  current?: number;
  total?: number;
  [key: string]: unknown;
}

export interface Reporter {
  event(e: ProgressEvent): void;
  /** Progress update that a TTY may redraw in place; dropped on non-TTY human output. */
  progress(e: ProgressEvent): void;
  result(value: object): void;
  error(error: { code: string; message: string; [key: string]: unknown }): void;
}

/** A reporter that drops everything: the default for library callers. */
export const silentReporter: Reporter = {
  event() {},
  progress() {},
  result() {},
  error() {},
};
