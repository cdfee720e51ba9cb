/**
 * A minimal BusyBox root filesystem, laid out the way Buildroot's skeleton and initscripts
 * package do (without Buildroot): the static busybox with a link per applet, an inittab that
 * runs /etc/init.d/rcS, and an rcS that starts /etc/init.d/S??* in order.
 */
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { execa } from 'execa';

export const HOST_BUSYBOX = '/bin/busybox';

export const INITTAB = `# BusyBox init (the Buildroot default): mount, then the rc scripts, then a shell.
::sysinit:/bin/mount -t proc proc /proc
::sysinit:/bin/mount -o remount,rw /
::sysinit:/bin/mkdir -p /dev/pts /dev/shm
::sysinit:/bin/mount -a
::sysinit:/etc/init.d/rcS
::respawn:-/bin/sh
::shutdown:/etc/init.d/rcK
::shutdown:/bin/umount -a -r
`;

export const RCS = `#!/bin/sh
# Starts every /etc/init.d/S??* script in order with "start".
for script in /etc/init.d/S??*; do
	[ -f "$script" ] || continue
	"$script" start
done
`;

export const RCK = `#!/bin/sh
# Stops every /etc/init.d/S??* script in reverse order with "stop".
for script in $(ls -r /etc/init.d/S??*); do
	[ -f "$script" ] || continue
	"$script" stop
done
`;

export const FSTAB = `# <file system> <mount pt> <type> <options> <dump> <pass>
/dev/root / ext2 rw,noauto 0 1
proc /proc proc defaults 0 0
tmpfs /tmp tmpfs mode=1777 0 0
`;

/** Writes the rootfs into dir (which must exist and be empty). */
export async function writeBusyboxRootfs(dir: string): Promise<void> {
  const file = await execa('file', ['-L', HOST_BUSYBOX], { reject: false });
  if (file.exitCode !== 0 || !String(file.stdout).includes('statically linked')) {
    throw new Error(`the BusyBox rootfs needs a static ${HOST_BUSYBOX}: install busybox-static (scripts/install-deps.sh)`);
  }
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/init.d', 'dev', 'proc', 'sys', 'tmp', 'run', 'var/lib', 'root']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await copyFile(HOST_BUSYBOX, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  const applets = String((await execa(HOST_BUSYBOX, ['--list-full'])).stdout).split('\n').filter(Boolean);
  for (const applet of applets) {
    if (applet === 'bin/busybox') continue;
    const at = join(dir, applet);
    await mkdir(dirname(at), { recursive: true });
    await symlink(relative(dirname(at), join(dir, 'bin/busybox')), at);
  }
  await writeFile(join(dir, 'etc/inittab'), INITTAB);
  await writeFile(join(dir, 'etc/fstab'), FSTAB);
  await writeFile(join(dir, 'etc/init.d/rcS'), RCS, { mode: 0o755 });
  await writeFile(join(dir, 'etc/init.d/rcK'), RCK, { mode: 0o755 });
  await writeFile(join(dir, 'etc/hostname'), 'buildroot\n');
}
