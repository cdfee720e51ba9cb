/**
 * json_drop_ids from the device script (templates/loader/ctrbake-device.sh): the awk filter
 * that removes an interrupted podman load's entries from containers/storage's layers.json and
 * images.json. Run with BusyBox sh/awk, as on a device.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
let fn: string;

beforeAll(async () => {
  dir = await mkdtemp('/tmp/ctrbake-json-');
  const script = await readFile(new URL('../../../templates/loader/ctrbake-device.sh', import.meta.url), 'utf8');
  const m = /^json_drop_ids\(\) \{\n[\s\S]*?\n\}\n/m.exec(script);
  if (!m) throw new Error('json_drop_ids not found in the device script');
  fn = `sync_path() { sync "$1"; }\n${m[0]}`;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function dropIds(text: string, ids: string): Promise<{ exitCode: number; text: string }> {
  const file = join(dir, 'x.json');
  await writeFile(file, text);
  const r = await execa('busybox', ['sh', '-c', `${fn}\njson_drop_ids "$1" "$2"`, 'sh', file, ids], { reject: false });
  return { exitCode: r.exitCode ?? -1, text: await readFile(file, 'utf8') };
}

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

describe('json_drop_ids (device script)', () => {
  it('drops the listed objects, keeps the others byte for byte, incl. nested objects and escaped quotes/braces in strings', async () => {
    const objects = [
      { id: A, names: ['x:1'], metadata: '{"signatures-sizes":{"sha256:1":[]}} } ] {' },
      { id: B, parent: A, flags: { incomplete: true }, uidset: [0] },
      { id: C, 'big-data-names': ['manifest-sha256:2'], note: 'back\\slash \\" quote' },
    ];
    const r = await dropIds(JSON.stringify(objects), `${B} ${'d'.repeat(64)}`);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.text)).toEqual([objects[0], objects[2]]);
    expect(r.text.trim()).toBe(`[${JSON.stringify(objects[0])},${JSON.stringify(objects[2])}]`);
  });

  it('an empty array and dropping everything give []', async () => {
    expect((await dropIds('[]', A)).text.trim()).toBe('[]');
    expect(JSON.parse((await dropIds(JSON.stringify([{ id: A }, { id: B }]), `${A} ${B}`)).text)).toEqual([]);
  });

  it('fails and leaves the file as it was when it is not an array of objects starting with "id"', async () => {
    for (const bad of [`[{"id":"${A}"`, `[{"name":"x","id":"${A}"}]`, `[["${A}"]]`, `[{"id":"${A}"}]]`]) {
      const r = await dropIds(bad, A);
      expect(r.exitCode, bad).not.toBe(0);
      expect(r.text, bad).toBe(bad);
    }
  });
});
