"""The OCI platform of the *target*, from BitBake's TARGET_ARCH, TARGET_OS and tune.

Never the build host: a bundle for an ARM board baked on an x86 workstation must hold ARM
images. Only platforms the OCI image-index spec (and Go's GOARCH/GOARM) define are mapped;
anything else raises ValueError with a message that says how to set CTRBAKE_PLATFORM.
"""
import re

# TARGET_ARCH values whose OCI architecture does not depend on the tune.
_SIMPLE = {
    "x86_64": "amd64",
    "i686": "386",
    "i586": "386",
    "aarch64": "arm64/v8",
    "riscv64": "riscv64",
    "powerpc64le": "ppc64le",
    "powerpc64": "ppc64",
    "mips": "mips",
    "mipsel": "mipsle",
    "mips64": "mips64",
    "mips64el": "mips64le",
    "loongarch64": "loong64",
}

# 32-bit ARM cores whose TUNE_FEATURES do not name the architecture version (OE-core's tune
# files put it in MACHINEOVERRIDES instead, e.g. cortexa15 -> armv7ve).
_ARM_CORES = {
    "arm1136jfs": 6, "arm1176jzs": 6,
    "arm920t": 4, "arm926ejs": 5, "arm9tdmi": 4, "xscale": 5, "ep9312": 4, "strongarm": 4,
    "iwmmxt": 5,
    "cortexa5": 7, "cortexa7": 7, "cortexa8": 7, "cortexa9": 7, "cortexa12": 7, "cortexa15": 7, "cortexa17": 7,
    "cortexa32": 8, "cortexa35": 8, "cortexa53": 8, "cortexa55": 8, "cortexa57": 8, "cortexa72": 8, "cortexa73": 8,
}

_ARM_ARCH_FEATURE = re.compile(r"^armv(\d+)")
_ARM_PKGARCH = re.compile(r"^armv(\d+)")

# Tune features that select an ABI no OCI platform describes, per TARGET_ARCH.
_UNSUPPORTED_FEATURES = {
    "arm": {"bigendian": "big-endian ARM has no OCI platform"},
    "x86_64": {"mx32": "the x32 ABI has no OCI platform (x86_64 images are 64-bit)"},
    "mips64": {"n32": "the MIPS n32 ABI has no OCI platform"},
    "mips64el": {"n32": "the MIPS n32 ABI has no OCI platform"},
}

# OS/ARCH[/VARIANT] as `ctrbake lock` normalizes and records it (src/registry/platform.ts).
_ARCH_ALIASES = {"x86_64": ("amd64", None), "x86-64": ("amd64", None), "aarch64": ("arm64", None),
                 "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "i386": ("386", None), "i686": ("386", None)}
_KNOWN_ARCHITECTURES = ("386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle",
                        "ppc64", "ppc64le", "riscv64", "s390x")
_OS = re.compile(r"^[a-z][a-z0-9]*$")
_VARIANT = re.compile(r"^v\d+(?:\.\d+)?$")

HINT = 'set CTRBAKE_PLATFORM = "linux/ARCH[/VARIANT]" in the recipe if the images really run there'


def arm_version(tune_features, tune_pkgarch, machine_overrides=()):
    """ARM architecture version (4..9) of a 32-bit tune, or None when it cannot be told."""
    versions = []
    for feature in list(tune_features) + list(machine_overrides):
        m = _ARM_ARCH_FEATURE.match(feature)
        if m:
            versions.append(int(m.group(1)))
        elif feature in _ARM_CORES:
            versions.append(_ARM_CORES[feature])
    if versions:
        return max(versions)
    m = _ARM_PKGARCH.match(tune_pkgarch or "")
    if m:
        return int(m.group(1))
    return None


def _words(value, sep=None):
    if isinstance(value, str):
        return value.split(sep) if sep else value.split()
    return list(value or ())


def oci_platform(target_arch, target_os="linux", tune_features="", tune_pkgarch="", machine_overrides=""):
    """OCI platform string (os/arch[/variant]) for a BitBake target.

    >>> oci_platform("arm", "linux-gnueabi", "arm vfp thumb armv7a neon callconvention-hard", "armv7at2hf-neon")
    'linux/arm/v7'
    """
    features = _words(tune_features)
    overrides = _words(machine_overrides, ":")
    os_name = (target_os or "linux").split("-")[0]
    if os_name != "linux":
        raise ValueError(f"TARGET_OS {target_os!r} is not linux: container images need a Linux kernel; {HINT}")
    for feature, why in _UNSUPPORTED_FEATURES.get(target_arch, {}).items():
        if feature in features:
            raise ValueError(f"TARGET_ARCH {target_arch!r} with tune feature {feature!r}: {why}; {HINT}")
    if target_arch in _SIMPLE:
        return f"linux/{_SIMPLE[target_arch]}"
    if target_arch == "arm":
        version = arm_version(features, tune_pkgarch, overrides)
        if version is None:
            raise ValueError(f"cannot tell the ARM architecture version from TUNE_FEATURES {' '.join(features)!r}, "
                             f"TUNE_PKGARCH {tune_pkgarch!r} and MACHINEOVERRIDES; {HINT}")
        if version < 5:
            raise ValueError(f"ARMv{version} has no OCI platform (arm/v5 is the oldest images are built for); {HINT}")
        # ARMv8 in AArch32 state runs arm/v8 images (and v7 ones; the lock never picks a v7
        # image for a v8 device by itself: write CTRBAKE_PLATFORM = "linux/arm/v7" for that).
        return f"linux/arm/v{min(version, 8)}"
    raise ValueError(f"TARGET_ARCH {target_arch!r} has no OCI platform ctrbake knows; {HINT}")


def normalize_platform(platform):
    """OS/ARCH[/VARIANT] in the CLI's spelling (amd64, arm64/v8, arm/v7 ...); ValueError when
    it is not a platform the CLI takes."""
    parts = platform.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {platform!r} is not OS/ARCH[/VARIANT]")
    os_name, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else None
    if not _OS.match(os_name):
        raise ValueError(f"platform {platform!r}: {os_name!r} is not an operating system name")
    arch, alias_variant = _ARCH_ALIASES.get(arch, (arch, None))
    variant = variant or alias_variant
    if variant and variant[0].isdigit() and arch in ("arm", "arm64", "amd64"):
        variant = "v" + variant
    if arch == "arm64" and variant is None:
        variant = "v8"
    if arch == "arm" and variant is None:
        variant = "v7"
    if arch == "amd64" and variant == "v1":
        variant = None
    if arch not in _KNOWN_ARCHITECTURES:
        raise ValueError(f"platform {platform!r}: unknown architecture {arch!r} (known: {' '.join(_KNOWN_ARCHITECTURES)})")
    if variant is not None and (arch not in ("arm", "arm64", "amd64") or not _VARIANT.match(variant)):
        raise ValueError(f"platform {platform!r}: {variant!r} is not a variant of {arch}")
    return "/".join(p for p in (os_name, arch, variant) if p)
