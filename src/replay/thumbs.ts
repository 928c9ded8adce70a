import sharp from 'sharp';
import type { RawImage, Rect } from '../platform/types.js';
import { clip } from '../perception/geometry.js';

/**
 * Step thumbnails (issue 18): a region of a **masked** capture (`AgentCapture.capture`, the one capture
 * path for the agent; windows the policy masks are black in it) cropped around a step's target and
 * scaled down to at most {@link THUMB_MAX} pixels on its longer side, as PNG. Nothing here captures.
 */

/** Longest side of a thumbnail, pixels. */
export const THUMB_MAX = 240;
/** Points of context around a target. */
export const THUMB_PAD = 48;

/**
 * Crop `region` (global points) out of `img` (a masked capture: `origin` in points, `scale` pixels per
 * point) with {@link THUMB_PAD} points around it, scale it down, encode PNG.
 * @returns the PNG, or null when the region lies outside the image.
 */
export async function thumbnail(img: RawImage, region: Rect): Promise<Buffer | null> {
  const imgRect = { x: img.origin.x, y: img.origin.y, width: img.width / img.scale, height: img.height / img.scale };
  const r = clip({ x: region.x - THUMB_PAD, y: region.y - THUMB_PAD, width: region.width + 2 * THUMB_PAD, height: region.height + 2 * THUMB_PAD }, imgRect);
  if (!r) return null;
  const left = Math.max(0, Math.floor((r.x - img.origin.x) * img.scale));
  const top = Math.max(0, Math.floor((r.y - img.origin.y) * img.scale));
  const width = Math.min(img.width - left, Math.ceil(r.width * img.scale));
  const height = Math.min(img.height - top, Math.ceil(r.height * img.scale));
  if (width < 1 || height < 1) return null;
  const f = Math.min(1, THUMB_MAX / Math.max(width, height));
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .extract({ left, top, width, height })
    .resize(Math.max(1, Math.round(width * f)), Math.max(1, Math.round(height * f)))
    .png({ compressionLevel: 6 })
    .toBuffer();
}
