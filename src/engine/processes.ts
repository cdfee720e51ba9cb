import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Process helpers for engine teardown. Engines fork helpers we did not start ourselves
 * (containerd shims); we find those only through proof of ownership: a command line that
 * names our private socket or directory, which nobody else uses.
 */

export interface ProcessInfo {
  pid: number;
  ppid: number;
  state: string;
  argv: string[];
}

export async function readProcess(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parens: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return { pid, state: rest[0]!, ppid: Number(rest[1]), argv: cmdline.split('\0').filter((a) => a !== '') };
  } catch {
    return undefined;
  }
}

export async function listProcesses(): Promise<ProcessInfo[]> {
  const entries = await readdir('/proc');
  const infos = await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map((e) => readProcess(Number(e))));
  return infos.filter((p): p is ProcessInfo => p !== undefined);
}

/** Live (not zombie) processes whose command line contains `needle` in one argument. */
export async function processesMentioning(needle: string): Promise<ProcessInfo[]> {
  return (await listProcesses()).filter((p) => p.state !== 'Z' && p.argv.some((a) => a.includes(needle)));
}

/** All descendants of `pid` (children first level, then theirs), live ones only. */
export async function descendantsOf(pid: number): Promise<ProcessInfo[]> {
  const all = (await listProcesses()).filter((p) => p.state !== 'Z');
  const found: ProcessInfo[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = all.filter((p) => frontier.includes(p.ppid));
    found.push(...next);
    frontier = next.map((p) => p.pid);
  }
  return found;
}

export async function isRunning(pid: number): Promise<boolean> {
  const info = await readProcess(pid);
  return info !== undefined && info.state !== 'Z';
}

export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Polls until `pid` is gone or a zombie; true if it ended within `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isRunning(pid))) return true;
    await sleep(50);
  }
  return !(await isRunning(pid));
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL and wait again. */
export async function terminateProcess(pid: number, graceMs: number): Promise<void> {
  if (!(await isRunning(pid))) return;
  signalProcess(pid, 'SIGTERM');
  if (await waitForExit(pid, graceMs)) return;
  signalProcess(pid, 'SIGKILL');
  await waitForExit(pid, 5_000);
}
