import { diffImages } from '../report/diff.js';
import { renderDiffText } from '../report/render-text.js';
import { toJsonFile } from '../util/fs.js';
import { defineCommand, givenOnly, printsNothing } from './command.js';

export const diffCommand = defineCommand({
  command: 'diff <old> <new>',
  describe: 'What an update costs: layers added and dropped, bytes to download and to store (OLD and NEW: lock, manifest.json or layers.json)',
  options: (y) =>
    y
      .positional('old', { type: 'string', demandOption: true, describe: 'what the device has' })
      .positional('new', { type: 'string', demandOption: true, describe: 'the update' })
      .options({
        cache: { type: 'string', describe: 'fetch cache with the new layers, for unpacked sizes' },
        'fs-block-size': { type: 'number', describe: 'block size of the data partition\'s filesystem (default 4096)' },
        format: { choices: ['text', 'json'] as const, default: 'text' as const },
      }),
  examples: [{ what: 'what the update costs a device', lines: ['$0 diff old/manifest.json ctrbake.lock.json --cache cache'] }],
  run: async (argv, { json }) => {
    const result = await diffImages({ oldPath: argv.old, newPath: argv.new, ...givenOnly({ cacheDir: argv.cache, blockSize: argv.fsBlockSize }) });
    if (!json) process.stdout.write(argv.format === 'json' ? toJsonFile(result) : renderDiffText(result));
    return result;
  },
  human: printsNothing,
});
