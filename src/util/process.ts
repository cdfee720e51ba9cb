/**
 * The one place ctrbake finds and runs host programs (engines, skopeo, SquashFS tools,
 * mount tools). Callers turn a missing program or a failed run into their own error code;
 * these helpers only find, run and report what happened.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';

/**
 * The executable path of `program`: a name looked up in the absolute directories of PATH
 * (relative ones are skipped: they depend on the working directory), or a path checked as is.
 */
export async function findProgram(program: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  const candidates = program.includes('/') ? [program] : path.split(delimiter).filter((d) => isAbsolute(d)).map((d) => join(d, program));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * The command prefix that makes a child die with ctrbake even on SIGKILL (parent-death signal
 * via util-linux setpriv), so a killed run leaves no child writing behind it.
 */
export async function dieWithParentPrefix(): Promise<string[]> {
  const setpriv = await findProgram('setpriv');
  return setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : [];
}

export interface RunOptions {
  /** The whole environment of the child (nothing inherited); default: ours. */
  env?: Record<string, string>;
  /** Bytes or a file for stdin; default: none. */
  input?: string | Uint8Array;
  inputFile?: string;
  /** Write stdout to this file instead of returning it. */
  stdoutFile?: string;
  timeoutMs?: number;
  /** Aborting kills the child; runProgram then throws the signal's reason. */
  signal?: AbortSignal;
}

export interface RunResult {
  /** Without the final newline; '' when it went to stdoutFile. */
  stdout: string;
  stderr: string;
  /** -1 when the child did not exit by itself (killed, timed out, not started). */
  exitCode: number;
  /** Why there is no exit code, when there is none. */
  failure?: string;
}

/** Runs `file args` to its end. A non-zero exit is a result, not an exception: callers name the error. */
export async function runProgram(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  options.signal?.throwIfAborted();
  const result = await execa(file, args, {
    reject: false,
    stripFinalNewline: true,
    ...(options.env ? { extendEnv: false, env: options.env } : {}),
    ...(options.input !== undefined ? { input: options.input } : options.inputFile !== undefined ? { inputFile: options.inputFile } : { stdin: 'ignore' as const }),
    ...(options.stdoutFile !== undefined ? { stdout: { file: options.stdoutFile } } : {}),
    ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  });
  if (result.isCanceled && options.signal?.aborted) throw options.signal.reason;
  const exitCode = result.exitCode ?? -1;
  return {
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
    exitCode,
    ...(result.failed && exitCode === -1 ? { failure: result.shortMessage } : {}),
  };
}

export interface StreamedRunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last `tailBytes` of stdout and stderr, interleaved. */
  outputTail: string;
}

/**
 * Spawns `file args` and pipes `input` into its stdin. If reading `input` throws, the child
 * is killed and that error is rethrown: it says more than the program's complaint about a
 * cut stream. Aborting kills the child; the caller checks its signal after the call.
 */
export async function runWithStdin(file: string, args: readonly string[], input: AsyncIterable<Buffer>, options: { signal?: AbortSignal; tailBytes?: number } = {}): Promise<StreamedRunResult> {
  options.signal?.throwIfAborted();
  const tailBytes = options.tailBytes ?? 4000;
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let outputTail = '';
  const keep = (d: Buffer) => {
    outputTail = (outputTail + d.toString()).slice(-tailBytes);
  };
  child.stderr.on('data', keep);
  child.stdout.on('data', keep);
  const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code, sig }));
  });
  const onAbort = () => child.kill('SIGKILL');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let inputError: unknown;
  try {
    await pipeline(Readable.from(input, { objectMode: false }), child.stdin);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // EPIPE: the program stopped reading (it failed); its exit status and output tell why.
    if (code !== 'EPIPE' && code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      inputError = error;
      child.kill('SIGKILL');
    }
  }
  let status: { code: number | null; sig: NodeJS.Signals | null };
  try {
    status = await exited;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (inputError !== undefined && !options.signal?.aborted) throw inputError;
  return { exitCode: status.code, signal: status.sig, outputTail };
}
