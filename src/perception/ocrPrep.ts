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
 * Per-row facts of a gray crop that {@link splitBands} uses to place band boundaries.
 * `ink[y]`: how many horizontally adjacent pixel pairs of row y differ by more than {@link INK_STEP} (text
 * has many such steps per line, a blank row or a vertical rule few). `still[y]`: 1 when no pixel of row y
 * differs from the one above it by more than {@link STILL_STEP} (row 0: 0), i.e. nothing but vertical
 * structure (backgrounds, borders) passes from row y-1 to y, so no glyph is cut between them.
 */
export interface RowProfile {
  ink: Uint32Array;
  still: Uint8Array;
}

/** Gray step (0..255) between neighbours that counts as ink in {@link rowProfile}. */
const INK_STEP = 32;
/** Largest gray change between vertically adjacent pixels of a still row. */
const STILL_STEP = 8;

/** Compute the {@link RowProfile} of `gray` (`width` pixels per row, `height` rows). One pass, O(width × height). */
export function rowProfile(gray: Uint8Array, width: number, height: number): RowProfile {
  const ink = new Uint32Array(height);
  const still = new Uint8Array(height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let steps = 0;
    for (let x = 1; x < width; x++) {
      const d = gray[row + x]! - gray[row + x - 1]!;
      if (d > INK_STEP || d < -INK_STEP) steps++;
    }
    ink[y] = steps;
    if (y === 0) continue;
    let same = 1;
    for (let x = 0, above = row - width; x < width; x++) {
      const d = gray[row + x]! - gray[above + x]!;
      if (d > STILL_STEP || d < -STILL_STEP) {
        same = 0;
        break;
      }
    }
    still[y] = same;
  }
  return { ink, still };
}

/**
 * Split a crop into `n` horizontal bands, read in parallel on separate workers.
 *
 * Without `rows`, the bands are of equal height and overlap by `overlap` pixels on each inner edge, so
 * every text line shorter than `2 * overlap` lies whole in the band that owns its centre.
 * With `rows` (the crop's {@link RowProfile}), each inner boundary first goes where the ink above it is
 * i/n of the crop's (so the workers finish together), then moves to the middle of a run of at least
 * `minGap` identical, nearly inkless rows within a quarter of a band's height (the tallest near, see
 * `bestStillRun`): a gap no glyph crosses, which the two bands share instead of `overlap` rows each (less
 * to read twice). Where no such gap is near, the boundary keeps its place and its overlap.
 */
export function splitBands(crop: PixelRect, n: number, overlap: number, rows?: { profile: RowProfile; minGap: number }): Band[] {
  const count = Math.max(1, Math.min(Math.floor(n), Math.floor(crop.height / Math.max(1, 4 * overlap)) || 1));
  const bottom = crop.top + crop.height;
  // Boundaries relative to the crop: cuts[i] is where band i ends and band i + 1 begins; reach[i] how far
  // each side reads past it.
  const cuts: number[] = [];
  const reach: number[] = [];
  const weights = rows ? cumulativeInk(rows.profile.ink, crop.height) : null;
  for (let i = 1; i < count; i++) {
    const even = Math.round((crop.height * i) / count);
    if (!rows || !weights) {
      cuts.push(even);
      reach.push(overlap);
      continue;
    }
    const total = weights[crop.height]!;
    const balanced = total > 0 ? lowerBound(weights, (total * i) / count) : even;
    const window = Math.floor(crop.height / count / 4);
    // Every band keeps at least 4 × overlap rows (count was chosen so they fit): the cut stays in
    // [minCut, maxCut] whatever the ink says (ink only at the very bottom would otherwise push it past the crop).
    const minCut = (cuts[cuts.length - 1] ?? 0) + 4 * overlap;
    const maxCut = crop.height - 4 * overlap * (count - i);
    const lo = clamp(balanced - window, minCut, maxCut);
    const hi = clamp(balanced + window, lo, maxCut);
    const maxInk = Math.max(8, Math.floor(crop.width / 96));
    const gap = bestStillRun(rows.profile, crop.height, balanced, lo, hi, rows.minGap, maxInk);
    if (gap) {
      cuts.push(gap.middle);
      reach.push(gap.half);
    } else {
      cuts.push(clamp(balanced, lo, hi));
      reach.push(overlap);
    }
  }
  const bands: Band[] = [];
  for (let i = 0; i < count; i++) {
    const ownTop = i === 0 ? crop.top : crop.top + cuts[i - 1]!;
    const ownBottom = i === count - 1 ? bottom : crop.top + cuts[i]!;
    const top = Math.max(crop.top, ownTop - (i === 0 ? 0 : reach[i - 1]!));
    const end = Math.min(bottom, ownBottom + (i === count - 1 ? 0 : reach[i]!));
    bands.push({ crop: { left: crop.left, top, width: crop.width, height: end - top }, ownTop, ownBottom });
  }
  return bands;
}

/** `out[y]` = ink of rows 0..y-1 (so `out[height]` is the total). */
function cumulativeInk(ink: Uint32Array, height: number): Float64Array {
  const out = new Float64Array(height + 1);
  for (let y = 0; y < height; y++) out[y + 1] = out[y]! + (ink[y] ?? 0);
  return out;
}

/** The first index whose cumulative value reaches `v`. */
function lowerBound(cum: Float64Array, v: number): number {
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `v` limited to [a, b]. */
function clamp(v: number, a: number, b: number): number {
  return Math.min(Math.max(v, a), b);
}

/**
 * The run of at least `minGap` identical rows (a row and the still rows after it), each with at most
 * `maxInk` ink steps, whose middle lies in [lo, hi], taller runs first: a run scores its height less an eighth
 * of its middle's distance from `target`. The ink bound keeps runs inside large text out (a 48 px heading
 * has runs of 4–5 rows crossing only vertical stems, 37–44 steps a row at 1920 px; blank rows have 0, rows
 * crossing table borders 7–16). The space between two table rows or paragraphs is taller than the flat fill
 * of a button or badge above its label, where a cut would leave the button's rounded top edge to one band
 * (read as "J", "ry"). `half` is half the run's height (how far each band reads past the middle: the whole
 * gap, nothing more).
 */
function bestStillRun(profile: RowProfile, height: number, target: number, lo: number, hi: number, minGap: number, maxInk: number): { middle: number; half: number } | null {
  const { still, ink } = profile;
  let best: { middle: number; half: number; score: number } | null = null;
  for (let y = 1; y < height; ) {
    if (!still[y]) {
      y++;
      continue;
    }
    const start = y - 1; // the row the run's first still row repeats
    let inked = ink[start]! > maxInk;
    while (y < height && still[y]) {
      if (ink[y]! > maxInk) inked = true;
      y++;
    }
    const end = y; // exclusive
    if (inked || end - start < minGap) continue;
    const middle = Math.floor((start + end) / 2);
    if (middle < lo || middle > hi) continue;
    const score = end - start - Math.abs(middle - target) / 8;
    if (!best || score > best.score) best = { middle, half: Math.ceil((end - start) / 2), score };
  }
  return best ? { middle: best.middle, half: best.half } : null;
}

/**
 * Crop and convert to 8-bit luminance (one byte per pixel, row-major, `crop.width × crop.height`).
 */
export async function grayCrop(img: RawImage, crop: PixelRect): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .extract(crop)
    .removeAlpha()
    // The conversion to b-w alone gives the same bytes as greyscale() before it, in ≈ 40 % of the time
    // (1920x1080: 38 vs 95 ms).
    .toColourspace('b-w')
    .raw()
    .toBuffer();
}

/** Mean luminance of an 8-bit gray buffer, 0 (black) … 1 (white); 1 when empty. */
export function meanLuminance(gray: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < gray.length; i++) sum += gray[i]!;
  return gray.length > 0 ? sum / gray.length / 255 : 1;
}

/** Background levels (0..255) below which dark text is read again on its own surface too. */
const TINTED_BELOW = 200;

/** Options of {@link findLightTextRegions}. */
export interface LightTextOptions {
  /** Cell side, pixels (default 12). */
  cell?: number;
  /** Luminance difference (0..255) from the cell's background that counts as ink (default 48). */
  inkContrast?: number;
  /** Light-ink pixels a cell needs to be flagged (default 4). */
  minInk?: number;
  /** Padding added around each region, pixels (default one cell). */
  pad?: number;
}

/**
 * Find the parts of a gray image where text is lighter than its background (light-on-dark panels, white
 * text on coloured buttons and badges, dark cards on a light page), as rectangles in the image's pixels.
 *
 * Per cell of `cell × cell` pixels: the background is the most common luminance (32 levels; flat UI
 * backgrounds dominate a cell even under text, whose anti-aliased pixels spread over many levels); the cell
 * is flagged when it holds at least `minInk` pixels lighter than that background by `inkContrast` and more
 * of them than darker ones, or — on a tinted background (level < 200: badges, coloured buttons) — as many
 * darker ones. Flagged cells are grouped 8-connected; each group's bounding box, padded by
 * `pad` and clipped, is one region; overlapping regions are merged. Pure; O(pixels).
 */
export function findLightTextRegions(gray: Uint8Array, width: number, height: number, opts: LightTextOptions = {}): LightTextRegion[] {
  const cell = Math.max(2, Math.floor(opts.cell ?? 12));
  const contrast = opts.inkContrast ?? 48;
  const minInk = opts.minInk ?? 4;
  const pad = opts.pad ?? cell;
  const cols = Math.ceil(width / cell);
  const rows = Math.ceil(height / cell);
  const flagged = new Uint8Array(cols * rows);
  const hist = new Uint32Array(32);
  for (let cy = 0; cy < rows; cy++) {
    const y0 = cy * cell;
    const y1 = Math.min(height, y0 + cell);
    for (let cx = 0; cx < cols; cx++) {
      const x0 = cx * cell;
      const x1 = Math.min(width, x0 + cell);
      hist.fill(0);
      for (let y = y0; y < y1; y++) {
        const row = y * width;
        for (let x = x0; x < x1; x++) hist[gray[row + x]! >> 3]! += 1;
      }
      let mode = 0;
      for (let b = 1; b < 32; b++) if (hist[b]! > hist[mode]!) mode = b;
      const bg = mode * 8 + 4;
      let light = 0;
      let dark = 0;
      for (let y = y0; y < y1; y++) {
        const row = y * width;
        for (let x = x0; x < x1; x++) {
          const v = gray[row + x]!;
          if (v > bg + contrast) light++;
          else if (v < bg - contrast) dark++;
        }
      }
      // Light text on a darker surface, or dark text on a tinted surface (a badge, a coloured button).
      if ((light >= minInk && light > dark) || (bg < TINTED_BELOW && dark >= minInk && dark > light)) flagged[cy * cols + cx] = 1 + mode;
    }
  }
  // 8-connected groups of flagged cells → padded bounding boxes.
  const seen = new Uint8Array(cols * rows);
  const boxes: LightTextRegion[] = [];
  const stack: number[] = [];
  for (let i = 0; i < flagged.length; i++) {
    if (!flagged[i] || seen[i]) continue;
    let minX = cols, minY = rows, maxX = -1, maxY = -1;
    const levels = new Set<number>();
    seen[i] = 1;
    stack.push(i);
    while (stack.length > 0) {
      const k = stack.pop()!;
      const kx = k % cols;
      const ky = (k - kx) / cols;
      levels.add((flagged[k]! - 1) * 8 + 4);
      minX = Math.min(minX, kx); maxX = Math.max(maxX, kx);
      minY = Math.min(minY, ky); maxY = Math.max(maxY, ky);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = kx + dx;
          const ny = ky + dy;
          if (nx < 0 || ny < 0 || nx >= cols || ny >= rows) continue;
          const n = ny * cols + nx;
          if (flagged[n] && !seen[n]) {
            seen[n] = 1;
            stack.push(n);
          }
        }
      }
    }
    const left = Math.max(0, minX * cell - pad);
    const top = Math.max(0, minY * cell - pad);
    const right = Math.min(width, (maxX + 1) * cell + pad);
    const bottom = Math.min(height, (maxY + 1) * cell + pad);
    boxes.push({ left, top, width: right - left, height: bottom - top, backgrounds: [...levels].sort((a, b) => a - b) });
  }
  return mergeRects(boxes);
}

/** A region found by {@link findLightTextRegions}: pixels, and the background levels (0..255) its light text sits on. */
export interface LightTextRegion extends PixelRect {
  backgrounds: number[];
}

/**
 * Turn a light-text region into dark text on white, as tesseract wants it, without the surroundings that a
 * plain inversion would turn into a black frame (a white page around a green button becomes black, and
 * Otsu's global threshold then swallows the button). `gray` holds the region's pixels (`width × height`).
 * Pixels within `tol` of one of the region's background levels are the surface (→ white); other pixels
 * connected to the region's border are the surroundings (→ white); what is left is enclosed by the surface:
 * the text, drawn dark in proportion to its distance from the nearest surface level (twice it, clamped), so
 * light and dark text on any colour come out dark on white.
 *
 * With `cell` (pixels), a background level is surface only near where it is a surface: in the cells (of
 * `cell × cell`) whose most common level it is, and their 8 neighbours. A level that a graphic contributed
 * (a gauge's grey arc) then no longer erases text of the same grey elsewhere in the region ("last minute"
 * under a gauge: lost without it). Pure.
 */
export function isolateLightText(gray: Uint8Array, width: number, height: number, backgrounds: number[], tol = 20, cell?: number): Buffer {
  const n = width * height;
  const out = Buffer.alloc(n, 255);
  const surface = new Uint8Array(n);
  const levelsAt = localSurfaceLevels(gray, width, height, backgrounds, tol, cell);
  for (let i = 0; i < n; i++) {
    const v = gray[i]!;
    for (const b of levelsAt(i)) {
      if (Math.abs(v - b) <= tol) {
        surface[i] = 1;
        break;
      }
    }
  }
  // Flood the non-surface pixels reachable from the border: the surroundings.
  const outside = new Uint8Array(n);
  const stack: number[] = [];
  const seed = (i: number) => {
    if (!surface[i] && !outside[i]) {
      outside[i] = 1;
      stack.push(i);
    }
  };
  for (let x = 0; x < width; x++) {
    seed(x);
    seed((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    seed(y * width);
    seed(y * width + width - 1);
  }
  while (stack.length > 0) {
    const i = stack.pop()!;
    const x = i % width;
    if (x > 0) seed(i - 1);
    if (x < width - 1) seed(i + 1);
    if (i >= width) seed(i - width);
    if (i + width < n) seed(i + width);
  }
  for (let i = 0; i < n; i++) {
    if (surface[i] || outside[i]) continue;
    const v = gray[i]!;
    let d = 255;
    const near = levelsAt(i);
    for (const l of near.length > 0 ? near : backgrounds) d = Math.min(d, Math.abs(v - l));
    // Twice the contrast: anti-aliased edges of thin strokes ("l" at 13 px) stay ink.
    out[i] = 255 - Math.min(255, 2 * d);
  }
  return out;
}

/**
 * Which background levels count as surface at each pixel: all of them without `cell`; with it, those that
 * are (within `tol`) the most common level of the pixel's cell or of one of its 8 neighbours.
 */
function localSurfaceLevels(gray: Uint8Array, width: number, height: number, backgrounds: number[], tol: number, cell?: number): (i: number) => number[] {
  if (!cell || cell < 2) return () => backgrounds;
  const cols = Math.ceil(width / cell);
  const rows = Math.ceil(height / cell);
  // Per cell: index into `backgrounds` of its mode's nearest level, or -1.
  const own = new Int16Array(cols * rows).fill(-1);
  const hist = new Uint32Array(32);
  for (let cy = 0; cy < rows; cy++) {
    for (let cx = 0; cx < cols; cx++) {
      hist.fill(0);
      for (let y = cy * cell; y < Math.min(height, (cy + 1) * cell); y++) {
        for (let x = cx * cell; x < Math.min(width, (cx + 1) * cell); x++) hist[gray[y * width + x]! >> 3]! += 1;
      }
      let mode = 0;
      for (let b = 1; b < 32; b++) if (hist[b]! > hist[mode]!) mode = b;
      const m = mode * 8 + 4;
      let best = -1;
      for (let k = 0; k < backgrounds.length; k++) {
        const d = Math.abs(backgrounds[k]! - m);
        if (d <= tol && (best < 0 || d < Math.abs(backgrounds[best]! - m))) best = k;
      }
      own[cy * cols + cx] = best;
    }
  }
  const near: number[][] = [];
  for (let cy = 0; cy < rows; cy++) {
    for (let cx = 0; cx < cols; cx++) {
      const set = new Set<number>();
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const x = cx + dx;
          const y = cy + dy;
          if (x < 0 || y < 0 || x >= cols || y >= rows) continue;
          const k = own[y * cols + x]!;
          if (k >= 0) set.add(backgrounds[k]!);
        }
      }
      near.push([...set]);
    }
  }
  return (i) => {
    const x = i % width;
    const y = (i - x) / width;
    return near[Math.floor(y / cell) * cols + Math.floor(x / cell)]!;
  };
}

/** Merge overlapping rectangles until none overlap (background levels are pooled). */
export function mergeRects<T extends PixelRect & { backgrounds?: number[] }>(rects: T[]): T[] {
  const out = rects.map((r) => ({ ...r }));
  let changed = true;
  while (changed) {
    changed = false;
    outer: for (let i = 0; i < out.length; i++) {
      for (let j = i + 1; j < out.length; j++) {
        const a = out[i]!;
        const b = out[j]!;
        if (a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height && b.top < a.top + a.height) {
          const left = Math.min(a.left, b.left);
          const top = Math.min(a.top, b.top);
          const merged = { ...a, left, top, width: Math.max(a.left + a.width, b.left + b.width) - left, height: Math.max(a.top + a.height, b.top + b.height) - top };
          if (a.backgrounds || b.backgrounds) merged.backgrounds = [...new Set([...(a.backgrounds ?? []), ...(b.backgrounds ?? [])])].sort((x, y) => x - y);
          out[i] = merged;
          out.splice(j, 1);
          changed = true;
          break outer;
        }
      }
    }
  }
  return out.sort((a, b) => a.top - b.top || a.left - b.left);
}

/**
 * Prepare part of a gray image for tesseract: take `rect` of `gray` (`width` pixels wide), invert it when
 * asked (or, given `lightTextOn` background levels, isolate its light text with {@link isolateLightText}),
 * upscale by `factor` (bicubic), and encode as binary PGM.
 */
export async function encodeGray(
  gray: Uint8Array,
  width: number,
  rect: PixelRect,
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
  const gray = await grayCrop(img, crop);
  const mean = meanLuminance(gray);
  const inverted = opts.invert === 'always' || (opts.invert === 'auto' && mean < opts.darkThreshold);
  const enc = await encodeGray(gray, crop.width, { left: 0, top: 0, width: crop.width, height: crop.height }, { invert: inverted, factor: opts.factor });
  return { data: enc.data, factor: opts.factor, inverted, meanLuminance: mean, width: enc.width, height: enc.height };
}

/** Options of {@link estimateGlyphHeight}. */
export interface GlyphHeightOptions {
  /** Cell side for the local background, pixels (default 12). */
  cell?: number;
  /** Luminance difference (0..255) from the cell's background that counts as ink (default 48). */
  inkContrast?: number;
  /** Tallest component counted as a glyph, pixels (default 96): frames, gauges and photos are not text. */
  maxHeight?: number;
  /** Fewest glyphs for an estimate (default 1): with fewer, {@link estimateGlyphHeight} returns 0. */
  minGlyphs?: number;
}

/**
 * Typical glyph height of the text in `rect` of a gray image (`width` pixels wide), in pixels: the median
 * height of the connected components (8-connected) of ink, where ink is a pixel at least `inkContrast` away
 * from its cell's most common level (32 levels, as in {@link findLightTextRegions}), so light and dark text
 * count alike. Components under 4 pixels tall (rules, dots, noise) or over `maxHeight`, and thin vertical
 * strokes (borders: taller than 3× their width and than 24 px) are not glyphs. Lower-case letters dominate
 * text, so the value sits between the x-height and the cap height: ≈ 8–10 px for 13–14 px text at 1x,
 * twice that at 2x. Returns 0 when nothing looks like a glyph. Pure; O(pixels).
 */
export function estimateGlyphHeight(gray: Uint8Array, width: number, rect: PixelRect, opts: GlyphHeightOptions = {}): number {
  const heights = glyphBoxes(gray, width, rect, opts).map((b) => b.height);
  if (heights.length === 0 || heights.length < (opts.minGlyphs ?? 1)) return 0;
  heights.sort((a, b) => a - b);
  return heights[Math.floor(heights.length / 2)]!;
}

/**
 * The boxes (pixels of `gray`, absolute) of the connected components of ink in `rect` that look like
 * glyphs, as {@link estimateGlyphHeight} counts them. Pure; O(pixels).
 */
export function glyphBoxes(gray: Uint8Array, width: number, rect: PixelRect, opts: GlyphHeightOptions = {}): PixelRect[] {
  const cell = Math.max(2, Math.floor(opts.cell ?? 12));
  const contrast = opts.inkContrast ?? 48;
  const maxHeight = opts.maxHeight ?? 96;
  const w = rect.width;
  const h = rect.height;
  const ink = new Uint8Array(w * h);
  const hist = new Uint32Array(32);
  for (let cy = 0; cy < h; cy += cell) {
    for (let cx = 0; cx < w; cx += cell) {
      const y1 = Math.min(h, cy + cell);
      const x1 = Math.min(w, cx + cell);
      hist.fill(0);
      for (let y = cy; y < y1; y++) {
        const row = (rect.top + y) * width + rect.left;
        for (let x = cx; x < x1; x++) hist[gray[row + x]! >> 3]! += 1;
      }
      let mode = 0;
      for (let b = 1; b < 32; b++) if (hist[b]! > hist[mode]!) mode = b;
      const bg = mode * 8 + 4;
      for (let y = cy; y < y1; y++) {
        const row = (rect.top + y) * width + rect.left;
        for (let x = cx; x < x1; x++) if (Math.abs(gray[row + x]! - bg) > contrast) ink[y * w + x] = 1;
      }
    }
  }
  const boxes: PixelRect[] = [];
  const stack: number[] = [];
  for (let i = 0; i < ink.length; i++) {
    if (ink[i] !== 1) continue;
    ink[i] = 2;
    stack.push(i);
    let minX = w, maxX = -1, minY = h, maxY = -1;
    while (stack.length > 0) {
      const k = stack.pop()!;
      const x = k % w;
      const y = (k - x) / w;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= w) continue;
          const j = ny * w + nx;
          if (ink[j] === 1) {
            ink[j] = 2;
            stack.push(j);
          }
        }
      }
    }
    const ch = maxY - minY + 1;
    const cw = maxX - minX + 1;
    if (ch < 4 || ch > maxHeight || (ch > 3 * cw && ch > 24)) continue;
    boxes.push({ left: rect.left + minX, top: rect.top + minY, width: cw, height: ch });
  }
  return boxes;
}
