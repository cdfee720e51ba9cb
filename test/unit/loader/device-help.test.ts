/**
 * `ctrbake-device --help` on any machine: the help and the usage errors come before the
 * script reads its settings file, so they work with no ctrbake.conf present, under every
 * shell a device may have (BusyBox ash, dash, bash).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderFile } from '../../../src/loader/templates.js';

const SHELLS = ['busybox sh', 'dash', 'bash'];
const COMMANDS = ['prepare', 'load', 'check', 'verify', 'reset'];

let dir: string;
let script: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-device-help-'));
  script = join(dir, 'ctrbake-device');
  // The settings path of a real image: nothing exists there (nor under CTRBAKE_ROOT).
  await writeFile(script, await renderFile('ctrbake-device.sh', { CONF: '/usr/share/ctrbake/ctrbake.conf', ENGINE_STOP: 'systemctl stop docker', ENGINE_START: 'systemctl start docker' }), { mode: 0o755 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(shell: readonly string[], args: readonly string[]) {
  return execa(shell[0]!, [...shell.slice(1), script, ...args], {
    reject: false,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CTRBAKE_ROOT: join(dir, 'no-rootfs') },
    extendEnv: false,
  });
}

describe.each(SHELLS)('ctrbake-device under %s, with no ctrbake.conf anywhere', (shellLine) => {
  const shell = shellLine.split(' ');
  it.each(['--help', '-h', 'help'])('%s prints the usage on stdout and exits 0', async (flag) => {
    const r = await run(shell, [flag]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^usage: ctrbake-device COMMAND$/m);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(r.stdout).toMatch(/only reset wipes them/);
  });

  it('an unknown command: the usage on stderr, nothing on stdout, exit 2', async () => {
    const r = await run(shell, ['frobnicate']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ctrbake-device: unknown command 'frobnicate'$/m);
    expect(r.stderr).toMatch(/^usage: ctrbake-device COMMAND$/m);
  });

  it('no command: the usage on stderr, exit 2', async () => {
    const r = await run(shell, []);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^usage: ctrbake-device COMMAND$/m);
  });

  it('a real command without the settings file names the file and the fix, exit 1', async () => {
    const r = await run(shell, ['prepare']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^ctrbake: error: the settings file \/usr\/share\/ctrbake\/ctrbake.conf is missing: .*install the whole overlay again$/m);
  });
});
