/**
 * Bands: a tall crop is split into horizontal bands read in parallel on separate workers, with boundaries
 * placed at text-free gaps so each band holds about as much ink. Pure.
 */
import type { PixelBox } from '../geometry.js';

/** One horizontal band of a crop read on its own; words whose centre falls in [ownTop, ownBottom) belong to it. */
export interface Band {
  /** The pixels OCR reads (source image pixels). */
  crop: PixelBox;
  /** The rows (source image pixels, absolute) whose lines this band reports. */
  ownTop: number;
  ownBottom: number;
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
export function splitBands(crop: PixelBox, n: number, overlap: number, rows?: { profile: RowProfile; minGap: number }): Band[] {
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

