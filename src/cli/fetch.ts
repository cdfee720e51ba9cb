import { FETCHER_CHOICES } from '../fetch/config.js';
import { fetchImages, type FetchResult } from '../fetch/fetch.js';
import { checkCacheOffline, type OfflineCheckResult } from '../fetch/offline-check.js';
import type { FetcherChoice } from '../fetch/types.js';
import { defineCommand, givenOnly } from './command.js';
import { AUTHFILE_OPTION, LOCK_INPUT_OPTION } from './options.js';

function human(result: FetchResult | OfflineCheckResult): string {
  if ('offline' in result) return `${result.images.length} image(s) complete in ${result.cacheDir} (offline check, nothing fetched)`;
  const fetched = result.images.filter((i) => i.status === 'fetched').length;
  return (
    `${result.images.length} image(s) in ${result.cacheDir}: ${fetched} fetched${result.fetcher ? ` with ${result.fetcher}` : ''}, ` +
    `${result.images.length - fetched} already cached; ${result.blobsFetched} blob(s) downloaded (${result.bytesFetched} bytes), ` +
    `${result.blobsAlreadyCached} already cached and verified` +
    (result.blobsRepaired ? `; ${result.blobsRepaired} damaged blob(s) repaired` : '')
  );
}

export const fetchCommand = defineCommand({
  command: 'fetch',
  describe: 'Download what a lock file pins into a content-addressed, digest-verified cache (the only step that uses the network)',
  options: (y) =>
    y.options({
      ...LOCK_INPUT_OPTION,
      cache: { type: 'string', demandOption: true, describe: 'cache directory (created if missing; e.g. Yocto DL_DIR/ctrbake)' },
      fetcher: { choices: FETCHER_CHOICES, default: 'auto' as FetcherChoice, describe: 'auto: skopeo when installed, else an isolated docker, else podman' },
      ...AUTHFILE_OPTION,
      'insecure-registry': { type: 'string', array: true, describe: 'HOST:PORT served over plain HTTP or with an untrusted certificate (repeatable)' },
      'verify-cache': { type: 'boolean', default: false, describe: 'kept for compatibility: every fetch re-hashes the cached blobs the lock needs and fetches damaged ones again' },
      retries: { type: 'number', describe: 'retries of transient registry errors (default 4, backoff 1 s doubling)' },
      offline: {
        type: 'boolean',
        default: false,
        describe: 'no network: only check that the cache has every blob the lock needs, intact (E_CACHE_MISS / E_CACHE_DAMAGED otherwise)',
      },
    }),
  examples: [
    { what: 'download what the lock pins (Yocto: into DL_DIR/ctrbake)', lines: ['$0 fetch --lock ctrbake.lock.json --cache cache'] },
    { what: 'no network: check that the cache has every blob', lines: ['$0 fetch --lock ctrbake.lock.json --cache cache --offline'] },
  ],
  run: (argv, { reporter, signal }): Promise<FetchResult | OfflineCheckResult> =>
    argv.offline
      ? checkCacheOffline({ lockPath: argv.lock, cacheDir: argv.cache })
      : fetchImages({
          lockPath: argv.lock,
          cacheDir: argv.cache,
          fetcher: argv.fetcher,
          ...givenOnly({ authfile: argv.authfile }),
          insecureRegistries: argv.insecureRegistry ?? [],
          verifyCache: argv.verifyCache,
          ...(argv.retries !== undefined ? { retry: { retries: argv.retries } } : {}),
          reporter,
          signal,
        }),
  human,
});
