import { describe, it, expect } from 'vitest';
import type { RawImage } from '../../src/platform/types.js';
import { changedTiles, detectScroll, flatRows, framesEqual, seamLinked, tileGrid, tilesToRects, unexplainedBounds } from '../../src/perception/changes.js';
import { mergeOverlapping, pointsToPixels, pixelsToPoints } from '../../src/perception/geometry.js';

function blank(w: number, h: number, v = 255): RawImage {
  return { data: Buffer.alloc(w * h * 4, v), width: w, height: h, channels: 4, scale: 1, origin: { x: 0, y: 0 } };
}
function copy(img: RawImage): RawImage {
  return { ...img, data: Buffer.from(img.data) };
}
function setPx(img: RawImage, x: number, y: number, v: number): void {
  img.data[(y * img.width + x) * 4] = v;
}

describe('changedTiles', () => {
  const a = blank(256, 128);
  const g = tileGrid({ x: 0, y: 0, width: 256, height: 128 }, 32);

  it('flags nothing on equal frames', () => {
    expect(changedTiles(a, copy(a), g).some(Boolean)).toBe(false);
    expect(framesEqual(a, copy(a))).toBe(true);
  });

  it('flags exactly the tile holding a one-pixel change', () => {
    const b = copy(a);
    setPx(b, 70, 40, 0);
    const f = changedTiles(a, b, g);
    expect(f.filter(Boolean)).toHaveLength(1);
    expect(f[1 * g.cols + 2]).toBe(true);
    expect(framesEqual(a, b)).toBe(false);
  });

  it('flags both tiles of a change straddling a tile boundary', () => {
    const b = copy(a);
    setPx(b, 31, 31, 0);
    setPx(b, 32, 32, 0);
    const f = changedTiles(a, b, g);
    expect(f.map((x, i) => (x ? i : -1)).filter((i) => i >= 0)).toEqual([0, g.cols + 1]);
    expect(tilesToRects(g, f)).toEqual([{ x: 0, y: 0, width: 64, height: 64 }]);
  });

  it('matches rows at a shift', () => {
    const base = blank(64, 128);
    for (let y = 0; y < 128; y++) for (let x = 0; x < 64; x++) setPx(base, x, y, (y * 7 + x) & 255);
    const moved = blank(64, 128);
    // cur[y] = prev[y + 10]: the content moved up by 10 rows.
    base.data.copy(moved.data, 0, 10 * 64 * 4);
    const grid = tileGrid({ x: 0, y: 0, width: 64, height: 128 }, 32);
    const shifted = changedTiles(base, moved, grid, 10);
    // Only the last row of tiles (source rows past the bottom) differs.
    expect(shifted.map((x, i) => (x ? i : -1)).filter((i) => i >= 0)).toEqual([6, 7]);
    expect(detectScroll(base, moved, { x: 0, y: 0, width: 64, height: 128 })?.shift).toBe(10);
  });

  it('finds no scroll when content changed without moving', () => {
    const p = blank(64, 128);
    const c = blank(64, 128);
    for (let y = 0; y < 128; y++) for (let x = 0; x < 64; x++) {
      setPx(p, x, y, (y * 13 + x * 3) & 255);
      setPx(c, x, y, (y * 29 + x * 5 + 1) & 255);
    }
    expect(detectScroll(p, c, { x: 0, y: 0, width: 64, height: 128 })).toBeNull();
  });
});

describe('rectangles', () => {
  it('merges touching and overlapping rectangles, leaves apart ones', () => {
    const out = mergeOverlapping([
      { x: 0, y: 0, width: 10, height: 10 },
      { x: 10, y: 0, width: 5, height: 5 },
      { x: 100, y: 100, width: 1, height: 1 },
    ]);
    expect(out).toEqual([{ x: 0, y: 0, width: 15, height: 10 }, { x: 100, y: 100, width: 1, height: 1 }]);
  });

  it('converts points and pixels both ways at scale 2 with an offset origin', () => {
    const img: RawImage = { ...blank(200, 100), scale: 2, origin: { x: 1000, y: -50 } };
    const p = pointsToPixels(img, { x: 1010, y: -40, width: 20, height: 5 })!;
    expect(p).toEqual({ x: 20, y: 20, width: 40, height: 10 });
    expect(pixelsToPoints(img, p)).toEqual({ x: 1010, y: -40, width: 20, height: 5 });
    expect(pointsToPixels(img, { x: 0, y: 0, width: 5, height: 5 })).toBeNull();
  });
});

describe('tight boxes, blank rows and seams (one change, issue 15)', () => {
  const g = tileGrid({ x: 0, y: 0, width: 256, height: 128 }, 32);
  /** A horizontal bar of ink, rows y0..y1-1, columns x0..x1-1 (a stand-in for a line of text). */
  const bar = (img: RawImage, x0: number, x1: number, y0: number, y1: number, v = 0) => {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) setPx(img, x, y, (v + x * 7 + (y - y0) * 13) & 255);
  };

  it('unexplainedBounds: the changed pixels to the pixel, not the tiles', () => {
    const a = blank(256, 128);
    const b = copy(a);
    setPx(b, 70, 40, 0);
    setPx(b, 75, 44, 0);
    expect(unexplainedBounds(a, b, { x: 64, y: 32, width: 32, height: 32 }, g)).toEqual({ x: 70, y: 40, width: 6, height: 5 });
    expect(unexplainedBounds(a, copy(a), { x: 0, y: 0, width: 256, height: 128 }, g)).toBeNull();
  });

  it('unexplainedBounds when scrolled: only rows that match neither in place nor shifted', () => {
    const a = blank(256, 128);
    bar(a, 10, 100, 20, 30);
    bar(a, 10, 100, 40, 50, 50);
    // Content moved up by 20 rows; a new bar came in at rows 60..69.
    const b = blank(256, 128);
    bar(b, 10, 100, 20, 30, 50);
    bar(b, 10, 100, 60, 70, 90);
    // (rows 40..49 of b are blank: they match a's rows 60..69 shifted.)
    for (let y = 20; y < 30; y++) for (let x = 10; x < 100; x++) b.data[(y * 256 + x) * 4] = a.data[((y + 20) * 256 + x) * 4]!;
    const r = unexplainedBounds(a, b, { x: 0, y: 0, width: 256, height: 128 }, g, 20)!;
    expect(r.y).toBe(60);
    expect(r.height).toBe(10);
  });

  it('flatRows: blank rows and straight borders are flat, a row of text is not', () => {
    const a = blank(64, 64);
    for (let y = 0; y < 64; y++) setPx(a, 5, y, 0); // a vertical border
    expect(flatRows(a, 1, 64, 0, 64)).toBe(true);
    bar(a, 10, 40, 30, 33);
    expect(flatRows(a, 20, 40, 0, 64)).toBe(false);
    expect(flatRows(a, 0, 10, 0, 64)).toBe(false); // row 0 has no row above
  });

  it('seamLinked: fixed and scrolled tiles parted by blank rows are not linked; text across the boundary links them', () => {
    // A pane whose content moved up by 8 rows under a fixed strip: rows 0..31 fixed, rows 32..63 scrolled.
    const a = blank(64, 64);
    bar(a, 0, 32, 10, 20, 1); // fixed text in the upper tile
    bar(a, 0, 32, 48, 58, 2); // scrolled text, at rows 48..57 before
    const b = blank(64, 64);
    bar(b, 0, 32, 10, 20, 1);
    bar(b, 0, 32, 40, 50, 2); // now at rows 40..49 (shift 8)
    const gg = tileGrid({ x: 0, y: 0, width: 64, height: 64 }, 32);
    // Upper tile 0 holds fixed text, lower tile 2 scrolled text; blank rows 20..39 part them.
    expect(seamLinked(a, b, gg, 0, 2, 8, 3)).toBe(false);
    // The same, but the scrolled text now reaches up to the fixed strip's text (no blank rows between).
    const a2 = blank(64, 64);
    bar(a2, 0, 32, 10, 31, 1);
    bar(a2, 0, 32, 40, 58, 2);
    const b2 = blank(64, 64);
    bar(b2, 0, 32, 10, 31, 1);
    bar(b2, 0, 32, 32, 50, 2);
    expect(seamLinked(a2, b2, gg, 0, 2, 8, 3)).toBe(true);
    // Tiles side by side are always linked.
    expect(seamLinked(a, b, gg, 0, 1, 8, 3)).toBe(true);
  });
});
