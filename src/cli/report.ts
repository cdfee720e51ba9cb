import { stat } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../errors.js';
import { LAYERS_FILE, writeLayers } from '../formats/layers.js';
import { layersFileFromReport } from '../report/layers-file.js';
import { LAYOUTS, PARTITIONS, type Layout, type Partition } from '../report/layout-model.js';
import { renderReportHtml } from '../report/render-html.js';
import { renderReportText } from '../report/render-text.js';
import { report, ReportDoesNotFitError, type ReportResult } from '../report/report.js';
import { toJsonFile, writeFileAtomic } from '../util/fs.js';
import { checkReportOutput } from '../report/report-output.js';
import { dirname, join, resolve } from 'node:path';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

/** A report file goes into an existing directory, and never over a directory. */
async function assertOutputFileDir(path: string, flag: string): Promise<void> {
  const [parent, self] = await Promise.all([stat(dirname(resolve(path))).catch(() => null), stat(path).catch(() => null)]);
  if (!parent?.isDirectory()) throw new ConfigError('E_REPORT_OPTIONS', `${flag} ${path}: the directory ${dirname(resolve(path))} does not exist; create it first`);
  if (self?.isDirectory()) throw new ConfigError('E_REPORT_OPTIONS', `${flag} ${path} is a directory: give a file name, e.g. ${join(path, 'report.html')}`);
}

export const REPORT_FORMATS = ['text', 'json', 'html'] as const;
type ReportFormat = (typeof REPORT_FORMATS)[number];

/** The budget flags `report` and `bake` share. */
export function budgetOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .option('budget', { type: 'string', describe: 'bytes the data partition may take at first boot, e.g. 512M, 1.5GiB, 4096 (K/M/G/T = 1024-based, kB/MB/GB = 1000-based)' })
    .option('partition-size', { type: 'string', describe: 'size of the data partition (instead of --budget)' })
    .option('watermark', { type: 'string', describe: 'with --partition-size: fill at most this percentage of it (default 90)' })
    .option('reserve', { type: 'string', describe: 'with --partition-size: bytes kept free for other data (default 0)' })
    .option('layout', { choices: LAYOUTS, describe: 'device layout for the first-boot model (default: from the bake mode and storage driver)' })
    .option('fs-block-size', { type: 'number', describe: 'block size of the data partition\'s filesystem (default 4096)' })
    .option('payload-on', { choices: PARTITIONS, describe: 'where the loader puts the archives or store image: rootfs (the default of ctrbake loader --payload-dir) or data (a ctrbake loader --payload-dir on the data partition, counted in the budget)' }) as unknown as Argv<T>;
}

interface ReportArgs extends GlobalArgs {
  manifest?: string;
  lock?: string;
  cache?: string;
  budget?: string;
  partitionSize?: string;
  watermark?: string;
  reserve?: string;
  layout?: Layout;
  fsBlockSize?: number;
  payloadOn?: Partition;
  format: ReportFormat;
  output?: string;
  writeLayers?: boolean;
}

function render(result: ReportResult, format: ReportFormat): string {
  if (format === 'json') return toJsonFile(result);
  if (format === 'html') return renderReportHtml(result);
  return renderReportText(result);
}

export const reportCommand: CommandModule<GlobalArgs, ReportArgs> = {
  command: 'report',
  describe: 'Sizes, layer sharing, duplicate files, SquashFS sizes, first-boot writes and budget fit of a bake (docs/report.md)',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
    budgetOptions(
      y
        .option('manifest', { type: 'string', describe: 'OUT/manifest.json of a bake' })
        .option('lock', { type: 'string', describe: 'a lock file instead: report before baking' })
        .option('cache', { type: 'string', describe: 'the fetch cache the layers are measured from' })
        .option('format', { choices: REPORT_FORMATS, default: 'text' as ReportFormat, describe: 'text tables, JSON, or one self-contained HTML file with charts' })
        .option('output', { alias: 'o', type: 'string', describe: 'write the report to this file instead of stdout' })
        .option('write-layers', { type: 'boolean', describe: `also write ${LAYERS_FILE} (per-layer sizes for update agents) next to the manifest` }),
    ) as unknown as Argv<ReportArgs>,
      [
        { what: 'sizes and the fit in a 512 MiB budget', lines: ['$0 report --manifest out/manifest.json --cache cache --budget 512M'] },
        { what: 'one HTML file with charts', lines: ['$0 report --manifest out/manifest.json --cache cache --format html', '-o report.html'] },
      ],
    ) as unknown as Argv<ReportArgs>,
  handler: (argv) =>
    runCommand<ReportResult>(
      argv,
      async ({ reporter, json, signal }) => {
        if (argv.manifest && argv.lock) throw new ConfigError('E_REPORT_OPTIONS', 'give --manifest or --lock, not both');
        // Checked before the layers are measured (minutes on a large bake), not after.
        if (argv.writeLayers && !argv.manifest) throw new ConfigError('E_REPORT_OPTIONS', '--write-layers writes next to the manifest: it needs --manifest');
        if (argv.output) await assertOutputFileDir(argv.output, '--output');
        const output = argv.output
          ? (await checkReportOutput(argv.output, { ...(argv.manifest ? { manifestPath: argv.manifest } : {}), ...(argv.lock ? { lockPath: argv.lock } : {}), ...(argv.cache ? { cacheDir: argv.cache } : {}) })).path
          : undefined;
        let result: ReportResult;
        let notFit: ReportDoesNotFitError | undefined;
        try {
          result = await report({
            ...(argv.manifest ? { manifestPath: argv.manifest } : {}),
            ...(argv.lock ? { lockPath: argv.lock } : {}),
            ...(argv.cache ? { cacheDir: argv.cache } : {}),
            budget: argv.budget,
            partitionSize: argv.partitionSize,
            watermarkPct: argv.watermark,
            reserve: argv.reserve,
            ...(argv.layout ? { layout: argv.layout } : {}),
            ...(argv.fsBlockSize !== undefined ? { blockSize: argv.fsBlockSize } : {}),
            ...(argv.payloadOn ? { payloadPartition: argv.payloadOn } : {}),
            reporter,
            signal,
          });
        } catch (error) {
          if (!(error instanceof ReportDoesNotFitError)) throw error;
          result = error.report;
          notFit = error;
        }
        if (argv.writeLayers) {
          await writeLayers(join(dirname(argv.manifest!), LAYERS_FILE), layersFileFromReport(result));
        }
        if (output) await writeFileAtomic(output, render(result, argv.format));
        else if (!json) process.stdout.write(render(result, argv.format));
        if (notFit) throw notFit;
        return result;
      },
      () => '',
    ),
};
