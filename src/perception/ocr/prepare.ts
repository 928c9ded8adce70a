/**
 * Image preparation for OCR: the crop a region covers, 8-bit luminance, the upscale a glyph height calls
 * for, and the encoding tesseract reads (inverted or light text isolated, upscaled, binary PGM). sharp does
 * the pixel work; the measurements behind the defaults are in src/perception/ocr/engine.ts.
 */
import sharp from 'sharp';
import type { RawImage, Rect } from '../../platform/types.js';
import { pointsToPixels, toPixelBox, type PixelBox } from '../geometry.js';
import { isolateLightText } from './lightText.js';

/**
 * The pixels of `img` a region in logical global points covers ({@link pointsToPixels}: rounded outwards,
 * clipped to the image) as a box; without a region, the whole image. Null when the region misses the image.
 */
export function regionToPixels(img: RawImage, region?: Rect): PixelBox | null {
  if (!region) return { left: 0, top: 0, width: img.width, height: img.height };
  const px = pointsToPixels(img, region);
  return px ? toPixelBox(px) : null;
}

/**
 * Crop and convert to 8-bit luminance (one byte per pixel, row-major, `crop.width × crop.height`).
 */
export async function grayCrop(img: RawImage, crop: PixelBox): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .extract(crop)
    .removeAlpha()
    // The conversion to b-w alone gives the same bytes as greyscale() before it, in ≈ 40 % of the time
    // (1920x1080: 38 vs 95 ms).
    .toColourspace('b-w')
    .raw()
    .toBuffer();
}

/**
 * Prepare part of a gray image for tesseract: take `rect` of `gray` (`width` pixels wide), invert it when
 * asked (or, given `lightTextOn` background levels, isolate its light text with {@link isolateLightText}),
 * upscale by `factor` (bicubic), and encode as binary PGM.
 */
export async function encodeGray(
  gray: Uint8Array,
  width: number,
  rect: PixelBox,
  opts: { invert: boolean; factor: number; lightTextOn?: number[]; cell?: number },
): Promise<{ data: Buffer; width: number; height: number }> {
  let pixels: Buffer = Buffer.alloc(rect.width * rect.height);
  for (let y = 0; y < rect.height; y++) {
    const src = (rect.top + y) * width + rect.left;
    pixels.set(gray.subarray(src, src + rect.width), y * rect.width);
  }
  if (opts.lightTextOn) pixels = isolateLightText(pixels, rect.width, rect.height, opts.lightTextOn, undefined, opts.cell);
  else if (opts.invert) for (let i = 0; i < pixels.length; i++) pixels[i] = 255 - pixels[i]!;
  let w = rect.width;
  let h = rect.height;
  if (opts.factor !== 1) {
    w = Math.max(1, Math.round(rect.width * opts.factor));
    h = Math.max(1, Math.round(rect.height * opts.factor));
    pixels = await sharp(pixels, { raw: { width: rect.width, height: rect.height, channels: 1 } })
      .resize(w, h, { kernel: 'cubic' })
      // sharp writes 3-channel sRGB unless told to keep one channel.
      .toColourspace('b-w')
      .raw()
      .toBuffer();
  }
  if (pixels.length !== w * h) throw new Error(`prepared ${pixels.length} bytes for ${w}x${h} gray`);
  const header = Buffer.from(`P5\n${w} ${h}\n255\n`, 'ascii');
  return { data: Buffer.concat([header, pixels]), width: w, height: h };
}

/** Glyph height (pixels, see `estimateGlyphHeight`) under which `upscale: 'auto'` enlarges (×1.5, ×2 or ×3). */
export const UPSCALE_BELOW_PX = 12;
/** Glyph height under which `upscale: 'auto'` enlarges ×2 instead of ×1.5. */
export const UPSCALE_X2_BELOW_PX = 8;
/** Glyph height under which `upscale: 'auto'` enlarges ×3. */
export const UPSCALE_X3_BELOW_PX = 7;

/**
 * The upscale `upscale: 'auto'` applies to a part of an image whose typical glyph height is `glyphPx`
 * pixels (`estimateGlyphHeight`; 0 = no glyph found): ×3 below `UPSCALE_X3_BELOW_PX`, ×2 below
 * `UPSCALE_X2_BELOW_PX`, ×1.5 below `UPSCALE_BELOW_PX`, else ×1 (1x screens draw 13–14 px text with glyphs
 * of 7–10 px, 2x screens twice that). ×1.5 for 8–11 px glyphs (12–16 px after): on six 1920x1080 pages of
 * 13 px text (bench/ocr-cold, glyphs 8–9 px) it read as many words as ×2 or more (one fewer on one page,
 * more on four) with 56% of ×2's pixels, and tesseract's time grows with the pixels it is sent
 * (docs/perception-incremental.md, cold profile). Without a glyph, ×2 for images of fewer than 2 pixels per
 * point. Pure.
 */
export function autoUpscale(glyphPx: number, scale: number): number {
  if (glyphPx <= 0) return scale < 2 ? 2 : 1;
  if (glyphPx < UPSCALE_X3_BELOW_PX) return 3;
  if (glyphPx < UPSCALE_X2_BELOW_PX) return 2;
  return glyphPx < UPSCALE_BELOW_PX ? 1.5 : 1;
}

/** Detail upscales under this are read ×1 first by {@link coarseUpscale}. */
const UPSCALE_COARSE_BELOW = 2;

/**
 * The upscale of a first, coarse read of text whose `upscale: 'auto'` factor is `detail` (see {@link autoUpscale};
 * `coarseBands`): ×1 where `detail` is ×1.5 (glyphs of 8–11 px, which tesseract reads at ×1 as naive full-frame
 * tesseract does, with fewer sure words), else `detail` itself (smaller glyphs need their upscale to be read at
 * all). The lines such a read is unsure of are read again upscaled (`rereadUnsureLines`). Pure.
 */
export function coarseUpscale(detail: number): number {
  return detail > 1 && detail < UPSCALE_COARSE_BELOW ? 1 : detail;
}
