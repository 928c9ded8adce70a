/**
 * Change detection between two captures of the same display: which tiles changed, merged into dirty
 * rectangles, and whether a region's content moved vertically (scrolling).
 *
 * Tiles are compared byte for byte with the previous frame (native `Buffer.equals`, a memcmp), not through
 * hashes: a hash collision would hide a change and leave an observation stale, and a memcmp of a whole
 * 1920x1080 RGBA frame costs about a millisecond, less than hashing it in JavaScript. Rows are compared
 * first; only the tiles of rows that differ are compared one by one. Hashes are used only to *propose* a
 * scroll offset (row hashes voted across the two frames); every proposed offset is then verified exactly.
 *
 * All rectangles here are in image pixels of the frames compared (`RawImage` pixels), unless a name says
 * points. Pure functions, no I/O.
 */
import type { RawImage } from '../platform/types.js';
import { mergeOverlapping, type PixelRect } from './geometry.js';

/** Default tile edge, pixels. */
export const TILE = 32;

/** True when two frames have the same geometry (size, scale, origin), so their pixels can be compared. */
export function sameGeometry(a: RawImage, b: RawImage): boolean {
  return a.width === b.width && a.height === b.height && a.scale === b.scale && a.origin.x === b.origin.x && a.origin.y === b.origin.y;
}

/** True when two frames of the same geometry hold the same pixels (a memcmp). */
export function framesEqual(a: RawImage, b: RawImage): boolean {
  if (!sameGeometry(a, b)) return false;
  const n = a.width * a.height * 4;
  return a.data.subarray(0, n).equals(b.data.subarray(0, n));
}

/**
 * Whether rows `ya` of `a` and `yb` of `b` hold the same pixels in columns `[x0, x1)`.
 * Both images must have the same width.
 */
export function rowSegmentEqual(a: RawImage, ya: number, b: RawImage, yb: number, x0: number, x1: number): boolean {
  const ra = (ya * a.width + x0) * 4;
  const rb = (yb * b.width + x0) * 4;
  const len = (x1 - x0) * 4;
  return a.data.subarray(ra, ra + len).equals(b.data.subarray(rb, rb + len));
}

/** A grid of tiles over a pixel rectangle of a frame, anchored at the rectangle's top-left. */
export interface TileGrid {
  /** The area covered, image pixels. */
  area: PixelRect;
  tile: number;
  cols: number;
  rows: number;
}

/** The tile grid over `area` (pixels). */
export function tileGrid(area: PixelRect, tile = TILE): TileGrid {
  return { area, tile, cols: Math.ceil(area.width / tile), rows: Math.ceil(area.height / tile) };
}

/** The pixel rectangle of tile (`col`, `row`) of a grid, clipped to the grid's area. */
export function tileRect(g: TileGrid, col: number, row: number): PixelRect {
  const x = g.area.x + col * g.tile;
  const y = g.area.y + row * g.tile;
  return { x, y, width: Math.min(g.tile, g.area.x + g.area.width - x), height: Math.min(g.tile, g.area.y + g.area.height - y) };
}

/**
 * Which tiles of `area` differ between `prev` and `cur` when `cur`'s row `y` is compared with `prev`'s
 * row `y + shift` (shift 0: no scroll). A tile whose source rows fall outside `area` differs.
 * @returns one boolean per tile, row-major (`row * cols + col`), true = changed.
 */
export function changedTiles(prev: RawImage, cur: RawImage, g: TileGrid, shift = 0): boolean[] {
  const out = new Array<boolean>(g.cols * g.rows).fill(false);
  const { x: ax, y: ay, width: aw, height: ah } = g.area;
  for (let y = ay; y < ay + ah; y++) {
    const row = Math.floor((y - ay) / g.tile);
    const sy = y + shift;
    if (sy < ay || sy >= ay + ah) {
      for (let c = 0; c < g.cols; c++) out[row * g.cols + c] = true;
      continue;
    }
    if (rowSegmentEqual(cur, y, prev, sy, ax, ax + aw)) continue;
    for (let c = 0; c < g.cols; c++) {
      const i = row * g.cols + c;
      if (out[i]) continue;
      const x0 = ax + c * g.tile;
      const x1 = Math.min(x0 + g.tile, ax + aw);
      if (!rowSegmentEqual(cur, y, prev, sy, x0, x1)) out[i] = true;
    }
  }
  return out;
}

/**
 * Merge flagged tiles into rectangles: each 8-connected group of flagged tiles becomes its bounding box,
 * then overlapping or touching boxes are merged until none overlap. Pixels.
 */
export function tilesToRects(g: TileGrid, flags: boolean[]): PixelRect[] {
  const seen = new Uint8Array(flags.length);
  const boxes: PixelRect[] = [];
  for (let i = 0; i < flags.length; i++) {
    if (!flags[i] || seen[i]) continue;
    let c0 = Infinity, c1 = -Infinity, r0 = Infinity, r1 = -Infinity;
    const stack = [i];
    seen[i] = 1;
    while (stack.length > 0) {
      const j = stack.pop()!;
      const c = j % g.cols;
      const r = (j - c) / g.cols;
      c0 = Math.min(c0, c); c1 = Math.max(c1, c); r0 = Math.min(r0, r); r1 = Math.max(r1, r);
      for (let dr = -1; dr <= 1; dr++) {
        for (let dc = -1; dc <= 1; dc++) {
          const rr = r + dr, cc = c + dc;
          if (rr < 0 || cc < 0 || rr >= g.rows || cc >= g.cols) continue;
          const k = rr * g.cols + cc;
          if (flags[k] && !seen[k]) {
            seen[k] = 1;
            stack.push(k);
          }
        }
      }
    }
    const a = tileRect(g, c0, r0);
    const b = tileRect(g, c1, r1);
    boxes.push({ x: a.x, y: a.y, width: b.x + b.width - a.x, height: b.y + b.height - a.y });
  }
  return mergeOverlapping(boxes);
}

/** A 32-bit FNV-1a-style hash of row `y`, columns `[x0, x1)`, reading every `step`-th pixel. */
export function rowHash(img: RawImage, y: number, x0: number, x1: number, step = 1): number {
  const d = img.data;
  let h = 0x811c9dc5;
  for (let x = x0; x < x1; x += step) {
    const o = (y * img.width + x) * 4;
    h = Math.imul(h ^ (d[o]! | (d[o + 1]! << 8) | (d[o + 2]! << 16)), 16777619);
  }
  return h >>> 0;
}

/** What {@link detectScroll} found. */
export interface ScrollShift {
  /** Rows the content moved *up* by (`cur[y] = prev[y + shift]`); negative when it moved down. Pixels. */
  shift: number;
  /** Rows of the area, in `cur`, whose content equals `prev`'s row `y + shift` exactly. */
  matchedRows: number;
}

/**
 * Find a vertical shift of the content of `area` between `prev` and `cur` (scrolling). Row hashes of both
 * frames vote for offsets (rows too common, like blank rows, do not vote); the best offset is accepted only
 * if, verified byte for byte, at least `minRows` rows and `minFraction` of the rows that changed in place now
 * match the previous frame at that offset. Returns null when no shift explains the change.
 */
export function detectScroll(prev: RawImage, cur: RawImage, area: PixelRect, opts: { maxShift?: number; minRows?: number; minFraction?: number } = {}): ScrollShift | null {
  const { x: x0, y: y0, width: w, height: h } = area;
  if (h < 4 || w < 4) return null;
  const x1 = x0 + w;
  const maxShift = Math.min(opts.maxShift ?? h - 1, h - 1);
  const minRows = opts.minRows ?? 8;
  const minFraction = opts.minFraction ?? 0.5;
  const step = w > 512 ? 2 : 1;
  const changed: number[] = [];
  for (let y = y0; y < y0 + h; y++) if (!rowSegmentEqual(cur, y, prev, y, x0, x1)) changed.push(y);
  if (changed.length < minRows) return null;
  const prevHashes = new Map<number, number[]>();
  for (let y = y0; y < y0 + h; y++) {
    const k = rowHash(prev, y, x0, x1, step);
    const list = prevHashes.get(k);
    if (list) list.push(y);
    else prevHashes.set(k, [y]);
  }
  const votes = new Map<number, number>();
  for (const y of changed) {
    const ys = prevHashes.get(rowHash(cur, y, x0, x1, step));
    if (!ys || ys.length > 8) continue;
    for (const py of ys) {
      const d = py - y;
      if (d !== 0 && Math.abs(d) <= maxShift) votes.set(d, (votes.get(d) ?? 0) + 1);
    }
  }
  const ranked = [...votes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
  for (const [d] of ranked) {
    let matched = 0;
    for (const y of changed) {
      const sy = y + d;
      if (sy >= y0 && sy < y0 + h && rowSegmentEqual(cur, y, prev, sy, x0, x1)) matched++;
    }
    if (matched >= minRows && matched >= minFraction * changed.length) return { shift: d, matchedRows: matched };
  }
  return null;
}

/**
 * The tight box of what `cur` shows in `r` (pixels, within `area`) that the previous frame cannot explain:
 * with `shift` 0, the pixels that differ from `prev` (exact to the pixel); with a shift, the rows of each
 * tile column of `g` whose segment equals neither `prev`'s segment in place nor `prev`'s segment
 * `shift` rows below (a row segment is explained as a whole, never pixel by pixel: a new picture can be
 * a patchwork of old pixels). Null when everything is explained.
 */
export function unexplainedBounds(prev: RawImage, cur: RawImage, r: PixelRect, g: TileGrid, shift = 0): PixelRect | null {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  const { y: ay, height: ah } = g.area;
  const rx1 = r.x + r.width;
  for (let y = r.y; y < r.y + r.height; y++) {
    if (rowSegmentEqual(cur, y, prev, y, r.x, rx1)) continue;
    if (shift === 0) {
      // First and last differing pixel of the row.
      const a = cur.data, b = prev.data;
      const row = y * cur.width * 4;
      let lo = r.x, hi = rx1 - 1;
      const differs = (x: number) => {
        const o = row + x * 4;
        return a[o] !== b[o] || a[o + 1] !== b[o + 1] || a[o + 2] !== b[o + 2] || a[o + 3] !== b[o + 3];
      };
      while (lo <= hi && !differs(lo)) lo++;
      while (hi >= lo && !differs(hi)) hi--;
      if (lo > hi) continue;
      x0 = Math.min(x0, lo); x1 = Math.max(x1, hi + 1); y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1);
      continue;
    }
    const sy = y + shift;
    const inArea = sy >= ay && sy < ay + ah;
    for (let c = Math.floor((r.x - g.area.x) / g.tile); c * g.tile + g.area.x < rx1; c++) {
      const sx0 = Math.max(r.x, g.area.x + c * g.tile);
      const sx1 = Math.min(rx1, g.area.x + (c + 1) * g.tile);
      if (sx1 <= sx0 || rowSegmentEqual(cur, y, prev, y, sx0, sx1)) continue;
      if (inArea && rowSegmentEqual(cur, y, prev, sy, sx0, sx1)) continue;
      x0 = Math.min(x0, sx0); x1 = Math.max(x1, sx1); y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1);
    }
  }
  return x1 > x0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
}

/**
 * True when rows `[y0, y1)` of `img` each repeat the row above them in columns `[x0, x1)` (so rows
 * `y0 - 1 .. y1 - 1` are one and the same row): blank background, or a border running straight down, never
 * a line of text. False when a row falls outside the image or `y0 < 1`.
 */
export function flatRows(img: RawImage, y0: number, y1: number, x0: number, x1: number): boolean {
  if (y0 < 1 || y1 > img.height || x0 < 0 || x1 > img.width || x1 <= x0) return false;
  for (let y = y0; y < y1; y++) if (!rowSegmentEqual(img, y, img, y - 1, x0, x1)) return false;
  return true;
}

/**
 * Whether text can run across a boundary between fixed content (rows that match `prev` only in place) and
 * scrolled content (rows that match `prev` only `shift` rows below) within tiles `a` and `b` of `g`: a pair
 * of tiles one above the other (or diagonal), or one tile (`a === b`) that holds both. Rows of the tiles are
 * walked top to bottom, each compared over its own tile's columns; runs of at least `gap` rows that repeat
 * the row above (blank background, straight borders) split them into blocks, and they are linked when one
 * block holds both a row that matches only in place and one that matches only shifted. Rows that match
 * neither are new content, read anyway (they link a pair of tiles). Tiles side by side are always linked.
 */
export function seamLinked(prev: RawImage, cur: RawImage, g: TileGrid, a: number, b: number, shift: number, gap: number): boolean {
  const ra = Math.floor(a / g.cols), rb = Math.floor(b / g.cols);
  if (a !== b && ra === rb) return true;
  const [up, lo] = ra <= rb ? [a, b] : [b, a];
  const tu = tileRect(g, up % g.cols, Math.floor(up / g.cols));
  const tl = tileRect(g, lo % g.cols, Math.floor(lo / g.cols));
  const { y: ay, height: ah } = g.area;
  const y0 = tu.y, y1 = a === b ? tu.y + tu.height : tl.y + tl.height;
  let fixed = false, moved = false, flat = 0;
  for (let y = y0; y < y1; y++) {
    const t = y < tl.y ? tu : tl;
    const x0 = t.x, x1 = t.x + t.width;
    if (y > ay && rowSegmentEqual(cur, y, cur, y - 1, x0, x1)) flat++;
    else flat = 0;
    if (flat >= gap) {
      fixed = moved = false;
      continue;
    }
    const sy = y + shift;
    const eq0 = rowSegmentEqual(cur, y, prev, y, x0, x1);
    const eqS = sy >= ay && sy < ay + ah && rowSegmentEqual(cur, y, prev, sy, x0, x1);
    if (!eq0 && !eqS && a !== b) return true;
    if (eq0 && !eqS) fixed = true;
    if (eqS && !eq0) moved = true;
    if (fixed && moved) return true;
  }
  return false;
}
