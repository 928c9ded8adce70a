import sharp from 'sharp';
import type { RawImage } from '../platform/types.js';

/** Image encodings the API serves. */
export type ImageFormat = 'png' | 'jpeg';

/** An encoded image and the geometry a client needs to map it back to screen points. */
export interface EncodedImage {
  format: ImageFormat;
  /** MIME type, `image/png` or `image/jpeg`. */
  mimeType: string;
  data: Buffer;
  /** Image size in pixels. */
  width: number;
  height: number;
  /** Image pixels per logical point (1 means pixel (x, y) is click point origin + (x, y)). */
  scale: number;
  /** Global point of image pixel (0, 0). */
  origin: { x: number; y: number };
}

/**
 * Encode a raw capture. With `toPoints` (the default) an image captured at a backing scale > 1 is
 * resized to logical points, so that image pixel (x, y) is screen point origin + (x, y).
 * JPEG quality 80 (mozjpeg defaults otherwise); PNG with compression level 3 (speed over size).
 */
export async function encodeImage(img: RawImage, format: ImageFormat, opts: { toPoints?: boolean } = {}): Promise<EncodedImage> {
  const toPoints = opts.toPoints ?? true;
  let pipeline = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
  let width = img.width;
  let height = img.height;
  let scale = img.scale;
  if (toPoints && img.scale !== 1) {
    width = Math.round(img.width / img.scale);
    height = Math.round(img.height / img.scale);
    pipeline = pipeline.resize(width, height, { kernel: 'lanczos3' });
    scale = 1;
  }
  const data =
    format === 'png'
      ? await pipeline.png({ compressionLevel: 3 }).toBuffer()
      : await pipeline.removeAlpha().jpeg({ quality: 80 }).toBuffer();
  return { format, mimeType: format === 'png' ? 'image/png' : 'image/jpeg', data, width, height, scale, origin: { ...img.origin } };
}
