/**
 * What can be checked of the layer's metadata without BitBake: documented tunables, the
 * conventions (no hidden sudo, no nostamp, no QA switched off, nothing global), vardeps that
 * cover every variable the tasks pass to the CLI, and shell bodies that parse and pass
 * shellcheck after BitBake-style expansion with sample values.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CLASS_FILE,
  ROOTFS_CLASS_FILE,
  expand,
  layerFile,
  python,
  readClass,
  shellFunctions,
  taskScript,
  weakDefaults,
} from '../../integration/bitbake-shell.js';

const classes = { 'ctrbake.bbclass': readClass(CLASS_FILE), 'ctrbake-rootfs-store.bbclass': readClass(ROOTFS_CLASS_FILE) };
const layerConf = readFileSync(layerFile('conf', 'layer.conf'), 'utf8');
const ctrbake = classes['ctrbake.bbclass'];

/** Sample values as a build would have them (paths made up, nothing is run here). */
const SAMPLE: Record<string, string> = {
  PN: 'bundle', D: '/b/work/image', WORKDIR: '/b/work', DL_DIR: '/b/downloads', BB_NO_NETWORK: '',
  SOURCE_DATE_EPOCH: '1700000000', CTRBAKE_LAYERDIR: '/layers/ctrbake', CTRBAKE_LOCK_ID: '0123456789abcdef0123456789abcdef',
  CTRBAKE_SRC: '/b/work/sources/ctrbake',
  CTRBAKE_PLATFORM: 'linux/arm64/v8', CTRBAKE_MODE: 'store', CTRBAKE_ENGINE: 'docker', CTRBAKE_STORAGE_DRIVER: 'overlay2', CTRBAKE_BUILDER: 'native',
  CTRBAKE_CLI_ID: 'ctrbake@0.1.0', CTRBAKE_ENGINE_RDEPENDS: 'docker', CTRBAKE_INIT: 'systemd',
  IMAGE_ROOTFS: '/b/rootfs', CTRBAKE_ROOTFS_STORE: 'bundle',
};
function sampleVars(text: string, overrides: Record<string, string> = {}): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [k, v] of weakDefaults(text)) if (!v.includes('${@')) vars[k] = v;
  for (const m of text.matchAll(/^([A-Z][A-Z0-9_]*) = "([^"]*)"$/gm)) vars[m[1]!] = m[2]!;
  return { ...vars, ...SAMPLE, ...overrides };
}

describe('classes', () => {
  it.each(Object.entries(classes))('%s: every tunable (?=) has a [doc] and a CTRBAKE_ name', (_name, text) => {
    const tunables = [...weakDefaults(text).keys()];
    expect(tunables.length).toBeGreaterThan(3);
    for (const v of tunables) {
      expect(v, v).toMatch(/^CTRBAKE_/);
      expect(text, `${v}[doc]`).toMatch(new RegExp(`^${v}\\[doc\\] = ".{10,}"$`, 'm'));
    }
  });

  it.each(Object.entries(classes))('%s: no nostamp, no QA switched off, no sudo, no global INHERIT, no host daemon', (_name, text) => {
    const code = text.replace(/^\s*#.*$/gm, '').replace(/^[A-Z0-9_]+\[doc\] = .*$/gm, '');
    expect(code).not.toMatch(/nostamp/);
    expect(code).not.toMatch(/do_package_qa\[noexec\]/);
    expect(code).not.toMatch(/INSANE_SKIP|ERROR_QA|WARN_QA/);
    expect(code).not.toMatch(/^\s*INHERIT\b/m);
    expect(code).not.toMatch(/\/var\/run\/docker\.sock|\/run\/docker\.sock|DOCKER_HOST|systemctl/);
    // sudo may only be named in messages, never run
    for (const [name, body] of shellFunctions(text)) {
      const commands = body.split('\n').filter((line) => !/^\s*(bbfatal|bbnote|bbwarn|#)/.test(line.replace(/^.*\|\| /, '')));
      expect(commands.join('\n'), name).not.toMatch(/\bsudo\b/);
    }
  });

  it('the runner is empty by default: nothing gains root behind the user\'s back', () => {
    expect(weakDefaults(ctrbake).get('CTRBAKE_RUNNER')).toBe('');
  });

  it('[network] is set on tasks only, and only where the class says why', () => {
    const flags = [...ctrbake.matchAll(/^(\S+)\[network\] = "1"$/gm)].map((m) => m[1]);
    expect(flags).toEqual(['do_ctrbake_bake']);
    // do_fetch has [network] = "1" from base.bbclass; the images are SRC_URI entries for the
    // ctrbake:// fetcher, and do_unpack's postfunc writes the bake's lock
    expect(ctrbake).toMatch(/^SRC_URI \+= "\$\{CTRBAKE_SRC_URI\}"$/m);
    expect(ctrbake).toMatch(/^do_unpack\[postfuncs\] \+= "ctrbake_do_unpack"$/m);
  });

  it('every CTRBAKE_ variable a task passes to the CLI is in its signature or deliberately excluded', () => {
    const hostVars = /^CTRBAKE_HOST_VARS = "([^"]*)"$/m.exec(ctrbake)![1]!.split(/\s+/);
    const derived = ['CTRBAKE_LOCK', 'CTRBAKE_CACHE', 'CTRBAKE_B', 'CTRBAKE_SRC'];
    const vardeps = (fn: string): string[] => {
      const m = new RegExp(`^${fn}\\[vardeps\\] \\+= "([^"]*)"`, 'ms').exec(ctrbake);
      return m ? m[1]!.replace(/\\\n/g, ' ').split(/\s+/).filter(Boolean) : [];
    };
    for (const fn of ['do_ctrbake_bake']) {
      const body = shellFunctions(ctrbake).get(fn)!;
      const used = new Set([...body.matchAll(/\$\{(CTRBAKE_[A-Z_]+)\}/g)].map((m) => m[1]!));
      const declared = new Set([...vardeps(fn), ...hostVars, ...derived]);
      for (const v of used) expect(declared.has(v) || body.includes(`\${${v}}`), `${fn} reads ${v}`).toBe(true);
    }
    // the bake's outputs depend on these: they must be listed explicitly
    for (const v of ['CTRBAKE_LOCK_ID', 'CTRBAKE_PLATFORM', 'CTRBAKE_MODE', 'CTRBAKE_ENGINE', 'CTRBAKE_STORAGE_DRIVER', 'CTRBAKE_LAYOUT', 'CTRBAKE_INIT', 'CTRBAKE_COMPRESSION', 'CTRBAKE_CLI_ID']) {
      expect(vardeps('do_ctrbake_bake'), v).toContain(v);
    }
    expect(vardeps('do_ctrbake_bake')).toContain('CTRBAKE_SRC_URI');
    expect(vardeps('ctrbake_do_unpack')).toContain('CTRBAKE_SRC_URI');
    // host paths never enter a signature, also not through the CLI's identity
    expect(ctrbake).toMatch(/^CTRBAKE_CLI_ID\[vardepvalue\] = "\$\{CTRBAKE_CLI_ID\}"$/m);
    expect(hostVars).toEqual(expect.arrayContaining(['CTRBAKE_LAYERDIR', 'CTRBAKE_BIN', 'CTRBAKE_RUNNER', 'CTRBAKE_HOST_PATH', 'CTRBAKE_AUTHFILE', 'DL_DIR']));
  });

  it('the bake\'s [cleandirs] never holds the unpacked images, also where UNPACKDIR does not exist (scarthgap: WORKDIR)', () => {
    const b = /^CTRBAKE_B = "([^"]*)"$/m.exec(ctrbake)![1]!;
    const src = /^CTRBAKE_SRC = "([^"]*)"$/m.exec(ctrbake)![1]!;
    // CTRBAKE_SRC is UNPACKDIR/ctrbake, or WORKDIR/ctrbake without UNPACKDIR
    expect(src).toBe("${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}/ctrbake");
    const expand = (v: string, dir: string) => v.replace("${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}", dir).replace('${WORKDIR}', '/w');
    for (const unpackdir of ['/w/sources', '/w']) {
      const bDir = expand(b, '/w');
      const srcDir = expand(src, unpackdir);
      expect(bDir === srcDir || srcDir.startsWith(`${bDir}/`) || bDir.startsWith(`${srcDir}/`), `${bDir} vs ${srcDir}`).toBe(false);
    }
  });

  it('the bake has its own task between unpack and install, with [dirs] and [cleandirs]', () => {
    expect(ctrbake).toMatch(/^addtask ctrbake_bake after do_unpack before do_install$/m);
    expect(ctrbake).toMatch(/^do_ctrbake_bake\[dirs\] = "\$\{CTRBAKE_B\}"$/m);
    expect(ctrbake).toMatch(/^do_ctrbake_bake\[cleandirs\] = "\$\{CTRBAKE_B\}"$/m);
    expect(shellFunctions(ctrbake).get('do_ctrbake_bake')).toMatch(/SOURCE_DATE_EPOCH="\$\{SOURCE_DATE_EPOCH\}"/);
  });

  const layouts = ['archive', 'split', 'podman-ro', 'overlay-vfs', 'copy', 'rootfs'];
  it.each(layouts)(
    'layout %s: do_ctrbake_bake and ctrbake_do_install parse (sh -n) and pass shellcheck after expansion',
    (layout) => {
      const [mode, engine, driver] = JSON.parse(python(`
import json
from ctrbake_bb.layouts import defaults
print(json.dumps(defaults(${JSON.stringify(layout)})))`)) as [string, string, string];
      const script = `${taskScript(ctrbake, 'do_ctrbake_bake', sampleVars(ctrbake, {
        CTRBAKE_LAYOUT: layout, CTRBAKE_MODE: mode, CTRBAKE_ENGINE: engine, CTRBAKE_STORAGE_DRIVER: driver,
        CTRBAKE_IMAGES: 'r.example/a:1@sha256:' + 'a'.repeat(64), CTRBAKE_COMPOSE: '/layers/app/compose.yaml',
        CTRBAKE_INSECURE_REGISTRIES: '127.0.0.1:5000 other:5000', CTRBAKE_BUDGET: '512M', CTRBAKE_RUNNER: 'sudo -n',
      }))}ctrbake_do_install\n`;
      expect(script).not.toMatch(/\$\{(CTRBAKE_|PN|D|WORKDIR|SOURCE_DATE_EPOCH)[A-Z_]*\}/);
      const syntax = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
      expect(syntax.stderr).toBe('');
      expect(syntax.status).toBe(0);
      const sc = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', '-e', EXPANSION_CHECKS, '-'], { input: script, encoding: 'utf8' });
      expect(sc.error, 'shellcheck must be installed (scripts/install-deps.sh)').toBeUndefined();
      expect(sc.stdout).toBe('');
      expect(sc.status).toBe(0);
    },
  );

  it('the rootfs store class reads JSON as JSON and writes no engine config of its own (the loader renders it)', () => {
    const text = classes['ctrbake-rootfs-store.bbclass'];
    const shell = [...shellFunctions(text).values()].join('\n');
    expect(shell).not.toMatch(/manifest\.json|daemon\.json|\bsed\b|\bprintf\b/);
    expect(text).toMatch(/^python ctrbake_rootfs_check_store\(\) \{$/m);
    expect(text).toMatch(/^python ctrbake_rootfs_engine_config\(\) \{$/m);
    expect(shellFunctions(ctrbake).get('do_ctrbake_bake')).toMatch(/ctrbake_cli loader --manifest "\$out\/manifest\.json" \\\n\t\t\t--layout copy /);
  });

  it('the rootfs store extraction parses and passes shellcheck after expansion', () => {
    const text = classes['ctrbake-rootfs-store.bbclass'];
    const script = taskScript(text, 'ctrbake_rootfs_extract_store', sampleVars(text));
    expect(spawnSync('sh', ['-n'], { input: script }).status).toBe(0);
    const sc = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', '-e', EXPANSION_CHECKS, '-'], { input: script, encoding: 'utf8' });
    expect(sc.stdout).toBe('');
  });
});

describe('conf/layer.conf', () => {
  it('is a layer of its own with a low priority that depends on core', () => {
    expect(layerConf).toMatch(/^BBPATH \.= ":\$\{LAYERDIR\}\/bbclass"$/m);
    expect(layerConf).toMatch(/^BBFILE_COLLECTIONS \+= "ctrbake"$/m);
    expect(layerConf).toMatch(/^BBFILE_PATTERN_ctrbake = "\^\$\{LAYERDIR\}\/recipes-examples\/"$/m);
    expect(layerConf).toMatch(/^BBFILE_PRIORITY_ctrbake = "1"$/m);
    expect(layerConf).toMatch(/^LAYERDEPENDS_ctrbake = "core"$/m);
    const compat = /^LAYERSERIES_COMPAT_ctrbake = "([^"]*)"$/m.exec(layerConf)![1]!.split(' ');
    expect(compat).toEqual(expect.arrayContaining(['scarthgap', 'wrynose']));
  });

  it('sets nothing another recipe reads: only layer bookkeeping, CTRBAKE_ names and a non-fatal host tool', () => {
    const assigned = [...layerConf.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?\?=|\?=|:=|\+=|\.=|=)/gm)].map((m) => m[1]!);
    for (const v of assigned) {
      expect(v, v).toMatch(/^(BBPATH|BBFILES|BBFILE_(COLLECTIONS|PATTERN_ctrbake|PRIORITY_ctrbake)|LAYER[A-Z_]+_ctrbake|CTRBAKE_[A-Z_]+|HOSTTOOLS_NONFATAL)$/);
    }
    expect(layerConf).not.toMatch(/^\s*INHERIT/m);
    expect(layerConf).toMatch(/^HOSTTOOLS_NONFATAL \+= "node"$/m);
  });
});

describe('python helpers', () => {
  it('digest pins, compose images and lock ids', () => {
    const digest = 'sha256:' + 'c'.repeat(64);
    const out = JSON.parse(python(`
import json
from ctrbake_bb import refs
compose = """services:
  a:
    image: r.example/a:1@${digest}
  b:
    image: "r.example/b:2"   # a tag
  c:
    build: .
"""
print(json.dumps({
  "pinned": [refs.is_pinned(r) for r in ["r/a:1@${digest}", "r/a@${digest}", "r/a:1", "r/a@sha256:abc", "r/a:1@${digest}x"]],
  "compose": refs.compose_images(compose),
  "unpinned": refs.unpinned(refs.compose_images(compose)),
  "msg": refs.pin_error(["r/a:1"], "CTRBAKE_IMAGES"),
  "id1": refs.lock_id("linux/amd64", ["r/a@${digest}"]),
  "id1again": refs.lock_id("linux/amd64", ["r/a@${digest}"]),
  "id2": refs.lock_id("linux/arm64/v8", ["r/a@${digest}"]),
  "id3": refs.lock_id("linux/amd64", ["r/a@${digest}"], "services: {}"),
}))`)) as Record<string, unknown>;
    expect(out.pinned).toEqual([true, true, false, false, false]);
    expect(out.compose).toEqual([`r.example/a:1@${digest}`, 'r.example/b:2']);
    expect(out.unpinned).toEqual(['r.example/b:2']);
    expect(out.msg).toContain('not pinned by digest: r/a:1');
    expect(out.msg).toContain('@sha256:');
    expect(out.msg).toContain('CTRBAKE_ALLOW_TAGS = "1"');
    expect(out.id1).toBe(out.id1again);
    expect(new Set([out.id1, out.id2, out.id3]).size).toBe(3);
  });

  it.each([
    ['archive', 'archive', 'docker', 'overlay2', null],
    ['split', 'store', 'docker', 'overlay2', null],
    ['podman-ro', 'store', 'podman', 'overlay', null],
    ['overlay-vfs', 'store', 'docker', 'vfs', null],
    ['split', 'store', 'docker', 'vfs', "needs CTRBAKE_STORAGE_DRIVER 'overlay2'"],
    ['podman-ro', 'store', 'docker', 'overlay2', "needs CTRBAKE_ENGINE 'podman'"],
    ['archive', 'store', 'docker', 'overlay2', "needs CTRBAKE_MODE 'archive'"],
    ['split', 'store', 'docker', 'overlay', "does not go with engine 'docker'"],
    ['squash', 'store', 'docker', 'overlay2', 'is not one of'],
    // refused at parse time, not when the image is built or the device boots
    ['overlay-vfs', 'store', 'podman', 'vfs', "needs CTRBAKE_ENGINE 'docker'"],
    ['rootfs', 'store', 'podman', 'overlay', "needs CTRBAKE_ENGINE 'docker'"],
  ])('layout %s, mode %s, engine %s, driver %s -> %s', (layout, mode, engine, driver, problem) => {
    const out = python(`
from ctrbake_bb import layouts
try:
    print(layouts.check(${JSON.stringify(layout)}, ${JSON.stringify(mode)}, ${JSON.stringify(engine)}, ${JSON.stringify(driver)}))
except ValueError as e:
    print(e)`).trim();
    if (problem === null) expect(out).toBe('None');
    else expect(out).toContain(problem);
  });

  it('cli_id reads the version of the CLI the class runs', () => {
    const version = (JSON.parse(readFileSync(layerFile('package.json'), 'utf8')) as { version: string }).version;
    expect(python(`from ctrbake_bb import refs; print(refs.cli_id(${JSON.stringify(layerFile('bin', 'ctrbake.js'))}))`).trim()).toBe(`ctrbake@${version}`);
  });
});

/**
 * Findings shellcheck makes on any BitBake shell task once variables are expanded: tests on
 * values fixed at parse time (SC2050, SC2157, and a `case` on one: SC2194) and loops over a
 * fixed list (SC2043).
 */
const EXPANSION_CHECKS = 'SC2050,SC2157,SC2043,SC2194';

// keep the helpers honest: expansion leaves unknown names to the shell and refuses inline python
describe('expansion helper', () => {
  it('expands defined variables recursively and leaves others', () => {
    expect(expand('${A} ${B} $c ${unknown}', { A: '${B}x', B: 'y' })).toBe('yx y $c ${unknown}');
    expect(() => expand('${@d.getVar("X")}', {})).toThrow(/inline python/);
    expect(execFileSync('sh', ['-c', 'echo ok'], { encoding: 'utf8' })).toBe('ok\n');
  });
});
