/**
 * Stage 4 of a `recognize` call: the block re-reads. From the words of the base pass (bands and light text),
 * four kinds of area are read again, all on the pool at once, and each reading is kept where it reads
 * better: vertical-text blocks (a column of single digits) and blocks of fixed-pitch lines (a terminal) are
 * read as one block and replace the words they cover when more confident; glyphs outside every word (a
 * column the layout dropped) and runs of large glyphs (a KPI card's number) are read and merged in; glyphs
 * outside every word inside a fixed-pitch block are read only when the block's reading is not kept. With
 * `splitMonospaceBlocks`, a long fixed-pitch block is read in parts, one per worker (`splitBlockArea`).
 * The heuristics that choose the areas are in src/perception/ocr/repairs.ts, largeGlyphs.ts and
 * monospace.ts.
 */
import Tesseract from 'tesseract.js';
import type { Rect } from '../../platform/types.js';
import { centerInside, mergeOverlapping } from '../geometry.js';
import { largeGlyphRuns, wordsOnRun, type LargeGlyphRun } from './largeGlyphs.js';
import { joinAdjacentCells, monospaceBlocks, splitBlockArea } from './monospace.js';
import { makeLine, mergeLines, SYMBOLS, splitByRow } from './page.js';
import type { Recognition } from './recognition.js';
import type { LightTextRegion } from './lightText.js';
import { cropOf, meanLuminance } from './raster.js';
import { columnStrip, EXPLAINED_MIN_CONFIDENCE, missedTextAreas, regionExplained, replaceIfMoreConfident } from './repairs.js';
import type { OcrLine, OcrPass, OcrResult, OcrWord } from './types.js';

/** Margin left and right of a vertical-text block when it is read again, logical points. */
const VERTICAL_BLOCK_MARGIN_POINTS = 8;
/** Missed-text areas read at most (the most glyphs first; `missedTextAreas`). */
const MISSED_AREAS = 8;
/**
 * Missed-text areas read at most after a coarse band read (`coarseBands`): a ×1 read of 8–11 px glyphs drops
 * more words under the confidence floor, and their glyphs are read here at their own upscale (bench/ocr-cold
 * metrics page: 14 areas, a table whose numbers the ×1 read dropped).
 */
const MISSED_AREAS_COARSE = 16;
/** Words of lower confidence do not count as reading the large glyphs under them. */
const LARGE_GLYPH_SURE_CONFIDENCE = 0.6;

/**
 * A light-text region (pixels relative to the crop) that lies in a block of fixed-pitch lines, left by the band
 * pass to the block's reading (`readBands`), with its glyph boxes (logical points).
 */
export interface DeferredRegion {
  region: LightTextRegion;
  glyphs: Rect[];
}

/** The counts stage 4 reports (see {@link OcrResult}). */
export type RereadCounters = Pick<OcrResult, 'verticalBlocks' | 'missedText' | 'largeGlyphs' | 'monospaceBlocks'>;

/**
 * Read the vertical-text, missed-text, large-glyph and monospace areas of `lines` again (each kind only when
 * its option is on) and fold the readings in, in that order; the counts go to `counters`. `glyphs` and
 * `large` are the glyph boxes (logical points) found on the main thread. `deferred`: light-text regions the band
 * pass left to a fixed-pitch block, each read on its own (isolated, as the band pass would have) only when,
 * after the block's reading, some glyph of it lies in no word of confidence ≥ 0.9 (`regionExplained`).
 */
export async function rereadBlocks(call: Recognition, lines: OcrLine[], glyphs: Rect[], large: Rect[], counters: RereadCounters, deferred: DeferredRegion[] = []): Promise<OcrLine[]> {
  const { o, img, within } = call;
  const baseWords = lines.flatMap((l) => l.words);
  const verticalAreas =
    o.repairVerticalText && call.vertical.length > 0 ? mergeOverlapping(call.vertical.map((r) => columnStrip(r, baseWords, within, VERTICAL_BLOCK_MARGIN_POINTS))) : null;
  const missedAreas = o.repairMissedText ? missedTextAreas(baseWords, glyphs, within, { maxAreas: call.coarseRead ? MISSED_AREAS_COARSE : MISSED_AREAS }) : null;
  const medianGlyph = median(glyphs.map((g) => g.height));
  // Words read unsurely (a big "7" read "Wy" at 0.45) do not hide the glyphs under them: the tight re-read,
  // if more confident, replaces them in the merge.
  const largeRuns = o.readLargeGlyphs ? largeGlyphRuns(baseWords.filter((w) => w.confidence >= LARGE_GLYPH_SURE_CONFIDENCE), large, within, { medianHeight: medianGlyph }) : null;
  // Blocks of fixed-pitch lines (a terminal) read as one block, dark text on light like the large glyphs.
  const monoBlocks = o.readMonospaceBlocks ? monospaceBlocks(lines, (w) => SYMBOLS.get(w), within, 1 / img.scale) : null;
  // With `splitMonospaceBlocks`, a long block is read in parts on the workers at once (`splitBlockArea`), each kept
  // or not on its own.
  const parts = o.splitMonospaceBlocks ? call.workers : 1;
  const monoParts = (monoBlocks ?? []).flatMap((b) => splitBlockArea(b.area, lines, parts).map((area) => ({ area, pitch: b.pitch })));
  let out = lines;
  const readBlock = (area: Rect, minConfidence: number, pass: OcrPass) => call.readArea(area, minConfidence, pass, Tesseract.PSM.SINGLE_BLOCK);
  // Missed-text areas inside a fixed-pitch block wait for the block's reading: when it is kept, it read the whole
  // block (the terminal's missed-text reads were 16–19% of its worker time, docs/perception-incremental.md).
  const blockOf = (area: Rect) => monoParts.findIndex((b) => centerInside(area, b.area));
  const missedNow = (missedAreas ?? []).filter((a) => blockOf(a) < 0);
  // Deferred light-text regions by block (-1: in none of the blocks found on all the lines: read now).
  const regionBlock = deferred.map((d) => (monoBlocks ?? []).findIndex((b) => d.glyphs.every((g) => centerInside(g, b.area))));
  const missedLater = (missedAreas ?? []).filter((a) => blockOf(a) >= 0);
  const [verticalReads, missedReads, largeReads, monoReads, regionReads] = await Promise.all([
    Promise.all((verticalAreas ?? []).map(async (area) => ({ area, got: await readBlock(area, o.minConfidence, 'vertical') }))),
    Promise.all(missedNow.map((area) => readBlock(area, call.regionMinConfidence, 'missed'))),
    Promise.all((largeRuns ?? []).map((run) => readLarge(call, run))),
    Promise.all(monoParts.map(async (b) => ({ area: b.area, got: await readMono(call, b.area, b.pitch) }))),
    Promise.all(deferred.filter((_, k) => regionBlock[k]! < 0).map((d) => call.readLightText(d.region))),
  ]);
  if (regionReads.length > 0) out = mergeLines(out, regionReads.flat());
  if (verticalAreas) {
    const r = replaceEach(out, verticalReads, 'words');
    out = r.lines;
    counters.verticalBlocks = { found: verticalAreas.length, replaced: r.replaced };
  }
  let missedAdded = 0;
  if (missedNow.length > 0) {
    const before = wordCount(out);
    out = mergeLines(out, missedReads.flatMap((r) => r ?? []));
    // Net: a more confident re-read of a word the base pass had replaces it and adds nothing.
    missedAdded += wordCount(out) - before;
  }
  if (largeRuns && largeRuns.length > 0) {
    const before = wordCount(out);
    // One line per row of each run (a run is one line, but a re-read may return a stray word beside it).
    out = mergeLines(out, largeReads.flatMap((ws) => (ws.length > 0 ? splitByRow(makeLine(ws)) : [])));
    counters.largeGlyphs = { found: largeRuns.length, added: wordCount(out) - before };
  }
  if (monoBlocks && monoBlocks.length > 0) {
    const kept: boolean[] = [];
    let r = { lines: out, replaced: 0 };
    for (const read of monoReads) {
      const next = replaceEach(r.lines, [read], 'characters');
      kept.push(next.replaced > 0);
      r = { lines: next.lines, replaced: r.replaced + next.replaced };
    }
    out = r.lines;
    // Per block: kept when the reading of some part of it was.
    const blocksKept = monoBlocks.filter((b) => monoParts.some((p, k) => kept[k] && centerInside(p.area, b.area))).length;
    counters.monospaceBlocks = { found: monoBlocks.length, replaced: blocksKept, ...(monoParts.length > monoBlocks.length ? { parts: monoParts.length } : {}) };
    // The light-text regions in blocks whose glyphs the words now read do not all explain (the block's reading
    // not kept, or unsure there), read now.
    const now = out.flatMap((l) => l.words);
    const lateRegions = deferred.filter((d, k) => regionBlock[k]! >= 0 && !regionExplained(d.glyphs, now, EXPLAINED_MIN_CONFIDENCE));
    if (lateRegions.length > 0) out = mergeLines(out, (await Promise.all(lateRegions.map((d) => call.readLightText(d.region)))).flat());
    // The missed-text areas of blocks whose reading was not kept, read now.
    const late = missedLater.filter((a) => !kept[blockOf(a)]);
    if (late.length > 0) {
      const before = wordCount(out);
      out = mergeLines(out, (await Promise.all(late.map((area) => readBlock(area, call.regionMinConfidence, 'missed')))).flatMap((x) => x ?? []));
      missedAdded += wordCount(out) - before;
    }
  }
  if (missedAreas && missedAreas.length > 0) counters.missedText = { found: missedAreas.length, added: missedAdded };
  return out;
}

/** Fold each reading into `lines` in turn with `replaceIfMoreConfident`, counting the readings kept. */
function replaceEach(lines: OcrLine[], reads: { area: Rect; got: OcrLine[] | null }[], gain: 'words' | 'characters'): { lines: OcrLine[]; replaced: number } {
  let replaced = 0;
  let out = lines;
  for (const r of reads) {
    if (!r.got) continue;
    const next = replaceIfMoreConfident(out, r.area, r.got, gain);
    if (next !== out) replaced++;
    out = next;
  }
  return { lines: out, replaced };
}

/**
 * A run of large glyphs read on a tight crop as one line (`SINGLE_LINE`) or, for a lone glyph, one character
 * (`SINGLE_CHAR`), light glyphs turned dark on light, small ones upscaled ×2; the words on the run.
 */
async function readLarge(call: Recognition, run: LargeGlyphRun): Promise<OcrWord[]> {
  const px = call.areaPixels(run.area);
  if (!px) return [];
  const rel = call.relative(px);
  // Light glyphs on a dark card (in the base orientation) are turned dark on light for this crop.
  const light = meanLuminance(cropOf(call.base, call.crop.width, rel)) < 0.5;
  const factor = run.box.height * call.img.scale < 24 ? 2 : 1;
  const psm = run.glyphs === 1 ? Tesseract.PSM.SINGLE_CHAR : Tesseract.PSM.SINGLE_LINE;
  const got = await call.read(rel, undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, call.regionMinConfidence, { psm, factor, invert: light, pass: 'largeGlyph' });
  return wordsOnRun(run, got.flatMap((l) => l.words));
}

/** A block of fixed-pitch lines read as one block (`SINGLE_BLOCK`), dark on light; words in neighbouring cells joined. */
async function readMono(call: Recognition, area: Rect, pitch: number): Promise<OcrLine[] | null> {
  const px = call.areaPixels(area);
  if (!px) return null;
  const rel = call.relative(px);
  const light = meanLuminance(cropOf(call.base, call.crop.width, rel)) < 0.5;
  const got = await call.read(rel, undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, call.o.minConfidence, { psm: Tesseract.PSM.SINGLE_BLOCK, invert: light, pass: 'monospace' });
  // On the grid a space is an empty cell: words in neighbouring cells are one (`build.log`, not `build. log`).
  return joinAdjacentCells(got, pitch, (w) => SYMBOLS.get(w), (w, sy) => SYMBOLS.set(w, sy), makeLine);
}

/** Words in all of `lines`. */
function wordCount(lines: OcrLine[]): number {
  return lines.reduce((n, l) => n + l.words.length, 0);
}

/** Median of `xs` (0 when empty). */
function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
