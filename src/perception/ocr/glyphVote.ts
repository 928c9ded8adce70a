/**
 * Glyph vote (issue 14 item 8): the same character drawn in the same font and size is the same bitmap
 * wherever it appears, above all in a terminal's monospace grid. Tesseract reads each occurrence on its own
 * and slips on some of them (DejaVu Sans Mono's `l` read `1` in `ls` and `-l`, `1` read `l` in `sda1`, `0`
 * read `8`, `G` read `6`, `@` read `B`, `%` read `Z`). This stage clusters the symbols tesseract reported by
 * the ink bitmap of their glyphs (same height, near-same width, few differing pixels) and, in a cluster
 * where one reading clearly wins, gives the minority that reading.
 */
import type { OcrWord } from '../elements.js';
import type { PixelBox } from '../geometry.js';
import { backgroundLevel } from './raster.js';

/** One character tesseract reported inside a word, with its box in source image pixels. */
export interface OcrSymbol {
  /** The character read (one code point; symbols of other lengths are not voted on). */
  text: string;
  /** Tesseract's confidence, 0..1. */
  confidence: number;
  /** Box in source image pixels. */
  box: PixelBox;
}

/** The ink bitmap of one glyph: its tight ink box (source pixels) as bits, row by row. */
export interface GlyphBitmap {
  width: number;
  height: number;
  bits: Uint8Array;
  ink: number;
}

/** Tuning of {@link voteGlyphs}. */
export interface GlyphVoteOptions {
  /**
   * Largest share of differing pixels (over the larger ink count) for two glyphs to be one shape (default 0.1
   * below 16 px, where a pixel is a larger share of a glyph and letters are closer; 0.18 from 16 px, where
   * sub-pixel placement changes more pixels of the same glyph).
   */
  maxDifference?: number;
  /** Votes the winning reading needs (default 3). */
  minVotes?: number;
  /** Share of the cluster the winning reading needs (default 0.75). */
  minShare?: number;
  /** Symbols considered at most (default 6000). */
  maxSymbols?: number;
}

/**
 * The ink bitmap of the glyph in `box` (source pixels of a `width` x `height` gray image, any polarity):
 * background = the most common of 32 levels over the box grown by 1 px; ink = pixels farther from it than half
 * the box's largest difference (at least 40 levels); cropped to the ink's tight box. Null without ink. Pure.
 */
export function glyphBitmap(gray: Uint8Array, width: number, height: number, box: PixelBox): GlyphBitmap | null {
  const x0 = Math.max(0, box.left - 1), y0 = Math.max(0, box.top - 1);
  const x1 = Math.min(width, box.left + box.width + 1), y1 = Math.min(height, box.top + box.height + 1);
  if (x1 <= x0 || y1 <= y0) return null;
  const bg = backgroundLevel(gray, width, x0, y0, x1, y1);
  let maxDiff = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) maxDiff = Math.max(maxDiff, Math.abs(gray[y * width + x]! - bg));
  const t = Math.max(40, maxDiff / 2);
  let minX = x1, maxX = -1, minY = y1, maxY = -1;
  const bx0 = Math.max(0, box.left), by0 = Math.max(0, box.top);
  const bx1 = Math.min(width, box.left + box.width), by1 = Math.min(height, box.top + box.height);
  for (let y = by0; y < by1; y++) {
    for (let x = bx0; x < bx1; x++) {
      if (Math.abs(gray[y * width + x]! - bg) <= t) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  if (maxX < 0) return null;
  const w = maxX - minX + 1;
  const h = maxY - minY + 1;
  const bits = new Uint8Array(w * h);
  let ink = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (Math.abs(gray[(minY + y) * width + minX + x]! - bg) > t) {
        bits[y * w + x] = 1;
        ink++;
      }
    }
  }
  return { width: w, height: h, bits, ink };
}

/**
 * Share of differing ink between two glyph bitmaps (over the larger ink count), best over the horizontal
 * alignments of their left and right edges (from 16 px tall, each also shifted by one pixel); Infinity when their heights differ or widths differ by more than
 * one pixel. Pure.
 */
export function glyphDifference(a: GlyphBitmap, b: GlyphBitmap): number {
  if (a.height !== b.height || Math.abs(a.width - b.width) > 1) return Infinity;
  const w = Math.max(a.width, b.width);
  let best = Infinity;
  for (const [da0, db] of [[0, 0], [w - a.width, w - b.width]] as const) for (const shift of a.height >= 16 ? [-1, 0, 1] : [0]) {
    const da = da0 + shift;
    let diff = 0;
    for (let y = 0; y < a.height; y++) {
      for (let x = 0; x < w; x++) {
        const ax = x - da, bx = x - db;
        const va = ax >= 0 && ax < a.width ? a.bits[y * a.width + ax]! : 0;
        const vb = bx >= 0 && bx < b.width ? b.bits[y * b.width + bx]! : 0;
        if (va !== vb) diff++;
      }
    }
    best = Math.min(best, diff / Math.max(1, a.ink, b.ink));
  }
  return best;
}

/**
 * The words set in a fixed-pitch font: words are grouped into rows (vertical centres within half a height);
 * a row is monospaced when it has ≥ 6 steps between neighbouring characters of a word and ≥ 85% of them are
 * within max(1.5 px, 20%) of their median (steps are between ink boxes, which sit differently in their cells) (a terminal's grid; proportional text's steps vary with the
 * letters). Only those words are voted on: in proportional text at small sizes different letters can share a
 * bitmap closely enough to be merged. Pure.
 */
export function monospaced(words: OcrWord[], symbolsOf: (w: OcrWord) => OcrSymbol[] | undefined): Set<OcrWord> {
  const rows: OcrWord[][] = [];
  for (const w of [...words].sort((a, b) => a.bounds.y - b.bounds.y)) {
    const cy = w.bounds.y + w.bounds.height / 2;
    const row = rows.find((r) => Math.abs(r[0]!.bounds.y + r[0]!.bounds.height / 2 - cy) <= r[0]!.bounds.height / 2);
    if (row) row.push(w);
    else rows.push([w]);
  }
  const out = new Set<OcrWord>();
  for (const row of rows) {
    const steps: number[] = [];
    for (const w of row) {
      const syms = symbolsOf(w) ?? [];
      for (let i = 1; i < syms.length; i++) {
        const a = syms[i - 1]!.box, b = syms[i]!.box;
        steps.push(b.left + b.width / 2 - (a.left + a.width / 2));
      }
    }
    if (steps.length < 6) continue;
    const sorted = [...steps].sort((a, b) => a - b);
    const med = sorted[Math.floor(sorted.length / 2)]!;
    const tol = Math.max(1.5, 0.2 * med);
    if (steps.filter((s) => Math.abs(s - med) <= tol).length >= 0.85 * steps.length) for (const w of row) out.add(w);
  }
  return out;
}

/**
 * New texts for words whose symbols the vote corrected. `symbolsOf(word)` gives a word's symbols (in reading
 * order; a word whose symbols do not spell its text is left alone). Symbols are clustered by shape
 * (`glyphDifference` ≤ `maxDifference`, compared with each cluster's first, most confident member); in a
 * cluster whose most frequent reading has ≥ `minVotes` votes and ≥ `minShare` of the members, every other
 * member takes that reading. Pure.
 */
export function voteGlyphs(
  words: OcrWord[],
  symbolsOf: (w: OcrWord) => OcrSymbol[] | undefined,
  gray: Uint8Array,
  width: number,
  height: number,
  opts: GlyphVoteOptions = {},
): Map<OcrWord, string> {
  const maxDifference = (h: number) => opts.maxDifference ?? (h < 16 ? 0.1 : 0.18);
  const minVotes = opts.minVotes ?? 3;
  const minShare = opts.minShare ?? 0.75;
  const maxSymbols = opts.maxSymbols ?? 6000;
  type Entry = { word: OcrWord; index: number; sym: OcrSymbol; bmp: GlyphBitmap };
  const monospaceWords = monospaced(words, symbolsOf);
  const entries: Entry[] = [];
  for (const word of words) {
    const syms = symbolsOf(word);
    if (!syms || syms.map((s) => s.text).join('') !== word.text || !monospaceWords.has(word)) continue;
    syms.forEach((sym, index) => {
      if ([...sym.text].length !== 1 || entries.length >= maxSymbols) return;
      const bmp = glyphBitmap(gray, width, height, sym.box);
      if (bmp && bmp.ink >= 4) entries.push({ word, index, sym, bmp });
    });
  }
  entries.sort((a, b) => b.sym.confidence - a.sym.confidence);
  const clusters: Entry[][] = [];
  const byHeight = new Map<number, Entry[][]>();
  for (const e of entries) {
    const candidates = byHeight.get(e.bmp.height) ?? [];
    const home = candidates.find((c) => glyphDifference(c[0]!.bmp, e.bmp) <= maxDifference(e.bmp.height));
    if (home) home.push(e);
    else {
      const c = [e];
      clusters.push(c);
      candidates.push(c);
      byHeight.set(e.bmp.height, candidates);
    }
  }
  const changed = new Map<OcrWord, string[]>();
  for (const c of clusters) {
    if (c.length < minVotes) continue;
    const votes = new Map<string, number>();
    for (const e of c) votes.set(e.sym.text, (votes.get(e.sym.text) ?? 0) + 1);
    const [winner, n] = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]!;
    if (n < minVotes || n < minShare * c.length || n === c.length) continue;
    for (const e of c) {
      if (e.sym.text === winner) continue;
      const chars = changed.get(e.word) ?? symbolsOf(e.word)!.map((s) => s.text);
      chars[e.index] = winner;
      changed.set(e.word, chars);
    }
  }
  return new Map([...changed].map(([w, chars]) => [w, chars.join('')]));
}
