/**
 * The rootfs overlay dir of `ctrbake loader` (and `ctrbake build`): what a previous one looks
 * like for the output guard (src/util/output.ts). No marker file is added: the overlay is
 * copied whole over the rootfs. The device script ctrbake writes at usr/sbin/ctrbake-device,
 * recognised by its header, marks it.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { checkOutput, type CheckedOutput, type NamedPath } from '../util/output.js';

const DEVICE_SCRIPT = 'usr/sbin/ctrbake-device';
const DEVICE_SCRIPT_HEADER = '#!/bin/sh\n# ctrbake-device: ';

export async function isLoaderOutput(dir: string): Promise<boolean> {
  try {
    const fh = await open(join(dir, DEVICE_SCRIPT), 'r');
    try {
      const buf = Buffer.alloc(DEVICE_SCRIPT_HEADER.length);
      await fh.read(buf, 0, buf.length, 0);
      return buf.toString('utf8') === DEVICE_SCRIPT_HEADER;
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

export const LOADER_OUTPUT_SIGNATURE = `a rootfs overlay with the ${DEVICE_SCRIPT} that ctrbake writes`;

/** The output guard of `loader -o` / `build -o`. */
export function checkOverlayOutput(dir: string, command: 'loader' | 'build', inputs: readonly NamedPath[]): Promise<CheckedOutput> {
  return checkOutput({ path: dir, flag: '-o', command, kind: 'directory', signature: LOADER_OUTPUT_SIGNATURE, isOurs: isLoaderOutput }, inputs);
}
