import { describe, it, expect } from 'vitest';
import type { RawImage } from '../../src/platform/types.js';
import { changedTiles, detectScroll, framesEqual, tileGrid, tilesToRects } from '../../src/perception/changes.js';
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
