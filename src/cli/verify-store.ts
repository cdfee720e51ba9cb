import { verifyStore, type VerifyStoreResult } from '../bake/verify-store.js';
import { defineCommand } from './command.js';

function human(result: VerifyStoreResult): string {
  const lines = [`store verified with ${result.engine} ${result.engineVersion} (${result.storageDriver}):`];
  for (const image of result.images) {
    lines.push(`  ${image.reference}: listed, ${image.notRun ? `not run (${image.notRun})` : 'ran'}, saved ${image.savedLayers} layer(s)`);
  }
  if (result.additionalStore) lines.push(`  also as a read-only additional image store: ${result.additionalStore.length} image(s) listed, run and saved`);
  return lines.join('\n');
}

export const verifyStoreCommand = defineCommand({
  command: 'verify-store',
  describe: 'Check a store bake as a device uses it: extract OUT/store.tar as root into a fresh data-root, start a fresh private engine on it, list, run (--network none) and save every image',
  options: (y) =>
    y.options({
      output: { alias: ['o', 'out'], type: 'string', demandOption: true, describe: 'the OUT directory `ctrbake bake --mode store -o OUT` wrote (manifest.json, store.tar; --out is the old spelling)' },
      'additional-store': { type: 'boolean', default: true, describe: 'podman: also check the store as a read-only additional image store' },
    }),
  examples: [{ what: 'run every image of a store bake once, as a device would', lines: ['$0 verify-store -o out'] }],
  run: (argv, { signal }) => verifyStore({ outDir: argv.output, checkAdditionalStore: argv.additionalStore, signal }),
  human,
});
