import type { Argv, CommandModule } from 'yargs';
import { verifyStore, type VerifyStoreResult } from '../bake/verify-store.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

interface VerifyStoreArgs extends GlobalArgs {
  output: string;
  additionalStore: boolean;
}

function human(result: VerifyStoreResult): string {
  const lines = [`store verified with ${result.engine} ${result.engineVersion} (${result.storageDriver}):`];
  for (const image of result.images) {
    lines.push(`  ${image.reference}: listed, ${image.notRun ? `not run (${image.notRun})` : 'ran'}, saved ${image.savedLayers} layer(s)`);
  }
  if (result.additionalStore) lines.push(`  also as a read-only additional image store: ${result.additionalStore.length} image(s) listed, run and saved`);
  return lines.join('\n');
}

export const verifyStoreCommand: CommandModule<GlobalArgs, VerifyStoreArgs> = {
  command: 'verify-store',
  describe: 'Check a store bake as a device uses it: extract OUT/store.tar as root into a fresh data-root, start a fresh private engine on it, list, run (--network none) and save every image',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
    y
      .option('output', { alias: ['o', 'out'], type: 'string', demandOption: true, describe: 'the OUT directory `ctrbake bake --mode store -o OUT` wrote (manifest.json, store.tar; --out is the old spelling)' })
      .option('additional-store', { type: 'boolean', default: true, describe: 'podman: also check the store as a read-only additional image store' }) as unknown as Argv<VerifyStoreArgs>,
      [
        { what: 'run every image of a store bake once, as a device would', lines: ['$0 verify-store -o out'] },
      ],
    ) as unknown as Argv<VerifyStoreArgs>,
  handler: (argv) =>
    runCommand<VerifyStoreResult & Record<string, unknown>>(
      argv,
      async ({ signal }) => ({ ...(await verifyStore({ outDir: argv.output, checkAdditionalStore: argv.additionalStore, signal })) }),
      human,
    ),
};
