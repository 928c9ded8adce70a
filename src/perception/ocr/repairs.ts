/**
 * The re-read heuristics: where the base pass's reading is suspect and which area to read again — light-text
 * regions its confident words already explain (skipped), words cut short at an edge, glyphs outside every
 * word (a dropped column), vertical-text blocks (a column of single digits) — and when a re-read replaces the
 * words it covers. All geometry in logical points. Pure.
 */
import type { Rect } from '../../platform/types.js';
import { centerInside, clip, mergeOverlapping, union } from '../geometry.js';
import { insertByTop, makeLine } from './page.js';
import type { OcrLine, OcrWord } from './types.js';

/** Confidence of the base pass's words that explain a light-text region's glyphs (see `regionExplained`). */
export const EXPLAINED_MIN_CONFIDENCE = 0.9;

/**
 * Whether a light-text region needs no second reading: it holds at least one glyph, and the centre of every
 * glyph box (logical points) lies inside a word (padded by ¼ of its height) of confidence ≥ `minConfidence`.
 * A region with no glyph, or with ink no confident word explains (a white label the base pass missed or
 * misread with low confidence), is read again. Pure.
 */
export function regionExplained(glyphs: Rect[], words: OcrWord[], minConfidence: number): boolean {
  if (glyphs.length === 0) return false;
  const sure = words.filter((w) => w.confidence >= minConfidence);
  return glyphs.every((g) => sure.some((w) => centerInside(g, w.bounds, w.bounds.height / 4)));
}

/**
 * Words that look cut short: a glyph (logical points) of at least half the word's height, on its line
 * (vertical centre inside the word), outside every word, and touching the word's left or right edge (gap under
 * ⅓ of its height). Thin strokes at word edges (a light-grey "l") are dropped by a whole-frame threshold but
 * not by a tight crop's. Returns each word with the area to read again (the word and the glyph, padded by one
 * word height sideways and ¼ of it vertically). Pure.
 */
export function truncatedWords(words: OcrWord[], glyphs: Rect[]): { word: OcrWord; area: Rect }[] {
  const loose = glyphs.filter((g) => !words.some((w) => centerInside(g, w.bounds)));
  const out: { word: OcrWord; area: Rect }[] = [];
  for (const w of words) {
    const h = w.bounds.height;
    const right = w.bounds.x + w.bounds.width;
    const g = loose.find((g) => {
      const cy = g.y + g.height / 2;
      if (cy < w.bounds.y || cy > w.bounds.y + h || g.height < h / 2 || g.height > 2 * h) return false;
      const gapLeft = w.bounds.x - (g.x + g.width);
      const gapRight = g.x - right;
      return (gapLeft >= -1 && gapLeft < h / 3) || (gapRight >= -1 && gapRight < h / 3);
    });
    if (!g) continue;
    const u = union([w.bounds, g])!;
    out.push({ word: w, area: { x: u.x - h, y: u.y - h / 4, width: u.width + 2 * h, height: u.height + h / 2 } });
  }
  return out;
}

/** Tuning of {@link missedTextAreas}. */
export interface MissedTextOptions {
  /** Glyphs a line needs to count as text (default 3: shorter runs are bullets, icons, stray marks). */
  minGlyphs?: number;
  /** Most areas returned, those with the most glyphs first (default 8). */
  maxAreas?: number;
  /** Glyph heights (points) outside this range are not text (default 4..48). */
  minHeight?: number;
  maxHeight?: number;
}

/**
 * Blocks of text the base pass did not read at all, in logical points: glyphs (`glyphBoxes`, points) whose
 * centre lies in no word are chained into lines (vertical centres within half a glyph height, horizontal
 * gap under 1.2 glyph heights), lines of at least `minGlyphs` glyphs are stacked into blocks (horizontal
 * overlap and a vertical gap under 1.5 line heights, or under 3 for left-aligned lines: a table column),
 * and each block is padded by half a line height and clipped to `within`. Pure; O(n²) in the glyphs
 * outside words (at most 4,000 are considered).
 */
export function missedTextAreas(words: OcrWord[], glyphs: Rect[], within: Rect, opts: MissedTextOptions = {}): Rect[] {
  const minGlyphs = opts.minGlyphs ?? 3;
  const maxAreas = opts.maxAreas ?? 8;
  const minHeight = opts.minHeight ?? 4;
  const maxHeight = opts.maxHeight ?? 48;
  const inWord = (g: Rect) => words.some((w) => centerInside(g, w.bounds, 1));
  const loose = glyphs.filter((g) => g.height >= minHeight && g.height <= maxHeight && !inWord(g)).slice(0, 4000);
  loose.sort((a, b) => a.x - b.x);
  // Lines: union-find over glyph pairs on one baseline band, near in x (sorted by x, so the scan stops early).
  const lineOf = unionFind(loose.length);
  for (let i = 0; i < loose.length; i++) {
    const a = loose[i]!;
    for (let j = i + 1; j < loose.length; j++) {
      const b = loose[j]!;
      const h = Math.max(a.height, b.height);
      if (b.x > a.x + a.width + 1.2 * maxHeight) break;
      const gap = b.x - (a.x + a.width);
      const dy = Math.abs(a.y + a.height / 2 - (b.y + b.height / 2));
      if (gap <= 1.2 * h && dy <= h / 2) lineOf.join(i, j);
    }
  }
  const lines: { box: Rect; glyphs: number }[] = [];
  for (const members of lineOf.groups()) {
    if (members.length < minGlyphs) continue;
    lines.push({ box: union(members.map((i) => loose[i]!))!, glyphs: members.length });
  }
  // Blocks: lines that overlap horizontally and follow each other closely.
  const blockOf = unionFind(lines.length);
  for (let i = 0; i < lines.length; i++) {
    for (let j = i + 1; j < lines.length; j++) {
      const a = lines[i]!.box;
      const b = lines[j]!.box;
      const overlapX = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
      const gapY = Math.max(a.y, b.y) - Math.min(a.y + a.height, b.y + b.height);
      const h = Math.max(a.height, b.height);
      // A table column: left-aligned lines one row apart (rows are often 2–3 text heights apart).
      const aligned = Math.abs(a.x - b.x) <= h;
      if (overlapX > 0 && (gapY <= 1.5 * h || (aligned && gapY <= 3 * h))) blockOf.join(i, j);
    }
  }
  const blocks = blockOf.groups().map((members) => {
    const box = union(members.map((i) => lines[i]!.box))!;
    const lineHeight = Math.max(...members.map((i) => lines[i]!.box.height));
    const pad = lineHeight / 2;
    const padded = { x: box.x - pad, y: box.y - pad, width: box.width + 2 * pad, height: box.height + 2 * pad };
    return { box: clip(padded, within), glyphs: members.reduce((n, i) => n + lines[i]!.glyphs, 0) };
  });
  blocks.sort((a, b) => b.glyphs - a.glyphs);
  return mergeOverlapping(blocks.slice(0, maxAreas).flatMap((b) => (b.box ? [b.box] : [])));
}

/** A union-find over 0..n-1 with path halving; `groups()` lists the members of each set. */
function unionFind(n: number): { join(a: number, b: number): void; groups(): number[][] } {
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  return {
    join(a, b) {
      const ra = find(a);
      const rb = find(b);
      if (ra !== rb) parent[ra] = rb;
    },
    groups() {
      const by = new Map<number, number[]>();
      for (let i = 0; i < n; i++) {
        const r = find(i);
        const g = by.get(r);
        if (g) g.push(i);
        else by.set(r, [i]);
      }
      return [...by.values()];
    },
  };
}

/**
 * The strip read again for a vertical-text block (logical points): the block's columns widened by `margin`
 * on each side, over every row of `within` down and up to the nearest word that the strip would cut (one
 * that overlaps it but sticks out of it, such as a column header wider than the column). The layout often
 * classes only part of a column as vertical text and drops some of the rest as rules (a lone "1"), so the
 * strip covers the whole column. Pure.
 */
export function columnStrip(block: Rect, words: OcrWord[], within: Rect, margin: number): Rect {
  const left = Math.max(within.x, block.x - margin);
  const right = Math.min(within.x + within.width, block.x + block.width + margin);
  let top = within.y;
  let bottom = within.y + within.height;
  for (const w of words) {
    const wl = w.bounds.x;
    const wr = w.bounds.x + w.bounds.width;
    if (wr <= left || wl >= right || (wl >= left && wr <= right)) continue; // outside the strip, or inside it
    const wt = w.bounds.y;
    const wb = w.bounds.y + w.bounds.height;
    if (wb <= block.y) top = Math.max(top, wb);
    else if (wt >= block.y + block.height) bottom = Math.min(bottom, wt);
  }
  return { x: left, y: top, width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
}

/**
 * Replace the words of `lines` whose centre lies in `area` with the words of `reread` when `reread` has at
 * least one word and either its mean confidence is higher than theirs (or they are none), or it reads more
 * at a mean confidence at most 0.05 lower (a column the layout partly dropped); otherwise return
 * `lines` itself (same array). "More" is more words (`gain: 'words'`, the default) or, with
 * `gain: 'characters'`, at least as many letters and digits (a line read whole as `21:58 syslog` where the
 * layout gave `21:` and `:58`: as many words, more text). Lines left without words are dropped; new lines
 * are placed by their top edge. Pure.
 */
export function replaceIfMoreConfident(lines: OcrLine[], area: Rect, reread: OcrLine[], gain: 'words' | 'characters' = 'words'): OcrLine[] {
  const inArea = (w: OcrWord) => centerInside(w.bounds, area);
  const fresh = reread.flatMap((l) => {
    const words = l.words.filter(inArea);
    return words.length > 0 ? [makeLine(words)] : [];
  });
  const newWords = fresh.flatMap((l) => l.words);
  if (newWords.length === 0) return lines;
  const oldWords = lines.flatMap((l) => l.words.filter(inArea));
  const mean = (ws: OcrWord[]) => ws.reduce((a, w) => a + w.confidence, 0) / ws.length;
  const alnum = (ws: OcrWord[]) => ws.reduce((n, w) => n + w.text.replace(/[^\p{L}\p{N}]/gu, '').length, 0);
  const more = gain === 'words' ? newWords.length > oldWords.length : alnum(newWords) >= alnum(oldWords);
  const better = oldWords.length === 0 || mean(newWords) > mean(oldWords) || (more && mean(newWords) >= mean(oldWords) - 0.05);
  if (!better) return lines;
  const out = lines.flatMap((l) => {
    const kept = l.words.filter((w) => !inArea(w));
    return kept.length === 0 ? [] : [kept.length === l.words.length ? l : makeLine(kept)];
  });
  for (const line of fresh) insertByTop(out, line);
  return out;
}

