"""The `ctrbake://` BitBake fetcher: a container image pinned by digest, for one platform,
downloaded into ONE file in DL_DIR (ctrbake_bb.imagearchive), so BitBake's own machinery
applies to it as to any source: PREMIRRORS/MIRRORS (a file:// or http:// mirror of DL_DIR
serves it by its name), BB_NO_NETWORK, BB_ALLOWED_NETWORKS, `--runall=fetch`,
`-c checkuri`, done stamps and lock files.

    SRC_URI += "ctrbake://registry.example.com/app:1.4@sha256:<64 hex>;platform=linux/arm64/v8"

ctrbake.bbclass generates these entries from CTRBAKE_IMAGES and CTRBAKE_COMPOSE, and
registers the fetcher when a recipe inherits it (register() below): recipes that do not
inherit the class never see it.

Verification is by content, not by a checksum in the recipe: every archive, whoever served
it, is checked by update_donestamp() (after a download or a mirror hit: a bad one is set
aside as *_bad-digest and the next source is tried) and again by unpack() (every blob
re-hashed, the lock checked against the URL's digest and platform); both run
`ctrbake image-archive`, which owns the DL_DIR file's format.

Log records carry strings only: BitBake pickles them to its UI process, which cannot import
this layer's modules (an exception object as an argument kills the UI's event thread).

Variables read (task context): CTRBAKE_NODE, CTRBAKE_BIN, CTRBAKE_HOST_PATH (how the CLI
runs), CTRBAKE_INSECURE_REGISTRIES, CTRBAKE_AUTHFILE.
"""
import os
import shutil

import bb
import bb.fetch2
from bb.fetch2 import FetchError, FetchMethod, ChecksumError, UnpackError, logger

from ctrbake_bb import imagearchive

# Proxy and certificate settings the CLI (node, skopeo) honours, passed on from the datastore
# as BitBake's own fetchers do.
_EXPORT_VARS = ("http_proxy", "https_proxy", "no_proxy", "ftp_proxy", "all_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
                "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "HOME")


class Ctrbake(FetchMethod):
    """Fetcher for ctrbake://REGISTRY/REPOSITORY[:TAG]@sha256:HEX;platform=OS/ARCH[/VARIANT]."""

    def __init__(self):
        super().__init__()
        self._verified = {}

    def supports(self, ud, d):
        return ud.type == imagearchive.SCHEME

    def supports_srcrev(self):
        return False

    def urldata_init(self, ud, d):
        try:
            ud.ctrbake_reference = imagearchive.reference_from_url(ud.host, ud.path)
            platform = ud.parm.get("platform")
            if not platform:
                raise ValueError(f"{ud.url}: no ;platform=OS/ARCH[/VARIANT] parameter")
            ud.ctrbake_platform = imagearchive.normalize_platform(platform)
        except ValueError as e:
            raise bb.fetch2.MalformedUrl(ud.url, str(e)) from e
        ud.localfile = imagearchive.archive_name(ud.ctrbake_reference, ud.ctrbake_platform)

    # --- download -----------------------------------------------------------------------

    def _cli(self, d):
        node = d.getVar("CTRBAKE_NODE") or "node"
        if not os.path.isabs(node):
            found = shutil.which(node, path=d.getVar("PATH") or os.environ.get("PATH", ""))
            if not found:
                raise FetchError(f"ctrbake: node ({node}) not found: install Node.js >= 20.19 on the build host (HOSTTOOLS picks it up) or set CTRBAKE_NODE to its absolute path")
            node = found
        cli = d.getVar("CTRBAKE_BIN")
        if not cli or not os.path.isfile(cli):
            raise FetchError(f"ctrbake: {cli} not found: set CTRBAKE_BIN, or run 'npm ci && npm run build' in the layer")
        return [node, cli]

    def _env(self, d):
        env = dict(os.environ)
        for name in _EXPORT_VARS:
            value = d.getVar(name)
            if value:
                env[name] = value
        env["PATH"] = d.getVar("CTRBAKE_HOST_PATH") or env.get("PATH", "")
        return env

    def _registry_args(self, d):
        return imagearchive.registry_args((d.getVar("CTRBAKE_INSECURE_REGISTRIES") or "").split(),
                                          d.getVar("CTRBAKE_AUTHFILE") or "")

    def download(self, ud, d):
        ref, platform = ud.ctrbake_reference, ud.ctrbake_platform
        bb.fetch2.check_network_access(d, f"ctrbake lock + fetch {ref} --platform {platform}", ud.url)
        try:
            imagearchive.download(self._cli(d), ref, platform, ud.localpath, self._registry_args(d),
                                  env=self._env(d), log=logger.debug)
        except (imagearchive.CliError, imagearchive.ArchiveError) as e:
            raise FetchError(f"ctrbake: {e}", ud.url) from e
        self._verified[ud.localpath] = _identity(ud.localpath)
        return True

    def checkstatus(self, fetch, ud, d):
        ref, platform = ud.ctrbake_reference, ud.ctrbake_platform
        bb.fetch2.check_network_access(d, f"ctrbake lock {ref} --platform {platform}", ud.url)
        try:
            return imagearchive.check_remote(self._cli(d), ref, platform, self._registry_args(d),
                                             env=self._env(d), log=logger.debug)
        except imagearchive.CliError as e:
            logger.info("%s: %s", ud.url, str(e))
            return False

    # --- verification ---------------------------------------------------------------------

    def update_donestamp(self, ud, d):
        """Called by BitBake after a download from upstream or a mirror: the archive must be
        what the URL names before it is marked done."""
        self.verify(ud, d)
        super().update_donestamp(ud, d)

    def verify(self, ud, d):
        path = ud.localpath
        identity = _identity(path)
        if identity is not None and self._verified.get(path) == identity:
            return
        try:
            imagearchive.verify_archive(self._cli(d), path, ud.ctrbake_reference, ud.ctrbake_platform,
                                        env=self._env(d), log=logger.debug)
        except imagearchive.CliError as e:
            raise FetchError(f"ctrbake: {e}", ud.url) from e
        except imagearchive.ArchiveError as e:
            bad = path + "_bad-digest"
            if os.path.lexists(path):
                os.replace(path, bad)
                logger.warning("ctrbake: %s; set aside as %s", str(e), os.path.basename(bad))
            else:
                logger.warning("ctrbake: %s", str(e))
            if getattr(ud, "donestamp", None) and os.path.exists(ud.donestamp):
                os.unlink(ud.donestamp)
            raise ChecksumError(f"ctrbake: {e}", ud.url, "ctrbake-digest") from e
        self._verified[path] = _identity(path)

    # --- unpack ---------------------------------------------------------------------------

    def unpack(self, ud, rootdir, d):
        """Blobs into ROOTDIR/ctrbake/cache (the CLI's cache layout), the image's lock into
        ROOTDIR/ctrbake/locks/; everything re-verified on the way."""
        try:
            imagearchive.unpack(self._cli(d), ud.localpath, ud.ctrbake_reference, ud.ctrbake_platform,
                                os.path.join(rootdir, "ctrbake"), env=self._env(d), log=logger.debug)
        except (imagearchive.ArchiveError, imagearchive.CliError, OSError) as e:
            raise UnpackError(f"ctrbake: {e}", ud.url) from e


def _identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def register():
    """Adds the fetcher to BitBake's list once per process (idempotent)."""
    if not any(isinstance(m, Ctrbake) for m in bb.fetch2.methods):
        bb.fetch2.methods.append(Ctrbake())
    return ""


def merge_unpacked_locks(urls, rootdir, out, d):
    """The bake's lock from the locks unpack() wrote for these SRC_URI entries (`d`: how the
    CLI runs, as for the fetch)."""
    paths = []
    for url in urls:
        scheme, host, path, _, _, parm = bb.fetch2.decodeurl(url)
        if scheme != imagearchive.SCHEME:
            continue
        ref = imagearchive.reference_from_url(host, path)
        platform = imagearchive.normalize_platform(parm.get("platform", ""))
        paths.append(os.path.join(rootdir, "ctrbake", "locks", imagearchive.archive_name(ref, platform) + ".lock.json"))
    method = Ctrbake()
    return imagearchive.merge_locks(method._cli(d), paths, out, env=method._env(d), log=logger.debug)
