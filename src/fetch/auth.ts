import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { E_AUTHFILE_INVALID } from './errors.js';

/**
 * Registry credentials from an auth file: docker's config.json or containers' auth.json, both
 * `{"auths": {"<host>[/<path>]": {"auth": base64("user:password")}}}`. The file path is passed
 * to tools that read it themselves (skopeo, podman); the values are only decoded for dockerd's
 * X-Registry-Auth header and to scrub them from any text ctrbake shows.
 */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  identityToken?: string;
}

export interface AuthFile {
  path: string;
  /** Normalized key (host[:port][/path]) -> credentials. */
  entries: Map<string, RegistryCredentials>;
}

export async function readAuthFile(path: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(E_AUTHFILE_INVALID, `cannot read --authfile ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input, which holds secrets: never pass it on.
    throw new ConfigError(E_AUTHFILE_INVALID, `--authfile ${path} is not valid JSON (docker config.json or containers auth.json format)`);
  }
  const auths = (parsed as { auths?: unknown })?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    throw new ConfigError(E_AUTHFILE_INVALID, `--authfile ${path} has no "auths" object (docker config.json or containers auth.json format)`);
  }
  const entries = new Map<string, RegistryCredentials>();
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    const creds = decodeEntry(value);
    if (creds) entries.set(normalizeAuthKey(key), creds);
  }
  return { path, entries };
}

function decodeEntry(value: unknown): RegistryCredentials | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const creds: RegistryCredentials = {};
  if (typeof v.auth === 'string' && v.auth !== '') {
    const decoded = Buffer.from(v.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      creds.username = decoded.slice(0, colon);
      creds.password = decoded.slice(colon + 1);
    }
  }
  if (typeof v.username === 'string') creds.username = v.username;
  if (typeof v.password === 'string') creds.password = v.password;
  if (typeof v.identitytoken === 'string' && v.identitytoken !== '') creds.identityToken = v.identitytoken;
  return creds.username !== undefined || creds.identityToken !== undefined ? creds : undefined;
}

/** "https://index.docker.io/v1/" -> "docker.io"; "host:5000/ns" stays; scheme and trailing "/" dropped. */
export function normalizeAuthKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  if (/^(index|registry-1)\.docker\.io(\/v1)?$/.test(k)) k = 'docker.io';
  return k;
}

/** The most specific entry for host/repository (containers' auth.json allows per-namespace keys). */
export function credentialsFor(auth: AuthFile | undefined, registry: string, repository: string): RegistryCredentials | undefined {
  if (!auth) return undefined;
  const parts = `${registry}/${repository}`.split('/');
  for (let n = parts.length; n >= 1; n--) {
    const creds = auth.entries.get(parts.slice(0, n).join('/'));
    if (creds) return creds;
  }
  return undefined;
}

/**
 * Every string of the auth file worth hiding: passwords, tokens, user names and their base64
 * forms. Very short values are left out: replacing one or two characters everywhere would
 * garble messages without hiding anything.
 */
export function secretsOf(auth: AuthFile | undefined): string[] {
  if (!auth) return [];
  const out = new Set<string>();
  for (const c of auth.entries.values()) {
    for (const s of [c.password, c.identityToken, c.username]) if (s && s.length >= 3) out.add(s);
    if (c.username !== undefined && c.password !== undefined) {
      out.add(Buffer.from(`${c.username}:${c.password}`).toString('base64'));
    }
  }
  return [...out].sort((a, b) => b.length - a.length);
}

export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}
