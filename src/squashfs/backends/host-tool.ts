/**
 * Finding and running a host SquashFS tool (tar2sqfs, sqfstar) with a tar stream on stdin.
 * The child is killed when the input fails validation or the caller aborts; its stderr
 * tail goes into the error.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CommandError, CtrbakeError } from '../../errors.js';

export const E_SQUASHFS_TOOL_MISSING = 'E_SQUASHFS_TOOL_MISSING';
export const E_SQUASHFS_TOOL_VERSION = 'E_SQUASHFS_TOOL_VERSION';
export const E_SQUASHFS_TOOL_FAILED = 'E_SQUASHFS_TOOL_FAILED';

export interface HostTool {
  name: string;
  path: string;
}

/** Absolute path of `name` on PATH, or an error naming the Debian package that has it. */
export async function findHostTool(name: string, debianPackage: string, backendFlag: string, pathEnv = process.env.PATH ?? ''): Promise<HostTool> {
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return { name, path: candidate };
    } catch {
      // not here
    }
  }
  throw new CommandError(
    E_SQUASHFS_TOOL_MISSING,
    `${name} was not found on PATH; install the Debian package ${debianPackage} (apt-get install ${debianPackage}) or use ${backendFlag} builtin`,
    { details: { tool: name, package: debianPackage } },
  );
}

/** Runs a tool without stdin and returns stdout+stderr (for version checks). */
export async function captureOutput(tool: HostTool, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

const STDERR_TAIL = 4000;

/**
 * Spawns `tool args`, pipes `input` into its stdin and waits for it. If reading `input`
 * throws (bad tar), the child is killed and that error is rethrown: it says more than the
 * tool's complaint about a cut stream.
 */
export async function runHostTool(tool: HostTool, args: string[], input: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const child = spawn(tool.path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  const keep = (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-STDERR_TAIL);
  };
  child.stderr.on('data', keep);
  child.stdout.on('data', keep);
  const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code, sig }));
  });
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  let inputError: unknown;
  try {
    await pipeline(Readable.from(input, { objectMode: false }), child.stdin);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // EPIPE: the tool stopped reading (it failed); its exit status and stderr tell why.
    if (code !== 'EPIPE' && code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      inputError = error;
      child.kill('SIGKILL');
    }
  }
  let status: { code: number | null; sig: NodeJS.Signals | null };
  try {
    status = await exited;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) throw signal.reason instanceof CtrbakeError ? signal.reason : new CtrbakeError('E_INTERRUPTED', `${tool.name} was interrupted`);
  if (inputError !== undefined) throw inputError;
  if (status.code !== 0) {
    throw new CommandError(
      E_SQUASHFS_TOOL_FAILED,
      `${tool.name} failed (${status.code === null ? `signal ${status.sig}` : `exit status ${status.code}`}): ${stderr.trim().split('\n').slice(-5).join(' | ') || 'no message'}`,
      { details: { tool: tool.name, args, stderr } },
    );
  }
}
