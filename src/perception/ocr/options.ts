/**
 * The OCR engine's options as one zod schema: each option's rule and default are written once, here, and
 * the option types are inferred from it (`OcrEngineOptions` in, `ResolvedOcrOptions` out). The options a
 * single `recognize` call may override share their rules ({@link RecognizeOptionsSchema}) but have no
 * default: an unset one takes the engine's.
 */
import { availableParallelism } from 'node:os';
import Tesseract from 'tesseract.js';
import { z } from 'zod';
import type { Rect } from '../../platform/types.js';
import { DeskdError } from '../../errors.js';
import type { OcrLogger } from './pool.js';

/** How to decide whether to invert a crop before OCR. */
export type InvertMode = 'auto' | 'always' | 'never';

/** The English model variants shipped by `@tesseract.js-data/eng`. */
export type OcrModelVariant = '4.0.0' | '4.0.0_best_int';

/** Tesseract page segmentation modes (tesseract.js `PSM`): `'3'` automatic, `'11'` sparse text, … */
export type OcrPageSegMode = Tesseract.PSM;

/** A positive number, `Infinity` included (zod's `number()` refuses it). */
const positive = z.custom<number>((v) => typeof v === 'number' && v > 0, { error: 'must be a positive number' });

/** The rules of the options a `recognize` call may set; documented on {@link OcrEngineOptionsSchema}. */
const PER_CALL = {
  invert: z.enum(['auto', 'always', 'never']),
  upscale: z.union([z.literal('auto'), z.number().min(1).max(4)], { error: 'must be "auto" or a number in 1..4' }),
  bands: z.union([z.literal('auto'), z.number().int().min(1).max(16)], { error: 'must be "auto" or an integer in 1..16' }),
  splitLineGap: positive,
  lightTextRegions: z.boolean(),
  lightTextSkipExplained: z.boolean(),
  lightTextInBands: z.boolean(),
  repairTruncated: z.boolean(),
  rereadUnsureLines: z.boolean(),
  rereadMonospaceDigits: z.boolean(),
  coarseBands: z.boolean(),
  repairVerticalText: z.boolean(),
  repairMissedText: z.boolean(),
  readLargeGlyphs: z.boolean(),
  readMonospaceBlocks: z.boolean(),
  splitMonospaceBlocks: z.boolean(),
  rejectJunk: z.boolean(),
  voteGlyphs: z.boolean(),
};

/**
 * Defaults were measured on this repository's synthetic screens (1920x1080 pages of DejaVu Sans text, light
 * and dark themes, white-on-colour buttons, a dark sidebar beside a light pane; word recall against the drawn
 * words), 2-core machine; see src/perception/ocr/engine.ts and docs/perception.md.
 */
export const OcrEngineOptionsSchema = z.object({
  /** Worker threads (default `min(2, os.availableParallelism())`). */
  workers: z.number().int().min(1).max(16).default(() => Math.min(2, availableParallelism())),
  /**
   * Model (default `'4.0.0_best_int'`, tessdata_best quantised; `'4.0.0'` is the tessdata model). Same recall
   * and speed on the perception pages (min/mean recall 0.980/0.994 both), but a worker holds ≈ 50 MB instead
   * of ≈ 100 MB: two idle workers took the daemon from 216 to 391 MB RSS with `'4.0.0'`.
   */
  variant: z.enum(['4.0.0', '4.0.0_best_int']).default('4.0.0_best_int'),
  /** Page segmentation mode (default `PSM.AUTO`, `'3'`; `'11'` sparse text lost white-on-colour buttons). */
  psm: z.enum(Tesseract.PSM).default(Tesseract.PSM.AUTO),
  /**
   * Replace a worker after this many jobs (default 2000). A worker's wasm memory grows to the largest image it
   * has read and never shrinks, but a replacement costs more than it gives back: the new thread starts with
   * ≈ 45 MB and the old one's native memory is not all returned to the system (daemon RSS after
   * 200 observes of bench/incremental: replacing after 20 jobs 269 MB, never 235 MB; after the first full
   * frame it stays flat). The process-wide bound is `RecyclingRecognizer`'s RSS limit.
   */
  recycleAfterJobs: z.number().int().min(1).default(2000),
  /** Fail a job (`TIMEOUT`) and replace its worker after this long, ms (default 60 000). */
  jobTimeoutMs: positive.default(60_000),
  /** Drop words whose confidence (0..1) is below this (default 0.3). */
  minConfidence: z.number().min(0).max(1).default(0.3),
  /** Invert crops before OCR: `auto` (default) when their mean luminance is below `darkThreshold`. */
  invert: PER_CALL.invert.default('auto'),
  /** Mean luminance (0..1) under which `invert: 'auto'` inverts (default 0.5). */
  darkThreshold: z.number().min(0).max(1).default(0.5),
  /**
   * Upscale factor, or `auto` (default): from the glyph height measured per band and per light-text region
   * (`estimateGlyphHeight`, `autoUpscale`: ×3 under 7 px, ×2 under 8 px, ×1.5 under 12 px, else ×1); with no glyph, ×2 when the
   * image has fewer than 2 pixels per point.
   */
  upscale: PER_CALL.upscale.default('auto'),
  /** Horizontal bands read in parallel, or `auto` (default): one per worker when the prepared crop exceeds 1.5 megapixels. */
  bands: PER_CALL.bands.default('auto'),
  /**
   * Split a tesseract line where the gap between two words exceeds this many line heights (default 2;
   * `Infinity` keeps tesseract's lines whole): a sidebar label and the pane text beside it, or a toolbar's
   * separate buttons, are not one line of text.
   */
  splitLineGap: PER_CALL.splitLineGap.default(2),
  /**
   * Find regions whose text is lighter than its background (white on coloured buttons, dark cards and
   * panels) and read them again inverted, keeping the more confident reading of each word (default true;
   * only with `invert: 'auto'`).
   */
  lightTextRegions: z.boolean().default(true),
  /** Minimum confidence (0..1) of words read in the light-text pass (default 0.7): region edges cut glyphs. */
  lightTextMinConfidence: z.number().min(0).max(1).default(0.7),
  /**
   * Skip a light-text region when every glyph in it lies in a word the base pass read with confidence
   * ≥ 0.9 (default true; see `regionExplained`).
   */
  lightTextSkipExplained: z.boolean().default(true),
  /**
   * Read light-text panels within the bands instead of again on their own (default true; only with
   * `lightTextRegions`): a light-text region of at least 40 glyphs (several lines: a dark log pane, a dark nav
   * bar) whose glyphs call for the upscale of the bands it lies in is found before the bands are read and
   * flattened in the bands' image (`flattenRegions`: its surface white, the text it encloses dark, its
   * surroundings as they were), so one read covers both polarities; it is then not read again isolated. A
   * CI page's dark log pane was read three times (band, isolated region, fixed-pitch block): the band read of
   * light-on-dark text found only pieces of the block (docs/perception-incremental.md, cold OCR). Smaller
   * regions (badges, buttons) are still read on their own, at their own upscale.
   */
  lightTextInBands: z.boolean().default(true),
  /**
   * Read again, in a tight crop, each word with an unread glyph touching its edge (`truncatedWords`), and keep
   * the longer reading when it contains the first (default true): a light-grey "l" lost to the whole frame's
   * threshold ("ast" for "last").
   */
  repairTruncated: z.boolean().default(true),
  /**
   * Read again, as one line (`SINGLE_LINE`) at ×2, each line read at ×1.5 (`autoUpscale`) that holds a word of confidence
   * under 0.7, least confident first, until the lines read cover 3% of the crop's area, and keep that reading
   * when it is more confident (`replaceIfMoreConfident`; default true): with the ×1.5 upscale of 8–11 px glyphs
   * (`autoUpscale`), blue text on a tinted sidebar item read "public profite" at 0.61/0.89, "Public profile"
   * at 0.77/0.96 at ×2. The area budget keeps a page of unsure junk (icons, chart ticks) from costing more than
   * a few short reads.
   */
  rereadUnsureLines: z.boolean().default(true),
  /**
   * Read again at ×2, as one line (`SINGLE_LINE`), the lines set in a fixed-pitch font (`fixedPitch`, or in a
   * `monospaceBlocks` area) holding a word with a run of two digits, when the crop's glyphs called for less than ×2,
   * at most 8 lines (least confident word first), and swap each such word for that reading where it is more
   * confident, or one word of as many characters at confidence ≥ 0.85 (`rereadMonospaceDigits`,
   * src/perception/ocr/monoDigits.ts; default true): DejaVu Sans Mono's dotted zero at 15 px read at ×1 is taken
   * for a `6` (`job 900 queued` → `960` at 0.72–0.81, `902` → `962` at 0.94 in a 3-line crop of a terminal, right at
   * ×2 at 0.89–0.96; the whole terminal read as one block got `900`), so an
   * incremental re-read of a changed line and a fresh read of the frame disagreed (docs/perception-incremental.md,
   * issue 15).
   */
  rereadMonospaceDigits: z.boolean().default(true),
  /**
   * With `upscale: 'auto'`, read the bands of glyphs that call for ×1.5 (8–11 px) at ×1 first (`coarseUpscale`), as
   * naive full-frame tesseract does, and leave the words that read needs to `rereadUnsureLines` (unsure lines
   * read again at ×2), the missed-text, light-text and monospace re-reads (at the glyphs' own upscale).
   * Tesseract's time follows the lines of text and the pixels it is sent: ×1.5 sends 2.25x the pixels of ×1
   * for every line, sure or not (docs/perception-incremental.md, cold profile). Default **false**: it saves
   * 12–25% of the cold CPU on such pages, but words it reads confidently wrong are never re-read, and with
   * the accessibility tree on cold recall fell below naive full-frame tesseract's on two bench pages
   * (`npm run bench -- --quick`, 2026-12-07 11:48, quiet: metrics 0.904 vs 0.916, settings 0.954 vs 0.963;
   * 0.976 and 0.963 without it). Correct answers come before speed.
   */
  coarseBands: z.boolean().default(false),
  /**
   * Read again, with page segmentation `SINGLE_BLOCK` (`'6'`), the column strip (`columnStrip`) of every block
   * tesseract's automatic layout took for vertical text (`blocktype` 7, `PT_VERTICAL_TEXT`), and keep that
   * reading when it is more confident (`replaceIfMoreConfident`; default true): a table column of single
   * digits ("1", "5", "9" one per row) is laid out as one vertical line and read as "NN Woe UE" at confidence
   * 0.3–0.5 (bench/incremental dashboard: quantity column, recall 0.863 → 0.990). `SPARSE_TEXT` on such a
   * strip read nothing.
   */
  repairVerticalText: z.boolean().default(true),
  /**
   * Read again, with page segmentation `SINGLE_BLOCK`, each block of glyphs that lie outside every word the
   * base pass read (`missedTextAreas`), and add the words read there with confidence ≥
   * `lightTextMinConfidence` (default true): the automatic layout sometimes drops a whole table column
   * (bench/incremental dashboard scrolled: the 15 city names of one band, while the same rows read in a
   * band cut 22 px higher were all found).
   */
  repairMissedText: z.boolean().default(true),
  /**
   * Read again each short run of large glyphs that lies in no word (`largeGlyphRuns`: glyphs ≥ 16 pt and
   * ≥ 1.8x the page's median glyph height, at most 6 in a run) on a tight crop, as one line (`SINGLE_LINE`) or,
   * for a lone glyph, one character (`SINGLE_CHAR`), and add the words read there with confidence ≥
   * `lightTextMinConfidence` (default true): the automatic layout skips a dashboard's lone "3" in a gauge
   * and the big numbers of KPI cards while it reads their labels (bench/perception kpi page).
   */
  readLargeGlyphs: z.boolean().default(true),
  /**
   * Read again, with page segmentation `SINGLE_BLOCK` (`'6'`), each block of lines set in a fixed-pitch font
   * (`monospaceBlocks`, src/perception/ocr/monospace.ts: a terminal, a log pane), and keep that reading when it
   * is more confident (`replaceIfMoreConfident`; default true): the automatic layout takes a terminal's aligned
   * columns for tab stops and cuts or drops parts of its lines (`21:` of `21:58 syslog`, `-rw-r-----`).
   */
  readMonospaceBlocks: z.boolean().default(true),
  /**
   * Read a fixed-pitch block of at least 16 lines in parts, one per worker, cut between lines (`splitBlockArea`;
   * default **false**). Meant to keep both workers busy on a long log pane (ci: one 1.2 s block job while the other
   * worker idled), but no wall gain could be shown side by side at load 8–15, and on an unseen terminal page
   * (bench/perception terminal at 1x) the parts read one word fewer than the whole block (0.940 vs 0.946:
   * different words lost and gained). Kept for a measurement on an idle machine (docs/perception-incremental.md).
   */
  splitMonospaceBlocks: z.boolean().default(false),
  /**
   * Drop words whose own pixels say they are not text (`findJunkWords`, src/perception/ocr/junk.ts: ink that
   * belongs to a rule, border or ring, thin bars, solid blobs, one glyph read as several letters, unconfident
   * lone symbols; default true): `|`, `ll`, `Vv`, `¥` read from borders, dashed rules and icon buttons.
   */
  rejectJunk: z.boolean().default(true),
  /**
   * Cluster the characters tesseract read by the ink bitmap of their glyphs and, where one reading clearly
   * wins a cluster, give it to the rest (`voteGlyphs`, src/perception/ocr/glyphVote.ts; default true): in a
   * terminal the same `l` read `1` in `ls` is read `l` in ten other words.
   */
  voteGlyphs: z.boolean().default(true),
  /** Extra tesseract parameters (`setParameters`), e.g. `{ user_defined_dpi: '96' }`. */
  tesseractParams: z.record(z.string(), z.string()).default(() => ({})),
});

/** Options of `OcrEngine.create` (every field optional; see {@link OcrEngineOptionsSchema}). */
export type OcrEngineOptions = z.input<typeof OcrEngineOptionsSchema> & { logger?: OcrLogger };

/** Options as resolved by `OcrEngine.create`: every default filled in. */
export type ResolvedOcrOptions = z.output<typeof OcrEngineOptionsSchema>;

/** Per-call options of `OcrEngine.recognize`; unset fields use the engine's options. */
export const RecognizeOptionsSchema = z.object({
  /** Read only this region, logical global points (clipped to the image). */
  region: z.custom<Rect>().optional(),
  invert: PER_CALL.invert.optional(),
  upscale: PER_CALL.upscale.optional(),
  bands: PER_CALL.bands.optional(),
  splitLineGap: PER_CALL.splitLineGap.optional(),
  lightTextRegions: PER_CALL.lightTextRegions.optional(),
  lightTextSkipExplained: PER_CALL.lightTextSkipExplained.optional(),
  lightTextInBands: PER_CALL.lightTextInBands.optional(),
  repairTruncated: PER_CALL.repairTruncated.optional(),
  rereadUnsureLines: PER_CALL.rereadUnsureLines.optional(),
  rereadMonospaceDigits: PER_CALL.rereadMonospaceDigits.optional(),
  coarseBands: PER_CALL.coarseBands.optional(),
  repairVerticalText: PER_CALL.repairVerticalText.optional(),
  repairMissedText: PER_CALL.repairMissedText.optional(),
  readLargeGlyphs: PER_CALL.readLargeGlyphs.optional(),
  readMonospaceBlocks: PER_CALL.readMonospaceBlocks.optional(),
  splitMonospaceBlocks: PER_CALL.splitMonospaceBlocks.optional(),
  rejectJunk: PER_CALL.rejectJunk.optional(),
  voteGlyphs: PER_CALL.voteGlyphs.optional(),
});

/** See {@link RecognizeOptionsSchema}. */
export type RecognizeOptions = z.input<typeof RecognizeOptionsSchema>;

/** The options one `recognize` call runs with: the engine's, overridden by the call's, and the call's region. */
export type CallOptions = ResolvedOcrOptions & { region?: Rect | undefined };

/**
 * Parse engine options (unknown fields are dropped, as `logger` is: it is passed on apart).
 * @throws DeskdError `VALIDATION_FAILED` naming the first bad options.
 */
export function resolveEngineOptions(opts: OcrEngineOptions): ResolvedOcrOptions {
  return parseOrThrow(OcrEngineOptionsSchema, opts);
}

/**
 * The options of one call: each per-call option that is set replaces the engine's.
 * @throws DeskdError `VALIDATION_FAILED` naming the first bad options.
 */
export function callOptions(engine: ResolvedOcrOptions, opts: RecognizeOptions): CallOptions {
  const call = parseOrThrow(RecognizeOptionsSchema, opts);
  const out: CallOptions = { ...engine };
  for (const [k, v] of Object.entries(call)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const what = r.error.issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || '(options)'}: ${i.message}`).join('; ');
  throw new DeskdError('VALIDATION_FAILED', `OCR option ${what}`);
}
