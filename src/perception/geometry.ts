import type { DisplayInfo, Point, RawImage, Rect } from '../platform/types.js';

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

/**
 * A rectangle in an image's pixels (`RawImage` pixels: integers, `x`/`y` inclusive, `x + width` /
 * `y + height` exclusive), in the `Rect` shape. Change detection (src/perception/changes.ts) works in these.
 */
export type PixelRect = Rect;

/**
 * A rectangle in an image's pixels in the shape sharp's `extract` takes (`left`/`top` inclusive, integers).
 * The OCR pipeline (src/perception/ocr/) works in these: crops, bands, glyph and symbol boxes.
 */
export interface PixelBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The same pixels as a {@link PixelBox}. */
export function toPixelBox(r: PixelRect): PixelBox {
  return { left: r.x, top: r.y, width: r.width, height: r.height };
}

/** The same pixels as a {@link PixelRect}. */
export function toPixelRect(b: PixelBox): PixelRect {
  return { x: b.left, y: b.top, width: b.width, height: b.height };
}

/**
 * The pixels of `img` a rectangle in logical global points covers: `(p - origin) × scale`, rounded outwards to
 * whole pixels and clipped to the image. Null when nothing of the image is left.
 */
export function pointsToPixels(img: Pick<RawImage, 'width' | 'height' | 'scale' | 'origin'>, r: Rect): PixelRect | null {
  const x0 = Math.max(0, Math.floor((r.x - img.origin.x) * img.scale));
  const y0 = Math.max(0, Math.floor((r.y - img.origin.y) * img.scale));
  const x1 = Math.min(img.width, Math.ceil((r.x + r.width - img.origin.x) * img.scale));
  const y1 = Math.min(img.height, Math.ceil((r.y + r.height - img.origin.y) * img.scale));
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
}

/** A rectangle of `img`'s pixels in logical global points (`origin + pixel / scale`). */
export function pixelsToPoints(img: Pick<RawImage, 'scale' | 'origin'>, r: PixelRect): Rect {
  return { x: img.origin.x + r.x / img.scale, y: img.origin.y + r.y / img.scale, width: r.width / img.scale, height: r.height / img.scale };
}

/**
 * Whether the centre of `box` lies inside `r` grown by `padX` left and right and `padY` above and below
 * (default: `padX`), edges included. Any unit, as long as both agree.
 */
export function centerInside(box: Rect, r: Rect, padX = 0, padY = padX): boolean {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  return cx >= r.x - padX && cx <= r.x + r.width + padX && cy >= r.y - padY && cy <= r.y + r.height + padY;
}

/**
 * Merge rectangles until none overlap: two that overlap (with `touching`, the default, also two that share an
 * edge) are replaced, in the first one's place, by `combine(a, b, box)` where `box` is their union (default:
 * the union itself), and the scan starts again. Returns new objects in first-seen order; O(n³) worst case.
 */
export function mergeOverlapping<T extends Rect = Rect>(rects: T[], opts: { touching?: boolean; combine?: (a: T, b: T, box: Rect) => T } = {}): T[] {
  const touching = opts.touching ?? true;
  const combine = opts.combine ?? ((_a: T, _b: T, box: Rect) => box as T);
  const out = rects.map((r) => ({ ...r }));
  let merged = true;
  while (merged) {
    merged = false;
    for (let i = 0; i < out.length && !merged; i++) {
      for (let j = i + 1; j < out.length; j++) {
        const a = out[i]!, b = out[j]!;
        const meet = touching
          ? a.x <= b.x + b.width && b.x <= a.x + a.width && a.y <= b.y + b.height && b.y <= a.y + a.height
          : a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
        if (meet) {
          const x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
          out[i] = combine(a, b, { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y });
          out.splice(j, 1);
          merged = true;
          break;
        }
      }
    }
  }
  return out;
}

/**
 * Merge rectangles that lie side by side on one text line (their vertical spans overlap by at least half the
 * lower one's height) with at most `gap` between them, with `combine`, until none are left to merge.
 */
export function mergeSameLine<T extends Rect>(rects: T[], gap: number, combine: (a: T, b: T, box: Rect) => T): T[] {
  const out = [...rects];
  for (let merged = true; merged; ) {
    merged = false;
    for (let i = 0; i < out.length && !merged; i++) {
      for (let j = i + 1; j < out.length; j++) {
        const a = out[i]!, b = out[j]!;
        const overlap = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
        const apart = Math.max(a.x, b.x) - Math.min(a.x + a.width, b.x + b.width);
        if (overlap < Math.min(a.height, b.height) / 2 || apart > gap) continue;
        out[i] = combine(a, b, unionRect(a, b));
        out.splice(j, 1);
        merged = true;
        break;
      }
    }
  }
  return out;
}

/**
 * `r` cut back, where it takes in part of an item it does not hold whole, to that item's edge (above, below,
 * left or right of `core`, which never touches such an item), so no sliver of it is read. Never smaller than `core`.
 */
export function trimTo(r: Rect, core: Rect, items: Rect[]): Rect {
  let x0 = r.x, y0 = r.y, x1 = r.x + r.width, y1 = r.y + r.height;
  for (const b of items) {
    const cur = { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
    if (!intersects(cur, b) || containsRect(cur, b) || intersects(core, b)) continue;
    if (b.y + b.height <= core.y) y0 = Math.max(y0, Math.min(core.y, b.y + b.height));
    else if (b.y >= core.y + core.height) y1 = Math.min(y1, Math.max(core.y + core.height, b.y));
    else if (b.x + b.width <= core.x) x0 = Math.max(x0, Math.min(core.x, b.x + b.width));
    else x1 = Math.min(x1, Math.max(core.x + core.width, b.x));
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** `r` grown by `m` left and right and `my` above and below (same units as `r`). */
export function grow(r: Rect, m: number, my = m): Rect {
  return { x: r.x - m, y: r.y - my, width: r.width + 2 * m, height: r.height + 2 * my };
}

/** Whether `a` and `b` overlap (touching edges do not). */
export function intersects(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** Whether `a` holds all of `b`. */
export function containsRect(a: Rect, b: Rect): boolean {
  return b.x >= a.x && b.y >= a.y && b.x + b.width <= a.x + a.width && b.y + b.height <= a.y + a.height;
}

/** The smallest rectangle holding `a` and `b`. */
export function unionRect(a: Rect, b: Rect): Rect {
  const x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}
