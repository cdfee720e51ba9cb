/**
 * Runs the layer's `ctrbake://` fetcher (lib/ctrbake-bb/ctrbake_bb/fetcher.py) with python3
 * and no BitBake: a small stand-in for the part of the `bb` API the fetcher uses (written
 * here, not taken from BitBake: FetchMethod with BitBake's done-stamp convention, the fetch
 * exceptions, check_network_access honouring BB_NO_NETWORK, decodeurl, the methods list)
 * and a driver that plays one BitBake fetch step per call. Real BitBake runs the same code
 * in scripts/bitbake-check.sh.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PYLIB_DIR } from './bitbake-shell.js';

const BB_INIT = `
import logging
logger = logging.getLogger("BitBake")
def note(*a): print("NOTE:", *a)
def warn(*a): print("WARNING:", *a)
def fatal(*a):
    raise RuntimeError(" ".join(str(x) for x in a))
`;

const BB_FETCH2 = `
import logging, os, re
logger = logging.getLogger("BitBake.Fetcher")
methods = []

class BBFetchException(Exception):
    def __init__(self, message):
        self.msg = message
        super().__init__(message)
class FetchError(BBFetchException):
    def __init__(self, message, url=None):
        self.url = url
        super().__init__(f"Fetcher failure for URL: {url!r}. {message}")
class ChecksumError(FetchError):
    def __init__(self, message, url=None, checksum=None):
        self.checksum = checksum
        super().__init__(message, url)
class UnpackError(BBFetchException):
    def __init__(self, message, url):
        super().__init__(f"Unpack failure for URL: {url!r}. {message}")
class MalformedUrl(BBFetchException):
    def __init__(self, url, message=""):
        super().__init__(f"The URL {url!r} is invalid. {message}")
class NetworkAccess(BBFetchException):
    def __init__(self, url, cmd):
        super().__init__(f"Network access disabled through BB_NO_NETWORK but access requested with command {cmd} (for url {url})")

def check_network_access(d, info, url):
    if (d.getVar("BB_NO_NETWORK") or "0") not in ("", "0"):
        raise NetworkAccess(url, info)

def decodeurl(url):
    m = re.match(r"^([a-z0-9+]+)://([^/;]*)([^;]*)(;.*)?$", url)
    if not m:
        raise MalformedUrl(url)
    parm = {}
    for kv in (m.group(4) or "").split(";"):
        if kv:
            k, _, v = kv.partition("=")
            parm[k] = v
    return m.group(1), m.group(2), m.group(3) or "/", "", "", parm

class FetchMethod:
    def __init__(self, urls=None):
        self.urls = []
    def update_donestamp(self, ud, d):
        with open(ud.donestamp, "w"):
            pass
`;

/** The driver: `python3 driver.py JSON` with {vars, url, op, ...}; prints one JSON result. */
const DRIVER = `
import json, os, sys, textwrap, traceback
sys.path.insert(0, os.environ["CTRBAKE_TEST_STUB"])
sys.path.insert(0, os.environ["CTRBAKE_TEST_PYLIB"])
import bb, bb.fetch2
from ctrbake_bb import fetcher, imagearchive

req = json.loads(sys.argv[1])

# BitBake pickles log records to its UI process, which cannot import the layer's modules:
# every argument of a record the fetcher logs must be a plain value.
import logging
foreign_log_args = []
class _PlainArgs(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.INFO:
            sys.stderr.write(record.levelname + ": " + record.getMessage() + "\\n")
        args = record.args if isinstance(record.args, tuple) else (record.args,) if record.args else ()
        for a in args:
            if not isinstance(a, (str, int, float, bool, type(None))):
                foreign_log_args.append(type(a).__module__ + "." + type(a).__name__)
logging.getLogger("BitBake").addHandler(_PlainArgs())
logging.getLogger("BitBake").setLevel(logging.DEBUG)

class Data:
    def __init__(self, v): self.v = v
    def getVar(self, name, expand=True): return self.v.get(name)

class UrlData:
    """What BitBake's FetchData gives a method: the decoded URL, then localpath/donestamp."""
    def __init__(self, url, d):
        self.url = url
        self.type, self.host, self.path, _, _, self.parm = bb.fetch2.decodeurl(url)
        self.method = next((m for m in bb.fetch2.methods if m.supports(self, d)), None)
        if self.method is None:
            raise RuntimeError("no fetch method for " + url)
        self.method.urldata_init(self, d)
        self.localpath = os.path.join(d.getVar("DL_DIR"), self.localfile)
        self.donestamp = self.localpath + ".done"

def run():
    d = Data(req.get("vars", {}))
    op = req["op"]
    if op == "register":
        fetcher.register(); fetcher.register()
        return {"methods": [type(m).__name__ for m in bb.fetch2.methods]}
    if op == "class_python":
        # the body of a class's python function (ctrbake_do_unpack, ...), as the class defines it
        # BitBake runs it as the body of a function of d (so it may return early)
        ns = {"bb": bb}
        exec("def _fn(d):\\n" + textwrap.indent(textwrap.dedent(req["body"]), "    ") + "\\n", ns)
        ns["_fn"](d)
        return {}
    fetcher.register()
    ud = UrlData(req["url"], d)
    m = ud.method
    out = {"localfile": ud.localfile, "reference": ud.ctrbake_reference, "platform": ud.ctrbake_platform}
    if op == "parse":
        return out
    if op == "download":
        # BitBake's order: download, then update_donestamp (which verifies)
        m.download(ud, d)
        m.update_donestamp(ud, d)
    elif op == "donestamp":
        # a mirror hit: BitBake put the file (or a link to it) at localpath
        m.update_donestamp(ud, d)
    elif op == "checkstatus":
        out["status"] = bool(m.checkstatus(None, ud, d))
    elif op == "unpack":
        m.unpack(ud, req["rootdir"], d)
    return out

try:
    result = {"ok": True, **run()}
except Exception as e:
    result = {"ok": False, "error": type(e).__name__, "message": str(e), "trace": traceback.format_exc()}
result["foreignLogArgs"] = foreign_log_args
print(json.dumps(result))
`;

export interface FetcherResult {
  ok: boolean;
  error?: string;
  message?: string;
  trace?: string;
  localfile?: string;
  reference?: string;
  platform?: string;
  status?: boolean;
  methods?: string[];
  /** Types of log-record arguments that are not plain values (BitBake's UI could not unpickle them). */
  foreignLogArgs: string[];
  /** stdout lines before the result (warnings logged by the fetcher go to stderr). */
  log: string;
}

export class FetcherStub {
  private constructor(private readonly dir: string) {}

  static async create(dir: string): Promise<FetcherStub> {
    await mkdir(join(dir, 'bb', 'fetch2'), { recursive: true });
    await writeFile(join(dir, 'bb', '__init__.py'), BB_INIT);
    await writeFile(join(dir, 'bb', 'fetch2', '__init__.py'), BB_FETCH2);
    await writeFile(join(dir, 'driver.py'), DRIVER);
    return new FetcherStub(dir);
  }

  run(request: Record<string, unknown>, env: Record<string, string> = {}): FetcherResult {
    const r = spawnSync('python3', ['-B', join(this.dir, 'driver.py'), JSON.stringify(request)], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.dir, CTRBAKE_TEST_STUB: this.dir, CTRBAKE_TEST_PYLIB: PYLIB_DIR, ...env },
      timeout: 300_000,
    });
    if (r.error) throw new Error(`python3 is needed for the fetcher tests: ${r.error.message}`);
    const lines = r.stdout.trimEnd().split('\n');
    const last = lines.pop() ?? '';
    let parsed: Omit<FetcherResult, 'log'>;
    try {
      parsed = JSON.parse(last) as Omit<FetcherResult, 'log'>;
    } catch {
      throw new Error(`driver output is not JSON (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
    return { ...parsed, log: `${lines.join('\n')}\n${r.stderr}` };
  }
}
