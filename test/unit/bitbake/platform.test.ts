/**
 * TARGET_ARCH / TARGET_OS / tune -> OCI platform (lib/ctrbake-bb/ctrbake_bb/platform.py), run
 * with python3 as BitBake runs it. Tune values are those of OE-core's machine and tune files.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { python } from '../../integration/bitbake-shell.js';

interface Target {
  arch: string;
  os?: string;
  features?: string;
  pkgarch?: string;
  overrides?: string;
}

type Outcome = { ok: string } | { error: string };

/** One python3 run for every case of the file (cases register their targets first). */
const targets: Target[] = [];
let outcomes: Outcome[] = [];
function platform(t: Target): Outcome {
  const i = targets.indexOf(t);
  if (i < 0 || !outcomes[i]) throw new Error('target not computed');
  return outcomes[i]!;
}
function target(t: Target): Target {
  targets.push(t);
  return t;
}
beforeAll(() => {
  const out = python(`
import json
from ctrbake_bb.platform import oci_platform
res = []
for t in json.loads(${JSON.stringify(JSON.stringify(targets))}):
    try:
        res.append({"ok": oci_platform(t["arch"], t.get("os", "linux"), t.get("features", ""), t.get("pkgarch", ""), t.get("overrides", ""))})
    except ValueError as e:
        res.append({"error": str(e)})
print(json.dumps(res))
`);
  outcomes = JSON.parse(out) as Outcome[];
});

describe('OCI platform of the target', () => {
  it.each<[string, Target, string]>([
    ['qemux86-64 (x86-64-v3)', target({ arch: 'x86_64', features: 'm64 x86-64-v3', pkgarch: 'x86-64-v3' }), 'linux/amd64'],
    ['qemux86 (core2-32)', target({ arch: 'i686', features: 'm32 core2', pkgarch: 'core2-32' }), 'linux/386'],
    ['i586 tune', target({ arch: 'i586', features: 'm32 i586', pkgarch: 'i586' }), 'linux/386'],
    ['qemuarm64 (cortexa57)', target({ arch: 'aarch64', features: 'aarch64 armv8a crc cortexa57', pkgarch: 'cortexa57' }), 'linux/arm64/v8'],
    ['musl aarch64', target({ arch: 'aarch64', os: 'linux-musl', features: 'aarch64 armv8a', pkgarch: 'armv8a' }), 'linux/arm64/v8'],
    [
      'qemuarm (cortexa15thf-neon: version only in MACHINEOVERRIDES)',
      target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm vfp cortexa15 thumb neon callconvention-hard', pkgarch: 'cortexa15t2hf-neon', overrides: 'armv7ve:qemuall:qemuarm' }),
      'linux/arm/v7',
    ],
    ['cortexa15 without overrides (core table)', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm vfp cortexa15', pkgarch: 'cortexa15hf' }), 'linux/arm/v7'],
    ['armv7athf-neon', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm armv7a vfp thumb neon callconvention-hard', pkgarch: 'armv7at2hf-neon' }), 'linux/arm/v7'],
    ['armv7vethf-neon', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm armv7ve vfp thumb neon callconvention-hard', pkgarch: 'armv7vet2hf-neon' }), 'linux/arm/v7'],
    ['raspberrypi0 (arm1176jzshf)', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm thumb arm1176jzs vfp callconvention-hard', pkgarch: 'arm1176jzfshf' }), 'linux/arm/v6'],
    ['armv6thf', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm armv6 thumb vfp callconvention-hard', pkgarch: 'armv6thf' }), 'linux/arm/v6'],
    ['qemuarmv5 (arm926ejs)', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm armv5 thumb dsp arm926ejs', pkgarch: 'arm926ejste' }), 'linux/arm/v5'],
    ['32-bit Cortex-A53 (armv8a in AArch32)', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm armv8a crc vfp neon callconvention-hard cortexa53', pkgarch: 'cortexa53hf-neon' }), 'linux/arm/v8'],
    ['only TUNE_PKGARCH tells', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm vfp', pkgarch: 'armv7ahf' }), 'linux/arm/v7'],
    ['qemuriscv64', target({ arch: 'riscv64', features: 'riscv64 rv 64 i m a f d c', pkgarch: 'riscv64' }), 'linux/riscv64'],
    ['ppc64le', target({ arch: 'powerpc64le', features: 'm64 power9', pkgarch: 'ppc64p9le' }), 'linux/ppc64le'],
    ['ppc64 (big endian)', target({ arch: 'powerpc64', features: 'm64', pkgarch: 'ppc64' }), 'linux/ppc64'],
    ['qemumips (big endian)', target({ arch: 'mips', features: 'o32 bigendian fpu-hard mips32r2', pkgarch: 'mips32r2' }), 'linux/mips'],
    ['mipsel', target({ arch: 'mipsel', features: 'o32 fpu-hard mips32r2', pkgarch: 'mips32r2el' }), 'linux/mipsle'],
    ['mips64el', target({ arch: 'mips64el', features: 'n64 fpu-hard mips64r2', pkgarch: 'mips64r2el' }), 'linux/mips64le'],
    ['qemuloongarch64', target({ arch: 'loongarch64', features: 'loongarch64', pkgarch: 'loongarch64' }), 'linux/loong64'],
  ])('%s -> %s', (_name, target, expected) => {
    expect(platform(target)).toEqual({ ok: expected });
  });

  it.each<[string, Target, string]>([
    ['x32 ABI', target({ arch: 'x86_64', features: 'mx32 corei7', pkgarch: 'x86-64-x32' }), "'mx32'"],
    ['big-endian ARM', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm armv7a bigendian', pkgarch: 'armv7ab' }), "'bigendian'"],
    ['MIPS n32', target({ arch: 'mips64', features: 'n32 bigendian', pkgarch: 'mips64-n32' }), "'n32'"],
    ['ARMv4', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm armv4 thumb', pkgarch: 'armv4t' }), 'ARMv4 has no OCI platform'],
    ['ARM version unknown', target({ arch: 'arm', os: 'linux-gnueabi', features: 'arm vfp', pkgarch: 'arm' }), 'cannot tell the ARM architecture version'],
    ['32-bit PowerPC', target({ arch: 'powerpc', features: 'm32 fpu-hard', pkgarch: 'ppc7400' }), "TARGET_ARCH 'powerpc'"],
    ['riscv32', target({ arch: 'riscv32', features: 'riscv32', pkgarch: 'riscv32' }), "TARGET_ARCH 'riscv32'"],
    ['bare metal', target({ arch: 'aarch64', os: 'elf', features: 'aarch64' }), "TARGET_OS 'elf'"],
  ])('%s is refused with a message naming the cause and CTRBAKE_PLATFORM', (_name, target, cause) => {
    const result = platform(target);
    expect(result).toHaveProperty('error');
    const { error } = result as { error: string };
    expect(error).toContain(cause);
    expect(error).toContain('CTRBAKE_PLATFORM');
  });
});
