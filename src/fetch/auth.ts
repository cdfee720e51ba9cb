import { findCredentials, readAuthfile, type AuthEntry, type Credentials } from '../registry/auth.js';

/**
 * Registry credentials for fetch come from one auth file (docker config.json or containers
 * auth.json, parsed by src/registry/auth.ts). Its path is handed to tools that read it
 * themselves (skopeo, podman); the values are only decoded for dockerd's X-Registry-Auth
 * header and to scrub them from any external tool output ctrbake shows.
 */
export interface AuthFile {
  path: string;
  entries: readonly AuthEntry[];
}

export async function loadAuthFile(path: string): Promise<AuthFile> {
  return { path, entries: await readAuthfile(path) };
}

export function credentialsFor(auth: AuthFile | undefined, registry: string, repository: string): Credentials | undefined {
  return auth ? findCredentials(auth.entries, registry, repository) : undefined;
}

/**
 * Every string of the auth file worth hiding: passwords, user names and their base64 forms.
 * Very short values are left out: replacing one or two characters everywhere would garble
 * messages without hiding anything.
 */
export function secretsOf(auth: AuthFile | undefined): string[] {
  if (!auth) return [];
  const out = new Set<string>();
  for (const { credentials } of auth.entries) {
    const password = credentials.password.reveal();
    for (const s of [password, credentials.username]) if (s.length >= 3) out.add(s);
    out.add(Buffer.from(`${credentials.username}:${password}`).toString('base64'));
  }
  return [...out].sort((a, b) => b.length - a.length);
}

export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}
