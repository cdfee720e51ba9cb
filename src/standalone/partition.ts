/**
 * The payload as its own partition: the loader's payload dir (shipped manifest, images.list,
 * ctrbake.conf, the archives or the store image) becomes a SquashFS partition image, and the
 * overlay keeps an empty mount point plus what mounts the partition there before ctrbake's
 * prepare step: an init script (busybox, sysvinit) or a mount unit (systemd).
 *
 * The tar fed to the SquashFS writer is made from files ctrbake itself just wrote: owner
 * root:root, modes as written, mtime SOURCE_DATE_EPOCH, names sorted, so the image is the
 * same bytes for the same payload.
 */
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CtrbakeError } from '../errors.js';
import { binaryString, encodeTar, type TarWriteEntry } from '../formats/tar/index.js';
import type { LoaderInit } from '../loader/options.js';
import { mountUnitName } from '../loader/systemd.js';
import { renderTemplate } from '../loader/templates.js';
import { createSquashfs, SQUASHFS_SUBCOMMAND_FLAGS, type SquashfsBackendName, type SquashfsCompression, type SquashfsResult } from '../squashfs/index.js';
import type { Reporter } from '../util/reporter.js';

const TEMPLATE_ROOT = new URL('../../templates/standalone/', import.meta.url);

/** Start numbers of the mount script when the loader's are unknown: before its defaults (59 busybox, 19 sysvinit). */
export const PAYLOAD_MOUNT_ORDER = { busybox: 58, sysvinit: 18 } as const;

/** The start number just before the loader's prepare script, read from the files it wrote. */
export function mountOrderBefore(init: LoaderInit, loaderFiles: readonly string[]): number | undefined {
  const re = init === 'busybox' ? /^etc\/init\.d\/S(\d\d)ctrbake$/ : /^etc\/rc3\.d\/S(\d\d)ctrbake$/;
  for (const f of loaderFiles) {
    const m = re.exec(f);
    if (m) return Math.max(0, Number(m[1]) - 1);
  }
  return undefined;
}

async function template(name: string): Promise<string> {
  try {
    return await readFile(new URL(name, TEMPLATE_ROOT), 'utf8');
  } catch (error) {
    throw new CtrbakeError('E_INTERNAL', `the template ${name} is missing from this ctrbake install (${TEMPLATE_ROOT.pathname}); reinstall ctrbake`, { cause: error });
  }
}

/** Relative paths under dir, parents before children, sorted by name. */
async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, prefix))).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    out.push(rel);
    if ((await lstat(join(dir, rel))).isDirectory()) out.push(...(await walk(dir, rel)));
  }
  return out;
}

async function* directoryEntries(dir: string, mtime: number): AsyncGenerator<TarWriteEntry> {
  for (const rel of await walk(dir)) {
    const path = join(dir, rel);
    const st = await lstat(path);
    const common = { path: binaryString(rel), mode: st.mode & 0o7777, uid: 0, gid: 0, mtime };
    if (st.isDirectory()) {
      yield { ...common, type: 'dir' };
    } else if (st.isSymbolicLink()) {
      yield { ...common, type: 'symlink', linkname: binaryString(await readlink(path)) };
    } else if (st.isFile()) {
      yield { ...common, type: 'file', size: st.size, content: createReadStream(path) };
    } else {
      throw new CtrbakeError('E_INTERNAL', `${path}: the payload holds something that is neither a file, a directory nor a symlink`);
    }
  }
}

export interface PartitionImageOptions {
  payloadDir: string;
  outPath: string;
  compression: SquashfsCompression;
  backend: SquashfsBackendName;
  sourceDateEpoch: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** Writes the SquashFS image of a directory (streamed through a tar; no temp copy). */
export async function writePartitionImage(options: PartitionImageOptions): Promise<SquashfsResult> {
  const input = encodeTar(directoryEntries(options.payloadDir, options.sourceDateEpoch));
  try {
    return await createSquashfs({
      input,
      outPath: options.outPath,
      backend: options.backend,
      compression: options.compression,
      sourceDateEpoch: options.sourceDateEpoch,
      flags: SQUASHFS_SUBCOMMAND_FLAGS,
      reporter: options.reporter,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } finally {
    // Closes the file being read when the writer stopped early.
    await input.return(undefined);
  }
}

export interface MountFilesOptions {
  overlayDir: string;
  init: LoaderInit;
  device: string;
  payloadDir: string;
  /** systemd: the loader's store mount unit, which must come after the payload mount. */
  storeMountUnit?: string;
  /** busybox/sysvinit: start number of the mount script (default PAYLOAD_MOUNT_ORDER). */
  order?: number;
}

/** Writes what mounts the partition at the payload dir; returns the files written (relative). */
export async function writeMountFiles(options: MountFilesOptions): Promise<string[]> {
  const values = { DEVICE: options.device, PAYLOAD_DIR: options.payloadDir };
  const files: string[] = [];
  const write = async (devicePath: string, text: string, mode: number) => {
    const at = join(options.overlayDir, devicePath);
    await mkdir(dirname(at), { recursive: true, mode: 0o755 });
    await writeFile(at, text);
    await chmod(at, mode);
    files.push(devicePath.replace(/^\//, ''));
  };
  const link = async (devicePath: string, target: string) => {
    const at = join(options.overlayDir, devicePath);
    await mkdir(dirname(at), { recursive: true, mode: 0o755 });
    await symlink(target, at);
    files.push(devicePath.replace(/^\//, ''));
  };
  if (options.init === 'systemd') {
    const unit = mountUnitName(options.payloadDir);
    const text = renderTemplate(await template('payload.mount.in'), { ...values, BEFORE: options.storeMountUnit ? ` ${options.storeMountUnit}` : '' }, 'payload.mount.in');
    await write(`/etc/systemd/system/${unit}`, text, 0o644);
    await link(`/etc/systemd/system/local-fs.target.wants/${unit}`, `../${unit}`);
    return files;
  }
  const script = renderTemplate(await template('payload-mount.sh.in'), values, 'payload-mount.sh.in');
  const order = String(options.order ?? PAYLOAD_MOUNT_ORDER[options.init]).padStart(2, '0');
  if (options.init === 'busybox') {
    await write(`/etc/init.d/S${order}ctrbake-payload`, script, 0o755);
  } else {
    await write('/etc/init.d/ctrbake-payload', script, 0o755);
    for (const level of [2, 3, 4, 5]) await link(`/etc/rc${level}.d/S${order}ctrbake-payload`, '../init.d/ctrbake-payload');
  }
  return files;
}

/** Empties a directory, keeping it (the mount point). */
export async function emptyDirectory(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
}
