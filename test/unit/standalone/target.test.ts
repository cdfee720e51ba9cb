import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPlatform } from '../../../src/formats/index.js';
import { parseKconfig, platformFromBr2, platformFromKconfig, resolveTarget } from '../../../src/standalone/target.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-target-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('BR2_ARCH (and the ARM CPU level) to an OCI platform', () => {
  it.each([
    ['aarch64', undefined, 'linux/arm64/v8'],
    ['x86_64', undefined, 'linux/amd64'],
    ['i686', undefined, 'linux/386'],
    ['i586', undefined, 'linux/386'],
    ['riscv64', undefined, 'linux/riscv64'],
    ['powerpc64le', undefined, 'linux/ppc64le'],
    ['powerpc64', undefined, 'linux/ppc64'],
    ['s390x', undefined, 'linux/s390x'],
    ['mipsel', undefined, 'linux/mipsle'],
    ['mips64el', undefined, 'linux/mips64le'],
    ['loongarch64', undefined, 'linux/loong64'],
    ['arm', 'ARMV7A', 'linux/arm/v7'],
    ['arm', 'armv7a', 'linux/arm/v7'],
    ['arm', 'BR2_ARM_CPU_ARMV6', 'linux/arm/v6'],
    ['arm', 'ARMV5', 'linux/arm/v5'],
    ['arm', 'ARMV8A', 'linux/arm/v7'],
    ['"aarch64"', undefined, 'linux/arm64/v8'],
  ])('%s %s -> %s', (arch, cpu, want) => {
    expect(formatPlatform(platformFromBr2(arch, cpu, 'test'))).toBe(want);
  });

  it.each([
    ['armeb', undefined, /BR2_ARCH "armeb" has no OCI platform.*supported BR2_ARCH values: aarch64, arm, x86_64/],
    ['aarch64_be', undefined, /"aarch64_be"/],
    ['riscv32', undefined, /"riscv32"/],
    ['xtensa', undefined, /"xtensa"/],
    ['sparc64', undefined, /"sparc64"/],
    ['arm', undefined, /needs the CPU's architecture level.*--br2-arm-cpu ARMV5\|ARMV6\|ARMV7A\|ARMV8A/],
    ['arm', 'ARMV7M', /"ARMV7M" has no OCI platform.*BR2_ARM_CPU_ARMV7A/],
    ['arm', 'ARMV4', /"ARMV4"/],
  ])('%s %s is refused with a clear error', (arch, cpu, message) => {
    let error: unknown;
    try {
      platformFromBr2(arch, cpu, 'test');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'E_STANDALONE_TARGET', exitCode: 2 });
    expect((error as Error).message).toMatch(message);
  });
});

describe('a Buildroot .config', () => {
  it.each([
    ['BR2_aarch64=y\nBR2_ARCH="aarch64"\n', 'linux/arm64/v8'],
    ['BR2_arm=y\nBR2_ARM_CPU_ARMV7A=y\nBR2_ARM_EABIHF=y\nBR2_ARCH="arm"\n', 'linux/arm/v7'],
    ['BR2_arm=y\nBR2_ARM_CPU_ARMV6=y\nBR2_ARM_EABI=y\nBR2_ARCH="arm"\n# BR2_ARM_CPU_ARMV7A is not set\n', 'linux/arm/v6'],
    ['BR2_x86_64=y\nBR2_ARCH="x86_64"\n', 'linux/amd64'],
    ['BR2_i386=y\nBR2_ARCH="i686"\n', 'linux/386'],
    ['BR2_riscv=y\nBR2_RISCV_64=y\nBR2_ARCH="riscv64"\n', 'linux/riscv64'],
    ['BR2_powerpc64le=y\nBR2_ARCH="powerpc64le"\n', 'linux/ppc64le'],
    // Without BR2_ARCH (a hand-written defconfig): the architecture symbols.
    ['BR2_aarch64=y\n', 'linux/arm64/v8'],
    ['BR2_arm=y\nBR2_ARM_CPU_ARMV7A=y\n', 'linux/arm/v7'],
    ['BR2_x86_64=y\n', 'linux/amd64'],
    ['BR2_i386=y\n', 'linux/386'],
    ['BR2_riscv=y\nBR2_RISCV_64=y\n', 'linux/riscv64'],
    ['BR2_powerpc64le=y\n', 'linux/ppc64le'],
    ['BR2_mips64el=y\n', 'linux/mips64le'],
  ])('%j -> %s', (text, want) => {
    expect(formatPlatform(platformFromKconfig(parseKconfig(text), '.config').platform)).toBe(want);
  });

  it.each([
    ['BR2_riscv=y\nBR2_RISCV_32=y\n', /"riscv32"/],
    ['BR2_armeb=y\nBR2_ARCH="armeb"\n', /"armeb"/],
    ['BR2_arm=y\nBR2_ARCH="arm"\nBR2_ARM_CPU_ARMV7M=y\n', /"BR2_ARM_CPU_ARMV7M" has no OCI platform/],
    ['BR2_xtensa=y\n', /sets neither BR2_ARCH nor a known architecture option/],
    ['', /sets neither BR2_ARCH/],
  ])('%j is refused', (text, message) => {
    expect(() => platformFromKconfig(parseKconfig(text), '.config')).toThrow(message);
  });

  it('names the options it used, read from a file', async () => {
    const path = join(dir, 'arm.config');
    await writeFile(path, '#\n# Automatically generated file; DO NOT EDIT.\nBR2_HAVE_DOT_CONFIG=y\nBR2_arm=y\nBR2_ARM_CPU_ARMV7A=y\nBR2_ARCH="arm"\nBR2_DL_DIR="$(TOPDIR)/dl"\n');
    const target = await resolveTarget({ br2Config: path });
    expect(formatPlatform(target.platform)).toBe('linux/arm/v7');
    expect(target.source).toBe(`${path} (BR2_ARCH=arm, BR2_ARM_CPU_ARMV7A)`);
  });

  it('parses quoted values with escapes and skips "is not set" lines', () => {
    const values = parseKconfig('BR2_A="x \\"y\\""\n# BR2_B is not set\nBR2_C=0x10\n');
    expect(Object.fromEntries(values)).toEqual({ BR2_A: 'x "y"', BR2_C: '0x10' });
  });
});

describe('resolveTarget: exactly one source', () => {
  it.each([
    [{}, /no target: give --br2-config PATH/],
    [{ platform: 'linux/arm64', br2Arch: 'aarch64' }, /give only one of --platform, --br2-arch/],
    [{ br2ArmCpu: 'ARMV7A', platform: 'linux/arm/v7' }, /--br2-arm-cpu goes with --br2-arch arm/],
    [{ br2Arch: 'aarch64', br2ArmCpu: 'ARMV7A' }, /--br2-arm-cpu only applies to --br2-arch arm/],
    [{ br2Config: '/nonexistent/.config' }, /cannot read the Buildroot config \/nonexistent\/.config \(ENOENT\)/],
    [{ platform: 'linux/sparc' }, /unknown architecture/],
  ])('%j', async (options, message) => {
    await expect(resolveTarget(options)).rejects.toThrow(message);
  });

  it.each([
    [{ platform: 'linux/arm/v6' }, 'linux/arm/v6', '--platform'],
    [{ br2Arch: 'aarch64' }, 'linux/arm64/v8', 'BR2_ARCH=aarch64'],
    [{ br2Arch: 'arm', br2ArmCpu: 'armv6' }, 'linux/arm/v6', 'BR2_ARCH=arm BR2_ARM_CPU_ARMV6'],
  ])('%j -> %s', async (options, want, source) => {
    const target = await resolveTarget(options);
    expect(formatPlatform(target.platform)).toBe(want);
    expect(target.source).toBe(source);
  });
});
