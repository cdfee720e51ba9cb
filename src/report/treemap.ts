/** Squarified treemap layout (Bruls, Huizing, van Wijk): rectangles with areas proportional to values. */

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Placed<T> extends Rect {
  item: T;
}

function worst(row: readonly number[], side: number): number {
  const sum = row.reduce((a, b) => a + b, 0);
  const max = Math.max(...row);
  const min = Math.min(...row);
  return Math.max((side * side * max) / (sum * sum), (sum * sum) / (side * side * min));
}

/** Lays out items (value > 0) in `rect`, largest first. */
export function squarify<T>(items: ReadonlyArray<{ value: number; item: T }>, rect: Rect): Placed<T>[] {
  const total = items.reduce((s, i) => s + i.value, 0);
  if (total <= 0 || rect.w <= 0 || rect.h <= 0) return [];
  const scale = (rect.w * rect.h) / total;
  const queue = items.filter((i) => i.value > 0).sort((a, b) => b.value - a.value).map((i) => ({ area: i.value * scale, item: i.item }));
  const out: Placed<T>[] = [];
  let free = { ...rect };
  while (queue.length) {
    const side = Math.min(free.w, free.h);
    const row = [queue.shift()!];
    while (queue.length && worst([...row, queue[0]!].map((r) => r.area), side) <= worst(row.map((r) => r.area), side)) row.push(queue.shift()!);
    const rowArea = row.reduce((s, r) => s + r.area, 0);
    if (free.w >= free.h) {
      const w = rowArea / free.h;
      let y = free.y;
      for (const r of row) {
        const h = r.area / w;
        out.push({ x: free.x, y, w, h, item: r.item });
        y += h;
      }
      free = { x: free.x + w, y: free.y, w: free.w - w, h: free.h };
    } else {
      const h = rowArea / free.w;
      let x = free.x;
      for (const r of row) {
        const w = r.area / h;
        out.push({ x, y: free.y, w, h, item: r.item });
        x += w;
      }
      free = { x: free.x, y: free.y + h, w: free.w, h: free.h - h };
    }
  }
  return out;
}
