import { stat } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { ConfigError, CtrbakeError, InputError } from '../errors.js';
import { formatPlatform, type LockedImage, type LockFile, type Platform } from '../formats/index.js';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { RegistryClient } from '../registry/client.js';
import { checkRetries, type RetryPolicy } from '../util/retry.js';
import { parsePlatform } from '../registry/platform.js';
import { formatReference } from '../registry/reference.js';
import { writeLock } from '../formats/lock.js';
import { checkLockOutput } from './lock-output.js';
import { resolveImage } from './resolve-image.js';
import { parseSources, readComposeFile, readImagesFile, type ImageSource } from './sources.js';

export const DEFAULT_LOCK_FILE = 'ctrbake.lock.json';

export interface LockOptions {
  /** Image references as written by the user. */
  references?: readonly string[];
  /** A file with one reference per line (`#` comments). */
  imagesFile?: string;
  /** A compose file: every services.*.image. */
  composeFile?: string;
  /** OS/ARCH[/VARIANT] or a Platform. */
  platform: string | Platform;
  /** Where to write the lock file; nothing is written when undefined. */
  output?: string;
  /** docker config.json or containers auth.json with registry credentials. */
  authfile?: string;
  /** host[:port] of plain-HTTP registries. */
  insecureRegistries?: readonly string[];
  retry?: Partial<RetryPolicy>;
  /** Images resolved at once. */
  concurrency?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export type LockResult = {
  lock: LockFile;
  /** Absolute path of the written lock file, when one was written. */
  output: string | null;
};

const HOST_PORT_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::\d{1,5})?$/;

interface ResolvedLockConfig {
  sources: ImageSource[];
  platform: Platform;
  output: string | null;
  authfile?: string;
  insecureRegistries: string[];
  retry?: Partial<RetryPolicy>;
  concurrency: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

async function resolveConfig(options: LockOptions): Promise<Readonly<ResolvedLockConfig>> {
  if (options.platform === undefined || options.platform === null || options.platform === '') {
    throw new ConfigError('E_BAD_PLATFORM', 'the target platform is missing: give --platform OS/ARCH[/VARIANT], e.g. linux/arm64');
  }
  const platform = typeof options.platform === 'string' ? parsePlatform(options.platform) : parsePlatform(formatPlatform(options.platform));
  for (const host of options.insecureRegistries ?? []) {
    if (!HOST_PORT_RE.test(host)) {
      throw new ConfigError('E_BAD_INSECURE_REGISTRY', `--insecure-registry ${JSON.stringify(host)} is not HOST[:PORT]; give the registry as in the image reference, e.g. 127.0.0.1:5000`);
    }
  }
  const sources: ImageSource[] = (options.references ?? []).map((text) => ({ text, origin: 'argument' }));
  if (options.imagesFile) sources.push(...(await readImagesFile(options.imagesFile)));
  if (options.composeFile) sources.push(...(await readComposeFile(options.composeFile)));
  if (sources.length === 0) {
    throw new ConfigError('E_NO_IMAGES', 'no images to lock: give references as arguments, --images FILE or --compose FILE');
  }
  checkRetries(options.retry?.retries);
  const output = options.output === undefined ? null : resolvePath(options.output);
  // The lock is written after every tag is resolved: a missing directory must not wait for that.
  if (output && !(await stat(dirname(output)).catch(() => null))?.isDirectory()) {
    throw new InputError('E_LOCK_WRITE', `cannot write the lock file ${output}: its directory ${dirname(output)} does not exist; create it first or choose another -o`);
  }
  return Object.freeze({
    sources,
    platform,
    output,
    authfile: options.authfile,
    insecureRegistries: [...(options.insecureRegistries ?? [])],
    retry: options.retry,
    concurrency: Math.max(1, options.concurrency ?? 4),
    reporter: options.reporter ?? silentReporter,
    signal: options.signal,
  });
}

/** Runs fn over items, at most `limit` at once; results in input order, every item settled. */
async function settleLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Resolves every image for one platform and (with `output`) writes the lock file atomically.
 * Nothing is written when any image fails; the error of the first failing reference (in
 * sorted order) is thrown, the others are reported as events.
 */
export async function resolveLock(options: LockOptions): Promise<LockResult> {
  const config = await resolveConfig(options);
  const { reporter, platform } = config;
  // Before any registry request: -o may replace only a lock (or nothing), never an input.
  const output = config.output
    ? (
        await checkLockOutput(config.output, [
          ...(options.imagesFile ? [{ path: options.imagesFile, what: 'images file' }] : []),
          ...(options.composeFile ? [{ path: options.composeFile, what: 'compose file' }] : []),
          ...(options.authfile ? [{ path: options.authfile, what: 'auth file' }] : []),
        ])
      ).path
    : null;
  const parsed = parseSources(config.sources);
  const unique = new Map<string, (typeof parsed)[number]>();
  for (const p of parsed) {
    const key = formatReference(p.ref);
    if (!unique.has(key)) unique.set(key, p);
  }
  const todo = [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const client = await RegistryClient.create({
    insecureRegistries: config.insecureRegistries,
    ...(config.authfile ? { authfile: config.authfile } : {}),
    ...(config.retry ? { retry: config.retry } : {}),
    ...(config.signal ? { signal: config.signal } : {}),
    onRetry: ({ host, attempt, reason, delayMs }) =>
      reporter.event({ event: 'lock.retry', registry: host, attempt, reason, delayMs, message: `registry ${host}: ${reason}, retrying in ${delayMs} ms` }),
  });
  reporter.event({ event: 'lock.start', platform: formatPlatform(platform), images: todo.length, message: `locking ${todo.length} image(s) for ${formatPlatform(platform)}` });
  let done = 0;
  const settled = await settleLimited(todo, config.concurrency, async ([reference, source]) => {
    const image = await resolveImage(client, source.ref, platform);
    done++;
    reporter.event({
      event: 'lock.image',
      reference,
      indexDigest: image.indexDigest,
      manifestDigest: image.manifest.digest,
      platform: formatPlatform(image.platform),
      current: done,
      total: todo.length,
    });
    // The result lists every image with its digest: on a terminal, only a transient line here.
    reporter.progress({ event: 'lock.progress', message: `locked ${done} of ${todo.length}: ${reference}`, current: done, total: todo.length });
    return image;
  });
  const failures = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ reference: todo[i]![0], origin: todo[i]![1].origin, error: s.reason as unknown }] : []));
  if (failures.length > 0) {
    const first = failures[0]!;
    const messageOf = (f: { error: unknown }) => (f.error as Error).message;
    // One fact once: references failing the same way as the first (an unreachable registry)
    // are named in the final error, not printed again as events.
    const same = failures.slice(1).filter((f) => messageOf(f) === messageOf(first));
    for (const f of failures.slice(1)) {
      if (same.includes(f)) continue;
      const code = f.error instanceof CtrbakeError ? f.error.code : 'E_INTERNAL';
      reporter.event({ event: 'lock.failed', reference: f.reference, code, message: `${f.reference}: ${messageOf(f)}` });
    }
    if (same.length > 0 && first.error instanceof CtrbakeError) {
      first.error.message = `${first.error.message} (for ${[first, ...same].map((f) => f.reference).join(', ')})`;
    }
    if (first.error instanceof CtrbakeError && first.origin !== 'argument' && !(first.error instanceof ConfigError)) {
      // Name where the reference came from; keep code and exit code.
      first.error.message = `${first.error.message} (from ${first.origin})`;
    }
    throw first.error;
  }
  const images = settled.map((s) => (s as PromiseFulfilledResult<LockedImage>).value);
  const lock: LockFile = { lockVersion: 1, platform, images };
  if (output) {
    try {
      await writeLock(output, lock);
    } catch (error) {
      throw new InputError('E_LOCK_WRITE', `cannot write the lock file ${output} (${(error as NodeJS.ErrnoException).code ?? 'error'}): check that its directory exists and is writable`, {
        cause: error,
      });
    }
    // No message: the result's last line says it (one fact once on a terminal).
    reporter.event({ event: 'lock.written', path: output, images: images.length });
  }
  return { lock, output };
}
