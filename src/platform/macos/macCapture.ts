import sharp from 'sharp';
import { DeskdError } from '../../errors.js';
import type { DisplayInfo, RawCapture, RawImage, Rect } from '../types.js';
import type { HelperClient } from './helperClient.js';

/** Options of {@link MacCapture}. */
export interface MacCaptureOptions {
  /**
   * Pixel density asked of the helper: `native` (default) keeps the backing scale (2 px per point on Retina),
   * as the `RawCapture` contract says; `points` has ScreenCaptureKit render one pixel per point (4x fewer
   * pixels to encode and send; the image's `scale` is then 1).
   */
  scale?: 'native' | 'points';
  /** How long a `displays` answer is reused, ms. Default 1000 (0 disables). */
  displaysCacheMs?: number;
  /** Timeout of one capture request, ms. Default 15000. */
  timeoutMs?: number;
}

/**
 * Map the helper's displays to deskd's {@link DisplayInfo}: the global frame in points is kept as is
 * (negative origins of displays left of / above the primary stay negative), `scaleFactor` is the
 * backing scale factor. Source: `CGDisplayBounds`, `NSScreen.backingScaleFactor` (see protocol.ts).
 */
export function toDisplayInfo(d: { id: number; frame: Rect; backingScaleFactor: number; primary: boolean }): DisplayInfo {
  return { id: d.id, x: d.frame.x, y: d.frame.y, width: d.frame.width, height: d.frame.height, scaleFactor: d.backingScaleFactor, primary: d.primary };
}

/**
 * Decode the helper's PNG (base64) into a tightly packed RGBA {@link RawImage} with sharp.
 * @throws DeskdError `CAPTURE_FAILED` when the PNG does not decode or its size differs from the announced one.
 */
export async function decodeCapturePng(r: { png: string; width: number; height: number; scale: number; origin: { x: number; y: number } }): Promise<RawImage> {
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    out = await sharp(Buffer.from(r.png, 'base64')).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new DeskdError('CAPTURE_FAILED', `The macOS helper's PNG does not decode: ${(e as Error).message}`);
  }
  if (out.info.width !== r.width || out.info.height !== r.height || out.info.channels !== 4) {
    throw new DeskdError(
      'CAPTURE_FAILED',
      `The macOS helper announced a ${r.width}x${r.height} capture but sent ${out.info.width}x${out.info.height}x${out.info.channels}`,
    );
  }
  return { data: out.data, width: r.width, height: r.height, channels: 4, scale: r.scale, origin: { x: r.origin.x, y: r.origin.y } };
}

/**
 * Screen capture on macOS through the helper (ScreenCaptureKit `SCScreenshotManager.captureImage`).
 * Displays and regions are in global logical points; images carry `scale` (pixels per point) and the
 * global `origin` of their first pixel.
 * Errors: `PERMISSION_DENIED_SCREEN_RECORDING`, `DISPLAY_NOT_FOUND`, `CAPTURE_FAILED`, `HELPER_UNAVAILABLE`, `TIMEOUT`.
 */
export class MacCapture implements RawCapture {
  private cache: { at: number; displays: DisplayInfo[] } | null = null;

  constructor(
    private readonly client: HelperClient,
    private readonly opts: MacCaptureOptions = {},
  ) {}

  async displays(): Promise<DisplayInfo[]> {
    const ttl = this.opts.displaysCacheMs ?? 1000;
    if (this.cache && Date.now() - this.cache.at < ttl) return this.cache.displays.map((d) => ({ ...d }));
    const r = await this.client.request('displays', {});
    const displays = r.displays.map(toDisplayInfo);
    this.cache = { at: Date.now(), displays };
    return displays.map((d) => ({ ...d }));
  }

  async capture(displayId: number, region?: Rect): Promise<RawImage> {
    const r = await this.client.request(
      'capture',
      { displayId, ...(region ? { region: { ...region } } : {}), scale: this.opts.scale ?? 'native' },
      { timeoutMs: this.opts.timeoutMs ?? 15_000 },
    );
    return decodeCapturePng(r);
  }
}
