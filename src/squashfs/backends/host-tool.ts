/**
 * Finding and running a host SquashFS tool (tar2sqfs, sqfstar) with a tar stream on stdin.
 * The child is killed when the input fails validation or the caller aborts; its stderr
 * tail goes into the error.
 */
import { CommandError, CtrbakeError } from '../../errors.js';
import { findProgram, runProgram, runWithStdin } from '../../util/process.js';

export const E_SQUASHFS_TOOL_MISSING = 'E_SQUASHFS_TOOL_MISSING';
export const E_SQUASHFS_TOOL_VERSION = 'E_SQUASHFS_TOOL_VERSION';
export const E_SQUASHFS_TOOL_FAILED = 'E_SQUASHFS_TOOL_FAILED';

export interface HostTool {
  name: string;
  path: string;
}

/** Absolute path of `name` on PATH, or an error naming the Debian package that has it. */
export async function findHostTool(name: string, debianPackage: string, backendFlag: string, pathEnv = process.env.PATH ?? ''): Promise<HostTool> {
  const path = await findProgram(name, pathEnv);
  if (path) return { name, path };
  throw new CommandError(
    E_SQUASHFS_TOOL_MISSING,
    `${name} was not found on PATH; install the Debian package ${debianPackage} (apt-get install ${debianPackage}) or use ${backendFlag} builtin`,
    { details: { tool: name, package: debianPackage } },
  );
}

/** Runs a tool without stdin and returns stdout+stderr (for version checks). */
export async function captureOutput(tool: HostTool, args: string[]): Promise<{ code: number | null; output: string }> {
  const r = await runProgram(tool.path, args);
  return { code: r.exitCode === -1 ? null : r.exitCode, output: [r.stdout, r.stderr].filter((t) => t !== '').join('\n') };
}

/**
 * Spawns `tool args`, pipes `input` into its stdin and waits for it. If reading `input`
 * throws (bad tar), the child is killed and that error is rethrown: it says more than the
 * tool's complaint about a cut stream.
 */
export async function runHostTool(tool: HostTool, args: string[], input: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
  const status = await runWithStdin(tool.path, args, input, signal ? { signal } : {});
  if (signal?.aborted) throw signal.reason instanceof CtrbakeError ? signal.reason : new CtrbakeError('E_INTERRUPTED', `${tool.name} was interrupted`);
  if (status.exitCode !== 0) {
    throw new CommandError(
      E_SQUASHFS_TOOL_FAILED,
      `${tool.name} failed (${status.exitCode === null ? `signal ${status.signal}` : `exit status ${status.exitCode}`}): ${status.outputTail.trim().split('\n').slice(-5).join(' | ') || 'no message'}`,
      { details: { tool: tool.name, args, stderr: status.outputTail } },
    );
  }
}
