import { ConfigError } from '../errors.js';
import { formatPlatform, type Platform } from '../formats/index.js';

/**
 * Platforms as OS/ARCH[/VARIANT], normalized and matched the way containerd does it for an
 * exact match: aliases folded (x86_64 -> amd64, aarch64 -> arm64), arm64 without a variant
 * is arm64/v8, arm without a variant is arm/v7, amd64/v1 is plain amd64. After that, os,
 * architecture and variant must be equal: arm/v7 does not take arm/v6 and vice versa.
 */

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
};

export const KNOWN_ARCHITECTURES: readonly string[] = [
  '386', 'amd64', 'arm', 'arm64', 'loong64', 'mips', 'mips64', 'mips64le', 'mipsle', 'ppc64', 'ppc64le', 'riscv64', 's390x',
];
const OS_RE = /^[a-z][a-z0-9]*$/;
const VARIANT_RE = /^v\d+(?:\.\d+)?$/;

function badPlatform(input: string, why: string): ConfigError {
  return new ConfigError('E_BAD_PLATFORM', `invalid --platform ${JSON.stringify(input)}: ${why}; write OS/ARCH[/VARIANT], e.g. linux/amd64, linux/arm64 or linux/arm/v7`, {
    details: { platform: input },
  });
}

/** Normalizes a platform; unknown values are kept as they are (lower-cased). */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  const alias = ARCH_ALIASES[architecture];
  if (alias) {
    architecture = alias.architecture;
    variant = variant ?? alias.variant;
  }
  if (variant && /^\d/.test(variant) && (architecture === 'arm' || architecture === 'arm64' || architecture === 'amd64')) variant = `v${variant}`;
  if (architecture === 'arm64' && (variant === undefined || variant === 'v8')) variant = 'v8';
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Parses and validates OS/ARCH[/VARIANT] (ConfigError E_BAD_PLATFORM); the result is normalized. */
export function parsePlatform(input: string): Platform {
  const parts = input.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) throw badPlatform(input, 'it needs two or three parts separated by /');
  const [os, arch, variant] = parts.map((p) => p.toLowerCase()) as [string, string, string | undefined];
  if (!OS_RE.test(os)) throw badPlatform(input, `${JSON.stringify(os)} is not an operating system name`);
  const normalized = normalizePlatform({ os, architecture: arch, ...(variant ? { variant } : {}) });
  if (!KNOWN_ARCHITECTURES.includes(normalized.architecture)) {
    throw badPlatform(input, `unknown architecture ${JSON.stringify(arch)} (known: ${KNOWN_ARCHITECTURES.join(', ')})`);
  }
  if (normalized.variant !== undefined) {
    if (!['arm', 'arm64', 'amd64'].includes(normalized.architecture)) throw badPlatform(input, `architecture ${normalized.architecture} has no variants`);
    if (!VARIANT_RE.test(normalized.variant)) throw badPlatform(input, `${JSON.stringify(variant)} is not a variant like v7 or v8`);
  }
  return normalized;
}

/** True when `have` (from an index or config) is exactly the platform `want`, after normalization. */
export function platformMatches(want: Platform, have: Platform): boolean {
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/**
 * Checks an image config's os/architecture (and variant when the config declares one; many
 * configs leave it out) against the wanted platform.
 */
export function configMatchesPlatform(want: Platform, config: Platform): boolean {
  const a = normalizePlatform(want);
  const b = normalizePlatform({ os: config.os, architecture: config.architecture });
  if (a.os !== b.os || a.architecture !== b.architecture) return false;
  return config.variant ? normalizePlatform(config).variant === a.variant : true;
}

/** The platforms an index lists, for error messages: attestation entries (unknown/unknown) left out. */
export function describePlatforms(platforms: readonly Platform[]): string[] {
  return platforms.filter((p) => p.os !== 'unknown' && p.architecture !== 'unknown').map((p) => formatPlatform(normalizePlatform(p)));
}
