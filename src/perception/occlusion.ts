import type { Rect, WindowInfo } from '../platform/types.js';

/**
 * Occlusion: which part of an accessible element a person can see, from the window stacking order.
 *
 * Accessibility trees say nothing about what lies on top: AT-SPI's `showing` means "mapped, with its
 * ancestors", not "visible on screen" (at-spi2-core `ATSPI_STATE_SHOWING`: "this object, all its ancestors
 * and its containing window are visible … it does not mean it is not obscured"), and macOS AX has no such
 * state either. So an element's own top-level window is found in the window list (top-most first) and
 * every window listed above it is cut out of the element's bounds. All geometry in logical global points.
 *
 * States set on elements (names follow AT-SPI's `showing`/`visible` vocabulary, which has no "obscured"
 * state of its own):
 * - `covered`: no part is visible; `visible` and `showing` are removed;
 * - `partly-covered`: some part is covered; `visibleBounds` is the largest uncovered rectangle (aim there).
 */

/** The result of {@link visiblePart}. */
export interface Visibility {
  /** Disjoint uncovered rectangles of the bounds (empty when fully covered). */
  pieces: Rect[];
  /** Covered area / bounds area, 0..1. */
  coveredFraction: number;
}

/** Smallest side, points, an uncovered piece needs to count as visible (a 1-point sliver is not). */
export const MIN_VISIBLE_SIDE = 2;

/**
 * `r` minus `cut`: up to four disjoint rectangles (above, below, left, right of the overlap), or `[r]`
 * when they do not overlap.
 */
export function subtractRect(r: Rect, cut: Rect): Rect[] {
  const x1 = Math.max(r.x, cut.x);
  const y1 = Math.max(r.y, cut.y);
  const x2 = Math.min(r.x + r.width, cut.x + cut.width);
  const y2 = Math.min(r.y + r.height, cut.y + cut.height);
  if (x2 <= x1 || y2 <= y1) return [r];
  const out: Rect[] = [];
  const rx2 = r.x + r.width;
  const ry2 = r.y + r.height;
  if (y1 > r.y) out.push({ x: r.x, y: r.y, width: r.width, height: y1 - r.y });
  if (y2 < ry2) out.push({ x: r.x, y: y2, width: r.width, height: ry2 - y2 });
  if (x1 > r.x) out.push({ x: r.x, y: y1, width: x1 - r.x, height: y2 - y1 });
  if (x2 < rx2) out.push({ x: x2, y: y1, width: rx2 - x2, height: y2 - y1 });
  return out;
}

/**
 * The part of `bounds` not under any of `above` (the windows stacked over the element's window).
 * Pieces thinner than {@link MIN_VISIBLE_SIDE} are dropped.
 */
export function visiblePart(bounds: Rect, above: readonly Rect[]): Visibility {
  let pieces: Rect[] = [bounds];
  for (const a of above) {
    pieces = pieces.flatMap((p) => subtractRect(p, a));
    if (pieces.length === 0) break;
  }
  pieces = pieces.filter((p) => p.width >= MIN_VISIBLE_SIDE && p.height >= MIN_VISIBLE_SIDE);
  const total = bounds.width * bounds.height;
  const seen = pieces.reduce((s, p) => s + p.width * p.height, 0);
  return { pieces, coveredFraction: total > 0 ? Math.max(0, Math.min(1, 1 - seen / total)) : 0 };
}

/** The largest rectangle of a list (by area), or undefined. */
export function largest(rects: readonly Rect[]): Rect | undefined {
  let best: Rect | undefined;
  for (const r of rects) if (!best || r.width * r.height > best.width * best.height) best = r;
  return best;
}

/** A top-level accessible window as the tree shows it: its application's pid, its title and bounds. */
export interface TopLevel {
  pid: number | null | undefined;
  title: string;
  bounds: Rect | null;
}

/**
 * Index in `windows` (top-most first) of the window showing an accessible top-level window: same pid and
 * title, else same pid and bounds within 2 points, else (pid unknown) same non-empty title and bounds.
 * The rule of `matchOwnerWindow` in `src/actuation/targets.ts`, for a whole tree at once. -1 when none.
 */
export function windowIndexOf(top: TopLevel, windows: readonly WindowInfo[]): number {
  const near = (a: Rect, b: Rect) => Math.abs(a.x - b.x) <= 2 && Math.abs(a.y - b.y) <= 2 && Math.abs(a.width - b.width) <= 2 && Math.abs(a.height - b.height) <= 2;
  if (top.pid != null) {
    const same = windows.map((w, i) => ({ w, i })).filter(({ w }) => w.pid === top.pid);
    if (top.title !== '') {
      const t = same.find(({ w }) => w.title === top.title);
      if (t) return t.i;
    }
    if (top.bounds) {
      const b = same.find(({ w }) => near(w.bounds, top.bounds!));
      if (b) return b.i;
    }
    return -1;
  }
  if (top.title === '' || !top.bounds) return -1;
  return windows.findIndex((w) => w.title === top.title && near(w.bounds, top.bounds!));
}

/**
 * Apply the covered states to an element's copy: fully covered → `covered`, `visible` and `showing`
 * removed; partly → `partly-covered` and `visibleBounds`. Unchanged when nothing covers it.
 */
export function markCovered<T extends { bounds: Rect; states: string[]; visibleBounds?: Rect }>(el: T, above: readonly Rect[]): T {
  if (above.length === 0) return el;
  const v = visiblePart(el.bounds, above);
  if (v.coveredFraction === 0) return el;
  if (v.pieces.length === 0) {
    el.states = [...el.states.filter((s) => s !== 'visible' && s !== 'showing'), 'covered'];
    return el;
  }
  el.states = [...el.states, 'partly-covered'];
  el.visibleBounds = { ...largest(v.pieces)! };
  return el;
}

/** True when an element is fully covered by other windows (state `covered`). */
export function isCovered(e: { states: readonly string[] }): boolean {
  return e.states.includes('covered');
}
