import type { Argv, CommandModule } from 'yargs';
import { formatPlatform } from '../formats/index.js';
import { DEFAULT_LOCK_FILE, resolveLock, type LockResult } from '../lock/resolve.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

interface LockArgs extends GlobalArgs {
  refs?: string[];
  images?: string;
  compose?: string;
  platform: string;
  output: string;
  authfile?: string;
  insecureRegistry?: string | string[];
  retries?: number;
}

/** One line per image: reference, platform manifest digest, platform; then the file written. */
function human(result: LockResult): string {
  const lines = result.lock.images.map((i) => `${i.reference} ${i.manifest.digest} ${formatPlatform(i.platform)}`);
  if (result.output) lines.push(`wrote ${result.output}`);
  return lines.join('\n');
}

export const lockCommand: CommandModule<GlobalArgs, LockArgs> = {
  command: 'lock [refs..]',
  describe: 'Pin image tags to digests for one target platform and write the lock file',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
      y
      .positional('refs', { type: 'string', array: true, describe: 'image references, e.g. docker.io/library/busybox:1.36' })
      .option('images', { type: 'string', describe: 'file with one reference per line (# comments)' })
      .option('compose', { type: 'string', describe: 'compose file: every services.*.image is locked' })
      .option('platform', { type: 'string', demandOption: true, describe: 'target platform OS/ARCH[/VARIANT], e.g. linux/arm64' })
      .option('output', { alias: 'o', type: 'string', default: DEFAULT_LOCK_FILE, describe: 'lock file to write' })
      .option('authfile', { type: 'string', describe: 'registry credentials: docker config.json or containers auth.json' })
      // Not `array: true`: that would swallow the REF arguments after it; repeating the flag gives an array.
      .option('insecure-registry', { type: 'string', describe: 'HOST:PORT spoken to over plain HTTP (repeat the flag for several)' })
      .option('retries', { type: 'number', describe: 'retries of transient registry errors (default 3, backoff 250 ms doubling)' }),
      [
        { what: 'lock one image for 64-bit ARM', lines: ['$0 lock --platform linux/arm64 docker.io/library/busybox:1.36'] },
        { what: 'every image of a compose file', lines: ['$0 lock --platform linux/arm/v7 --compose compose.yaml', '-o images.lock.json'] },
        { what: 'from a local plain-HTTP registry', lines: ['$0 lock --platform linux/amd64 --insecure-registry 127.0.0.1:5000', '127.0.0.1:5000/app:1.0'] },
      ],
    ) as unknown as Argv<LockArgs>,
  handler: (argv) =>
    runCommand<LockResult>(
      argv,
      ({ reporter, signal }) =>
        resolveLock({
          references: argv.refs ?? [],
          ...(argv.images ? { imagesFile: argv.images } : {}),
          ...(argv.compose ? { composeFile: argv.compose } : {}),
          platform: argv.platform,
          output: argv.output,
          ...(argv.authfile ? { authfile: argv.authfile } : {}),
          insecureRegistries: ([] as string[]).concat(argv.insecureRegistry ?? []),
          ...(argv.retries !== undefined ? { retry: { retries: argv.retries } } : {}),
          reporter,
          signal,
        }),
      human,
    ),
};
