import { LAYERS_FILE } from '../formats/layers.js';
import { ReportDoesNotFitError, type ReportResult } from '../report/report.js';
import { renderReport, REPORT_FORMATS, writeReport, type ReportFormat } from '../report/write-report.js';
import { defineCommand, givenOnly, printsNothing } from './command.js';
import { BUDGET_OPTIONS, budgetFrom } from './budget-options.js';

export const reportCommand = defineCommand({
  command: 'report',
  describe: 'Sizes, layer sharing, duplicate files, SquashFS sizes, first-boot writes and budget fit of a bake (docs/report.md)',
  options: (y) =>
    y.options({
      manifest: { type: 'string', describe: 'OUT/manifest.json of a bake' },
      lock: { type: 'string', describe: 'a lock file instead: report before baking' },
      cache: { type: 'string', describe: 'the fetch cache the layers are measured from' },
      format: { choices: REPORT_FORMATS, default: 'text' as ReportFormat, describe: 'text tables, JSON, or one self-contained HTML file with charts' },
      output: { alias: 'o', type: 'string', describe: 'write the report to this file instead of stdout' },
      'write-layers': { type: 'boolean', describe: `also write ${LAYERS_FILE} (per-layer sizes for update agents) next to the manifest` },
      ...BUDGET_OPTIONS,
    }),
  examples: [
    { what: 'sizes and the fit in a 512 MiB budget', lines: ['$0 report --manifest out/manifest.json --cache cache --budget 512M'] },
    { what: 'one HTML file with charts', lines: ['$0 report --manifest out/manifest.json --cache cache --format html', '-o report.html'] },
  ],
  run: async (argv, { reporter, json, signal }) => {
    // Without -o the report goes to stdout, also when it does not fit (exit 3).
    const print = (result: ReportResult) => {
      if (!argv.output && !json) process.stdout.write(renderReport(result, argv.format));
    };
    try {
      const result = await writeReport({
        ...givenOnly({ manifestPath: argv.manifest, lockPath: argv.lock, cacheDir: argv.cache, outputPath: argv.output, layout: argv.layout, blockSize: argv.fsBlockSize, payloadPartition: argv.payloadOn }),
        ...budgetFrom(argv),
        format: argv.format,
        writeLayers: Boolean(argv.writeLayers),
        reporter,
        signal,
      });
      print(result);
      return result;
    } catch (error) {
      if (error instanceof ReportDoesNotFitError) print(error.report);
      throw error;
    }
  },
  human: printsNothing,
});
