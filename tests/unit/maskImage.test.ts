import { describe, expect, it } from 'vitest';
import { maskImage } from '../../src/perception/mask.js';
import type { RawImage } from '../../src/platform/types.js';

function image(width: number, height: number, scale = 1, origin = { x: 0, y: 0 }): RawImage {
  return { data: Buffer.alloc(width * height * 4, 200), width, height, channels: 4, scale, origin };
}

describe('maskImage', () => {
  it('blacks out the covered pixels (opaque) in a copy and leaves the input as it was', () => {
    const img = image(10, 10, 2, { x: 100, y: 50 });
    const before = Buffer.from(img.data);
    // Points (101, 51)–(103, 52) = pixels x 2..5, y 2..3 at scale 2 from origin (100, 50).
    const out = maskImage(img, [{ x: 101, y: 51, width: 2, height: 1 }]);
    expect(img.data.equals(before)).toBe(true);
    expect(out).not.toBe(img);
    const px = (x: number, y: number) => [...out.data.subarray((y * 10 + x) * 4, (y * 10 + x) * 4 + 4)];
    expect(px(2, 2)).toEqual([0, 0, 0, 255]);
    expect(px(5, 3)).toEqual([0, 0, 0, 255]);
    expect(px(1, 2)).toEqual([200, 200, 200, 200]);
    expect(px(6, 2)).toEqual([200, 200, 200, 200]);
    expect(px(2, 4)).toEqual([200, 200, 200, 200]);
  });

  it('returns the input itself when no region covers a pixel', () => {
    const img = image(4, 4);
    expect(maskImage(img, [])).toBe(img);
    expect(maskImage(img, [{ x: 50, y: 50, width: 10, height: 10 }])).toBe(img);
  });
});
