/**
 * The OCI image spec's JSON documents (image index, image manifest, image config; Docker's v2
 * schema 2 has the same shape): parsed and shape-checked here, for the registry client, lock,
 * fetch and report. Media types are in ./media-types.ts. The OCI *archive* (a tar) is not here.
 */
import { isObject, isSha256Digest } from './check.js';
import type { Descriptor, Platform } from './lock.js';

/** A descriptor as a registry serves it: nothing checked yet. */
export interface RawDescriptor {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  platform?: { os?: unknown; architecture?: unknown; variant?: unknown };
}

export interface ImageIndexDocument {
  mediaType?: string;
  manifests: RawDescriptor[];
}

export interface ImageManifestDocument {
  mediaType?: string;
  config: Partial<Descriptor>;
  layers: Partial<Descriptor>[];
}

export interface ImageConfigDocument {
  os?: unknown;
  architecture?: unknown;
  variant?: unknown;
  rootfs?: { type?: unknown; diff_ids?: unknown };
}

export type OciRead<T> = { value: T; problem?: undefined } | { value?: undefined; problem: { kind: 'not-json' | 'wrong-shape'; message: string; cause?: unknown } };

/** A JSON object, or why the bytes are not one. */
export function parseJsonObject(text: string | Buffer): OciRead<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch (error) {
    return { problem: { kind: 'not-json', message: 'bytes that are not JSON', cause: error } };
  }
  if (!isObject(value)) return { problem: { kind: 'wrong-shape', message: 'JSON that is not an object' } };
  return { value };
}

/** An image manifest: a config descriptor object and a layers list (an index has neither). */
export function parseImageManifest(text: string | Buffer): OciRead<ImageManifestDocument> {
  const read = parseJsonObject(text);
  if (read.problem) return read;
  if (!isManifestShape(read.value)) return { problem: { kind: 'wrong-shape', message: 'an index or another document' } };
  return { value: read.value };
}

/** An image index: a manifests list. */
export function parseImageIndex(text: string | Buffer): OciRead<ImageIndexDocument> {
  const read = parseJsonObject(text);
  if (read.problem) return read;
  if (!isIndexShape(read.value)) return { problem: { kind: 'wrong-shape', message: '"manifests" is not a list' } };
  return { value: read.value };
}

function isManifestShape(value: Record<string, unknown>): value is Record<string, unknown> & ImageManifestDocument {
  return Array.isArray(value.layers) && isObject(value.config);
}

function isIndexShape(value: Record<string, unknown>): value is Record<string, unknown> & ImageIndexDocument {
  return Array.isArray(value.manifests);
}

/** The config's rootfs.diff_ids when they are all sha256 digests; undefined otherwise. */
export function diffIdsOfConfig(text: string | Buffer): string[] | undefined {
  const config: ImageConfigDocument | undefined = parseJsonObject(text).value;
  const ids = isObject(config?.rootfs) ? config.rootfs.diff_ids : undefined;
  return Array.isArray(ids) && ids.every(isSha256Digest) ? ids : undefined;
}

/** The platform an index entry or a config declares; undefined without os and architecture. */
export function platformOf(raw: { os?: unknown; architecture?: unknown; variant?: unknown } | undefined): Platform | undefined {
  if (!raw || typeof raw.os !== 'string' || typeof raw.architecture !== 'string') return undefined;
  return typeof raw.variant === 'string' && raw.variant !== ''
    ? { os: raw.os, architecture: raw.architecture, variant: raw.variant }
    : { os: raw.os, architecture: raw.architecture };
}
