/**
 * Options that several commands share, each defined once. A table is a plain object of yargs
 * options (`y.options(TABLE)`): yargs infers the argv type from it, so handlers need no cast.
 * An option whose help text differs by command stays in its command's module. The budget
 * flags live apart (budget-options.ts): a command's modules name only flags it has.
 */
import type { Options } from 'yargs';

export const ENGINES = ['docker', 'podman'] as const;

export const LOCK_INPUT_OPTION = {
  lock: { type: 'string', demandOption: true, describe: 'lock file written by `ctrbake lock`' },
} as const satisfies Record<string, Options>;

export const AUTHFILE_OPTION = {
  authfile: { type: 'string', describe: 'registry credentials: docker config.json or containers auth.json' },
} as const satisfies Record<string, Options>;

/**
 * For commands with REF positionals. Not `array: true`: that would swallow the REF arguments
 * after it; repeating the flag gives an array.
 */
export const INSECURE_REGISTRY_OPTION = {
  'insecure-registry': { type: 'string', describe: 'HOST:PORT spoken to over plain HTTP (repeat the flag for several)' },
} as const satisfies Record<string, Options>;

/** A flag given once is a string, repeated an array: always an array for the library. */
export function repeated(value: string | string[] | undefined): string[] {
  return ([] as string[]).concat(value ?? []);
}

export const IMAGES_FILE_OPTION = {
  images: { type: 'string', describe: 'file with one reference per line (# comments)' },
} as const satisfies Record<string, Options>;

/** Where the loader puts things on the device (`loader`, `build`). */
export const DEVICE_DIR_OPTIONS = {
  'payload-dir': { type: 'string', describe: 'read-only payload dir on the device (default /usr/share/ctrbake)' },
  'data-dir': { type: 'string', describe: 'writable loader state on the device (default /var/lib/ctrbake)' },
} as const satisfies Record<string, Options>;
