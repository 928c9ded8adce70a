/**
 * Convert a BGRA (or BGRx) pixel buffer with a given row stride into tightly packed RGBA with opaque alpha.
 * libnut's `screen.grab` returns BGRA rows of `byteWidth` bytes (XGetImage ZPixmap on X11, CGImage on macOS).
 * @param src source bytes; `width`/`height` in pixels; `stride` bytes per source row (≥ width * 4).
 * @returns a new Buffer of `width * height * 4` bytes, RGBA.
 */
export function bgraToRgba(src: Buffer, width: number, height: number, stride: number): Buffer {
  const out = Buffer.allocUnsafe(width * height * 4);
  // Whole pixels as little-endian 32-bit words (0xAARRGGBB in, 0xAABBGGRR out) when the source rows are
  // 4-byte aligned: several times faster than byte by byte on a 1920x1080 frame. Otherwise (a source that is a
  // slice at an odd offset, a stride that is not whole words) byte by byte.
  if (src.byteOffset % 4 === 0 && stride % 4 === 0 && out.byteOffset % 4 === 0 && isLittleEndian()) {
    const s32 = new Uint32Array(src.buffer, src.byteOffset, (stride * (height - 1)) / 4 + width);
    const d32 = new Uint32Array(out.buffer, out.byteOffset, width * height);
    const rowWords = stride / 4;
    for (let y = 0; y < height; y++) {
      let si = y * rowWords;
      let di = y * width;
      const end = di + width;
      for (; di < end; si++, di++) {
        const v = s32[si]!;
        d32[di] = (0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff)) >>> 0;
      }
    }
    return out;
  }
  for (let y = 0; y < height; y++) {
    let si = y * stride;
    let di = y * width * 4;
    for (let x = 0; x < width; x++, si += 4, di += 4) {
      out[di] = src[si + 2]!;
      out[di + 1] = src[si + 1]!;
      out[di + 2] = src[si]!;
      out[di + 3] = 255;
    }
  }
  return out;
}

let littleEndian: boolean | undefined;
function isLittleEndian(): boolean {
  littleEndian ??= new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  return littleEndian;
}
