"""Image references of a bundle: the digest-pin check done at parse time, and the id of the
lock file a set of inputs produces (its name in DL_DIR)."""
import hashlib
import re

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# `image:` lines of a compose file. The CLI parses the YAML for real when it locks; this only
# has to find every reference so unpinned ones fail at parse time.
_COMPOSE_IMAGE = re.compile(r"""^\s*image:\s*["']?([^"'\s#]+)["']?\s*(#.*)?$""")

PIN_HELP = ("pin each image by digest, e.g. REGISTRY/NAME:TAG@sha256:<64 hex digits> "
            "(`ctrbake lock REF --platform P` or `skopeo inspect --format '{{.Digest}}' docker://REF` prints it); "
            'CTRBAKE_ALLOW_TAGS = "1" accepts tags for development builds, which are then not reproducible')


def is_pinned(ref):
    return bool(_DIGEST.search(ref))


def compose_images(text):
    """References on `image:` lines of a compose file, in order."""
    found = []
    for line in text.splitlines():
        m = _COMPOSE_IMAGE.match(line)
        if m:
            found.append(m.group(1))
    return found


def unpinned(refs):
    return [r for r in refs if not is_pinned(r)]


def pin_error(unpinned_refs, where):
    return f"{where}: not pinned by digest: {' '.join(unpinned_refs)}; {PIN_HELP}"


def lock_id(platform, images, compose_text=""):
    """Stable name of the lock file for these inputs: a change of any of them is a new lock."""
    h = hashlib.sha256()
    h.update(b"ctrbake-lock-v1\0")
    h.update(platform.encode() + b"\0")
    for ref in images:
        h.update(ref.encode() + b"\0")
    h.update(b"compose\0" + compose_text.encode())
    return h.hexdigest()[:32]


def cli_id(bin_path):
    """`ctrbake@VERSION` from the package.json next to the CLI's bin/ (its signature identity)."""
    import json
    import os
    if not bin_path:
        return "unknown"
    pkg = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(bin_path))), "package.json")
    try:
        with open(pkg, encoding="utf-8") as f:
            meta = json.load(f)
        return f"{meta.get('name', 'ctrbake')}@{meta.get('version', 'unknown')}"
    except (OSError, ValueError):
        return "unknown"
