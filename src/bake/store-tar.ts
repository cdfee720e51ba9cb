/**
 * Writes a store as a reproducible PAX tar with GNU tar. Node cannot see xattrs or device
 * nodes (DESIGN.md), so the stream comes from a tool that can: overlay whiteouts (char 0/0),
 * `trusted.overlay.*`, `security.capability`, setuid/setgid/sticky modes, hard links and
 * numeric owners all travel as GNU tar stores them.
 *
 * Reproducible because: entries sorted by name (--sort=name, C locale), numeric ids only,
 * no atime/ctime records, extended-header names without a pid (exthdr.name), no ACL or
 * SELinux records, and the mtimes in the tree were already set (see clampBakeTimes).
 */
import { runProgram } from '../util/process.js';
import { CommandError } from '../errors.js';

export const STORE_TAR_ARGS: readonly string[] = [
  '--format=pax',
  '--xattrs',
  '--xattrs-include=*',
  '--no-acls',
  '--no-selinux',
  '--numeric-owner',
  '--sort=name',
  '--pax-option=delete=atime,delete=ctime,exthdr.name=%d/PaxHeaders/%f',
];

/** GNU tar >= 1.28 is needed for --sort=name. Returns its version string. */
export async function checkGnuTar(binary = 'tar'): Promise<string> {
  const result = await runProgram(binary, ['--version']);
  const m = /^tar \(GNU tar\) (\d+)\.(\d+)/m.exec(result.stdout ?? '');
  if (result.exitCode !== 0 || !m) {
    throw new CommandError('E_STORE_TAR', `GNU tar is needed to write store.tar (it keeps xattrs and device nodes): install the Debian package tar`);
  }
  if (Number(m[1]) === 1 && Number(m[2]) < 28) {
    throw new CommandError('E_STORE_TAR', `GNU tar ${m[1]}.${m[2]} is too old for a reproducible store.tar (--sort=name needs 1.28 or later)`);
  }
  return `${m[1]}.${m[2]}`;
}

/** Archives `members` (names directly under `root`) into `outFile`. */
export async function writeStoreTar(root: string, members: readonly string[], outFile: string, signal?: AbortSignal): Promise<void> {
  await checkGnuTar();
  const result = await runProgram('tar', ['--create', `--file=${outFile}`, `--directory=${root}`, ...STORE_TAR_ARGS, '--', ...members], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' },
    ...(signal ? { signal } : {}),
  });
  if (result.exitCode !== 0) {
    throw new CommandError('E_STORE_TAR', `GNU tar failed to write ${outFile} from ${root} (exit code ${result.exitCode}): ${result.stderr}`, {
      details: { stderr: result.stderr },
    });
  }
}

/**
 * Extracts a store.tar as root into `dir`, keeping owners, modes, xattrs (trusted.* too)
 * and device nodes: what a device's first boot (or a verify step) does.
 */
export async function extractStoreTar(tarFile: string, dir: string, signal?: AbortSignal): Promise<void> {
  const result = await runProgram(
    'tar',
    ['--extract', `--file=${tarFile}`, `--directory=${dir}`, '--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-permissions', '--same-owner'],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' }, ...(signal ? { signal } : {}) },
  );
  if (result.exitCode !== 0) {
    throw new CommandError('E_STORE_TAR', `GNU tar failed to extract ${tarFile} into ${dir} (exit code ${result.exitCode}): ${result.stderr}`, {
      details: { stderr: result.stderr },
    });
  }
}
