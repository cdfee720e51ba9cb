#!/usr/bin/env node
// Gives a tree written by a root bake back to the build user: `node chown-tree.mjs UID:GID DIR`.
// Run through CTRBAKE_RUNNER (the same sudoers rule as the bake: node), so BitBake, running
// as that user, can package and clean what the bake wrote. Symlinks are changed, not followed.
import { lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const [owner, dir] = process.argv.slice(2);
const m = /^(\d+):(\d+)$/.exec(owner ?? '');
if (!m || !dir) {
  process.stderr.write('usage: chown-tree.mjs UID:GID DIR\n');
  process.exit(2);
}
const uid = Number(m[1]);
const gid = Number(m[2]);

async function walk(path) {
  await lchown(path, uid, gid);
  const st = await lstat(path);
  if (!st.isDirectory()) return;
  for (const name of await readdir(path)) await walk(join(path, name));
}
await walk(dir);
