import { formatPlatform } from '../formats/index.js';
import { DEFAULT_LOCK_FILE, resolveLock, type LockResult } from '../lock/resolve.js';
import { defineCommand, givenOnly } from './command.js';
import { AUTHFILE_OPTION, IMAGES_FILE_OPTION, INSECURE_REGISTRY_OPTION, repeated } from './options.js';

/** One line per image: reference, platform manifest digest, platform; then the file written. */
function human(result: LockResult): string {
  const lines = result.lock.images.map((i) => `${i.reference} ${i.manifest.digest} ${formatPlatform(i.platform)}`);
  if (result.output) lines.push(`wrote ${result.output}`);
  return lines.join('\n');
}

export const lockCommand = defineCommand({
  command: 'lock [refs..]',
  describe: 'Pin image tags to digests for one target platform and write the lock file',
  options: (y) =>
    y.positional('refs', { type: 'string', array: true, describe: 'image references, e.g. docker.io/library/busybox:1.36' }).options({
      ...IMAGES_FILE_OPTION,
      compose: { type: 'string', describe: 'compose file: every services.*.image is locked' },
      platform: { type: 'string', demandOption: true, describe: 'target platform OS/ARCH[/VARIANT], e.g. linux/arm64' },
      output: { alias: 'o', type: 'string', default: DEFAULT_LOCK_FILE, describe: 'lock file to write' },
      ...AUTHFILE_OPTION,
      ...INSECURE_REGISTRY_OPTION,
      retries: { type: 'number', describe: 'retries of transient registry errors (default 3, backoff 250 ms doubling)' },
    }),
  examples: [
    { what: 'lock one image for 64-bit ARM', lines: ['$0 lock --platform linux/arm64 docker.io/library/busybox:1.36'] },
    { what: 'every image of a compose file', lines: ['$0 lock --platform linux/arm/v7 --compose compose.yaml', '-o images.lock.json'] },
    { what: 'from a local plain-HTTP registry', lines: ['$0 lock --platform linux/amd64 --insecure-registry 127.0.0.1:5000', '127.0.0.1:5000/app:1.0'] },
  ],
  run: (argv, { reporter, signal }) =>
    resolveLock({
      references: argv.refs ?? [],
      ...givenOnly({ imagesFile: argv.images, composeFile: argv.compose, authfile: argv.authfile }),
      platform: argv.platform,
      output: argv.output,
      insecureRegistries: repeated(argv.insecureRegistry),
      ...(argv.retries !== undefined ? { retry: { retries: argv.retries } } : {}),
      reporter,
      signal,
    }),
  human,
});
