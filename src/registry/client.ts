import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RegistryError } from '../errors.js';
import { REQUEST_RETRY, withRetry, type RetryPolicy } from '../util/retry.js';
import { basicAuthorization, findCredentials, parseChallenge, readAuthfile, type AuthEntry, type Credentials } from './auth.js';
import { MANIFEST_ACCEPT } from '../formats/media-types.js';
import { apiHost, type Repository } from './reference.js';

/**
 * A small client for the registry HTTP API v2 (distribution spec): manifests, blobs, uploads.
 * Plain HTTP only for hosts listed as insecure. Auth: Basic, or the Bearer token challenge
 * flow, with credentials from an auth file. Transient failures (connection errors, 429, 5xx)
 * are retried under the one retry policy (src/util/retry.ts, REQUEST_RETRY by default).
 * Credentials never appear in errors or events.
 */

export interface RegistryClientOptions {
  /** host[:port] of registries spoken to over plain HTTP. */
  insecureRegistries?: readonly string[];
  /** docker config.json or containers auth.json. */
  authfile?: string;
  /** Retries of each request (default REQUEST_RETRY). */
  retry?: Partial<RetryPolicy>;
  /** Deadline for a response's headers, per attempt. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called before each retry: for progress output. */
  onRetry?: (info: { host: string; attempt: number; reason: string; delayMs: number }) => void;
}

export interface RequestOptions {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: Buffer;
  /** Token scope action. */
  action?: 'pull' | 'push';
  /** Statuses handed back to the caller instead of raising; 2xx always is. */
  accept?: readonly number[];
  /** Full URL (upload Location); otherwise `path` is relative to /v2/<repository>/. */
  url?: string;
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface BlobResponse {
  size: number | null;
  stream: Readable;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Connection failures worth another attempt; anything else (DNS name unknown, TLS errors, a port fetch refuses) fails at once. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
]);

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The innermost error code (or message) of a failed fetch: "ECONNREFUSED", "bad port"... */
function networkReason(error: unknown): string {
  let e: unknown = error;
  let reason = error instanceof Error ? error.message : String(error);
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (e instanceof Error && e.message) reason = e.message;
    e = (e as { cause?: unknown }).cause;
  }
  return reason;
}

interface HostAuth {
  scheme: 'none' | 'basic' | 'bearer';
  realm?: string;
  service?: string;
}

export class RegistryClient {
  private readonly insecure: Set<string>;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly signal?: AbortSignal;
  private readonly onRetry?: RegistryClientOptions['onRetry'];
  private readonly hostAuth = new Map<string, HostAuth>();
  private readonly tokens = new Map<string, string>();

  private constructor(
    options: RegistryClientOptions,
    private readonly authEntries: readonly AuthEntry[],
  ) {
    this.insecure = new Set(options.insecureRegistries ?? []);
    this.retry = { ...REQUEST_RETRY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.signal = options.signal;
    this.onRetry = options.onRetry;
  }

  static async create(options: RegistryClientOptions = {}): Promise<RegistryClient> {
    const entries = options.authfile ? await readAuthfile(options.authfile) : [];
    return new RegistryClient(options, entries);
  }

  baseUrl(registry: string): string {
    return `${this.insecure.has(registry) ? 'http' : 'https'}://${apiHost(registry)}`;
  }

  credentialsFor(repo: Repository): Credentials | undefined {
    return findCredentials(this.authEntries, repo.registry, repo.repository);
  }

  /** GET a manifest by tag or digest; by digest, its bytes are verified against it. */
  async getManifest(repo: Repository, reference: string): Promise<FetchedManifest> {
    const res = await this.request(repo, `manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT }, accept: [404] });
    if (res.status === 404) throw manifestUnknown(repo, reference);
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `manifest ${reference} of ${repo.registry}/${repo.repository}`);
    const digest = sha256Digest(bytes);
    const expected = reference.startsWith('sha256:') ? reference : res.headers.get('docker-content-digest');
    if (expected && expected !== digest) {
      throw new RegistryError(
        'E_DIGEST_MISMATCH',
        `manifest ${reference} of ${repo.registry}/${repo.repository} has digest ${digest}, expected ${expected}: the registry serves other content than the digest names; check the reference and the registry`,
        { details: { registry: repo.registry, repository: repo.repository, expected, actual: digest } },
      );
    }
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    try {
      const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
      if (typeof parsed.mediaType === 'string' && parsed.mediaType) mediaType = parsed.mediaType;
    } catch (error) {
      throw new RegistryError('E_MANIFEST_INVALID', `manifest ${reference} of ${repo.registry}/${repo.repository} is not JSON`, { cause: error });
    }
    return { digest, mediaType, size: bytes.length, bytes };
  }

  /** HEAD a manifest: its digest, media type and size without the body; null when unknown. */
  async headManifest(repo: Repository, reference: string): Promise<ManifestHead | null> {
    const res = await this.request(repo, `manifests/${reference}`, { method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT }, accept: [404] });
    if (res.status === 404) return null;
    const digest = res.headers.get('docker-content-digest');
    if (!digest) {
      const m = await this.getManifest(repo, reference);
      return { digest: m.digest, mediaType: m.mediaType, size: m.size };
    }
    return {
      digest,
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(),
      size: Number(res.headers.get('content-length') ?? 0),
    };
  }

  async blobExists(repo: Repository, digest: string): Promise<boolean> {
    const res = await this.request(repo, `blobs/${digest}`, { method: 'HEAD', accept: [404] });
    return res.status !== 404;
  }

  /** A blob's byte stream, unverified: the caller hashes what it reads. */
  async getBlob(repo: Repository, digest: string): Promise<BlobResponse> {
    const res = await this.request(repo, `blobs/${digest}`, { accept: [404] });
    if (res.status === 404 || !res.body) throw blobUnknown(repo, digest);
    const length = res.headers.get('content-length');
    return { size: length === null ? null : Number(length), stream: Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) };
  }

  /** A small blob (an image config) read whole and verified against its digest. */
  async getBlobBytes(repo: Repository, digest: string, maxBytes = MAX_CONFIG_BYTES): Promise<Buffer> {
    const res = await this.request(repo, `blobs/${digest}`, { accept: [404] });
    if (res.status === 404) throw blobUnknown(repo, digest);
    const bytes = await readLimited(res, maxBytes, `blob ${digest} of ${repo.registry}/${repo.repository}`);
    const actual = sha256Digest(bytes);
    if (actual !== digest) {
      throw new RegistryError('E_DIGEST_MISMATCH', `blob ${digest} of ${repo.registry}/${repo.repository} has digest ${actual}: the registry serves corrupt content; try again or check the registry`, {
        details: { registry: repo.registry, repository: repo.repository, expected: digest, actual },
      });
    }
    return bytes;
  }

  /**
   * One API call with auth and retries. `path` is relative to /v2/<repository>/ unless
   * options.url is given. Non-2xx statuses not listed in options.accept raise RegistryError.
   */
  async request(repo: Repository, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = options.url ?? `${this.baseUrl(repo.registry)}/v2/${repo.repository}/${path}`;
    const action = options.action ?? 'pull';
    let authRetried = false;
    for (;;) {
      const headers: Record<string, string> = { ...options.headers };
      const authorization = this.authorizationFor(repo, action);
      if (authorization) headers.Authorization = authorization;
      const res = await this.send(repo.registry, url, options.method ?? 'GET', headers, options.body);
      if (res.status === 401 && !authRetried) {
        await discard(res);
        authRetried = true;
        await this.answerChallenge(repo, action, res.headers.get('www-authenticate'));
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        await discard(res);
        throw authRefused(repo, this.credentialsFor(repo) !== undefined, `HTTP ${res.status}`);
      }
      if ((res.status >= 200 && res.status < 300) || options.accept?.includes(res.status)) return res;
      const body = await res.text().catch(() => '');
      throw new RegistryError(
        'E_REGISTRY_RESPONSE',
        `registry ${repo.registry} answered HTTP ${res.status} to ${options.method ?? 'GET'} ${new URL(url).pathname}${summarizeErrors(body)}`,
        { details: { registry: repo.registry, repository: repo.repository, status: res.status } },
      );
    }
  }

  private authorizationFor(repo: Repository, action: 'pull' | 'push'): string | undefined {
    const state = this.hostAuth.get(repo.registry);
    if (!state || state.scheme === 'none') return undefined;
    if (state.scheme === 'basic') {
      const creds = this.credentialsFor(repo);
      return creds ? basicAuthorization(creds) : undefined;
    }
    const token = this.tokens.get(tokenKey(repo, action));
    return token ? `Bearer ${token}` : undefined;
  }

  private async answerChallenge(repo: Repository, action: 'pull' | 'push', header: string | null): Promise<void> {
    const challenge = header ? parseChallenge(header) : undefined;
    const creds = this.credentialsFor(repo);
    if (challenge?.scheme === 'basic') {
      this.hostAuth.set(repo.registry, { scheme: 'basic' });
      if (!creds) throw authRefused(repo, false, 'the registry asks for a user name and password');
      return;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) {
      throw authRefused(repo, creds !== undefined, 'HTTP 401 without a usable WWW-Authenticate challenge');
    }
    const { realm, service } = challenge.params;
    this.hostAuth.set(repo.registry, { scheme: 'bearer', realm, service });
    const scope = `repository:${repo.repository}:${action === 'push' ? 'pull,push' : 'pull'}`;
    const tokenUrl = new URL(realm);
    if (service) tokenUrl.searchParams.set('service', service);
    tokenUrl.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    if (creds) headers.Authorization = basicAuthorization(creds);
    const res = await this.send(repo.registry, tokenUrl.toString(), 'GET', headers, undefined);
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      throw authRefused(repo, creds !== undefined, `the token service answered HTTP ${res.status}`);
    }
    if (res.status < 200 || res.status >= 300) {
      await discard(res);
      throw new RegistryError('E_REGISTRY_RESPONSE', `the token service of ${repo.registry} answered HTTP ${res.status}`, { details: { registry: repo.registry, status: res.status } });
    }
    let token: unknown;
    try {
      const json = (await res.json()) as { token?: unknown; access_token?: unknown };
      token = json.token ?? json.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') {
      throw new RegistryError('E_REGISTRY_RESPONSE', `the token service of ${repo.registry} returned no token`, { details: { registry: repo.registry } });
    }
    this.tokens.set(tokenKey(repo, action), token);
  }

  /** fetch with a header deadline and retries for connection errors, 429 and 5xx. */
  private async send(registry: string, url: string, method: string, headers: Record<string, string>, body: Buffer | undefined): Promise<Response> {
    let attempts = 0;
    const attempt = async (): Promise<Response> => {
      attempts++;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('ETIMEDOUT')), this.timeoutMs);
      const signal = this.signal ? AbortSignal.any([controller.signal, this.signal]) : controller.signal;
      let res: Response;
      try {
        res = await fetch(url, { method, headers: { 'User-Agent': 'ctrbake', ...headers }, body, signal, redirect: 'follow' });
      } catch (error) {
        if (this.signal?.aborted) throw this.signal.reason;
        throw new NetworkFailure(controller.signal.aborted ? 'ETIMEDOUT' : networkReason(error));
      } finally {
        clearTimeout(timer);
      }
      if (res.status === 429 || res.status >= 500) throw new RetryableStatus(res);
      return res;
    };
    try {
      return await withRetry(this.retry, attempt, {
        transient: (error) =>
          error instanceof RetryableStatus ? `HTTP ${error.response.status}` : error instanceof NetworkFailure && TRANSIENT_CODES.has(error.reason) ? error.reason : undefined,
        onRetry: async ({ attempt: failed, reason, delayMs, error }) => {
          if (error instanceof RetryableStatus) await discard(error.response);
          this.onRetry?.({ host: registry, attempt: failed, reason, delayMs });
        },
        ...(this.signal ? { signal: this.signal } : {}),
      });
    } catch (error) {
      // The last 429/5xx goes back to the caller, which reads the registry's error body.
      if (error instanceof RetryableStatus) return error.response;
      if (error instanceof NetworkFailure) throw unreachable(registry, error.reason, attempts, this.insecure.has(registry));
      throw error;
    }
  }
}

/** A request that never got a response: `reason` is the innermost error code. */
class NetworkFailure extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A 429 or 5xx response, worth another attempt. */
class RetryableStatus extends Error {
  constructor(readonly response: Response) {
    super(`HTTP ${response.status}`);
  }
}

function tokenKey(repo: Repository, action: string): string {
  return `${repo.registry}|${repo.repository}|${action}`;
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // nothing to release
  }
}

async function readLimited(res: Response, max: number, what: string): Promise<Buffer> {
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > max) {
    await discard(res);
    throw new RegistryError('E_REGISTRY_RESPONSE', `${what} is ${length} bytes, more than the ${max} allowed`);
  }
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > max) throw new RegistryError('E_REGISTRY_RESPONSE', `${what} is more than the ${max} bytes allowed`);
  return bytes;
}

function summarizeErrors(body: string): string {
  try {
    const json = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
    const list = (json.errors ?? []).map((e) => `${e.code ?? ''}${e.message ? ` ${e.message}` : ''}`.trim()).filter(Boolean);
    return list.length ? `: ${list.join('; ').slice(0, 300)}` : '';
  } catch {
    return '';
  }
}

function unreachable(registry: string, reason: string, attempts: number, insecure: boolean): RegistryError {
  const hint = insecure
    ? 'check that the registry runs and the host and port are right'
    : `check the host, port and network; for a plain-HTTP registry add --insecure-registry ${registry}`;
  return new RegistryError('E_REGISTRY_UNREACHABLE', `cannot reach registry ${registry} (${reason}) after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${hint}`, {
    details: { registry, reason, attempts },
  });
}

function authRefused(repo: Repository, hadCredentials: boolean, why: string): RegistryError {
  const what = hadCredentials
    ? 'the credentials for it were refused: check --authfile'
    : 'no credentials for it were given: pass --authfile with an entry for this registry';
  return new RegistryError('E_AUTH_REFUSED', `registry ${repo.registry} refused access to ${repo.repository} (${why}); ${what}`, {
    details: { registry: repo.registry, repository: repo.repository, credentials: hadCredentials },
  });
}

function manifestUnknown(repo: Repository, reference: string): RegistryError {
  return new RegistryError('E_MANIFEST_UNKNOWN', `no manifest ${reference} in ${repo.registry}/${repo.repository}: check the repository name and the tag or digest`, {
    details: { registry: repo.registry, repository: repo.repository, reference },
  });
}

function blobUnknown(repo: Repository, digest: string): RegistryError {
  return new RegistryError('E_BLOB_UNKNOWN', `blob ${digest} is missing from ${repo.registry}/${repo.repository}: the registry lost content the manifest names; push the image again`, {
    details: { registry: repo.registry, repository: repo.repository, digest },
  });
}
