/**
 * One `recognize` call, as named stages over one {@link Recognition} (the call's crop, its gray pixels,
 * bands and profile):
 *
 * 1. `Recognition.prepare`: crop the region → 8-bit luminance → invert when mostly dark (the base orientation) → split
 *    tall crops into horizontal bands at text-free gaps;
 * 2. `findOnMainThread`: light-text regions and glyph boxes, found on this thread while the workers read (the
 *    light-text regions before the bands are posted when panels of them are read within the bands,
 *    `lightTextInBands`: `choosePanels`);
 * 3. `readBands`: each band through tesseract's page layout and LSTM (upscaled by its glyph height), words
 *    mapped back to logical global points, low-confidence words dropped; then the band's light-text regions
 *    that no confident word explains, read isolated; the two passes merged;
 * 4. `rereadBlocks` (src/perception/ocr/rereads.ts): vertical-text blocks, glyphs outside every word, runs of
 *    large glyphs and fixed-pitch blocks read again, each kept where it reads better;
 * 5. `rereadUnsure`: lines of 8–11 px glyphs (read at ×1 first with `coarseBands`, else ×1.5) with an unsure word read
 *    again at ×2, within an area budget;
 *    `rereadMonoDigits` (src/perception/ocr/monoDigits.ts): lines of fixed-pitch text with an unsure run of digits
 *    read again at ×2 (a terminal's dotted zero read `6` at ×1);
 *    `repairTruncated`: words cut short at an edge read again in a tight crop;
 * 6. `voteCharacters` and `rejectJunk`: characters corrected by the glyph vote, junk read from borders and icons
 *    dropped.
 *
 * Measurements of the stages: docs/perception.md.
 */
import { performance } from 'node:perf_hooks';
import Tesseract from 'tesseract.js';
import type { RawImage, Rect } from '../../platform/types.js';
import { DeskdError } from '../../errors.js';
import { centerInside, clip, pointsToPixels, toPixelRect, type PixelBox } from '../geometry.js';
import { dropWords, findJunkWords } from './junk.js';
import { voteGlyphs } from './glyphVote.js';
import type { OcrWorkerPool } from './pool.js';
import { findLightTextRegions, type LightTextRegion } from './lightText.js';
import { callOptions, type RecognizeOptions, type ResolvedOcrOptions } from './options.js';
import { makeLine, mergeLines, SYMBOLS } from './page.js';
import { regionToPixels } from './prepare.js';
import { cropOf, glyphBoxes, meanLuminance } from './raster.js';
import { Recognition } from './recognition.js';
import { EXPLAINED_MIN_CONFIDENCE, regionExplained, replaceIfMoreConfident, truncatedWords } from './repairs.js';
import { rereadBlocks, type DeferredRegion, type RereadCounters } from './rereads.js';
import { monospaceBlocks } from './monospace.js';
import { rereadMonoDigits } from './monoDigits.js';
import type { OcrLine, OcrResult, OcrWord } from './types.js';

/** Cells of the large-glyph detection are this many light-text cells wide (48 points: wider than a thick stroke). */
const LARGE_GLYPH_CELL_FACTOR = 4;
/** A line holding a word under this confidence (0..1) is read again at ×2 (`rereadUnsureLines`). */
const UNSURE_CONFIDENCE = 0.7;
/** Unsure lines read again cover at most this share of the crop's area. */
const UNSURE_AREA_SHARE = 0.03;
/**
 * Glyphs a light-text region needs to be read within the bands (`lightTextInBands`): several lines of text (a
 * pane, a nav bar), as many as a band needs for an upscale of its own; badges and buttons hold 3–12.
 */
const PANEL_MIN_GLYPHS = 40;
/** Glyphs beside a panel on its rows (outside it) that make a line of text there (`missedTextAreas`' minimum): such a panel is read on its own. */
const PANEL_MAX_BESIDE = 3;
/** Tallest glyph the large-glyph detection keeps, logical points. */
const LARGE_GLYPH_MAX_POINTS = 160;

/** What the main thread finds while the workers read the bands (all but `regions` in logical points). */
export interface FoundOnMainThread {
  /** Light-text regions of the crop (pixels relative to the crop). */
  regions: LightTextRegion[];
  /** Glyph boxes, for the missed-text and truncated-word repairs. */
  glyphs: Rect[];
  /** Large glyph boxes (larger cells), for the large-glyph re-read. */
  large: Rect[];
}

/** The counters a call reports beside its words (see {@link OcrResult}). */
type Counters = RereadCounters & Pick<OcrResult, 'unsureLines' | 'monospaceDigits' | 'votedWords' | 'junk'>;

/**
 * Read the text of an image (or of `opts.region` of it) with the workers of `pool`: the stages above.
 * Word and line bounds are logical global points: `origin + imagePixel / scale`, undoing any upscale.
 * A region that misses the image yields no words.
 * @throws DeskdError `OCR_FAILED` (tesseract failed, pool closed), `TIMEOUT` (job over the pool's timeout),
 *   `VALIDATION_FAILED` (image buffer smaller than width × height × channels, bad scale, bad per-call option).
 */
export async function recognize(pool: OcrWorkerPool, engine: ResolvedOcrOptions, img: RawImage, opts: RecognizeOptions): Promise<OcrResult> {
  const t0 = performance.now();
  if (img.data.length < img.width * img.height * img.channels || img.width <= 0 || img.height <= 0 || !(img.scale > 0)) {
    throw new DeskdError('VALIDATION_FAILED', `OCR image of ${img.width}x${img.height} has ${img.data.length} bytes or a bad scale`);
  }
  const o = callOptions(engine, opts);
  const crop = regionToPixels(img, o.region);
  if (!crop) return { words: [], lines: [], ms: performance.now() - t0, profile: { passes: {}, grayMs: 0, findMs: 0, postMs: 0 } };
  const call = await Recognition.prepare(pool, o, img, crop);
  // Light-text panels are found before the bands are read, to be read within them (`lightTextInBands`).
  const early = o.invert === 'auto' && o.lightTextRegions && o.lightTextInBands ? findRegions(call) : undefined;
  if (early) call.setPanels(choosePanels(early, call));
  const found = findOnMainThread(call, early);
  const { lines: baseLines, deferred } = await readBands(call, found);
  const { regions, glyphs, large } = await found;
  const counters: Counters = {};
  let lines = await rereadBlocks(call, baseLines, glyphs, large, counters, deferred);
  if (o.rereadUnsureLines) lines = await rereadUnsure(call, lines, counters);
  if (o.rereadMonospaceDigits) lines = await rereadMonoDigits(call, lines, counters);
  const repaired = o.repairTruncated ? await repairTruncated(call, lines, glyphs) : null;
  if (repaired) lines = repaired.lines;
  const tpost = performance.now();
  if (o.voteGlyphs) lines = voteCharacters(call, lines, counters);
  if (o.rejectJunk) lines = rejectJunk(call, lines, counters);
  call.profile.postMs = performance.now() - tpost;
  const { verticalBlocks, missedText, largeGlyphs, monospaceBlocks: monoCount, unsureLines, monospaceDigits, votedWords, junk } = counters;
  return {
    words: lines.flatMap((l) => l.words),
    lines,
    ms: performance.now() - t0,
    profile: call.profile,
    lightTextRegions: call.lightTextRead,
    lightTextRegionsFound: regions.length,
    ...(call.panels.length > 0 ? { lightTextInBands: call.panels.length } : {}),
    upscale: call.frameFactor(),
    repairedWords: repaired?.count ?? 0,
    ...(verticalBlocks ? { verticalBlocks } : {}),
    ...(missedText ? { missedText } : {}),
    ...(largeGlyphs ? { largeGlyphs } : {}),
    ...(monoCount ? { monospaceBlocks: monoCount } : {}),
    ...(unsureLines ? { unsureLines } : {}),
    ...(monospaceDigits ? { monospaceDigits } : {}),
    ...(votedWords !== undefined ? { votedWords } : {}),
    ...(junk ? { junk } : {}),
  };
}

/**
 * Stage 2: light-text regions and glyph boxes, looked for on this thread while the workers read the bands:
 * a band needs them only once it is read, and band jobs at ×1 are handed to the workers first (setImmediate
 * runs after the promise callbacks that post them; an upscaled band waits for sharp's resize on the thread
 * pool, so this may run before its job is posted). Call before {@link readBands}.
 */
function findOnMainThread(call: Recognition, early?: LightTextRegion[]): Promise<FoundOnMainThread> {
  const { o, base, crop, whole, cell, img, profile } = call;
  const found = new Promise<FoundOnMainThread>((resolve, reject) =>
    setImmediate(() => {
      const tf = performance.now();
      try {
        const regions = early ?? (o.invert === 'auto' && o.lightTextRegions ? findLightTextRegions(base, crop.width, crop.height, { cell }) : []);
        // For the repairs after the bands, also found while the workers read.
        const glyphs = o.repairTruncated || o.repairMissedText ? call.glyphs().map((b) => call.toPoints(b)) : [];
        // Large glyphs need larger cells: a 12-point cell inside a thick stroke takes the ink for background.
        const large = o.readLargeGlyphs ? glyphBoxes(base, crop.width, whole, { cell: cell * LARGE_GLYPH_CELL_FACTOR, maxHeight: Math.round(LARGE_GLYPH_MAX_POINTS * img.scale) }).map((b) => call.toPoints(b)) : [];
        call.frameFactor(); // for the result
        profile.findMs += performance.now() - tf;
        resolve({ regions, glyphs, large });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    }),
  );
  // Awaited by every band; a band that fails first leaves this one to be seen by no one.
  found.catch(() => {});
  return found;
}

/** The crop's light-text regions (pixels relative to the crop; `findLightTextRegions` of the base orientation), timed into `findMs`. */
function findRegions(call: Recognition): LightTextRegion[] {
  const tf = performance.now();
  const regions = findLightTextRegions(call.base, call.crop.width, call.crop.height, { cell: call.cell });
  call.profile.findMs += performance.now() - tf;
  return regions;
}

/**
 * The light-text regions (pixels relative to the crop) to read within the bands (`lightTextInBands`): those of
 * at least {@link PANEL_MIN_GLYPHS} glyphs, with no text beside them on their rows (fewer than
 * {@link PANEL_MAX_BESIDE} glyphs outside them there), whose own upscale (`regionFactor`, what their isolated
 * read would use) is the one every band they overlap is read at (`bandFactor`). A panel of light text is read as
 * well in the band as alone once flattened, at the same scale; a badge of a few glyphs, text that calls for a
 * larger upscale than its band's, or a pane beside other text (whose layout the flattened pane would change) is
 * read on its own.
 */
function choosePanels(regions: LightTextRegion[], call: Recognition): LightTextRegion[] {
  return regions.filter((r) => {
    if (call.glyphsIn(r).length < PANEL_MIN_GLYPHS) return false;
    // Text beside the panel on its rows: the band's layout would pair the two as columns (a terminal's dark pane
    // flattened beside a light one cut the light one's lines apart); such a panel is read on its own.
    const beside = call.glyphs().filter((g) => {
      const cx = g.left + g.width / 2;
      const cy = g.top + g.height / 2;
      return cy >= r.top && cy < r.top + r.height && (cx < r.left || cx >= r.left + r.width);
    });
    if (beside.length >= PANEL_MAX_BESIDE) return false;
    const top = call.crop.top + r.top;
    const bottom = top + r.height;
    const factor = call.regionFactor(r);
    return call.bands.every((b) => b.ownBottom <= top || b.ownTop >= bottom || call.bandFactor(b) === factor);
  });
}

/**
 * Stage 3: every band, then (as soon as its band is read, so a worker whose band finished first is not idle)
 * the band's light-text regions (by centre row) that are not explained by its confident words, read
 * isolated; the two passes merged (see `mergeLines`). A region whose glyphs all lie in a block of fixed-pitch
 * lines of its band (`monospaceBlocks`: a terminal or log pane, light text on dark) is not read here but
 * returned in `deferred`: stage 4 reads the block again as one block, and reads the region only when the
 * words then read do not explain it (a dark log pane was read three times: band, region, block).
 */
async function readBands(call: Recognition, found: Promise<FoundOnMainThread>): Promise<{ lines: OcrLine[]; deferred: DeferredRegion[] }> {
  const { o, bands, crop, img } = call;
  const owner = (r: LightTextRegion): number => {
    const row = crop.top + r.top + r.height / 2;
    const i = bands.findIndex((b) => row >= b.ownTop && row < b.ownBottom);
    return i < 0 ? bands.length - 1 : i;
  };
  const perBand = await Promise.all(
    bands.map(async (band, bi) => {
      const lines = await call.read(call.relative(band.crop), undefined, band, o.minConfidence, { collectVertical: true, coarse: o.coarseBands, pass: 'band' });
      // Panels flattened in the band image were read by the bands themselves.
      const mine = (await found).regions.filter((r) => owner(r) === bi && !call.panels.includes(r)).map((region) => ({ region, glyphs: call.glyphsIn(region).map((b) => call.toPoints(b)) }));
      const words = o.lightTextSkipExplained ? lines.flatMap((l) => l.words) : [];
      const todo = mine.filter((r) => !o.lightTextSkipExplained || !regionExplained(r.glyphs, words, EXPLAINED_MIN_CONFIDENCE));
      const blocks = o.readMonospaceBlocks && todo.length > 0 ? monospaceBlocks(lines, (w) => SYMBOLS.get(w), call.within, 1 / img.scale).map((b) => b.area) : [];
      const inBlock = (r: DeferredRegion) => r.glyphs.length > 0 && blocks.some((a) => r.glyphs.every((g) => centerInside(g, a)));
      const deferred = todo.filter(inBlock);
      const extra = await Promise.all(todo.filter((r) => !inBlock(r)).map((r) => call.readLightText(r.region)));
      return { lines, extra: extra.flat(), deferred };
    }),
  );
  return { lines: mergeLines(perBand.flatMap((b) => b.lines), perBand.flatMap((b) => b.extra)), deferred: perBand.flatMap((b) => b.deferred) };
}

/**
 * Stage 4b (`rereadUnsureLines`), when the crop's glyphs called for ×1.5 (`autoUpscale`; the bands were then read at
 * ×1.5, or at ×1 with `coarseBands`, and a line read at ×1 or ×1.5 is read again at ×2): lines that hold a word of confidence under
 * {@link UNSURE_CONFIDENCE}, least confident (mean) first while their area (padded) stays within
 * {@link UNSURE_AREA_SHARE} of the crop's, read again as one line at ×2 (light lines turned dark), each reading
 * kept where it is more confident (`replaceIfMoreConfident`).
 */
async function rereadUnsure(call: Recognition, lines: OcrLine[], counters: Counters): Promise<OcrLine[]> {
  // Only where the glyphs call for ×1.5: text of larger glyphs read at ×1 is large enough, one read at ×2 got it already.
  const factor = call.frameFactor();
  if (call.o.upscale !== 'auto' || factor <= 1 || factor >= 2) return lines;
  const mean = (l: OcrLine) => l.words.reduce((a, w) => a + w.confidence, 0) / l.words.length;
  const suspects = lines.filter((l) => l.words.some((w) => w.confidence < UNSURE_CONFIDENCE && /[\p{L}\p{N}]{2}/u.test(w.text))).sort((a, b) => mean(a) - mean(b));
  if (suspects.length === 0) return lines;
  const budget = UNSURE_AREA_SHARE * call.within.width * call.within.height;
  let used = 0;
  const areas: Rect[] = [];
  for (const l of suspects) {
    const h = l.bounds.height;
    const area = { x: l.bounds.x - h / 2, y: l.bounds.y - h / 4, width: l.bounds.width + h, height: h * 1.5 };
    if (used + area.width * area.height > budget) continue;
    used += area.width * area.height;
    areas.push(area);
  }
  const reads = await Promise.all(
    areas.map(async (area) => {
      const px = call.areaPixels(area);
      if (!px) return { area, got: null };
      const rel = call.relative(px);
      const light = meanLuminance(cropOf(call.base, call.crop.width, rel)) < 0.5;
      const got = await call.read(rel, undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, call.o.minConfidence, { psm: Tesseract.PSM.SINGLE_LINE, factor: 2, invert: light, pass: 'unsure' });
      return { area, got };
    }),
  );
  let out = lines;
  let replaced = 0;
  for (const r of reads) {
    if (!r.got) continue;
    const next = replaceIfMoreConfident(out, r.area, r.got, 'characters');
    if (next !== out) replaced++;
    out = next;
  }
  counters.unsureLines = { found: areas.length, replaced };
  return out;
}

/**
 * Stage 5: each word with an unread glyph touching its edge (`truncatedWords`) read again in a tight crop;
 * the longest reading centred on the word replaces it when it contains the word's text.
 */
async function repairTruncated(call: Recognition, lines: OcrLine[], glyphs: Rect[]): Promise<{ lines: OcrLine[]; count: number }> {
  const suspects = truncatedWords(lines.flatMap((l) => l.words), glyphs);
  const fixes = await Promise.all(
    suspects.map(async ({ word, area }) => {
      const got = await call.readArea(area, call.regionMinConfidence, 'truncated');
      if (!got) return null;
      // On the word's row, at most one word height beyond its ends.
      const inside = got.flatMap((l) => l.words).filter((w) => centerInside(w.bounds, word.bounds, word.bounds.height, 0));
      const best = inside.sort((a, b) => b.text.length - a.text.length)[0];
      return best && best.text.length > word.text.length && best.text.includes(word.text) ? { word, best } : null;
    }),
  );
  const swap = new Map<OcrWord, OcrWord>();
  for (const f of fixes) if (f) swap.set(f.word, f.best);
  const out = swap.size > 0 ? lines.map((l) => (l.words.some((w) => swap.has(w)) ? makeLine(l.words.map((w) => swap.get(w) ?? w)) : l)) : lines;
  return { lines: out, count: swap.size };
}

/** Stage 6: the glyph vote (`voteGlyphs`) over the characters read; corrected words keep their symbols. */
function voteCharacters(call: Recognition, lines: OcrLine[], counters: Counters): OcrLine[] {
  const { crop, base } = call;
  const inCrop = (w: OcrWord) => SYMBOLS.get(w)?.map((sy) => ({ ...sy, box: { ...sy.box, left: sy.box.left - crop.left, top: sy.box.top - crop.top } }));
  const voted = voteGlyphs(lines.flatMap((l) => l.words), inCrop, base, crop.width, crop.height);
  counters.votedWords = voted.size;
  if (voted.size === 0) return lines;
  return lines.map((l) => {
    if (!l.words.some((w) => voted.has(w))) return l;
    return makeLine(
      l.words.map((w) => {
        const text = voted.get(w);
        if (text === undefined) return w;
        const nw: OcrWord = { ...w, text };
        const syms = SYMBOLS.get(w);
        if (syms) SYMBOLS.set(nw, syms.map((sy, i) => ({ ...sy, text: [...text][i] ?? sy.text })));
        return nw;
      }),
    );
  });
}

/** Stage 7: words whose own pixels say they are not text (`findJunkWords`) dropped, counted by reason. */
function rejectJunk(call: Recognition, lines: OcrLine[], counters: Counters): OcrLine[] {
  const { crop, img, base } = call;
  const toCrop = (w: OcrWord): PixelBox | null => {
    const px = pointsToPixels(img, w.bounds);
    const c = px && clip(px, toPixelRect(crop));
    return c ? { left: c.x - crop.left, top: c.y - crop.top, width: c.width, height: c.height } : null;
  };
  const found = findJunkWords(lines.flatMap((l) => l.words), base, crop.width, crop.height, toCrop);
  if (found.size === 0) return lines;
  const junk: NonNullable<Counters['junk']> = {};
  for (const why of found.values()) junk[why] = (junk[why] ?? 0) + 1;
  counters.junk = junk;
  return dropWords(lines, found, makeLine);
}
