/**
 * Convert a BGRA (or BGRx) pixel buffer with a given row stride into tightly packed RGBA with opaque alpha.
 * libnut's `screen.grab` returns BGRA rows of `byteWidth` bytes (XGetImage ZPixmap on X11, CGImage on macOS).
 * @param src source bytes; `width`/`height` in pixels; `stride` bytes per source row (≥ width * 4).
 * @returns a new Buffer of `width * height * 4` bytes, RGBA.
 */
export function bgraToRgba(src: Buffer, width: number, height: number, stride: number): Buffer {
  const out = Buffer.allocUnsafe(width * height * 4);
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
