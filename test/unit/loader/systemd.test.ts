import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { escapeSystemdPath, mountUnitName } from '../../../src/loader/systemd.js';

describe('systemd path escaping', () => {
  it.each(['/usr/share/ctrbake/store', '/run/ctrbake-store', '/opt/my.store/x_y', '/mnt/.hidden', '/data/a+b', '/'])('%s matches systemd-escape --path', async (path) => {
    const r = await execa('systemd-escape', ['--path', path]);
    expect(escapeSystemdPath(path)).toBe(r.stdout.trim());
  });

  it('names the mount unit after the mount point', () => {
    expect(mountUnitName('/usr/share/ctrbake/store')).toBe('usr-share-ctrbake-store.mount');
  });
});
