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


_DIGEST_VALUE = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$", re.ASCII)
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::\d{{1,5}})?$")
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def normalize_reference(ref):
    """`[HOST[:PORT]/]NAME[:TAG][@sha256:HEX]` as `ctrbake lock` reads and records it
    (src/registry/reference.ts): without a host (a first component with a dot, a colon or
    `localhost`) the registry is docker.io (its aliases too), a one-component name there gets
    `library/`, and neither tag nor digest means `:latest`. ValueError when it is not one."""
    def bad(why):
        return ValueError(f"{ref!r} is not an image reference ({why}): write [HOST[:PORT]/]NAME[:TAG][@sha256:<64 hex digits>]")
    rest = ref.strip()
    if not rest:
        raise bad("empty")
    rest, at, digest = rest.partition("@")
    if at and not _DIGEST_VALUE.match(digest):
        raise bad("the digest must be sha256: and 64 lowercase hex digits")
    tag = None
    name, colon, maybe_tag = rest.rpartition(":")
    if colon and "/" not in maybe_tag:
        rest, tag = name, maybe_tag
        if not _TAG.match(tag):
            raise bad(f"tag {tag!r}")
    parts = rest.split("/")
    registry = "docker.io"
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _HOST.match(parts[0]):
            raise bad(f"registry host {parts[0]!r}")
        registry = "docker.io" if parts[0].lower() in _HUB_ALIASES else parts[0]
        parts = parts[1:]
    if not all(_COMPONENT.match(p) for p in parts):
        raise bad("name components are lowercase letters, digits and . _ __ -")
    if registry == "docker.io" and len(parts) == 1:
        parts = ["library"] + parts
    repository = "/".join(parts)
    if len(repository) > 255:
        raise bad("name longer than 255 characters")
    if tag is None and not at:
        tag = "latest"
    return f"{registry}/{repository}{':' + tag if tag is not None else ''}{'@' + digest if at else ''}"


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
