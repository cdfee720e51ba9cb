import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../fixtures/temp-dir.js';
import { parseDockerManifest, readDockerArchive, writeDockerArchive } from '../../../src/formats/docker-archive.js';
import { readOciArchive, writeOciArchive } from '../../../src/formats/oci-archive.js';
import { indexTarFile, normalizeTar, readTarEntry } from '../../../src/formats/tar/index.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('docker-archive', () => {
  const temp = useTempDir('ctrbake-docker-archive-');

  /** A layer tar made by GNU tar (an independent writer), its bytes and diff_id. */
  async function layer(): Promise<{ path: string; bytes: Buffer; diffId: string }> {
    await mkdir(join(temp.path(), 'rootfs'), { recursive: true });
    await writeFile(join(temp.path(), 'rootfs', 'hello'), 'hello\n');
    const path = join(temp.path(), 'layer.tar');
    await execa('tar', ['--format=gnu', '--owner=0', '--group=0', '--mtime=@0', '-cf', path, '-C', join(temp.path(), 'rootfs'), '.']);
    const bytes = await readFile(path);
    return { path, bytes, diffId: `sha256:${sha256(bytes)}` };
  }

  it('writes an archive its reader reads back: tags, config bytes and each layer as a byte range', async () => {
    const l = await layer();
    const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [l.diffId] } }));
    const configName = `${sha256(configBytes)}.json`;
    const out = join(temp.path(), 'image.tar');
    await writeDockerArchive(out, [{ configBytes, configName, repoTags: ['example.com/a:1'], layers: [{ path: l.path, name: `${l.diffId.slice(7)}/layer.tar` }] }], 5);
    const { stdout } = await execa('tar', ['-tvf', out]);
    expect(stdout).toMatch(/manifest\.json/);
    const [image, ...rest] = await readDockerArchive(out, await indexTarFile(out));
    expect(rest).toEqual([]);
    expect(image).toMatchObject({ repoTags: ['example.com/a:1'], configName, config: { architecture: 'amd64' } });
    expect(image!.configBytes.equals(configBytes)).toBe(true);
    expect((await readTarEntry(out, image!.layers[0]!)).equals(l.bytes)).toBe(true);
  });

  it('follows symlinked layers as podman saves them (<id>/layer.tar -> ../<diffid>.tar)', async () => {
    const l = await layer();
    const tree = join(temp.path(), 'saved');
    await mkdir(join(tree, 'abc'), { recursive: true });
    await writeFile(join(tree, 'def.tar'), l.bytes);
    await symlink('../def.tar', join(tree, 'abc', 'layer.tar'));
    await writeFile(join(tree, 'cfg.json'), JSON.stringify({ rootfs: { diff_ids: [l.diffId] } }));
    await writeFile(join(tree, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', RepoTags: null, Layers: ['abc/layer.tar'] }]));
    await execa('tar', ['-cf', join(temp.path(), 'podman.tar'), '-C', tree, '.']);
    const [image] = await readDockerArchive(join(temp.path(), 'podman.tar'), await indexTarFile(join(temp.path(), 'podman.tar')));
    expect(image!.repoTags).toEqual([]);
    expect(image!.layers[0]).toMatchObject({ name: 'def.tar', type: 'file', size: l.bytes.length });
  });

  it.each([
    ['not JSON', '{', /manifest\.json is not JSON/],
    ['not a list', '{}', /manifest\.json is not a list of images/],
    ['no Config', '[{"Layers":[]}]', /manifest\.json\[0\]\.Config/],
    ['Layers not a list', '[{"Config":"c.json","Layers":"x"}]', /manifest\.json\[0\]\.Layers/],
    ['a RepoTags item not a string', '[{"Config":"c.json","Layers":[],"RepoTags":[1]}]', /manifest\.json\[0\]\.RepoTags/],
  ])('refuses a manifest.json that is %s, naming the field', (_what, text, message) => {
    expect(() => parseDockerManifest(text, (why) => new Error(why))).toThrow(message);
  });

  it('converts a normalized docker-archive into an OCI archive whose reader finds each layer', async () => {
    const l = await layer();
    const configBytes = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [l.diffId] } }));
    await writeDockerArchive(join(temp.path(), 'd.tar'), [{ configBytes, configName: `${sha256(configBytes)}.json`, repoTags: ['x:1'], layers: [{ path: l.path, name: 'l/layer.tar' }] }]);
    await normalizeTar(join(temp.path(), 'd.tar'), join(temp.path(), 'n.tar'), 0);
    const [saved] = await readDockerArchive(join(temp.path(), 'n.tar'), await indexTarFile(join(temp.path(), 'n.tar')));
    await mkdir(join(temp.path(), 'scratch'));
    const { manifestDigest } = await writeOciArchive(join(temp.path(), 'o.tar'), join(temp.path(), 'n.tar'), saved!, 'x:1', join(temp.path(), 'scratch'), 0);
    const entries = await indexTarFile(join(temp.path(), 'o.tar'));
    expect(entries.map((e) => e.name)).toContain(`blobs/sha256/${manifestDigest.slice(7)}`);
    const [image] = await readOciArchive(join(temp.path(), 'o.tar'), entries);
    expect(image!.config).toMatchObject({ digest: `sha256:${sha256(configBytes)}`, size: configBytes.length });
    expect(image!.layers.map((x) => [x.digest, x.mediaType])).toEqual([[l.diffId, 'application/vnd.oci.image.layer.v1.tar']]);
    expect((await readTarEntry(join(temp.path(), 'o.tar'), image!.layers[0]!.entry!)).equals(l.bytes)).toBe(true);
    await expect(readOciArchive(join(temp.path(), 'n.tar'), await indexTarFile(join(temp.path(), 'n.tar')))).rejects.toMatchObject({ code: 'E_ARCHIVE_INVALID', message: expect.stringContaining('no index.json') });
  });
});
