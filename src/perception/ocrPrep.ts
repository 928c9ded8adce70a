/**
 * Image preparation for OCR: crop, grayscale, invert light-on-dark, upscale, encode. Pure functions over
 * `RawImage` (sharp for the pixel work); the measurements behind the defaults are in `src/perception/ocr.ts`.
 */
import sharp from 'sharp';
import type { RawImage, Rect } from '../platform/types.js';

/** A rectangle in image pixels (integers, inside the image). */
export interface PixelRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** How to decide whether to invert a crop before OCR. */
export type InvertMode = 'auto' | 'always' | 'never';

/** One horizontal band of a crop read on its own; words whose centre falls in [ownTop, ownBottom) belong to it. */
export interface Band {
  /** The pixels OCR reads (source image pixels). */
  crop: PixelRect;
  /** The rows (source image pixels, absolute) whose lines this band reports. */
  ownTop: number;
  ownBottom: number;
}

/** A crop ready for tesseract, and how it was made. */
export interface PreparedImage {
  /** Binary PGM (P5, 8-bit gray): Leptonica reads it without any decoding cost. */
  data: Buffer;
  /** Prepared-image pixels per source pixel. */
  factor: number;
  /** True when the crop was inverted (light text on dark). */
  inverted: boolean;
  /** Mean luminance of the crop before inversion, 0 (black) … 1 (white). */
  meanLuminance: number;
  width: number;
  height: number;
}

/**
 * Map a region in logical global points to the image pixels it covers (rounded outwards, clipped to the
 * image). Without a region, the whole image. Returns null when the region misses the image.
 */
export function regionToPixels(img: RawImage, region?: Rect): PixelRect | null {
  if (!region) return { left: 0, top: 0, width: img.width, height: img.height };
  const x0 = Math.max(0, Math.floor((region.x - img.origin.x) * img.scale));
  const y0 = Math.max(0, Math.floor((region.y - img.origin.y) * img.scale));
  const x1 = Math.min(img.width, Math.ceil((region.x + region.width - img.origin.x) * img.scale));
  const y1 = Math.min(img.height, Math.ceil((region.y + region.height - img.origin.y) * img.scale));
  if (x1 <= x0 || y1 <= y0) return null;
  return { left: x0, top: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * Split a crop into `n` horizontal bands that overlap by `overlap` pixels on each inner edge, so that every
 * text line shorter than `2 * overlap` lies whole in the band that owns its centre. Bands are read in
 * parallel on separate workers.
 */
export function splitBands(crop: PixelRect, n: number, overlap: number): Band[] {
  const count = Math.max(1, Math.min(Math.floor(n), Math.floor(crop.height / Math.max(1, 4 * overlap)) || 1));
  const bands: Band[] = [];
  const bottom = crop.top + crop.height;
  for (let i = 0; i < count; i++) {
    const ownTop = crop.top + Math.round((crop.height * i) / count);
    const ownBottom = i === count - 1 ? bottom : crop.top + Math.round((crop.height * (i + 1)) / count);
    const top = Math.max(crop.top, ownTop - overlap);
    const end = Math.min(bottom, ownBottom + overlap);
    bands.push({ crop: { left: crop.left, top, width: crop.width, height: end - top }, ownTop, ownBottom });
  }
  return bands;
}

/**
 * Crop, convert to 8-bit luminance, invert when the crop is mostly dark (tesseract expects dark text on a
 * light page), upscale by `factor` (bicubic), and encode as binary PGM.
 * `invert: 'auto'` inverts when the mean luminance is below `darkThreshold` (0..1).
 */
export async function prepareCrop(
  img: RawImage,
  crop: PixelRect,
  opts: { invert: InvertMode; darkThreshold: number; factor: number },
): Promise<PreparedImage> {
  const gray = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .extract(crop)
    .removeAlpha()
    .greyscale()
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  let sum = 0;
  for (let i = 0; i < gray.length; i++) sum += gray[i]!;
  const meanLuminance = gray.length > 0 ? sum / gray.length / 255 : 1;
  const inverted = opts.invert === 'always' || (opts.invert === 'auto' && meanLuminance < opts.darkThreshold);
  if (inverted) for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i]!;
  let width = crop.width;
  let height = crop.height;
  let pixels = gray;
  if (opts.factor !== 1) {
    width = Math.max(1, Math.round(crop.width * opts.factor));
    height = Math.max(1, Math.round(crop.height * opts.factor));
    pixels = await sharp(gray, { raw: { width: crop.width, height: crop.height, channels: 1 } })
      .resize(width, height, { kernel: 'cubic' })
      // sharp writes 3-channel sRGB unless told to keep one channel.
      .toColourspace('b-w')
      .raw()
      .toBuffer();
  }
  if (pixels.length !== width * height) throw new Error(`prepared ${pixels.length} bytes for ${width}x${height} gray`);
  const header = Buffer.from(`P5\n${width} ${height}\n255\n`, 'ascii');
  return { data: Buffer.concat([header, pixels]), factor: opts.factor, inverted, meanLuminance, width, height };
}
