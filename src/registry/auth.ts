import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import { ConfigError } from '../errors.js';
import { DOCKER_HUB } from './reference.js';

/**
 * Registry credentials from an auth file: docker's config.json or containers' auth.json,
 * which share the shape `{"auths": {"HOST": {"auth": base64("user:pass")}}}` (docker also
 * allows `username`/`password` fields). Keys may carry a scheme and a path
 * ("https://index.docker.io/v1/"); containers' auth.json also allows "HOST/NAMESPACE" keys,
 * the longest matching one wins.
 *
 * Credentials are held in a Secret that prints as "***" in logs, JSON and inspect(), so a
 * stray log line or error detail cannot leak them.
 */

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
  [inspect.custom](): string {
    return 'Secret(***)';
  }
}

export interface Credentials {
  username: string;
  password: Secret;
}

export interface AuthEntry {
  /** Normalized key: host[:port][/path]. */
  key: string;
  credentials: Credentials;
}

const HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

function normalizeKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  k = k.replace(/\/+$/, '');
  const slash = k.indexOf('/');
  let host = slash === -1 ? k : k.slice(0, slash);
  let path = slash === -1 ? '' : k.slice(slash + 1);
  if (HUB_KEYS.has(host.toLowerCase())) {
    host = DOCKER_HUB;
    // docker's legacy key "https://index.docker.io/v1/" names the whole registry.
    if (path === 'v1' || path === 'v2') path = '';
  }
  return path ? `${host}/${path}` : host;
}

function unreadable(path: string, why: string, cause?: unknown): ConfigError {
  return new ConfigError('E_AUTHFILE_INVALID', `cannot use the auth file ${path}: ${why}; give a docker config.json or containers auth.json with --authfile`, {
    cause,
  });
}

/** Parses an auth file's content. Errors name the file and the key, never a value. */
export function parseAuthfile(text: string, path: string): AuthEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message may quote file content: leave it out.
    throw unreadable(path, 'it is not valid JSON');
  }
  if (typeof json !== 'object' || json === null) throw unreadable(path, 'it is not a JSON object');
  const auths = (json as { auths?: unknown }).auths;
  if (auths === undefined) return [];
  if (typeof auths !== 'object' || auths === null) throw unreadable(path, '"auths" is not an object');
  const entries: AuthEntry[] = [];
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) continue;
    const v = value as { auth?: unknown; username?: unknown; password?: unknown };
    let username: string | undefined;
    let password: string | undefined;
    if (typeof v.auth === 'string' && v.auth !== '') {
      const decoded = Buffer.from(v.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw unreadable(path, `the "auth" field of ${JSON.stringify(key)} is not base64 of "user:password"`);
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    } else if (typeof v.username === 'string' && typeof v.password === 'string') {
      username = v.username;
      password = v.password;
    }
    if (username === undefined || password === undefined) continue;
    entries.push({ key: normalizeKey(key), credentials: { username, password: new Secret(password) } });
  }
  return entries;
}

export async function readAuthfile(path: string): Promise<AuthEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw unreadable(path, `it cannot be read (${code})`, error);
  }
  return parseAuthfile(text, path);
}

/** The credentials for a repository: the longest key that is the host or a path prefix of host/repository. */
export function findCredentials(entries: readonly AuthEntry[], registry: string, repository: string): Credentials | undefined {
  const full = `${registry}/${repository}`;
  let best: AuthEntry | undefined;
  for (const e of entries) {
    if (e.key === registry || full === e.key || full.startsWith(`${e.key}/`)) {
      if (!best || e.key.length > best.key.length) best = e;
    }
  }
  return best?.credentials;
}

/** One parsed WWW-Authenticate challenge. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) {
    if (p[0] === '') break;
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password.reveal()}`).toString('base64')}`;
}
