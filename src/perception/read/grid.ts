/**
 * Geometry shared by the table, board and pair readers: clustering coordinates, rows of words, text
 * segments split at column gutters. Logical global points throughout.
 */
import type { Rect } from '../../platform/types.js';
import type { OcrLine, OcrWord } from '../elements.js';
import { union } from '../geometry.js';

/** Right edge (exclusive), logical points. */
export const right = (r: Rect): number => r.x + r.width;
/** Bottom edge (exclusive), logical points. */
export const bottom = (r: Rect): number => r.y + r.height;
/** Centre x, not rounded (`geometry.center` rounds to whole points; column and row math needs halves). */
export const cx = (r: Rect): number => r.x + r.width / 2;
/** Centre y, not rounded (see {@link cx}). */
export const cy = (r: Rect): number => r.y + r.height / 2;

/** Length of the overlap of [a1, a2) and [b1, b2) (0 when disjoint). */
export function overlap(a1: number, a2: number, b1: number, b2: number): number {
  return Math.max(0, Math.min(a2, b2) - Math.max(a1, b1));
}

/** `inner`'s centre lies inside `outer` (edges inclusive). */
export function centreIn(inner: Rect, outer: Rect): boolean {
  const x = cx(inner);
  const y = cy(inner);
  return x >= outer.x && y >= outer.y && x <= right(outer) && y <= bottom(outer);
}

/** Median of numbers (0 for none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Cluster sorted-able values: values within `tol` of the previous one join its cluster.
 * @returns the cluster representatives (the smallest value of each), ascending.
 */
export function clusterStarts(values: readonly number[], tol: number): number[] {
  const s = [...values].sort((a, b) => a - b);
  const out: number[] = [];
  let last = -Infinity;
  for (const v of s) {
    if (v - last > tol) out.push(v);
    last = v;
  }
  return out;
}

/** Index of the cluster (from {@link clusterStarts}) holding `v`: the last start ≤ v + tol. */
export function clusterIndex(starts: readonly number[], v: number, tol: number): number {
  let i = 0;
  for (let k = 0; k < starts.length; k++) if (starts[k]! <= v + tol) i = k;
  return i;
}

/** The words of OCR lines (a line without words is one word). */
export function wordsOf(lines: readonly OcrLine[]): OcrWord[] {
  const out: OcrWord[] = [];
  for (const l of lines) {
    if (l.words && l.words.length > 0) out.push(...l.words);
    else out.push({ text: l.text, bounds: l.bounds, confidence: 1 });
  }
  return out.filter((w) => w.text.trim() !== '');
}

/** A run of words on one visual row with no column gutter inside. */
export interface Segment {
  text: string;
  bounds: Rect;
  words: OcrWord[];
}

/** A visual row of words (centres within each other's vertical extent), left to right, cut into segments. */
export interface WordRow {
  bounds: Rect;
  /** Median word height, points. */
  height: number;
  segments: Segment[];
}

/**
 * Group words into visual rows: a word joins the row whose vertical band holds its centre and overlaps it
 * by at least half the smaller height (tesseract often cuts one table row into several lines, one per
 * column block, so OCR lines are not rows). Rows are then cut into segments where the horizontal gap
 * between consecutive words exceeds `gutter(height)` (default: 0.8 × the row's median word height, at
 * least 8 points: wider than a space, narrower than a column gutter).
 * @returns rows top to bottom.
 */
export function wordRows(words: readonly OcrWord[], gutter: (h: number) => number = (h) => Math.max(8, 0.8 * h)): WordRow[] {
  const sorted = [...words].sort((a, b) => cy(a.bounds) - cy(b.bounds));
  const rows: { top: number; bottom: number; words: OcrWord[] }[] = [];
  for (const w of sorted) {
    const c = cy(w.bounds);
    let row: (typeof rows)[number] | undefined;
    for (let i = rows.length - 1; i >= 0 && i >= rows.length - 4; i--) {
      const r = rows[i]!;
      const minH = Math.min(r.bottom - r.top, w.bounds.height);
      if (c >= r.top && c <= r.bottom && overlap(r.top, r.bottom, w.bounds.y, bottom(w.bounds)) >= 0.5 * minH) {
        row = r;
        break;
      }
    }
    if (row) {
      row.words.push(w);
      row.top = Math.min(row.top, w.bounds.y);
      row.bottom = Math.max(row.bottom, bottom(w.bounds));
    } else rows.push({ top: w.bounds.y, bottom: bottom(w.bounds), words: [w] });
  }
  return rows.map((r) => {
    const ws = r.words.sort((a, b) => a.bounds.x - b.bounds.x);
    const height = median(ws.map((w) => w.bounds.height));
    const gap = gutter(height);
    const segments: Segment[] = [];
    let cur: OcrWord[] = [];
    const flush = () => {
      if (cur.length === 0) return;
      segments.push({ text: cur.map((w) => w.text).join(' '), bounds: union(cur.map((w) => w.bounds))!, words: cur });
      cur = [];
    };
    for (const w of ws) {
      const last = cur[cur.length - 1];
      if (last && w.bounds.x - right(last.bounds) > gap) flush();
      cur.push(w);
    }
    flush();
    return { bounds: union(ws.map((w) => w.bounds))!, height, segments };
  });
}

/** Normalised text for comparisons: NFKC, whitespace collapsed, trimmed, lower case. */
export function norm(s: string): string {
  return s.normalize('NFKC').replace(/\s+/g, ' ').trim().toLowerCase();
}
