import { readFile } from 'node:fs/promises';
import { EngineError } from '../errors.js';
import { findProgram } from '../util/process.js';

/** Checks that run before any engine starts: the binaries exist and we may mount. */

const CAP_SYS_ADMIN = 21n;

export const PRIVILEGES_HINT = 'run as root, or in a privileged build container (e.g. cqfd with --privileged)';

/**
 * Resolves `binary` (a name looked up in PATH, or a path) to an executable path.
 * Missing => E_ENGINE_MISSING naming the Debian package that provides it.
 */
export async function resolveBinary(binary: string, debianPackage: string, path = process.env.PATH ?? ''): Promise<string> {
  const found = await findProgram(binary, path);
  if (found) return found;
  throw new EngineError(
    'E_ENGINE_MISSING',
    `${binary} not found${binary.includes('/') ? '' : ' in PATH'}: install the Debian package ${debianPackage} (apt-get install ${debianPackage}) or pass the path of the binary`,
    { details: { binary, package: debianPackage } },
  );
}

/** Effective capabilities of this process, from /proc/self/status. */
export async function effectiveCapabilities(): Promise<bigint> {
  const status = await readFile('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/** Engines at build time mount overlays and create namespaces: root (CAP_SYS_ADMIN) is needed. */
export async function checkPrivileges(what: string): Promise<void> {
  const caps = await effectiveCapabilities();
  const uid = process.getuid?.() ?? -1;
  if (uid === 0 && (caps & (1n << CAP_SYS_ADMIN)) !== 0n) return;
  throw new EngineError(
    'E_PRIVILEGES',
    `${what} needs root with CAP_SYS_ADMIN (uid ${uid}, CAP_SYS_ADMIN ${(caps & (1n << CAP_SYS_ADMIN)) !== 0n ? 'present' : 'missing'}): ${PRIVILEGES_HINT}`,
    { details: { uid } },
  );
}
