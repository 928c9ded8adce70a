import { describe, expect, it } from 'vitest';
import { bgraToRgba } from '../../src/platform/common/bgra.js';

/** Byte-by-byte reference: RGBA from BGRA rows of `stride` bytes, alpha forced to 255. */
function reference(src: Buffer, width: number, height: number, stride: number): Buffer {
  const out = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = y * stride + x * 4;
      const d = (y * width + x) * 4;
      out[d] = src[s + 2]!;
      out[d + 1] = src[s + 1]!;
      out[d + 2] = src[s]!;
      out[d + 3] = 255;
    }
  }
  return out;
}

function random(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

describe('bgraToRgba', () => {
  it('swaps blue and red and makes alpha opaque, on word-aligned rows with and without row padding', () => {
    for (const [width, height, stride] of [[1, 1, 4], [7, 5, 28], [7, 5, 32], [640, 3, 2576]] as const) {
      const src = random(stride * height, width * 31 + height);
      expect(bgraToRgba(src, width, height, stride).equals(reference(src, width, height, stride))).toBe(true);
    }
    // One pixel spelled out: B=0x10 G=0x20 R=0x30 A=0x00 → R G B 0xff.
    expect([...bgraToRgba(Buffer.from([0x10, 0x20, 0x30, 0x00]), 1, 1, 4)]).toEqual([0x30, 0x20, 0x10, 0xff]);
  });

  it('gives the same bytes for a source at an odd offset or with a stride that is not whole words', () => {
    const big = random(1 + 9 * 4 * 3, 7);
    const odd = big.subarray(1);
    expect(odd.byteOffset % 4).not.toBe(0);
    expect(bgraToRgba(odd, 9, 3, 36).equals(reference(odd, 9, 3, 36))).toBe(true);
    const src = random(38 * 3, 9);
    expect(bgraToRgba(src, 9, 3, 38).equals(reference(src, 9, 3, 38))).toBe(true);
  });
});
