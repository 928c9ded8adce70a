/**
 * Stage 4c of a `recognize` call (`rereadMonospaceDigits`, issue 15): numbers in fixed-pitch text read again at ×2.
 *
 * DejaVu Sans Mono (the usual terminal font on Linux) draws its zero with a dot inside. At 15 px, read at ×1, tesseract
 * takes that zero for a `6` with confidences of 0.72–0.81, above the 0.7 that makes a line "unsure": the bench's
 * web terminal typed `echo job 900 queued`, and a crop of the three changed lines read `960` twice, a whole-frame
 * read `900` (the terminal read as one block), ×2 of the same crop `900` at 0.89–0.91. An incremental observe
 * re-reads only the changed lines, so it answered `960` where a fresh observe answered `900`: a wrong answer an
 * agent cannot see. A digit in a terminal, a log or a code view carries the answer (a job id, a port, a count)
 * and a wrong one looks like a right one, so such words are read again, each on its own at ×2, whatever crop
 * they were read in; the full read and the incremental one then read the same pixels the same way.
 */
import Tesseract from 'tesseract.js';
import type { Rect } from '../../platform/types.js';
import { centerInside } from '../geometry.js';
import { fixedPitch, monospaceBlocks } from './monospace.js';
import { makeLine, SYMBOLS } from './page.js';
import { cropOf, meanLuminance } from './raster.js';
import type { Recognition } from './recognition.js';
import type { OcrLine, OcrResult, OcrWord } from './types.js';

/**
 * A reading at ×2 of at least this confidence (0..1) and as many characters replaces the word read at ×1 even when
 * that one was more confident: tesseract read the dotted zeros of `902` as `962` at ×1 with confidence 0.94.
 */
export const MONO_DIGIT_TRUST_CONFIDENCE = 0.85;
/** Lines read again at most per call (the line of the least confident word first). */
export const MONO_DIGIT_MAX_LINES = 8;
/**
 * Context read with the suspect words, line heights each side (≈ 5 cells of a terminal): enough for tesseract to read
 * `900` right (the word alone at ×2 read `200`), a third less worker time than the whole line on the bench
 * terminal's cold frames (380 → 280 ms) with the same words.
 */
const MONO_DIGIT_CONTEXT = 3;
/** Upscale of the re-read. */
const MONO_DIGIT_FACTOR = 2;

/**
 * The words of `lines` to read again (pure): words holding a run of two digits (`\p{N}{2}`; whatever their
 * confidence: a misread zero came at 0.72–0.94) on a line set in a fixed-pitch font (`fixedPitch` of the line's words, or the
 * line's centre inside one of `blocks`, logical points), by line, the line of the least confident word first, at
 * most `max` lines. `symbolsOf` gives a word's characters (source pixels), as for `fixedPitch`.
 */
export function monoDigitSuspects(
  lines: OcrLine[],
  blocks: Rect[],
  symbolsOf: Parameters<typeof fixedPitch>[1],
  max = MONO_DIGIT_MAX_LINES,
): { line: OcrLine; words: OcrWord[] }[] {
  const out: { line: OcrLine; words: OcrWord[]; min: number }[] = [];
  for (const line of lines) {
    const words = line.words.filter((w) => /\p{N}{2}/u.test(w.text));
    if (words.length === 0) continue;
    const fixed = blocks.some((b) => centerInside(line.bounds, b)) || fixedPitch(line.words, symbolsOf).pitch > 0;
    if (fixed) out.push({ line, words, min: Math.min(...words.map((w) => w.confidence)) });
  }
  return out.sort((a, b) => a.min - b.min).slice(0, max).map(({ line, words }) => ({ line, words }));
}

/**
 * The area a suspect word's reading is looked for in, logical points: the word padded by 0.4 of its height sideways
 * (less than one fixed-pitch cell plus a glyph's bearing, so a neighbouring word's centre stays outside) and ¼ above
 * and below.
 */
export function monoDigitArea(w: OcrWord): Rect {
  const h = w.bounds.height;
  return { x: w.bounds.x - 0.4 * h, y: w.bounds.y - h / 4, width: w.bounds.width + 0.8 * h, height: h * 1.5 };
}

/**
 * Swap each suspect word of `line` for the words of `reread` whose centre lies in its area (`monoDigitArea`) when
 * their mean confidence is higher than the word's, or when they are one word of as many characters read with
 * confidence {@link MONO_DIGIT_TRUST_CONFIDENCE} or more (the ×2 reading trusted over a confident ×1 one); the line keeps its other words and its place. Returns the new
 * words (the line's unchanged when nothing was swapped) and the count swapped. Pure.
 */
export function swapMoreConfident(line: OcrLine, suspects: OcrWord[], reread: OcrWord[]): { words: OcrWord[]; swapped: number } {
  let swapped = 0;
  const words = line.words.flatMap((w) => {
    if (!suspects.includes(w)) return [w];
    const area = monoDigitArea(w);
    const got = reread.filter((x) => centerInside(x.bounds, area));
    if (got.length === 0) return [w];
    const mean = got.reduce((a, x) => a + x.confidence, 0) / got.length;
    const trusted = got.length === 1 && [...got[0]!.text].length === [...w.text].length && mean >= MONO_DIGIT_TRUST_CONFIDENCE;
    if (!(mean > w.confidence) && !trusted) return [w];
    swapped++;
    return got;
  });
  return { words: swapped > 0 ? words : line.words, swapped };
}

/**
 * Read each line holding suspect words (`monoDigitSuspects`) again at ×2 as one line (`SINGLE_LINE`; the part of the
 * line from {@link MONO_DIGIT_CONTEXT} line heights before its first suspect word to as many after its last, padded by
 * half its height sideways and a quarter above and below, light text turned dark), when the call's glyphs called for
 * less than ×2 (`upscale: 'auto'`); each suspect word is swapped for that reading where it is more confident
 * (`swapMoreConfident`). A line read whole gives tesseract the context a word alone lacks (`960` alone at ×2 read
 * `200`). Counts (words) go to `counters.monospaceDigits`. @throws as {@link Recognition.read}.
 */
export async function rereadMonoDigits(call: Recognition, lines: OcrLine[], counters: Pick<OcrResult, 'monospaceDigits'>): Promise<OcrLine[]> {
  if (call.o.upscale !== 'auto' || call.frameFactor() >= MONO_DIGIT_FACTOR) return lines;
  const blocks = monospaceBlocks(lines, (w) => SYMBOLS.get(w), call.within, 1 / call.img.scale).map((b) => b.area);
  const suspects = monoDigitSuspects(lines, blocks, (w) => SYMBOLS.get(w));
  if (suspects.length === 0) return lines;
  const reads = await Promise.all(
    suspects.map(async (s) => {
      const b = s.line.bounds;
      const h = b.height;
      // From MONO_DIGIT_CONTEXT line heights before the first suspect word to as many after the last, within the line.
      const x0 = Math.max(b.x - h / 2, Math.min(...s.words.map((w) => w.bounds.x)) - MONO_DIGIT_CONTEXT * h);
      const x1 = Math.min(b.x + b.width + h / 2, Math.max(...s.words.map((w) => w.bounds.x + w.bounds.width)) + MONO_DIGIT_CONTEXT * h);
      const px = call.areaPixels({ x: x0, y: b.y - h / 4, width: x1 - x0, height: h * 1.5 });
      if (!px) return [];
      const rel = call.relative(px);
      const light = meanLuminance(cropOf(call.base, call.crop.width, rel)) < 0.5;
      const got = await call.read(rel, undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, call.o.minConfidence, { psm: Tesseract.PSM.SINGLE_LINE, factor: MONO_DIGIT_FACTOR, invert: light, pass: 'monoDigits' });
      return got.flatMap((l) => l.words);
    }),
  );
  let replaced = 0;
  const swaps = new Map<OcrLine, OcrWord[]>();
  suspects.forEach((s, i) => {
    const r = swapMoreConfident(s.line, s.words, reads[i]!);
    if (r.swapped > 0) swaps.set(s.line, r.words);
    replaced += r.swapped;
  });
  counters.monospaceDigits = { found: suspects.reduce((n, s) => n + s.words.length, 0), replaced };
  return swaps.size > 0 ? lines.map((l) => (swaps.has(l) ? makeLine(swaps.get(l)!) : l)) : lines;
}
