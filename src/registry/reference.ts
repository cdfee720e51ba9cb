import { ConfigError } from '../errors.js';

/**
 * Image references as docker and containers/image read them:
 * `[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`. The first path component is a registry host
 * when it has a dot or a colon or is `localhost`; otherwise the registry is docker.io and
 * a single-component path gets the `library/` prefix. Without tag and digest, the tag is
 * `latest`.
 */
export interface ImageReference {
  /** host[:port]; Docker Hub is always "docker.io". */
  registry: string;
  /** e.g. "library/busybox". */
  repository: string;
  tag: string | null;
  digest: string | null;
}

/** A registry and repository: what every registry API call addresses. */
export interface Repository {
  registry: string;
  repository: string;
}

export const DOCKER_HUB = 'docker.io';
/** The host that serves Docker Hub's v2 API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::\d{1,5})?$/;
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

function badReference(input: string, why: string): ConfigError {
  return new ConfigError(
    'E_BAD_REFERENCE',
    `invalid image reference ${JSON.stringify(input)}: ${why}; write it as [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. docker.io/library/busybox:1.36`,
    { details: { reference: input } },
  );
}

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export function parseReference(input: string): ImageReference {
  const text = input.trim();
  if (text === '') throw badReference(input, 'it is empty');
  let rest = text;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw badReference(input, 'the digest must be sha256: followed by 64 lowercase hex digits');
  }
  let tag: string | null = null;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon !== -1 && !rest.slice(lastColon + 1).includes('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG_RE.test(tag)) throw badReference(input, `the tag ${JSON.stringify(tag)} is not valid`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST_RE.test(first)) throw badReference(input, `the registry host ${JSON.stringify(first)} is not valid`);
    registry = HUB_ALIASES.has(first.toLowerCase()) ? DOCKER_HUB : first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => p === '')) throw badReference(input, 'the repository name is missing or has an empty component');
  for (const p of parts) {
    if (!PATH_COMPONENT_RE.test(p)) throw badReference(input, `the name component ${JSON.stringify(p)} must be lowercase letters, digits and separators (. _ __ -)`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255) throw badReference(input, 'the repository name is longer than 255 characters');
  if (tag === null && digest === null) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** The canonical text: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== null ? `:${ref.tag}` : ''}${ref.digest !== null ? `@${ref.digest}` : ''}`;
}

/** The host the v2 API lives on. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}
