import type { Argv, CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { assertCacheComplete } from '../fetch/complete.js';
import { FETCHER_CHOICES } from '../fetch/config.js';
import { fetchImages, type FetchResult } from '../fetch/fetch.js';
import { readLock } from '../formats/lock.js';
import type { FetcherChoice } from '../fetch/types.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

interface FetchArgs extends GlobalArgs {
  lock: string;
  cache: string;
  fetcher: FetcherChoice;
  authfile?: string;
  insecureRegistry?: string[];
  retries?: number;
  offline: boolean;
  verifyCache: boolean;
}

/** `--offline`: what a build without network (BitBake's BB_NO_NETWORK) runs instead of a fetch. */
interface OfflineCheckResult {
  [key: string]: unknown;
  cacheDir: string;
  offline: true;
  images: { reference: string; digest: string; status: 'cached' }[];
}

async function checkOffline(lockPath: string, cacheDir: string): Promise<OfflineCheckResult> {
  const lock = await readLock(lockPath);
  const status = await assertCacheComplete(cacheDir, lock);
  return {
    cacheDir: resolve(cacheDir),
    offline: true,
    images: status.images.map((i) => ({ reference: i.reference, digest: i.digest, status: 'cached' as const })),
  };
}

function human(result: FetchResult): string {
  const fetched = result.images.filter((i) => i.status === 'fetched').length;
  return (
    `${result.images.length} image(s) in ${result.cacheDir}: ${fetched} fetched${result.fetcher ? ` with ${result.fetcher}` : ''}, ` +
    `${result.images.length - fetched} already cached; ${result.blobsFetched} blob(s) downloaded (${result.bytesFetched} bytes), ` +
    `${result.blobsAlreadyCached} already cached and verified` +
    (result.blobsRepaired ? `; ${result.blobsRepaired} damaged blob(s) repaired` : '')
  );
}

export const fetchCommand: CommandModule<GlobalArgs, FetchArgs> = {
  command: 'fetch',
  describe: 'Download what a lock file pins into a content-addressed, digest-verified cache (the only step that uses the network)',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
    y
      .option('lock', { type: 'string', demandOption: true, describe: 'lock file written by `ctrbake lock`' })
      .option('cache', { type: 'string', demandOption: true, describe: 'cache directory (created if missing; e.g. Yocto DL_DIR/ctrbake)' })
      .option('fetcher', { choices: FETCHER_CHOICES, default: 'auto' as FetcherChoice, describe: 'auto: skopeo when installed, else an isolated docker, else podman' })
      .option('authfile', { type: 'string', describe: 'registry credentials: docker config.json or containers auth.json' })
      .option('insecure-registry', { type: 'string', array: true, describe: 'HOST:PORT served over plain HTTP or with an untrusted certificate (repeatable)' })
      .option('verify-cache', { type: 'boolean', default: false, describe: 'kept for compatibility: every fetch re-hashes the cached blobs the lock needs and fetches damaged ones again' })
      .option('retries', { type: 'number', describe: 'retries of transient registry errors (default 4, backoff 1 s doubling)' })
      .option('offline', {
        type: 'boolean',
        default: false,
        describe: 'no network: only check that the cache has every blob the lock needs, intact (E_CACHE_MISS / E_CACHE_DAMAGED otherwise)',
      }) as unknown as Argv<FetchArgs>,
      [
        { what: 'download what the lock pins (Yocto: into DL_DIR/ctrbake)', lines: ['$0 fetch --lock ctrbake.lock.json --cache cache'] },
        { what: 'no network: check that the cache has every blob', lines: ['$0 fetch --lock ctrbake.lock.json --cache cache --offline'] },
      ],
    ) as unknown as Argv<FetchArgs>,
  handler: (argv) =>
    argv.offline
      ? runCommand<OfflineCheckResult>(
          argv,
          () => checkOffline(argv.lock, argv.cache),
          (r) => `${r.images.length} image(s) complete in ${r.cacheDir} (offline check, nothing fetched)`,
        )
      : runCommand<FetchResult & Record<string, unknown>>(
      argv,
      async ({ reporter, signal }) => ({
        ...(await fetchImages({
          lockPath: argv.lock,
          cacheDir: argv.cache,
          fetcher: argv.fetcher,
          ...(argv.authfile ? { authfile: argv.authfile } : {}),
          insecureRegistries: argv.insecureRegistry ?? [],
          verifyCache: argv.verifyCache,
          ...(argv.retries !== undefined ? { retry: { retries: argv.retries } } : {}),
          reporter,
          signal,
        })),
      }),
      human,
    ),
};
