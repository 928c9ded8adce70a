import type { DisplayInfo, Point, Rect } from '../platform/types.js';

/** True if point `p` lies inside rectangle `r` (right and bottom edges exclusive). Units: logical points. */
export function contains(r: Rect, p: Point): boolean {
  return p.x >= r.x && p.y >= r.y && p.x < r.x + r.width && p.y < r.y + r.height;
}

/** Area of the intersection of two rectangles, in square points (0 when disjoint). */
export function intersectionArea(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Centre of a rectangle, rounded to whole points. */
export function center(r: Rect): Point {
  return { x: Math.round(r.x + r.width / 2), y: Math.round(r.y + r.height / 2) };
}

/** The display containing a point, or undefined when the point is off every display. */
export function displayAt(displays: DisplayInfo[], p: Point): DisplayInfo | undefined {
  return displays.find((d) => contains(d, p));
}

/** Smallest rectangle covering all of `rects` (undefined for an empty list). */
export function union(rects: Rect[]): Rect | undefined {
  if (rects.length === 0) return undefined;
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (const r of rects) {
    x1 = Math.min(x1, r.x); y1 = Math.min(y1, r.y);
    x2 = Math.max(x2, r.x + r.width); y2 = Math.max(y2, r.y + r.height);
  }
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}

/** Clip `r` to `bounds`; undefined when nothing is left. */
export function clip(r: Rect, bounds: Rect): Rect | undefined {
  const x = Math.max(r.x, bounds.x);
  const y = Math.max(r.y, bounds.y);
  const w = Math.min(r.x + r.width, bounds.x + bounds.width) - x;
  const h = Math.min(r.y + r.height, bounds.y + bounds.height) - y;
  return w > 0 && h > 0 ? { x, y, width: w, height: h } : undefined;
}
