import { describe, expect, it } from 'vitest';
import { cycles, FLOORS, partOf, readImportGraph, upwardImports } from './import-graph.js';

const graph = readImportGraph('src');

describe('the import graph of src/ (docs/architecture.md)', () => {
  it('knows the floor of every top-level folder and file', () => {
    const unknown = [...new Set(graph.files.map(partOf))].filter((p) => !(p in FLOORS));
    expect(unknown, 'add new top-level parts to FLOORS in test/unit/architecture/import-graph.ts').toEqual([]);
  });

  it('runs one way: CLI -> stages -> floor', () => {
    expect(upwardImports(graph.edges)).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const parts = [...new Set(graph.files.map(partOf))];
    const edges = graph.edges.map((e) => ({ from: partOf(e.from), to: partOf(e.to) })).filter((e) => e.from !== e.to);
    expect(cycles(parts, edges)).toEqual([]);
  });

  it('has no cycle between files', () => {
    expect(cycles(graph.files, graph.edges)).toEqual([]);
  });
});

describe('the checker itself', () => {
  it('finds an upward import and a cycle', () => {
    expect(upwardImports([{ from: 'util/fs.ts', to: 'bake/bake.ts' }])).toEqual(['util/fs.ts (floor) imports bake/bake.ts (stage)']);
    expect(upwardImports([{ from: 'bake/bake.ts', to: 'cli/run.ts' }])).toHaveLength(1);
    expect(upwardImports([{ from: 'cli/run.ts', to: 'bake/bake.ts' }])).toEqual([]);
    expect(cycles(['a', 'b', 'c'], [{ from: 'a', to: 'b' }, { from: 'b', to: 'a' }, { from: 'b', to: 'c' }])).toEqual([['a', 'b']]);
    expect(cycles(['a', 'b'], [{ from: 'a', to: 'b' }])).toEqual([]);
  });
});
