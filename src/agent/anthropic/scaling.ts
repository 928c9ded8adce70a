/**
 * The screenshot size Claude is shown, and the exact mapping between its pixels and deskd's points.
 *
 * Anthropic's vision limits: an image whose long edge exceeds 1568 px, or whose area exceeds about
 * 1.15 megapixels, is scaled down by the API before the model sees it, and the coordinates the model
 * answers are then in that unseen, smaller space (Anthropic docs, "Vision" → image size, and "Computer
 * use tool" → scaling screenshots; newer models such as Opus 4.7 read up to 2576 px, so the limits are
 * options). deskd therefore scales every screenshot itself so that both limits hold, reports that size
 * as the tool's `display_width_px` / `display_height_px`, and maps each coordinate back with the same
 * per-axis ratio the image was resized with.
 */

/** Longest edge, px, Claude sees without rescaling (Anthropic vision docs). */
export const DEFAULT_MAX_LONG_EDGE = 1568;
/** Most pixels (width × height) Claude sees without rescaling (≈1.15 MP, Anthropic vision docs). */
export const DEFAULT_MAX_PIXELS = 1_150_000;

/** Size limits of the screenshots given to Claude. */
export interface ScreenshotLimits {
  /** px; default {@link DEFAULT_MAX_LONG_EDGE}. */
  maxLongEdge: number;
  /** px²; default {@link DEFAULT_MAX_PIXELS}. */
  maxPixels: number;
}

export const DEFAULT_LIMITS: ScreenshotLimits = { maxLongEdge: DEFAULT_MAX_LONG_EDGE, maxPixels: DEFAULT_MAX_PIXELS };

/**
 * The largest size with the source's aspect ratio within both limits (never larger than the source):
 * factor `min(1, maxLongEdge / longEdge, sqrt(maxPixels / area))`, each side floored so the limits hold
 * after rounding. 1920x1080 → 1429x804; 2560x1440 → 1429x804; 1280x800 → unchanged.
 * @param width source width, px (> 0); @param height source height, px (> 0).
 */
export function fitWithinLimits(width: number, height: number, limits: ScreenshotLimits = DEFAULT_LIMITS): { width: number; height: number } {
  const f = Math.min(1, limits.maxLongEdge / Math.max(width, height), Math.sqrt(limits.maxPixels / (width * height)));
  if (f >= 1) return { width, height };
  // The epsilon keeps an exact fit (3000 · 1568/3000) from flooring one pixel short through rounding error.
  return { width: Math.max(1, Math.floor(width * f + 1e-9)), height: Math.max(1, Math.floor(height * f + 1e-9)) };
}

/**
 * One display as Claude sees it: its frame in deskd's global logical points and the scaled screenshot
 * size. Model pixel (x, y) ↔ point (origin.x + x · pointsWidth / width, origin.y + y · pointsHeight / height).
 */
export class ModelSpace {
  constructor(
    /** Global point of the display's top-left corner. */
    readonly origin: { x: number; y: number },
    /** Display size, logical points. */
    readonly points: { width: number; height: number },
    /** Screenshot size Claude is shown (`display_width_px` × `display_height_px`). */
    readonly width: number,
    readonly height: number,
  ) {}

  /** The space for a display of `points` whose capture is `pixels` large (Retina: 2× the points). */
  static forDisplay(origin: { x: number; y: number }, points: { width: number; height: number }, pixels: { width: number; height: number }, limits: ScreenshotLimits = DEFAULT_LIMITS): ModelSpace {
    const s = fitWithinLimits(pixels.width, pixels.height, limits);
    return new ModelSpace(origin, points, s.width, s.height);
  }

  /** Whether a model coordinate lies on the screenshot (0 ≤ x < width, 0 ≤ y < height). */
  contains(x: number, y: number): boolean {
    return Number.isFinite(x) && Number.isFinite(y) && x >= 0 && y >= 0 && x < this.width && y < this.height;
  }

  /** Model pixel → global logical point (exact inverse of the resize; may be fractional). */
  toPoint(x: number, y: number): { x: number; y: number } {
    return { x: this.origin.x + (x * this.points.width) / this.width, y: this.origin.y + (y * this.points.height) / this.height };
  }

  /** Global logical point → model pixel (rounded to the nearest pixel). */
  fromPoint(p: { x: number; y: number }): { x: number; y: number } {
    return { x: Math.round(((p.x - this.origin.x) * this.width) / this.points.width), y: Math.round(((p.y - this.origin.y) * this.height) / this.points.height) };
  }
}
