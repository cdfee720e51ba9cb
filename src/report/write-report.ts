/**
 * `ctrbake report` as a library call: the report, rendered to a file (`-o`), and layers.json
 * next to the manifest (`--write-layers`). Every option combination is checked before the
 * layers are measured (minutes on a large bake), not after.
 */
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { toJsonFile, writeFileAtomic } from '../util/fs.js';
import { LAYERS_FILE, writeLayers } from '../formats/layers.js';
import { layersFileFromReport } from './layers-file.js';
import { renderReportHtml } from './render-html.js';
import { renderReportText } from './render-text.js';
import { checkReportOutput } from './report-output.js';
import { E_REPORT_OPTIONS, report, ReportDoesNotFitError, type ReportOptions, type ReportResult } from './report.js';

export const REPORT_FORMATS = ['text', 'json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface WriteReportOptions extends ReportOptions {
  /** Default text. */
  format?: ReportFormat;
  /** The file to write the rendered report to: absent, or a previous report (never an input). */
  outputPath?: string;
  /** Also write layers.json (per-layer sizes for update agents) next to the manifest. */
  writeLayers?: boolean;
}

export function renderReport(result: ReportResult, format: ReportFormat = 'text'): string {
  if (format === 'json') return toJsonFile(result);
  if (format === 'html') return renderReportHtml(result);
  return renderReportText(result);
}

/** A report file goes into an existing directory, and never over a directory. */
async function assertOutputFileDir(path: string, flag: string): Promise<void> {
  const [parent, self] = await Promise.all([stat(dirname(resolve(path))).catch(() => null), stat(path).catch(() => null)]);
  if (!parent?.isDirectory()) throw new ConfigError(E_REPORT_OPTIONS, `${flag} ${path}: the directory ${dirname(resolve(path))} does not exist; create it first`);
  if (self?.isDirectory()) throw new ConfigError(E_REPORT_OPTIONS, `${flag} ${path} is a directory: give a file name, e.g. ${join(path, 'report.html')}`);
}

/**
 * Over budget, the files are still written and the ReportDoesNotFitError (exit 3) that
 * carries the report is thrown after them.
 */
export async function writeReport(options: WriteReportOptions): Promise<ReportResult> {
  if (options.manifestPath && options.lockPath) throw new ConfigError(E_REPORT_OPTIONS, 'give --manifest or --lock, not both');
  if (options.writeLayers && !options.manifestPath) throw new ConfigError(E_REPORT_OPTIONS, '--write-layers writes next to the manifest: it needs --manifest');
  let output: string | undefined;
  if (options.outputPath) {
    await assertOutputFileDir(options.outputPath, '--output');
    output = (await checkReportOutput(options.outputPath, options)).path;
  }
  let result: ReportResult;
  let notFit: ReportDoesNotFitError | undefined;
  try {
    result = await report(options);
  } catch (error) {
    if (!(error instanceof ReportDoesNotFitError)) throw error;
    result = error.report;
    notFit = error;
  }
  if (options.writeLayers) await writeLayers(join(dirname(options.manifestPath!), LAYERS_FILE), layersFileFromReport(result));
  if (output) await writeFileAtomic(output, renderReport(result, options.format));
  if (notFit) throw notFit;
  return result;
}
