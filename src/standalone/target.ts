/**
 * The target platform of a standalone build: given as OS/ARCH[/VARIANT], or derived from
 * Buildroot's architecture options (BR2_ARCH and, for 32-bit ARM, the CPU's architecture
 * level), given on the command line or read from a Buildroot .config.
 *
 * Containers bring their own libc, so the target's float ABI (BR2_ARM_EABI vs EABIHF) and
 * C library do not matter: only the instruction set does.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, InputError } from '../errors.js';
import { formatPlatform, type Platform } from '../formats/index.js';
import { parsePlatform } from '../registry/platform.js';

export const E_TARGET = 'E_STANDALONE_TARGET';

export interface TargetOptions {
  /** OS/ARCH[/VARIANT], e.g. linux/arm64. */
  platform?: string;
  /** Buildroot's BR2_ARCH value, e.g. "aarch64", "arm", "x86_64", "riscv64". */
  br2Arch?: string;
  /** 32-bit ARM: the BR2_ARM_CPU_* level, e.g. "ARMV7A" or "armv6". */
  br2ArmCpu?: string;
  /** A Buildroot .config to read BR2_ARCH and the CPU options from. */
  br2Config?: string;
}

export interface ResolvedTarget {
  platform: Platform;
  /** How it was derived, for events and errors: "--platform", "BR2_ARCH=aarch64", ".config (BR2_ARCH=arm, BR2_ARM_CPU_ARMV7A)". */
  source: string;
}

/** BR2_ARCH values and the OCI architecture each maps to; "arm" also needs the CPU level. */
const BR2_ARCHES: Readonly<Record<string, string>> = {
  aarch64: 'arm64',
  arm: 'arm',
  x86_64: 'amd64',
  i386: '386',
  i486: '386',
  i586: '386',
  i686: '386',
  riscv64: 'riscv64',
  powerpc64le: 'ppc64le',
  powerpc64: 'ppc64',
  s390x: 's390x',
  mips: 'mips',
  mipsel: 'mipsle',
  mips64: 'mips64',
  mips64el: 'mips64le',
  loongarch64: 'loong64',
};

/**
 * BR2_ARM_CPU_* levels and the OCI arm variant. An ARMv8-A core running 32-bit code runs
 * arm/v7 images (linux/arm/v8 images are rare); ARMv7-M and older have no MMU or no
 * OCI variant.
 */
const ARM_CPUS: Readonly<Record<string, string>> = {
  ARMV5: 'v5',
  ARMV6: 'v6',
  ARMV7A: 'v7',
  ARMV8A: 'v7',
};

/** Architecture symbols of a .config without BR2_ARCH (older or hand-written configs). */
const ARCH_SYMBOLS: ReadonlyArray<[symbol: string, br2Arch: string]> = [
  ['BR2_aarch64', 'aarch64'],
  ['BR2_arm', 'arm'],
  ['BR2_x86_64', 'x86_64'],
  ['BR2_i386', 'i686'],
  ['BR2_powerpc64le', 'powerpc64le'],
  ['BR2_powerpc64', 'powerpc64'],
  ['BR2_s390x', 's390x'],
  ['BR2_mipsel', 'mipsel'],
  ['BR2_mips64el', 'mips64el'],
  ['BR2_mips64', 'mips64'],
  ['BR2_mips', 'mips'],
  ['BR2_loongarch64', 'loongarch64'],
];

export const SUPPORTED_BR2_ARCHES: readonly string[] = Object.keys(BR2_ARCHES);
export const SUPPORTED_ARM_CPUS: readonly string[] = Object.keys(ARM_CPUS);

function supportedText(): string {
  return `supported BR2_ARCH values: ${SUPPORTED_BR2_ARCHES.join(', ')} (arm with BR2_ARM_CPU_${SUPPORTED_ARM_CPUS.join('/')})`;
}

/** Maps BR2_ARCH (and the ARM CPU level) to an OCI platform; `where` names the source in errors. */
export function platformFromBr2(br2Arch: string, armCpu: string | undefined, where: string): Platform {
  const arch = br2Arch.trim().replace(/^"|"$/g, '');
  const architecture = BR2_ARCHES[arch];
  if (!architecture) {
    throw new ConfigError(E_TARGET, `${where}: BR2_ARCH ${JSON.stringify(arch)} has no OCI platform ctrbake can bake for; ${supportedText()}`, {
      details: { br2Arch: arch, supported: SUPPORTED_BR2_ARCHES },
    });
  }
  if (architecture !== 'arm') return parsePlatform(`linux/${architecture}`);
  if (armCpu === undefined || armCpu.trim() === '') {
    throw new ConfigError(E_TARGET, `${where}: BR2_ARCH "arm" needs the CPU's architecture level to choose arm/v5, v6 or v7: give --br2-arm-cpu ${SUPPORTED_ARM_CPUS.join('|')} (the BR2_ARM_CPU_* option that is set), or --br2-config .config`);
  }
  const level = armCpu.trim().toUpperCase().replace(/^BR2_ARM_CPU_/, '');
  const variant = ARM_CPUS[level];
  if (!variant) {
    throw new ConfigError(E_TARGET, `${where}: ARM CPU level ${JSON.stringify(armCpu)} has no OCI platform ctrbake can bake for; supported: ${SUPPORTED_ARM_CPUS.map((c) => `BR2_ARM_CPU_${c}`).join(', ')}`, {
      details: { armCpu, supported: SUPPORTED_ARM_CPUS },
    });
  }
  return parsePlatform(`linux/arm/${variant}`);
}

/** `SYMBOL=value` lines of a Kconfig .config; `# SYMBOL is not set` and comments are skipped. */
export function parseKconfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const m = /^([A-Za-z0-9_]+)=(.*)$/.exec(raw.trim());
    if (!m) continue;
    let value = m[2]!;
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\(["\\])/g, '$1');
    values.set(m[1]!, value);
  }
  return values;
}

/** The platform a Buildroot .config builds for. */
export function platformFromKconfig(values: ReadonlyMap<string, string>, where: string): { platform: Platform; source: string } {
  const enabled = (s: string) => values.get(s) === 'y';
  let br2Arch = values.get('BR2_ARCH');
  if (br2Arch === undefined || br2Arch === '') {
    if (enabled('BR2_riscv')) br2Arch = enabled('BR2_RISCV_64') ? 'riscv64' : 'riscv32';
    else br2Arch = ARCH_SYMBOLS.find(([symbol]) => enabled(symbol))?.[1];
  }
  if (br2Arch === undefined) {
    throw new InputError(E_TARGET, `${where} sets neither BR2_ARCH nor a known architecture option (BR2_aarch64, BR2_arm, BR2_x86_64, BR2_riscv...): is it a Buildroot .config? ${supportedText()}`);
  }
  const armCpu = SUPPORTED_ARM_CPUS.find((c) => enabled(`BR2_ARM_CPU_${c}`)) ?? [...values.keys()].find((k) => k.startsWith('BR2_ARM_CPU_ARMV') && enabled(k));
  const platform = platformFromBr2(br2Arch, armCpu, where);
  return { platform, source: `${where} (BR2_ARCH=${br2Arch}${platform.architecture === 'arm' ? `, ${armCpu!.startsWith('BR2_') ? armCpu : `BR2_ARM_CPU_${armCpu}`}` : ''})` };
}

/** The one place the target is resolved: exactly one of --platform, --br2-arch, --br2-config. */
export async function resolveTarget(options: TargetOptions): Promise<ResolvedTarget> {
  const given = [options.platform && '--platform', options.br2Arch && '--br2-arch', options.br2Config && '--br2-config'].filter(Boolean);
  if (given.length !== 1) {
    throw new ConfigError(
      E_TARGET,
      given.length === 0
        ? 'no target: give --br2-config PATH (a Buildroot .config), --br2-arch ARCH (with --br2-arm-cpu for arm) or --platform OS/ARCH[/VARIANT]'
        : `give only one of ${given.join(', ')}: they all name the target`,
    );
  }
  if (options.br2ArmCpu && !options.br2Arch) throw new ConfigError(E_TARGET, '--br2-arm-cpu goes with --br2-arch arm');
  if (options.platform) return { platform: parsePlatform(options.platform), source: '--platform' };
  if (options.br2Arch) {
    const platform = platformFromBr2(options.br2Arch, options.br2ArmCpu, '--br2-arch');
    if (options.br2ArmCpu && platform.architecture !== 'arm') throw new ConfigError(E_TARGET, `--br2-arm-cpu only applies to --br2-arch arm, not ${options.br2Arch}`);
    return { platform, source: `BR2_ARCH=${options.br2Arch}${options.br2ArmCpu ? ` BR2_ARM_CPU_${options.br2ArmCpu.toUpperCase()}` : ''}` };
  }
  const path = options.br2Config!;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(E_TARGET, `cannot read the Buildroot config ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): give the .config of the build (BR2_CONFIG)`, { cause: error });
  }
  return platformFromKconfig(parseKconfig(text), path);
}

export function describeTarget(target: ResolvedTarget): string {
  return `${formatPlatform(target.platform)} from ${target.source}`;
}
