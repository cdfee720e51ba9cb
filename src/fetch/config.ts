import { resolve } from 'node:path';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { ConfigError } from '../errors.js';
import type { LockFile } from '../formats/index.js';
import { loadAuthFile, secretsOf } from './auth.js';
import { E_BAD_INSECURE_REGISTRY, E_BAD_OPTION } from './errors.js';
import { DOWNLOAD_RETRY, checkRetries, type RetryPolicy } from '../util/retry.js';
import type { FetcherChoice, ResolvedFetchConfig } from './types.js';

export interface FetchOptions {
  /** The lock file to fetch; or pass `lock` directly. */
  lockPath?: string;
  lock?: LockFile;
  cacheDir: string;
  /** Default 'auto': skopeo when installed, else the isolated engine (docker, else podman). */
  fetcher?: FetcherChoice;
  /** docker config.json or containers auth.json with registry credentials. */
  authfile?: string;
  /** HOST[:PORT] of registries spoken to over plain HTTP or without TLS verification. */
  insecureRegistries?: readonly string[];
  /**
   * Kept for compatibility: every fetch now checks the cached blobs the lock needs (size and
   * sha256) and downloads damaged ones again, with or without it.
   */
  verifyCache?: boolean;
  /** Retries of each image download after a transient registry error (default DOWNLOAD_RETRY: 4 retries, 1 s doubling up to 15 s). */
  retry?: Partial<RetryPolicy>;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export const FETCHER_CHOICES: readonly FetcherChoice[] = ['auto', 'skopeo', 'docker', 'podman'];

/** The one place fetch options are checked and normalized. */
export async function resolveFetchConfig(options: FetchOptions): Promise<ResolvedFetchConfig> {
  const bad = (msg: string): never => {
    throw new ConfigError(E_BAD_OPTION, msg);
  };
  if (!options.cacheDir) bad('a cache directory is required (--cache DIR)');
  if ((options.lockPath === undefined) === (options.lock === undefined)) bad('give exactly one of lockPath (--lock FILE) or lock');
  const fetcher = options.fetcher ?? 'auto';
  if (!FETCHER_CHOICES.includes(fetcher)) bad(`unknown fetcher ${JSON.stringify(fetcher)}; use one of ${FETCHER_CHOICES.join(', ')}`);
  const insecure = new Set<string>();
  for (const host of options.insecureRegistries ?? []) {
    if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host)) {
      throw new ConfigError(E_BAD_INSECURE_REGISTRY, `--insecure-registry ${JSON.stringify(host)} is not HOST[:PORT]; give the registry as in the lock, without scheme or path`);
    }
    insecure.add(host);
  }
  const retry = { ...DOWNLOAD_RETRY, ...options.retry };
  checkRetries(retry.retries);
  const auth = options.authfile ? await loadAuthFile(options.authfile) : undefined;
  return Object.freeze({
    cacheDir: resolve(options.cacheDir),
    fetcher,
    ...(auth ? { auth } : {}),
    secrets: Object.freeze(secretsOf(auth)),
    insecureRegistries: insecure,
    retry: Object.freeze(retry),
    reporter: options.reporter ?? silentReporter,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
