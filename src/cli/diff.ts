import type { Argv, CommandModule } from 'yargs';
import { diffImages, type DiffResult } from '../report/diff.js';
import { renderDiffText } from '../report/render-text.js';
import { toJsonFile } from '../util/fs.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

interface DiffArgs extends GlobalArgs {
  old: string;
  new: string;
  cache?: string;
  fsBlockSize?: number;
  format: 'text' | 'json';
}

export const diffCommand: CommandModule<GlobalArgs, DiffArgs> = {
  command: 'diff <old> <new>',
  describe: 'What an update costs: layers added and dropped, bytes to download and to store (OLD and NEW: lock, manifest.json or layers.json)',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
    y
      .positional('old', { type: 'string', demandOption: true, describe: 'what the device has' })
      .positional('new', { type: 'string', demandOption: true, describe: 'the update' })
      .option('cache', { type: 'string', describe: 'fetch cache with the new layers, for unpacked sizes' })
      .option('fs-block-size', { type: 'number', describe: 'block size of the data partition\'s filesystem (default 4096)' })
      .option('format', { choices: ['text', 'json'] as const, default: 'text' as const }) as unknown as Argv<DiffArgs>,
      [
        { what: 'what the update costs a device', lines: ['$0 diff old/manifest.json ctrbake.lock.json --cache cache'] },
      ],
    ) as unknown as Argv<DiffArgs>,
  handler: (argv) =>
    runCommand<DiffResult>(
      argv,
      async ({ json }) => {
        const result = await diffImages({ oldPath: argv.old, newPath: argv.new, ...(argv.cache ? { cacheDir: argv.cache } : {}), ...(argv.fsBlockSize !== undefined ? { blockSize: argv.fsBlockSize } : {}) });
        if (!json) process.stdout.write(argv.format === 'json' ? toJsonFile(result) : renderDiffText(result));
        return result;
      },
      () => '',
    ),
};
