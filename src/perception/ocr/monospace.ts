/**
 * Monospace blocks (issue 14 item 8): a terminal, a log pane or a code view is a grid of fixed-pitch
 * characters. Tesseract's automatic layout (PSM 3) looks for columns and tab stops, and a terminal's aligned
 * output (`ls -l`, `df`) is full of them: it cut `21:58 syslog` out of its line (then read `21:` alone),
 * dropped `-rw-r-----` (read `SrwW-r-----` at confidence 0), split `> vitest run` into two lines. Read as one
 * uniform block of text (PSM 6, `SINGLE_BLOCK`) the same pixels give every line whole.
 *
 * This stage finds, among the lines the automatic layout read, those set in a fixed-pitch font (the steps
 * between the characters tesseract reported are equal, and the words start on the same character grid), and
 * stacks such lines of the same pitch into blocks; the engine reads each block again as one block.
 */
import type { Rect } from '../../platform/types.js';
import type { OcrWord } from '../elements.js';
import type { OcrSymbol } from './glyphVote.js';
import { centerInside, union } from '../geometry.js';

/** A line as the layout read it: its words (logical points) in reading order. */
export interface MonospaceLineInput {
  bounds: Rect;
  words: OcrWord[];
}

/** Tuning of {@link fixedPitch} and {@link monospaceBlocks}. */
export interface MonospaceOptions {
  /** Steps between neighbouring characters a line needs (default 6: a short line proves nothing). */
  minSteps?: number;
  /** Share of the steps that must lie within the tolerance of their median (default 0.85). */
  minShare?: number;
  /** Tolerance of a step around the median, as a share of it (default 0.2; at least 1.5 px). */
  tolerance?: number;
  /** Lines a block needs (default 2). */
  minLines?: number;
  /** Pitches of two lines of one block differ by at most this share (default 0.05). */
  pitchTolerance?: number;
}

/** A line's character pitch, source image pixels, or 0 when the line is not set in a fixed-pitch font. */
export interface PitchFacts {
  /** Mean step between the centres of neighbouring characters of a word, source pixels (0 = not fixed-pitch). */
  pitch: number;
  /** Steps measured. */
  steps: number;
  /** Centre of the line's first character, source pixels (its place on the character grid). */
  phase: number;
}

/**
 * The pitch of one line (source image pixels) when it is set in a fixed-pitch font, else `pitch: 0`: at least
 * `minSteps` steps between the centres of neighbouring characters inside its words, `minShare` of them within
 * `max(1.5 px, tolerance × median)` of their median, and (for lines of several words) at least 80% of the words
 * starting on the grid of the first word (their first character's centre a whole number of pitches away, within
 * ⅓ of a pitch; a proportional font's spaces and letters are not multiples of one width). `symbolsOf` gives the
 * characters tesseract read in a word (boxes in source pixels). Pure.
 */
export function fixedPitch(words: OcrWord[], symbolsOf: (w: OcrWord) => OcrSymbol[] | undefined, opts: MonospaceOptions = {}): PitchFacts {
  const minSteps = opts.minSteps ?? 6;
  const minShare = opts.minShare ?? 0.85;
  const tolerance = opts.tolerance ?? 0.2;
  const steps: number[] = [];
  const starts: number[] = [];
  for (const w of words) {
    const syms = symbolsOf(w) ?? [];
    if (syms.length === 0) continue;
    const centre = (s: OcrSymbol) => s.box.left + s.box.width / 2;
    starts.push(centre(syms[0]!));
    for (let i = 1; i < syms.length; i++) steps.push(centre(syms[i]!) - centre(syms[i - 1]!));
  }
  const none = { pitch: 0, steps: steps.length, phase: starts[0] ?? 0 };
  if (steps.length < minSteps) return none;
  const sorted = [...steps].sort((a, b) => a - b);
  const med = sorted[Math.floor(sorted.length / 2)]!;
  if (!(med > 0)) return none;
  const tol = Math.max(1.5, tolerance * med);
  if (steps.filter((s) => Math.abs(s - med) <= tol).length < minShare * steps.length) return none;
  // The mean of the steps near the median: finer than the median of whole-pixel steps, so that characters
  // 40 cells apart still land on one grid.
  const near = steps.filter((s) => Math.abs(s - med) <= tol);
  const pitch = near.reduce((a, b) => a + b, 0) / near.length;
  if (starts.length >= 2) {
    const onGrid = starts.filter((x) => {
      const k = (x - starts[0]!) / pitch;
      return Math.abs(k - Math.round(k)) <= 1 / 3;
    }).length;
    if (onGrid < 0.8 * starts.length) return none;
  }
  return { pitch, steps: steps.length, phase: starts[0]! };
}

/** A block of fixed-pitch lines to read again as one block. */
export interface MonospaceBlock {
  /** The lines' union (logical points), padded by ¼ of a line height vertically and one pitch sideways. */
  area: Rect;
  /** Character pitch, source pixels (median of the lines'). */
  pitch: number;
  /** Fixed-pitch lines in the block. */
  lines: number;
}

/**
 * Blocks of fixed-pitch lines (`fixedPitch`). Two lines are of one block when they lie on one character grid
 * (pitches within `pitchTolerance` of each other, first characters a whole number of pitches apart within ¼
 * pitch), are of similar height (within 1.5x), no more than 4 line heights apart vertically (blank lines, and
 * lines the layout broke into pieces too short to measure) and at most 8 pitches apart horizontally: the pieces the layout cut a terminal's lines into (`1532 Dec` read apart from
 * `-rw-r--r-- 1 root adm`) join their block, a pane of another font size beside it does not. Blocks of at
 * least `minLines` lines are returned, their area padded and clipped to `within`. `pointsPerPixel` converts
 * pitches (source pixels) to points (1 / the image's scale). Pure; O(lines²).
 */
export function monospaceBlocks(
  lines: MonospaceLineInput[],
  symbolsOf: (w: OcrWord) => OcrSymbol[] | undefined,
  within: Rect,
  pointsPerPixel: number,
  opts: MonospaceOptions = {},
): MonospaceBlock[] {
  const minLines = opts.minLines ?? 2;
  const pitchTolerance = opts.pitchTolerance ?? 0.05;
  const facts = lines.map((l) => fixedPitch(l.words, symbolsOf, opts));
  const fixed = lines.flatMap((l, i) => {
    const { pitch, phase } = facts[i]!;
    return pitch > 0 ? [{ bounds: l.bounds, pitch, phase }] : [];
  });
  const parent = fixed.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  for (let i = 0; i < fixed.length; i++) {
    for (let j = i + 1; j < fixed.length; j++) {
      const a = fixed[i]!, b = fixed[j]!;
      const pitch = Math.max(a.pitch, b.pitch);
      if (Math.abs(a.pitch - b.pitch) > pitchTolerance * pitch) continue;
      const k = (a.phase - b.phase) / pitch;
      if (Math.abs(k - Math.round(k)) > 0.25) continue;
      const ha = a.bounds.height, hb = b.bounds.height;
      if (Math.max(ha, hb) > 1.5 * Math.min(ha, hb)) continue;
      const gapX = Math.max(a.bounds.x, b.bounds.x) - Math.min(a.bounds.x + a.bounds.width, b.bounds.x + b.bounds.width);
      const gapY = Math.max(a.bounds.y, b.bounds.y) - Math.min(a.bounds.y + ha, b.bounds.y + hb);
      if (gapX <= 8 * pitch * pointsPerPixel && gapY <= 4 * Math.max(ha, hb)) parent[find(i)] = find(j);
    }
  }
  const groups = new Map<number, typeof fixed>();
  fixed.forEach((f, i) => {
    const r = find(i);
    groups.set(r, [...(groups.get(r) ?? []), f]);
  });
  const out: MonospaceBlock[] = [];
  for (const g of groups.values()) {
    if (g.length < minLines) continue;
    let box = union(g.map((f) => f.bounds))!;
    const pitchOf = g.map((f) => f.pitch).sort((a, b) => a - b)[Math.floor(g.length / 2)]!;
    // Pieces too short to measure (`failed"` cut off its line, `318`) that sit on the block's grid and rows,
    // at most 4 pitches beside it, belong to it: the area grows to them, so that it cuts no line of the block.
    // (Lines of a fixed pitch are placed by the grouping above; a piece whose own steps are another pitch is
    // another pane's.)
    // Each piece joins at most once: with fractional points (an image read at ×1.5) the union's right edge
    // could round a hair short of the piece's, which then "grew" the box for ever (the bench's ci page hung here).
    const joined = new Set<number>();
    for (let grew = true; grew; ) {
      grew = false;
      lines.forEach((l, i) => {
        const b = l.bounds;
        if (facts[i]!.pitch > 0 || joined.has(i)) return;
        if (b.x >= box.x && b.x + b.width <= box.x + box.width && b.y >= box.y && b.y + b.height <= box.y + box.height) return;
        const cy = b.y + b.height / 2;
        if (cy < box.y || cy > box.y + box.height) return;
        const gapX = Math.max(b.x, box.x) - Math.min(b.x + b.width, box.x + box.width);
        if (gapX > 4 * pitchOf * pointsPerPixel) return;
        const syms = l.words.flatMap((w) => symbolsOf(w) ?? []);
        if (syms.length === 0) return;
        const k = (syms[0]!.box.left + syms[0]!.box.width / 2 - g[0]!.phase) / pitchOf;
        if (Math.abs(k - Math.round(k)) > 0.25) return;
        const steps = l.words.flatMap((w) => {
          const ws = symbolsOf(w) ?? [];
          return ws.slice(1).map((sy, j) => sy.box.left + sy.box.width / 2 - (ws[j]!.box.left + ws[j]!.box.width / 2));
        });
        if (steps.length >= 2 && Math.abs(steps.sort((a, b) => a - b)[Math.floor(steps.length / 2)]! - pitchOf) > 0.15 * pitchOf) return;
        box = union([box, b])!;
        joined.add(i);
        grew = true;
      });
    }
    const pitches = g.map((f) => f.pitch).sort((a, b) => a - b);
    const pitch = pitches[Math.floor(pitches.length / 2)]!;
    const lineHeight = Math.max(...g.map((f) => f.bounds.height));
    const padX = pitch * pointsPerPixel;
    const padY = lineHeight / 4;
    const x0 = Math.max(within.x, box.x - padX);
    const y0 = Math.max(within.y, box.y - padY);
    const x1 = Math.min(within.x + within.width, box.x + box.width + padX);
    const y1 = Math.min(within.y + within.height, box.y + box.height + padY);
    if (x1 <= x0 || y1 <= y0) continue;
    out.push({ area: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, pitch, lines: g.length });
  }
  return out;
}

/**
 * A block's `area` (logical points) cut into at most `parts` horizontal parts to be read on as many workers at
 * once, each of about as many of the `lines` (the lines read there: those whose centre lies in the area) and of
 * at least `minLines` of them: a block of fewer than `2 × minLines` lines stays whole. Cuts go in the middle of a
 * gap between lines that no line crosses (sorted by top, below the lowest bottom of all the lines above), the
 * gap nearest an even share of the lines; without such a gap the area is not cut there. Parts tile the area
 * (same x and width, top to bottom). A block read as one job kept one worker busy while the other idled: the
 * bench's CI log pane of 26 lines was one 1.2 s job after a 1 s band read (docs/perception-incremental.md). Pure.
 */
export function splitBlockArea(area: Rect, lines: { bounds: Rect }[], parts: number, minLines = 8): Rect[] {
  const inside = lines.map((l) => l.bounds).filter((b) => centerInside(b, area)).sort((a, b) => a.y - b.y);
  const n = Math.min(Math.floor(parts), Math.floor(inside.length / minLines));
  if (n < 2) return [area];
  // Gaps no line crosses: after line i (by top), between the lowest bottom so far and the next line's top.
  const gaps: { y: number; before: number }[] = [];
  let bottom = -Infinity;
  for (let i = 0; i < inside.length - 1; i++) {
    bottom = Math.max(bottom, inside[i]!.y + inside[i]!.height);
    const next = inside[i + 1]!.y;
    if (next > bottom) gaps.push({ y: (bottom + next) / 2, before: i + 1 });
  }
  const out: Rect[] = [];
  let top = area.y;
  let linesAbove = 0;
  for (let k = 1; k < n; k++) {
    const target = (inside.length * k) / n;
    const best = gaps
      .filter((g) => g.y > top && g.before - linesAbove >= minLines && inside.length - g.before >= minLines * (n - k))
      .sort((a, b) => Math.abs(a.before - target) - Math.abs(b.before - target))[0];
    if (!best) break;
    out.push({ x: area.x, y: top, width: area.width, height: best.y - top });
    top = best.y;
    linesAbove = best.before;
  }
  out.push({ x: area.x, y: top, width: area.width, height: area.y + area.height - top });
  return out;
}

/**
 * In a fixed-pitch block a space is a whole empty cell: two words of one line whose facing characters sit in
 * neighbouring cells (centres under 1.5 pitches apart) are one word that tesseract split at a narrow glyph's
 * wide bearings (`build. log` for xterm's `build.log`). Returns the lines with such words joined (text
 * concatenated, bounds united, the lower confidence, symbols concatenated through `setSymbols`); a line with
 * nothing to join is returned as it is. `pitch` in source pixels, as the symbols' boxes. Pure apart from
 * `setSymbols`.
 */
export function joinAdjacentCells<L extends { words: OcrWord[] }>(
  lines: L[],
  pitch: number,
  symbolsOf: (w: OcrWord) => OcrSymbol[] | undefined,
  setSymbols: (w: OcrWord, s: OcrSymbol[]) => void,
  makeLine: (words: OcrWord[]) => L,
): L[] {
  return lines.map((line) => {
    const out: OcrWord[] = [];
    let changed = false;
    for (const w of line.words) {
      const prev = out[out.length - 1];
      const a = prev ? symbolsOf(prev) : undefined;
      const b = symbolsOf(w);
      if (prev && a?.length && b?.length) {
        const last = a[a.length - 1]!.box, first = b[0]!.box;
        const d = first.left + first.width / 2 - (last.left + last.width / 2);
        if (d > 0 && d < 1.5 * pitch) {
          const joined: OcrWord = { text: prev.text + w.text, bounds: union([prev.bounds, w.bounds])!, confidence: Math.min(prev.confidence, w.confidence) };
          setSymbols(joined, [...a, ...b]);
          out[out.length - 1] = joined;
          changed = true;
          continue;
        }
      }
      out.push(w);
    }
    return changed ? makeLine(out) : line;
  });
}
