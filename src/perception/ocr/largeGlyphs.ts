/**
 * Large isolated glyphs (issue 14 item 7): a dashboard card's value is often one digit or a short number in
 * large type ("3" in a ring gauge, "48" on a KPI card). Tesseract's automatic layout (PSM 3) takes such a
 * lone blob for an image or noise and reads the small label under it but not the value. This stage finds
 * glyph blobs much taller than the page's text that lie in no word, groups them into short runs (a number
 * and its unit), and the engine reads each run again as one line (`SINGLE_LINE`) or, for a lone glyph, one
 * character (`SINGLE_CHAR`) on a tight crop.
 */
import type { Rect } from '../../platform/types.js';
import type { OcrWord } from '../elements.js';
import { centerInside, clip, union } from '../geometry.js';

/** Tuning of {@link largeGlyphRuns}; sizes in logical points. */
export interface LargeGlyphOptions {
  /** Smallest glyph height considered (default 16 pt; body text glyphs are 7–10 pt). */
  minHeight?: number;
  /** Glyphs must also be this many times the page's median glyph height (default 2.5). */
  minRatio?: number;
  /** Page's median glyph height, points (0 = unknown: only `minHeight` applies). */
  medianHeight?: number;
  /** Tallest glyph considered (default 160 pt). */
  maxHeight?: number;
  /** Most glyphs in one run (default 6: a short number with its unit); longer runs are lines of text. */
  maxGlyphs?: number;
  /** Most runs returned, shortest first (default 12): each is a tesseract job. */
  maxRuns?: number;
}

/** A run of large glyphs to read again: the padded area, the glyphs' union and how many glyphs. */
export interface LargeGlyphRun {
  /** Area to read (points): the glyphs' union padded by ⅓ of its height sideways and ¼ vertically, clipped. */
  area: Rect;
  /** Union of the glyph boxes (points). */
  box: Rect;
  glyphs: number;
}

/**
 * Runs of large glyphs outside every word (glyph boxes in points, e.g. `glyphBoxes` mapped to points): glyphs
 * at least `max(minHeight, minRatio × medianHeight)` tall with a digit-like aspect (width 0.3–1.05 of the
 * height: rings, arcs and card shapes are mostly wider), whose centre lies in no word (padded by ¼ of its height), chained left to right when they overlap
 * vertically by ≥ 60% of the smaller, differ in height by at most 1.7x and stand at most half a height
 * apart. Runs of more than `maxGlyphs` glyphs are dropped (text lines, read by the other passes). Pure.
 */
export function largeGlyphRuns(words: OcrWord[], glyphs: Rect[], within: Rect, opts: LargeGlyphOptions = {}): LargeGlyphRun[] {
  const minHeight = Math.max(opts.minHeight ?? 16, (opts.minRatio ?? 2.5) * (opts.medianHeight ?? 0));
  const maxHeight = opts.maxHeight ?? 160;
  const maxGlyphs = opts.maxGlyphs ?? 6;
  const maxRuns = opts.maxRuns ?? 12;
  const inWord = (g: Rect) => words.some((w) => centerInside(g, w.bounds, w.bounds.height / 4));
  const big = glyphs.filter((g) => g.height >= minHeight && g.height <= maxHeight && g.width >= 0.3 * g.height && g.width <= 1.05 * g.height && !inWord(g));
  big.sort((a, b) => a.x - b.x);
  const used = new Set<number>();
  const runs: LargeGlyphRun[] = [];
  for (let i = 0; i < big.length; i++) {
    if (used.has(i)) continue;
    const members = [big[i]!];
    used.add(i);
    let last = big[i]!;
    for (let j = i + 1; j < big.length; j++) {
      if (used.has(j)) continue;
      const b = big[j]!;
      const h = Math.max(last.height, b.height);
      const gap = b.x - (last.x + last.width);
      if (gap > h / 2) {
        if (b.x > last.x + last.width + 2 * h) break;
        continue;
      }
      const overlap = Math.min(last.y + last.height, b.y + b.height) - Math.max(last.y, b.y);
      const ratio = Math.max(last.height, b.height) / Math.min(last.height, b.height);
      if (overlap < 0.6 * Math.min(last.height, b.height) || ratio > 1.7) continue;
      members.push(b);
      used.add(j);
      last = b;
    }
    if (members.length > maxGlyphs) continue;
    const box = union(members)!;
    const area = clip({ x: box.x - box.height / 3, y: box.y - box.height / 4, width: box.width + (2 * box.height) / 3, height: box.height * 1.5 }, within);
    if (area) runs.push({ area, box, glyphs: members.length });
  }
  // Glyph-sized runs first: the tallest blobs are more often rings, arcs and card shapes than characters.
  runs.sort((a, b) => a.box.height - b.box.height);
  return runs.slice(0, maxRuns);
}

/** Words of a re-read whose centre lies in the run's glyph box (padded by ¼ of its height). Pure. */
export function wordsOnRun(run: LargeGlyphRun, words: OcrWord[]): OcrWord[] {
  const p = run.box.height / 4;
  return words.filter((w) => centerInside(w.bounds, run.box, p));
}
