/**
 * Field checks shared by the format readers (lock, manifest, layers.json, OCI documents): each
 * names the field it rejects by its JSON path (`images[2].manifest.digest`), so a message says
 * exactly what to fix. `fail` is the reader's own: it adds the file, the code and the next step.
 */
import type { Descriptor, Platform } from './descriptor.js';

export type Fail = (what: string) => never;

const SHA256_DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** "sha256:" and 64 lower-case hex digits: digests become file names, nothing else may pass. */
export function isSha256Digest(value: unknown): value is string {
  return typeof value === 'string' && SHA256_DIGEST_RE.test(value);
}

export function checkObject(value: unknown, at: string, fail: Fail, what = 'an object'): Record<string, unknown> {
  if (!isObject(value)) fail(`${at} must be ${what}`);
  return value as Record<string, unknown>;
}

export function checkArray(value: unknown, at: string, fail: Fail): unknown[] {
  if (!Array.isArray(value)) fail(`${at} must be an array`);
  return value as unknown[];
}

export function checkString(value: unknown, at: string, fail: Fail, { nonEmpty = false } = {}): string {
  if (typeof value !== 'string' || (nonEmpty && value === '')) fail(`${at} must be a ${nonEmpty ? 'non-empty ' : ''}string`);
  return value as string;
}

export function checkDigest(value: unknown, at: string, fail: Fail): string {
  if (!isSha256Digest(value)) fail(`${at} must be "sha256:" and 64 hex digits`);
  return value as string;
}

export function checkSize(value: unknown, at: string, fail: Fail): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(`${at} must be a non-negative integer`);
  return value as number;
}

export function checkDescriptor(value: unknown, at: string, fail: Fail): Descriptor {
  const d = checkObject(value, at, fail, 'a descriptor object');
  checkDigest(d.digest, `${at}.digest`, fail);
  checkSize(d.size, `${at}.size`, fail);
  checkString(d.mediaType, `${at}.mediaType`, fail);
  return value as Descriptor;
}

export function checkPlatform(value: unknown, at: string, fail: Fail): Platform {
  const p = checkObject(value, at, fail, 'a platform object ({"os", "architecture"})');
  checkString(p.os, `${at}.os`, fail, { nonEmpty: true });
  checkString(p.architecture, `${at}.architecture`, fail, { nonEmpty: true });
  if (p.variant !== undefined) checkString(p.variant, `${at}.variant`, fail, { nonEmpty: true });
  return value as Platform;
}
