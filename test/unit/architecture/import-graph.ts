/**
 * The import graph of src/, read from the source text, and the rules it must follow
 * (docs/architecture.md): the CLI on top, the stages in the middle, the floor below.
 * - the floor (formats, util, engine, registry, errors, version, layouts) imports no stage and no CLI;
 * - a stage imports no CLI module;
 * - no cycle, between files or between folders (a folder is src/<name>/ or a top file).
 * `import type` counts: a type is a dependency of the design even when the compiler erases it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export type Floor = 'cli' | 'stage' | 'floor';

/** Top-level names under src/ and their floor. A new folder must be added here (the test says so). */
export const FLOORS: Record<string, Floor> = {
  cli: 'cli',
  'index.ts': 'cli',
  lock: 'stage',
  fetch: 'stage',
  bake: 'stage',
  builder: 'stage',
  squashfs: 'stage',
  loader: 'stage',
  report: 'stage',
  standalone: 'stage',
  formats: 'floor',
  util: 'floor',
  engine: 'floor',
  registry: 'floor',
  'errors.ts': 'floor',
  'version.ts': 'floor',
  'layouts.ts': 'floor',
};

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;

export interface ImportEdge {
  from: string;
  to: string;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTs(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every relative import between files of srcDir, as paths relative to srcDir. */
export function readImportGraph(srcDir: string): { files: string[]; edges: ImportEdge[] } {
  const root = resolve(srcDir);
  const files = listTs(root).map((f) => relative(root, f)).sort();
  const known = new Set(files);
  const edges: ImportEdge[] = [];
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec || !spec.startsWith('.')) continue;
      let target = relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, '.ts');
      if (!known.has(target) && known.has(join(target, 'index.ts'))) target = join(target, 'index.ts');
      if (!known.has(target)) throw new Error(`${file}: import '${spec}' names no file of src/`);
      edges.push({ from: file, to: target });
    }
  }
  return { files, edges };
}

/** The top-level part a file belongs to: "bake" for bake/store.ts, "errors.ts" for errors.ts. */
export function partOf(file: string): string {
  return file.split('/')[0]!;
}

export function floorOf(file: string): Floor | undefined {
  return FLOORS[partOf(file)];
}

const RANK: Record<Floor, number> = { floor: 0, stage: 1, cli: 2 };

/** Imports that run upwards: floor -> stage/cli, stage -> cli. */
export function upwardImports(edges: readonly ImportEdge[]): string[] {
  return edges
    .filter((e) => RANK[floorOf(e.from)!] < RANK[floorOf(e.to)!])
    .map((e) => `${e.from} (${floorOf(e.from)}) imports ${e.to} (${floorOf(e.to)})`);
}

/** The cycles of a graph (one per strongly connected component of more than one node, or a self loop). */
export function cycles(nodes: readonly string[], edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of edges) next.get(e.from)!.push(e.to);
  // Tarjan's strongly connected components, iterative enough for a few hundred files.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || next.get(v)!.includes(v)) found.push(component.sort());
    }
  };
  for (const n of nodes) if (!idx.has(n)) visit(n);
  return found;
}
