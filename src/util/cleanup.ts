/**
 * Process-wide registry of cleanups (engine teardown, temp dirs, mounts) that must run
 * even when the process is told to stop. Owners register a cleanup when they acquire a
 * resource and unregister it once they released it themselves; on SIGINT/SIGTERM the CLI
 * entry runs what is still registered, newest first, then exits.
 * Cleanups must be idempotent: an owner may be in the middle of releasing when a signal lands.
 */

type Cleanup = () => Promise<void> | void;

const cleanups = new Set<{ name: string; fn: Cleanup }>();

export function registerCleanup(name: string, fn: Cleanup): () => void {
  const entry = { name, fn };
  cleanups.add(entry);
  return () => {
    cleanups.delete(entry);
  };
}

/** Runs every registered cleanup, newest first; errors are collected, never thrown. */
export async function runCleanups(): Promise<Error[]> {
  const errors: Error[] = [];
  const entries = [...cleanups].reverse();
  cleanups.clear();
  for (const entry of entries) {
    try {
      await entry.fn();
    } catch (error) {
      errors.push(new Error(`cleanup ${entry.name} failed`, { cause: error }));
    }
  }
  return errors;
}

export function pendingCleanups(): string[] {
  return [...cleanups].map((c) => c.name);
}
