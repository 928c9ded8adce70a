/**
 * OCR junk rejection (issue 14 item 4): tokens tesseract reads from borders, icons, dashed lines and
 * cursors (`|`, `ll`, `Vv`, `xX`, `¥` for a drop-down triangle, `©` for a round icon, a row of `1`s for a
 * dashed rule) are not words. Each word the pipeline kept is judged by the evidence of its own pixels, never
 * by a list of strings:
 *
 * - **ink components** of the word's box (connected pixels ≥ {@link JUNK_INK_CONTRAST} levels from the box's
 *   most common level), followed outside the box: ink that runs on well beyond the word (a ruling line, a
 *   card border, a gauge's ring, an icon's frame) is graphics, not glyphs;
 * - **glyph shape**: all-thin strokes (bars read as `|`, `l`, `1`), a solid blob (a filled triangle or block
 *   read as a letter or symbol), fewer components than letters (one chevron read as `Vv`);
 * - **tesseract's confidence**, for the tokens without any letter or digit (symbols, punctuation).
 *
 * Only short tokens (≤ {@link JUNK_MAX_LENGTH} characters) and runs of one repeated character are judged:
 * a real word of several letters is never dropped here. Real short words and numbers ("3", "OK", "P1", "%")
 * are glyph-shaped, on their own, and read confidently, so they stay.
 */
import type { OcrWord } from '../elements.js';
import type { PixelBox } from '../geometry.js';
import { backgroundLevel, floodComponent } from './raster.js';

/** Ink threshold, gray levels from the word box's most common level (as `glyphBoxes`). */
export const JUNK_INK_CONTRAST = 48;
/** Longest token judged (characters); longer ones are words. A run of one repeated character is always judged. */
export const JUNK_MAX_LENGTH = 3;
/** Symbol-only tokens (no letter, no digit) need at least this confidence (0..1). */
export const JUNK_SYMBOL_MIN_CONFIDENCE = 0.9;

/** Ink facts of one word's box (all sizes in source image pixels). */
export interface InkFeatures {
  /** Height of the word box, pixels. */
  height: number;
  /** Ink components that have ink inside the word box. */
  components: number;
  /** Share (0..1) of the box's ink in components reaching more than half a box height beyond the box. */
  graphicShare: number;
  /** Components (inside the box) that are thin strokes: the narrow side ≤ 18% of the box height, at most 2 px … */
  thinComponents: number;
  /** Ink pixels / box pixels over the components' own boxes (a filled triangle ≈ 0.5, a letter 0.15–0.45). */
  fill: number;
  /** Largest component's width and height over the box height. */
  blobWidth: number;
  blobHeight: number;
  /**
   * Whether the largest component is a rectangle's outline: its box's top and bottom rows and left and right
   * columns ≥ 90% ink, its inside ≤ 30% (an unfocused terminal's hollow cursor, an empty checkbox; a `0` or `O`
   * has round corners). Optional (false when absent).
   */
  frame?: boolean;
}

/**
 * Measure the ink of `box` (pixels of `gray`, a `width`-wide 8-bit image, any polarity): the background is
 * the most common of 32 levels over the box padded by ¼ of its height; components are 8-connected and
 * followed up to two box heights outside the box (further reach counts as "beyond" anyway). Pure.
 */
export function inkFeatures(gray: Uint8Array, width: number, height: number, box: PixelBox): InkFeatures {
  const h = Math.max(1, box.height);
  const pad = Math.max(1, Math.round(h / 4));
  const reach = Math.max(2, 2 * h);
  const wx0 = Math.max(0, box.left - reach);
  const wy0 = Math.max(0, box.top - reach);
  const wx1 = Math.min(width, box.left + box.width + reach);
  const wy1 = Math.min(height, box.top + box.height + reach);
  const ww = wx1 - wx0;
  const wh = wy1 - wy0;
  const empty: InkFeatures = { height: h, components: 0, graphicShare: 0, thinComponents: 0, fill: 0, blobWidth: 0, blobHeight: 0 };
  if (ww <= 0 || wh <= 0) return empty;
  // Background: most common level of the padded box.
  const bx0 = Math.max(0, box.left - pad), by0 = Math.max(0, box.top - pad);
  const bx1 = Math.min(width, box.left + box.width + pad), by1 = Math.min(height, box.top + box.height + pad);
  const bg = backgroundLevel(gray, width, bx0, by0, bx1, by1);
  const ink = new Uint8Array(ww * wh);
  for (let y = 0; y < wh; y++) {
    const row = (wy0 + y) * width + wx0;
    for (let x = 0; x < ww; x++) if (Math.abs(gray[row + x]! - bg) > JUNK_INK_CONTRAST) ink[y * ww + x] = 1;
  }
  // Box in window coordinates.
  const ix0 = box.left - wx0, iy0 = box.top - wy0, ix1 = ix0 + box.width, iy1 = iy0 + box.height;
  let boxInk = 0;
  let graphicInk = 0;
  let components = 0;
  let thin = 0;
  let fillInk = 0;
  let fillArea = 0;
  let blobW = 0;
  let blobH = 0;
  let frame = false;
  const beyond = h / 2;
  const inBoxCells = { x0: ix0, y0: iy0, x1: ix1, y1: iy1 };
  for (let y = iy0; y < iy1; y++) {
    for (let x = ix0; x < ix1; x++) {
      const start = y * ww + x;
      if (ink[start] !== 1) continue;
      const { minX, maxX, minY, maxY, size: n, inside: inBox } = floodComponent(ink, ww, wh, start, { count: inBoxCells });
      const cw = maxX - minX + 1;
      const ch = maxY - minY + 1;
      // Specks (anti-aliasing, a dot of an i) do not count as components.
      if (n < 3) continue;
      boxInk += inBox;
      const out = minX < ix0 - beyond || maxX >= ix1 + beyond || minY < iy0 - beyond || maxY >= iy1 + beyond;
      if (out) {
        graphicInk += inBox;
        continue;
      }
      components++;
      if (Math.min(cw, ch) <= Math.max(2, 0.18 * h)) thin++;
      fillInk += n;
      fillArea += cw * ch;
      if (cw * ch > blobW * blobH) {
        blobW = cw;
        blobH = ch;
        frame = isOutline(ink, ww, minX, minY, maxX, maxY);
      }
    }
  }
  return {
    height: h,
    components,
    graphicShare: boxInk > 0 ? graphicInk / boxInk : 0,
    thinComponents: thin,
    fill: fillArea > 0 ? fillInk / fillArea : 0,
    blobWidth: blobW / h,
    blobHeight: blobH / h,
    frame,
  };
}

/** Whether the ink of box [x0..x1]×[y0..y1] of `ink` (`w` wide) is a rectangle's outline (see `InkFeatures.frame`). */
function isOutline(ink: Uint8Array, w: number, x0: number, y0: number, x1: number, y1: number): boolean {
  const cw = x1 - x0 + 1, ch = y1 - y0 + 1;
  if (cw < 4 || ch < 4) return false;
  let top = 0, bottom = 0, left = 0, right = 0, inside = 0;
  for (let x = x0; x <= x1; x++) {
    top += ink[y0 * w + x]!;
    bottom += ink[y1 * w + x]!;
  }
  for (let y = y0; y <= y1; y++) {
    left += ink[y * w + x0]!;
    right += ink[y * w + x1]!;
  }
  for (let y = y0 + 2; y <= y1 - 2; y++) for (let x = x0 + 2; x <= x1 - 2; x++) inside += ink[y * w + x]!;
  const innerArea = Math.max(1, (cw - 4) * (ch - 4));
  return Math.min(top, bottom) >= 0.9 * cw && Math.min(left, right) >= 0.9 * ch && inside <= 0.3 * innerArea;
}

/** Why a word was judged junk (for logs and tests). */
export type JunkReason = 'graphic' | 'strokes' | 'solid' | 'split-glyph' | 'symbol' | 'no-ink' | 'lone-letter' | 'unsure';

/** Fill of a single solid component (ink / its box) above which one character is a block, not a glyph (letters ≤ 0.6, bold digits ≈ 0.6). */
export const JUNK_BLOCK_FILL = 0.9;
/** A lone letter with no word beside it needs at least this confidence (icons read as `Q`, `v`, `X` at 0.7–0.91). */
export const JUNK_LONE_LETTER_MIN_CONFIDENCE = 0.94;
/** Tokens of one or two characters mixing letters or digits with other marks need at least this confidence. */
export const JUNK_SHORT_MIN_CONFIDENCE = 0.75;

/**
 * Whether a word is junk, and why, from its text, confidence and ink (`inkFeatures`); null when it is
 * (or may be) text. Only short tokens and runs of one repeated character are judged. Pure.
 */
export function junkReason(word: OcrWord, f: InkFeatures, context: { alone?: boolean } = {}): JunkReason | null {
  const text = word.text.trim();
  const chars = [...text];
  const repeated = chars.length >= 2 && new Set(chars.map((c) => c.toLowerCase())).size === 1;
  if (chars.length > JUNK_MAX_LENGTH && !repeated) return null;
  const alnum = chars.filter((c) => /[\p{L}\p{N}]/u.test(c)).length;
  // Nothing drawn there at all (tesseract hallucinated on a flat area or a gradient).
  if (f.components === 0 && f.graphicShare === 0) return 'no-ink';
  // Most of the ink belongs to something much larger than the word: a rule, a border, a ring, an icon frame.
  if (f.graphicShare >= 0.5) return 'graphic';
  // Every component a thin bar: rules and dashes read as `|`, `l`, `ll`, `1111`, `—`. A single real letter
  // drawn as one bar (`l`, `I`) stays when read confidently; a lone `1` of DejaVu has a flag and a foot, so it
  // is no bar.
  if (f.components > 0 && f.thinComponents === f.components && (alnum === 0 || chars.length >= 2 || word.confidence < 0.85)) {
    // A lone hyphen/minus or dot is punctuation, not junk of a rule, unless it repeats.
    if (!(alnum === 0 && chars.length === 1)) return 'strokes';
  }
  // One solid blob (a filled triangle, a block cursor, a bullet) read as a letter or symbol.
  // (Bold digits fill 0.6 of their box too: only symbol tokens are judged by their fill.)
  if (f.components === 1 && f.fill >= 0.5 && f.blobWidth >= 0.4 && f.blobHeight >= 0.4 && alnum === 0) return 'solid';
  // A filled block (a terminal's block cursor read as `J` or `I`): no letter fills its own box.
  if (chars.length === 1 && f.components === 1 && f.fill >= JUNK_BLOCK_FILL && f.blobWidth >= 0.4 && f.blobHeight >= 0.7) return 'solid';
  // A rectangle's outline (a hollow cursor block read as `0`, `O`, `D`): no glyph has square corners all round.
  if (chars.length === 1 && f.components === 1 && f.frame && f.blobHeight >= 0.7) return 'solid';
  // One glyph read as two or three letters ("Vv" for a chevron, "xX" for a close cross).
  if (alnum >= 2 && f.components === 1 && chars.length <= 3 && word.confidence < 0.9 && alnum === chars.length) {
    const lower = chars.map((c) => c.toLowerCase());
    if (new Set(lower).size < lower.length) return 'split-glyph';
  }
  // One shape read as two or three marks ("[]" for a hollow cursor block, "()" for a ring).
  if (alnum === 0 && chars.length >= 2 && f.components === 1) return 'split-glyph';
  // Symbols and punctuation alone need tesseract's confidence (icons read as ©, ¥, ®, §).
  if (alnum === 0 && word.confidence < JUNK_SYMBOL_MIN_CONFIDENCE && /[^\p{ASCII}]/u.test(text)) return 'symbol';
  if (repeated && alnum === 0 && chars.length >= 3) return 'strokes';
  // A lone letter with no word beside it on its line is an icon button's glyph unless read confidently (a
  // lone digit is a value and stays).
  if (context.alone && chars.length === 1 && /\p{L}/u.test(text) && word.confidence < JUNK_LONE_LETTER_MIN_CONFIDENCE) return 'lone-letter';
  // A short token mixing letters or digits with other marks ("2)" read off a gauge's ring), read unsurely.
  if (chars.length <= 2 && alnum > 0 && alnum < chars.length && word.confidence < JUNK_SHORT_MIN_CONFIDENCE) return 'unsure';
  return null;
}

/**
 * The words of `words` that are junk, with the reason, judged on `gray` (`width` x `height` source pixels);
 * `toPixels` maps a word's bounds (logical points) to source pixels. Pure.
 */
export function findJunkWords(
  words: OcrWord[],
  gray: Uint8Array,
  width: number,
  height: number,
  toPixels: (w: OcrWord) => PixelBox | null,
): Map<OcrWord, JunkReason> {
  const out = new Map<OcrWord, JunkReason>();
  const bars: OcrWord[] = [];
  const judged: { w: OcrWord; f: InkFeatures }[] = [];
  for (const w of words) {
    const chars = [...w.text.trim()];
    const repeated = chars.length >= 2 && new Set(chars.map((c) => c.toLowerCase())).size === 1;
    if (chars.length > JUNK_MAX_LENGTH && !repeated) continue;
    const px = toPixels(w);
    if (!px || px.width <= 0 || px.height <= 0) continue;
    const f = inkFeatures(gray, width, height, px);
    const why = junkReason(w, f);
    if (why) out.set(w, why);
    else {
      judged.push({ w, f });
      if (chars.length === 1 && f.components > 0 && f.thinComponents === f.components) bars.push(w);
    }
  }
  // Second look with the line's context, among the words that are not junk by their own ink (an icon button
  // beside another icon button is alone once its neighbour is known to be an icon).
  const kept = words.filter((w) => !out.has(w));
  for (const { w, f } of judged) {
    const why = junkReason(w, f, { alone: alone(w, kept) });
    if (why) out.set(w, why);
  }
  // A row of one-character bars (ticks, a dashed rule) read as "1 1 1 1" or "l l l": three or more alike on
  // one line are graphics even when each alone might be a letter.
  for (const w of bars) {
    const cy = w.bounds.y + w.bounds.height / 2;
    const alike = bars.filter((v) => v.text === w.text && Math.abs(v.bounds.y + v.bounds.height / 2 - cy) <= w.bounds.height / 2);
    if (alike.length >= JUNK_BAR_ROW) out.set(w, 'strokes');
  }
  return out;
}

/**
 * Whether no other word lies on `w`'s line within 1.5 line heights to the left or right (words of one line
 * stand under one height apart). The line height is the taller of the two words: a lower-case letter's box
 * (`s` in `4.71 s`) is only its x-height, and a monospace space is wider than that.
 */
function alone(w: OcrWord, words: OcrWord[]): boolean {
  const h = w.bounds.height;
  const cy = w.bounds.y + h / 2;
  return !words.some((v) => {
    if (v === w) return false;
    const vcy = v.bounds.y + v.bounds.height / 2;
    const lh = Math.max(h, v.bounds.height);
    if (Math.abs(vcy - cy) > lh / 2) return false;
    const gap = Math.max(v.bounds.x - (w.bounds.x + w.bounds.width), w.bounds.x - (v.bounds.x + v.bounds.width));
    return gap < 1.5 * lh;
  });
}

/** One-character bars alike on one line that make a row of ticks rather than text. */
export const JUNK_BAR_ROW = 3;

/**
 * `lines` without the words of `junk`; lines left empty are dropped, the others rebuilt (text and bounds
 * from their remaining words) by `makeLine`. Returns `lines` itself when nothing is dropped. Pure.
 */
export function dropWords<L extends { words: OcrWord[] }>(lines: L[], junk: ReadonlyMap<OcrWord, unknown> | ReadonlySet<OcrWord>, makeLine: (words: OcrWord[]) => L): L[] {
  if (junk.size === 0) return lines;
  return lines.flatMap((l) => {
    const kept = l.words.filter((w) => !junk.has(w));
    if (kept.length === l.words.length) return [l];
    return kept.length > 0 ? [makeLine(kept)] : [];
  });
}
