import { describe, expect, it } from 'vitest';
import { squarify } from '../../../src/report/treemap.js';

describe('squarify', () => {
  it('fills the rectangle with areas proportional to the values, without overlap', () => {
    const values = [6, 6, 4, 3, 2, 2, 1];
    const placed = squarify(values.map((v, i) => ({ value: v, item: i })), { x: 0, y: 0, w: 600, h: 400 });
    expect(placed).toHaveLength(values.length);
    const total = values.reduce((a, b) => a + b, 0);
    for (const p of placed) {
      expect(p.w * p.h).toBeCloseTo((values[p.item]! / total) * 600 * 400, 6);
      expect(p.x).toBeGreaterThanOrEqual(-1e-9);
      expect(p.y).toBeGreaterThanOrEqual(-1e-9);
      expect(p.x + p.w).toBeLessThanOrEqual(600 + 1e-9);
      expect(p.y + p.h).toBeLessThanOrEqual(400 + 1e-9);
    }
    for (const a of placed) {
      for (const b of placed) {
        if (a === b) continue;
        const overlapW = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
        const overlapH = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
        expect(overlapW <= 1e-6 || overlapH <= 1e-6).toBe(true);
      }
    }
  });

  it('drops zero values and handles an empty input', () => {
    expect(squarify([{ value: 0, item: 'z' }, { value: 5, item: 'a' }], { x: 0, y: 0, w: 10, h: 10 }).map((p) => p.item)).toEqual(['a']);
    expect(squarify([], { x: 0, y: 0, w: 10, h: 10 })).toEqual([]);
  });
});
