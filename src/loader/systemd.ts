/** systemd names: a mount unit is named after its mount point (systemd-escape --path). */

export function escapeSystemdPath(path: string): string {
  const trimmed = path.replace(/\/+/g, '/').replace(/^\/|\/$/g, '');
  if (trimmed === '') return '-';
  // Like systemd-escape --path: "/" becomes "-"; only a leading "." of the whole name is escaped.
  return [...Buffer.from(trimmed, 'utf8')]
    .map((byte, i) => {
      const c = String.fromCharCode(byte);
      if (c === '/') return '-';
      if (/[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0)) return c;
      return `\\x${byte.toString(16).padStart(2, '0')}`;
    })
    .join('');
}

export function mountUnitName(where: string): string {
  return `${escapeSystemdPath(where)}.mount`;
}
