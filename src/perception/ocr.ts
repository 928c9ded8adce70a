/**
 * OCR with tesseract.js 7 (LSTM engine, WebAssembly, in worker threads), fully offline: the English model
 * is read from the `@tesseract.js-data/eng` package on disk, the worker script and wasm core from
 * `tesseract.js` / `tesseract.js-core` in node_modules. Nothing is fetched.
 *
 * Pipeline per call: crop the region → 8-bit luminance → invert when mostly dark → upscale by the measured
 * glyph height (×3 / ×2 / ×1, `autoUpscale`) → split tall images into horizontal bands read in parallel →
 * tesseract page layout + LSTM → word boxes mapped back to logical global points → low-confidence words
 * dropped → light-text regions the base pass did not read are read isolated → blocks the layout took for
 * vertical text (a column of single digits) are read again as one block → blocks of fixed-pitch lines (a
 * terminal) are read again as one block → words cut short at an edge are read again in a tight crop.
 * Measurements of the later steps: docs/perception.md.
 *
 * Defaults were measured on this repository's synthetic screens (1920x1080 pages of DejaVu Sans text,
 * light and dark themes, white-on-colour buttons, a dark sidebar beside a light pane; word recall against
 * the drawn words), 2-core machine:
 * - Inversion of dark crops: same recall as tesseract's own per-word inversion retry with its default
 *   Otsu threshold, but about half the time (dark 14px page 3.5 s → 1.9 s); with Leptonica's adaptive Otsu
 *   (`thresholding_method` 1) a dark 12px page drops from 100% to 92% without it, with Sauvola (2) to 6%.
 * - Upscale ×2 of 1x captures: white 14px text on coloured buttons 20% → 96–99%, dark sidebar + light pane
 *   86% → 100%, 11px text 99% → 100%, for about twice the CPU time; ×1.5 gave 86% on the buttons.
 * - Two bands on two workers: 1.4–1.6x faster wall time on the same 1920x1080 pages at the same recall.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Tesseract from 'tesseract.js';
import type { RawImage, Rect } from '../platform/types.js';
import { DeskdError } from '../errors.js';
import type { OcrWord, OcrLine as BaseOcrLine } from './elements.js';
import { clip, intersectionArea, union } from './geometry.js';
import { mergeOverlapping } from './changes.js';
import { OcrWorkerPool, type OcrLogger } from './ocrPool.js';
import { dropWords, findJunkWords, type JunkReason } from './ocrJunk.js';
import { largeGlyphRuns, wordsOnRun } from './ocrLargeGlyphs.js';
import { voteGlyphs, type OcrSymbol } from './ocrGlyphVote.js';
import { joinAdjacentCells, monospaceBlocks } from './ocrMonospace.js';
import { encodeGray, estimateGlyphHeight, findLightTextRegions, glyphBoxes, grayCrop, meanLuminance, regionToPixels, rowProfile, splitBands, type Band, type InvertMode, type LightTextRegion, type PixelRect } from './ocrPrep.js';

export type { OcrWord } from './elements.js';
export type { OcrLogger } from './ocrPool.js';
export type { InvertMode } from './ocrPrep.js';

/** A line of text as tesseract laid it out, with its (kept) words in reading order. Bounds in logical global points. */
export interface OcrLine extends BaseOcrLine {
  words: OcrWord[];
}

/** What one recognition read. All geometry in logical global points. */
export interface OcrResult {
  /** Every kept word, in reading order (lines top to bottom as tesseract ordered them). */
  words: OcrWord[];
  /** Lines with at least one kept word. */
  lines: OcrLine[];
  /** Wall-clock time of the call, milliseconds (preparation + recognition). */
  ms: number;
  /** Light-text regions read a second time, isolated (see `findLightTextRegions`). */
  lightTextRegions?: number;
  /** Light-text regions found (read or skipped because the base pass already read them, see `regionExplained`). */
  lightTextRegionsFound?: number;
  /** Words replaced by a longer reading of a tight crop around them (see `truncatedWords`). */
  repairedWords?: number;
  /** Upscale applied to the whole crop's bands (`upscale: 'auto'`: from its glyph height, see `autoUpscale`). */
  upscale?: number;
  /** Column strips of vertical-text blocks read again as one block, and how many of those readings were kept (see `repairVerticalText`). */
  verticalBlocks?: { found: number; replaced: number };
  /** Areas of glyphs outside every word read again as one block, and the words that reading added (see `repairMissedText`). */
  missedText?: { found: number; added: number };
  /** Runs of large glyphs outside every word read again on a tight crop, and the words added (see `readLargeGlyphs`). */
  largeGlyphs?: { found: number; added: number };
  /** Blocks of fixed-pitch lines read again as one block, and how many of those readings were kept (see `readMonospaceBlocks`). */
  monospaceBlocks?: { found: number; replaced: number };
  /** Words whose characters the glyph vote corrected (see `voteGlyphs`). */
  votedWords?: number;
  /** Words dropped as junk read from borders, icons and rules, by reason (see `rejectJunk`). */
  junk?: Partial<Record<JunkReason, number>>;
  /** Where the call's time went (see {@link OcrProfile}); always set by {@link OcrEngine.recognize}. */
  profile?: OcrProfile;
}

/** The passes that send an image to tesseract. */
export type OcrPass = 'band' | 'lightText' | 'vertical' | 'missed' | 'largeGlyph' | 'monospace' | 'truncated';

/**
 * Where one `recognize` call's time went, milliseconds of wall-clock time. Tesseract jobs run on the worker
 * threads (two at once by default), so the jobs' times add up to more than the call's wall time; `prepMs` is
 * the main thread's (and libvips') work to cut, isolate and upscale each job's image.
 */
export interface OcrProfile {
  /** Per pass: jobs sent to tesseract, the sum of their times on a worker, pixels read (after upscale), and image preparation. */
  passes: Partial<Record<OcrPass, { jobs: number; tesseractMs: number; megapixels: number; prepMs: number }>>;
  /** Gray conversion of the crop (libvips). */
  grayMs: number;
  /** Light-text regions and glyph boxes (main thread, while the workers read the bands). */
  findMs: number;
  /** Glyph vote and junk rejection (main thread, after all reads). */
  postMs: number;
}

/** The English model variants shipped by `@tesseract.js-data/eng`. */
export type OcrModelVariant = '4.0.0' | '4.0.0_best_int';

/** Tesseract page segmentation modes (tesseract.js `PSM`): `'3'` automatic, `'11'` sparse text, … */
export type OcrPageSegMode = Tesseract.PSM;

/** Options of {@link OcrEngine.create}. */
export interface OcrEngineOptions {
  /** Worker threads (default `min(2, os.availableParallelism())`). */
  workers?: number;
  /**
   * Model (default `'4.0.0_best_int'`, tessdata_best quantised; `'4.0.0'` is the tessdata model). Same recall
   * and speed on the perception pages (min/mean recall 0.980/0.994 both), but a worker holds ≈ 50 MB instead
   * of ≈ 100 MB: two idle workers took the daemon from 216 to 391 MB RSS with `'4.0.0'`.
   */
  variant?: OcrModelVariant;
  /** Page segmentation mode (default `PSM.AUTO`, `'3'`; `'11'` sparse text lost white-on-colour buttons). */
  psm?: OcrPageSegMode;
  /**
   * Replace a worker after this many jobs (default 2000). A worker's wasm memory grows to the largest image it
   * has read and never shrinks, but a replacement costs more than it gives back: the new thread starts with
   * ≈ 45 MB and the old one's native memory is not all returned to the system (daemon RSS after
   * 200 observes of bench/incremental: replacing after 20 jobs 269 MB, never 235 MB; after the first full
   * frame it stays flat). The process-wide bound is `RecyclingRecognizer`'s RSS limit.
   */
  recycleAfterJobs?: number;
  /** Fail a job (`TIMEOUT`) and replace its worker after this long, ms (default 60 000). */
  jobTimeoutMs?: number;
  /** Drop words whose confidence (0..1) is below this (default 0.3). */
  minConfidence?: number;
  /** Invert crops before OCR: `auto` (default) when their mean luminance is below `darkThreshold`. */
  invert?: InvertMode;
  /** Mean luminance (0..1) under which `invert: 'auto'` inverts (default 0.5). */
  darkThreshold?: number;
  /**
   * Upscale factor, or `auto` (default): from the glyph height measured per band and per light-text region
   * (`estimateGlyphHeight`, `autoUpscale`: ×3 under 7 px, ×2 under 12 px, else ×1); with no glyph, ×2 when the
   * image has fewer than 2 pixels per point.
   */
  upscale?: 'auto' | number;
  /** Horizontal bands read in parallel, or `auto` (default): one per worker when the prepared crop exceeds 1.5 megapixels. */
  bands?: 'auto' | number;
  /**
   * Split a tesseract line where the gap between two words exceeds this many line heights (default 2;
   * `Infinity` keeps tesseract's lines whole): a sidebar label and the pane text beside it, or a toolbar's
   * separate buttons, are not one line of text.
   */
  splitLineGap?: number;
  /**
   * Find regions whose text is lighter than its background (white on coloured buttons, dark cards and
   * panels) and read them again inverted, keeping the more confident reading of each word (default true;
   * only with `invert: 'auto'`).
   */
  lightTextRegions?: boolean;
  /** Minimum confidence (0..1) of words read in the light-text pass (default 0.7): region edges cut glyphs. */
  lightTextMinConfidence?: number;
  /**
   * Skip a light-text region when every glyph in it lies in a word the base pass read with confidence
   * ≥ 0.9 (default true; see `regionExplained`).
   */
  lightTextSkipExplained?: boolean;
  /**
   * Read again, in a tight crop, each word with an unread glyph touching its edge (`truncatedWords`), and keep
   * the longer reading when it contains the first (default true): a light-grey "l" lost to the whole frame's
   * threshold ("ast" for "last").
   */
  repairTruncated?: boolean;
  /**
   * Read again, with page segmentation `SINGLE_BLOCK` (`'6'`), the column strip (`columnStrip`) of every block
   * tesseract's automatic layout took for vertical text (`blocktype` 7, `PT_VERTICAL_TEXT`), and keep that
   * reading when it is more confident (`replaceIfMoreConfident`; default true): a table column of single
   * digits ("1", "5", "9" one per row) is laid out as one vertical line and read as "NN Woe UE" at confidence
   * 0.3–0.5 (bench/incremental dashboard: quantity column, recall 0.863 → 0.990). `SPARSE_TEXT` on such a
   * strip read nothing.
   */
  repairVerticalText?: boolean;
  /**
   * Read again, with page segmentation `SINGLE_BLOCK`, each block of glyphs that lie outside every word the
   * base pass read (`missedTextAreas`), and add the words read there with confidence ≥
   * `lightTextMinConfidence` (default true): the automatic layout sometimes drops a whole table column
   * (bench/incremental dashboard scrolled: the 15 city names of one band, while the same rows read in a
   * band cut 22 px higher were all found).
   */
  repairMissedText?: boolean;
  /**
   * Read again each short run of large glyphs that lies in no word (`largeGlyphRuns`: glyphs ≥ 16 pt and
   * ≥ 1.8x the page's median glyph height, at most 6 in a run) on a tight crop, as one line (`SINGLE_LINE`) or,
   * for a lone glyph, one character (`SINGLE_CHAR`), and add the words read there with confidence ≥
   * `lightTextMinConfidence` (default true): the automatic layout skips a dashboard's lone "3" in a gauge
   * and the big numbers of KPI cards while it reads their labels (bench/perception kpi page).
   */
  readLargeGlyphs?: boolean;
  /**
   * Read again, with page segmentation `SINGLE_BLOCK` (`'6'`), each block of lines set in a fixed-pitch font
   * (`monospaceBlocks`, src/perception/ocrMonospace.ts: a terminal, a log pane), and keep that reading when it
   * is more confident (`replaceIfMoreConfident`; default true): the automatic layout takes a terminal's aligned
   * columns for tab stops and cuts or drops parts of its lines (`21:` of `21:58 syslog`, `-rw-r-----`).
   */
  readMonospaceBlocks?: boolean;
  /**
   * Drop words whose own pixels say they are not text (`findJunkWords`, src/perception/ocrJunk.ts: ink that
   * belongs to a rule, border or ring, thin bars, solid blobs, one glyph read as several letters, unconfident
   * lone symbols; default true): `|`, `ll`, `Vv`, `¥` read from borders, dashed rules and icon buttons.
   */
  rejectJunk?: boolean;
  /**
   * Cluster the characters tesseract read by the ink bitmap of their glyphs and, where one reading clearly
   * wins a cluster, give it to the rest (`voteGlyphs`, src/perception/ocrGlyphVote.ts; default true): in a
   * terminal the same `l` read `1` in `ls` is read `l` in ten other words.
   */
  voteGlyphs?: boolean;
  /** Extra tesseract parameters (`setParameters`), e.g. `{ user_defined_dpi: '96' }`. */
  tesseractParams?: Record<string, string>;
  logger?: OcrLogger;
}

/** Per-call options of {@link OcrEngine.recognize}; unset fields use the engine's options. */
export interface RecognizeOptions {
  /** Read only this region, logical global points (clipped to the image). */
  region?: Rect;
  invert?: InvertMode;
  upscale?: 'auto' | number;
  bands?: 'auto' | number;
  splitLineGap?: number;
  lightTextRegions?: boolean;
  lightTextSkipExplained?: boolean;
  repairTruncated?: boolean;
  repairVerticalText?: boolean;
  repairMissedText?: boolean;
  readLargeGlyphs?: boolean;
  readMonospaceBlocks?: boolean;
  rejectJunk?: boolean;
  voteGlyphs?: boolean;
}

/** Options as resolved by {@link OcrEngine.create}. */
export interface ResolvedOcrOptions {
  workers: number;
  variant: OcrModelVariant;
  psm: OcrPageSegMode;
  recycleAfterJobs: number;
  jobTimeoutMs: number;
  minConfidence: number;
  invert: InvertMode;
  darkThreshold: number;
  upscale: 'auto' | number;
  bands: 'auto' | number;
  splitLineGap: number;
  lightTextRegions: boolean;
  lightTextMinConfidence: number;
  lightTextSkipExplained: boolean;
  repairTruncated: boolean;
  repairVerticalText: boolean;
  repairMissedText: boolean;
  readLargeGlyphs: boolean;
  readMonospaceBlocks: boolean;
  rejectJunk: boolean;
  voteGlyphs: boolean;
  tesseractParams: Record<string, string>;
}

/** Band overlap in logical points: lines up to twice this tall are read whole by one band. */
const BAND_OVERLAP_POINTS = 64;
/** Identical rows (at scale 1) that make a gap a band boundary may sit in without overlap. */
const BAND_GAP_MIN_PIXELS = 4;
/** Prepared-image size above which `bands: 'auto'` splits the work across workers. */
const BAND_MIN_PIXELS = 1_500_000;
/** Glyphs a band needs for an upscale of its own (else the whole crop's). */
const MIN_GLYPHS_BAND = 40;
/** Glyphs a light-text region needs for an upscale of its own (a badge holds 3–8). */
const MIN_GLYPHS_REGION = 3;
/** Cell side of the light-text detection, logical points. */
const LIGHT_TEXT_CELL_POINTS = 12;
/** Cells of the large-glyph detection are this many light-text cells wide (48 points: wider than a thick stroke). */
const LARGE_GLYPH_CELL_FACTOR = 4;
/** Words of lower confidence do not count as reading the large glyphs under them. */
const LARGE_GLYPH_SURE_CONFIDENCE = 0.6;
/** Tallest glyph the large-glyph detection keeps, logical points. */
const LARGE_GLYPH_MAX_POINTS = 160;

/**
 * The directory holding `eng.traineddata.gz` for a model variant, resolved through Node's module
 * resolution (never a hard-coded path).
 * @throws DeskdError `OCR_FAILED` when `@tesseract.js-data/eng` or the variant is missing.
 */
export function resolveLangPath(variant: OcrModelVariant): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('@tesseract.js-data/eng/package.json');
  } catch {
    throw new DeskdError('OCR_FAILED', 'the package @tesseract.js-data/eng is not installed');
  }
  const dir = join(dirname(pkg), variant);
  if (!existsSync(join(dir, 'eng.traineddata.gz'))) {
    throw new DeskdError('OCR_FAILED', `@tesseract.js-data/eng has no ${variant}/eng.traineddata.gz`);
  }
  return dir;
}

/**
 * The exact options deskd passes to tesseract.js `createWorker`: the model from `resolveLangPath`, gzip,
 * no cache (nothing written next to the daemon). `workerPath` and `corePath` are left to tesseract.js,
 * which in Node resolves them inside node_modules (`src/worker/node/defaultOptions.js`,
 * `src/worker-script/node/getCore.js`), so no option here can lead to a download.
 */
export function tesseractWorkerOptions(variant: OcrModelVariant): { langPath: string; gzip: true; cacheMethod: 'none' } {
  return { langPath: resolveLangPath(variant), gzip: true, cacheMethod: 'none' };
}

/**
 * Text recognition over `RawImage`s with a pool of tesseract.js workers. Create once, share, `close()` at
 * shutdown. Concurrent `recognize` calls (and the bands of one call) run in parallel, one per worker.
 * Satisfies the observer's `TextRecognizer`.
 */
export class OcrEngine {
  private constructor(
    private readonly pool: OcrWorkerPool,
    /** The options in force. */
    readonly options: ResolvedOcrOptions,
    /** Wall-clock time the workers took to start, ms. */
    readonly initMs: number,
  ) {}

  /**
   * Start the workers (they load the model from disk; ≈0.3–0.5 s each, started concurrently).
   * @throws DeskdError `OCR_FAILED` when the model package is missing or a worker cannot start;
   *   `VALIDATION_FAILED` for out-of-range options.
   */
  static async create(opts: OcrEngineOptions = {}): Promise<OcrEngine> {
    const o: ResolvedOcrOptions = {
      workers: opts.workers ?? Math.min(2, availableParallelism()),
      variant: opts.variant ?? '4.0.0_best_int',
      psm: opts.psm ?? Tesseract.PSM.AUTO,
      recycleAfterJobs: opts.recycleAfterJobs ?? 2000,
      jobTimeoutMs: opts.jobTimeoutMs ?? 60_000,
      minConfidence: opts.minConfidence ?? 0.3,
      invert: opts.invert ?? 'auto',
      darkThreshold: opts.darkThreshold ?? 0.5,
      upscale: opts.upscale ?? 'auto',
      bands: opts.bands ?? 'auto',
      splitLineGap: opts.splitLineGap ?? 2,
      lightTextRegions: opts.lightTextRegions ?? true,
      lightTextMinConfidence: opts.lightTextMinConfidence ?? 0.7,
      lightTextSkipExplained: opts.lightTextSkipExplained ?? true,
      repairTruncated: opts.repairTruncated ?? true,
      repairVerticalText: opts.repairVerticalText ?? true,
      repairMissedText: opts.repairMissedText ?? true,
      readLargeGlyphs: opts.readLargeGlyphs ?? true,
      readMonospaceBlocks: opts.readMonospaceBlocks ?? true,
      rejectJunk: opts.rejectJunk ?? true,
      voteGlyphs: opts.voteGlyphs ?? true,
      tesseractParams: opts.tesseractParams ?? {},
    };
    const bad = (what: string) => new DeskdError('VALIDATION_FAILED', `OCR option ${what}`);
    if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 16) throw bad('workers must be an integer in 1..16');
    if (!Number.isInteger(o.recycleAfterJobs) || o.recycleAfterJobs < 1) throw bad('recycleAfterJobs must be a positive integer');
    if (!(o.jobTimeoutMs > 0)) throw bad('jobTimeoutMs must be positive');
    if (!(o.minConfidence >= 0 && o.minConfidence <= 1)) throw bad('minConfidence must be in 0..1');
    if (!(o.darkThreshold >= 0 && o.darkThreshold <= 1)) throw bad('darkThreshold must be in 0..1');
    if (!(o.splitLineGap > 0)) throw bad('splitLineGap must be positive');
    checkUpscale(o.upscale);
    checkBands(o.bands);
    const workerOptions = tesseractWorkerOptions(o.variant);
    const params: Record<string, string> = {
      tessedit_pageseg_mode: o.psm,
      // Screens carry no DPI; without one tesseract warns on every image and guesses from the text height.
      user_defined_dpi: '96',
      // tesseract's own diagnostics ("Detected N diacritics", …) would go to the daemon's stdout.
      debug_file: '/dev/null',
      // Table detection in the automatic layout: no word it reads depends on it, and on an 80-row table it
      // took a third of the time (1920x1080 dashboard, one band: 3.2 → 2.0 s; perception pages: min recall
      // 0.980 → 0.982, "Overview" and "Export" of tracker@1x found).
      textord_tabfind_find_tables: '0',
      ...o.tesseractParams,
    };
    const spawn = async (): Promise<Tesseract.Worker> => {
      const worker = await Tesseract.createWorker('eng', Tesseract.OEM.LSTM_ONLY, {
        ...workerOptions,
        // Without a handler tesseract.js rethrows a failed job's error inside its message listener, where
        // nothing can catch it (an uncaught exception); the job's promise is rejected either way.
        errorHandler: () => {},
      }).catch((e: unknown) => {
        throw new DeskdError('OCR_FAILED', `could not start a tesseract worker: ${String(e)}`);
      });
      await worker.setParameters(params as unknown as Partial<Tesseract.WorkerParams>);
      return worker;
    };
    const t0 = performance.now();
    const pool = await OcrWorkerPool.start({
      size: o.workers,
      spawn,
      recycleAfterJobs: o.recycleAfterJobs,
      jobTimeoutMs: o.jobTimeoutMs,
      logger: opts.logger,
    });
    return new OcrEngine(pool, o, performance.now() - t0);
  }

  /** Workers started so far, replacements included. */
  get workersSpawned(): number {
    return this.pool.spawned;
  }

  /**
   * Read the text of an image (or of `opts.region` of it).
   * Word and line bounds are logical global points: `origin + imagePixel / scale`, undoing any upscale.
   * A region that misses the image yields no words.
   * @throws DeskdError `OCR_FAILED` (tesseract failed, engine closed), `TIMEOUT` (job over `jobTimeoutMs`),
   *   `VALIDATION_FAILED` (image buffer smaller than width × height × 4, bad per-call option).
   */
  async recognize(img: RawImage, opts: RecognizeOptions = {}): Promise<OcrResult> {
    const t0 = performance.now();
    if (img.data.length < img.width * img.height * img.channels || img.width <= 0 || img.height <= 0 || !(img.scale > 0)) {
      throw new DeskdError('VALIDATION_FAILED', `OCR image of ${img.width}x${img.height} has ${img.data.length} bytes or a bad scale`);
    }
    const upscale = opts.upscale ?? this.options.upscale;
    const bandsOpt = opts.bands ?? this.options.bands;
    checkUpscale(upscale);
    checkBands(bandsOpt);
    const crop = regionToPixels(img, opts.region);
    if (!crop) return { words: [], lines: [], ms: performance.now() - t0, profile: { passes: {}, grayMs: 0, findMs: 0, postMs: 0 } };
    const invert = opts.invert ?? this.options.invert;
    const profile: OcrProfile = { passes: {}, grayMs: 0, findMs: 0, postMs: 0 };
    const tg = performance.now();
    const gray = await grayCrop(img, crop);
    profile.grayMs = performance.now() - tg;
    const whole: PixelRect = { left: 0, top: 0, width: crop.width, height: crop.height };
    // The upscale of a part of the crop: from its glyph height when 'auto' (the image's scale is no guide:
    // Chromium at device scale 2 on X11 reports scale 1 and draws text twice as tall). The whole crop's is
    // measured only when needed (one band, a band or region with too few glyphs, the size test of a small
    // crop) or, for the result, once the bands are being read.
    let frameFactorMemo: number | undefined;
    const frameFactor = (): number => (frameFactorMemo ??= upscale === 'auto' ? autoUpscale(estimateGlyphHeight(gray, crop.width, whole), img.scale) : upscale);
    // A band or region with too few glyphs for a median of its own (a band of blank page and a few letters
    // of the overlap) takes the whole crop's upscale.
    const factorOf = (rect: PixelRect, minGlyphs: number): number => {
      if (upscale !== 'auto') return upscale;
      const h = estimateGlyphHeight(gray, crop.width, rect, { minGlyphs });
      return h > 0 ? autoUpscale(h, img.scale) : frameFactor();
    };
    // Upscales are ≥ 1: a crop already over the size needs no glyph measure to be split.
    const area = crop.width * crop.height;
    const nBands = bandsOpt === 'auto' ? (area > BAND_MIN_PIXELS || area * frameFactor() ** 2 > BAND_MIN_PIXELS ? this.pool.size : 1) : bandsOpt;
    // Band boundaries at text-free gaps, placed so each band holds about as much ink (see splitBands).
    const rows = nBands > 1 ? { profile: rowProfile(gray, crop.width, crop.height), minGap: Math.max(BAND_GAP_MIN_PIXELS, Math.round(BAND_GAP_MIN_PIXELS * img.scale)) } : undefined;
    const bands = splitBands(crop, nBands, Math.ceil(BAND_OVERLAP_POINTS * img.scale), rows);
    const baseInverted = invert === 'always' || (invert === 'auto' && meanLuminance(gray) < this.options.darkThreshold);
    const lightText = opts.lightTextRegions ?? this.options.lightTextRegions;
    // The orientation the base pass reads; the light-text pass works on it too.
    const base = baseInverted ? gray.map((v) => 255 - v) : gray;
    const cell = Math.max(6, Math.round(LIGHT_TEXT_CELL_POINTS * img.scale));
    const mapping = (band: Band, factor: number, minConfidence: number): PageMapping => ({
      band,
      factor,
      scale: img.scale,
      origin: img.origin,
      minConfidence,
      splitLineGap: opts.splitLineGap ?? this.options.splitLineGap,
    });
    const vertical: Rect[] = [];
    const basePsm = this.options.psm;
    const read = async (
      rect: PixelRect,
      lightTextOn: number[] | undefined,
      band: Band,
      minConfidence: number,
      how: { psm?: OcrPageSegMode; collectVertical?: boolean; factor?: number; invert?: boolean; pass: OcrPass },
    ): Promise<OcrLine[]> => {
      const { psm, collectVertical = false } = how;
      const tp = performance.now();
      const factor = how.factor ?? (bands.length === 1 && !lightTextOn ? frameFactor() : factorOf(rect, lightTextOn ? MIN_GLYPHS_REGION : MIN_GLYPHS_BAND));
      const prepared = await encodeGray(base, crop.width, rect, { invert: how.invert ?? false, factor, ...(lightTextOn ? { lightTextOn, cell } : {}) });
      const stat = (profile.passes[how.pass] ??= { jobs: 0, tesseractMs: 0, megapixels: 0, prepMs: 0 });
      stat.prepMs += performance.now() - tp;
      stat.jobs++;
      stat.megapixels += (prepared.width * prepared.height) / 1e6;
      const page = await this.pool.run(async (w) => {
        const tj = performance.now();
        try {
          if (psm === undefined || psm === basePsm) return (await w.recognize(prepared.data, {}, { blocks: true, text: false })).data;
          // A job holds its worker until it settles, so the mode is back to the engine's before another job runs.
          await w.setParameters({ tessedit_pageseg_mode: psm });
          try {
            return (await w.recognize(prepared.data, {}, { blocks: true, text: false })).data;
          } finally {
            await w.setParameters({ tessedit_pageseg_mode: basePsm });
          }
        } finally {
          stat.tesseractMs += performance.now() - tj;
        }
      });
      const m = mapping(band, factor, minConfidence);
      if (collectVertical) vertical.push(...verticalTextBlocks(page, m));
      return linesFromPage(page, m);
    };
    const relative = (r: PixelRect): PixelRect => ({ left: r.left - crop.left, top: r.top - crop.top, width: r.width, height: r.height });
    const absolute = (r: PixelRect): PixelRect => ({ left: r.left + crop.left, top: r.top + crop.top, width: r.width, height: r.height });
    const regionMinConfidence = Math.max(this.options.minConfidence, this.options.lightTextMinConfidence);
    const readRegion = (r: LightTextRegion) => read(r, r.backgrounds, { crop: absolute(r), ownTop: -Infinity, ownBottom: Infinity }, regionMinConfidence, { pass: 'lightText' });
    const skipExplained = opts.lightTextSkipExplained ?? this.options.lightTextSkipExplained;
    let regionsRead = 0;
    // Each band's regions (by centre row) are read once the band is: those whose every glyph already lies in a
    // confident word of the band are skipped. Regions queue on the pool as soon as their band is done, so a
    // worker whose band finished first is not idle.
    const owner = (r: LightTextRegion): number => {
      const row = crop.top + r.top + r.height / 2;
      const i = bands.findIndex((b) => row >= b.ownTop && row < b.ownBottom);
      return i < 0 ? bands.length - 1 : i;
    };
    const toPoints = (b: PixelRect): Rect => ({
      x: img.origin.x + (crop.left + b.left) / img.scale,
      y: img.origin.y + (crop.top + b.top) / img.scale,
      width: b.width / img.scale,
      height: b.height / img.scale,
    });
    // Light-text regions are looked for on this thread while the workers read the bands: a band needs them
    // only once it is read, and band jobs at ×1 are handed to the workers first (setImmediate runs after the
    // promise callbacks that post them; an upscaled band waits for sharp's resize on the thread pool, so
    // this may run before its job is posted).
    const repairTruncated = opts.repairTruncated ?? this.options.repairTruncated;
    const repairMissed = opts.repairMissedText ?? this.options.repairMissedText;
    const largeOn = opts.readLargeGlyphs ?? this.options.readLargeGlyphs;
    const sideWork = new Promise<{ regions: LightTextRegion[]; glyphs: Rect[]; large: Rect[] }>((resolve, reject) =>
      setImmediate(() => {
        const tf = performance.now();
        try {
          const regions = invert === 'auto' && lightText ? findLightTextRegions(base, crop.width, crop.height, { cell }) : [];
          // For the repairs after the bands, also found while the workers read.
          const glyphs = repairTruncated || repairMissed ? glyphBoxes(base, crop.width, whole, { cell }).map(toPoints) : [];
          // Large glyphs need larger cells: a 12-point cell inside a thick stroke takes the ink for background.
          const large = largeOn ? glyphBoxes(base, crop.width, whole, { cell: cell * LARGE_GLYPH_CELL_FACTOR, maxHeight: Math.round(LARGE_GLYPH_MAX_POINTS * img.scale) }).map(toPoints) : [];
          frameFactor(); // for the result
          profile.findMs = performance.now() - tf;
          resolve({ regions, glyphs, large });
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      }),
    );
    // Awaited by every band; a band that fails first leaves this one to be seen by no one.
    sideWork.catch(() => {});
    const perBand = await Promise.all(
      bands.map(async (band, bi) => {
        const lines = await read(relative(band.crop), undefined, band, this.options.minConfidence, { collectVertical: true, pass: 'band' });
        const mine = (await sideWork).regions.filter((r) => owner(r) === bi);
        const words = skipExplained ? lines.flatMap((l) => l.words) : [];
        const todo = mine.filter((r) => !skipExplained || !regionExplained(glyphBoxes(base, crop.width, r, { cell }).map(toPoints), words, EXPLAINED_MIN_CONFIDENCE));
        regionsRead += todo.length;
        const extra = await Promise.all(todo.map(readRegion));
        return { lines, extra: extra.flat() };
      }),
    );
    const { regions, glyphs, large } = await sideWork;
    let lines = mergeLines(perBand.flatMap((b) => b.lines), perBand.flatMap((b) => b.extra));
    // Read an area (points) of the crop again on its own, clipped to the crop the base pass read.
    const readArea = async (area: Rect, minConfidence: number, pass: OcrPass, psm?: OcrPageSegMode): Promise<OcrLine[] | null> => {
      const px = clipTo(regionToPixels(img, area), crop);
      if (!px) return null;
      return read(relative(px), undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, minConfidence, psm === undefined ? { pass } : { psm, pass });
    };
    // Both block repairs read on the pool at once; each works from the base pass's words.
    const within = toPoints(whole);
    const readBlock = (area: Rect, minConfidence: number, pass: OcrPass) => readArea(area, minConfidence, pass, Tesseract.PSM.SINGLE_BLOCK);
    const baseWords = lines.flatMap((l) => l.words);
    const verticalAreas =
      (opts.repairVerticalText ?? this.options.repairVerticalText) && vertical.length > 0
        ? mergeOverlapping(vertical.map((r) => columnStrip(r, baseWords, within, VERTICAL_BLOCK_MARGIN_POINTS)))
        : null;
    const missedAreas = repairMissed ? missedTextAreas(baseWords, glyphs, within) : null;
    const medianGlyph = median(glyphs.map((g) => g.height));
    // Words read unsurely (a big "7" read "Wy" at 0.45) do not hide the glyphs under them: the tight re-read,
    // if more confident, replaces them in the merge.
    const largeRuns = largeOn ? largeGlyphRuns(baseWords.filter((w) => w.confidence >= LARGE_GLYPH_SURE_CONFIDENCE), large, within, { medianHeight: medianGlyph }) : null;
    const readLarge = async (run: NonNullable<typeof largeRuns>[number]): Promise<OcrWord[]> => {
      const px = clipTo(regionToPixels(img, run.area), crop);
      if (!px) return [];
      const rel = relative(px);
      // Light glyphs on a dark card (in the base orientation) are turned dark on light for this crop.
      const light = meanLuminance(cropOf(base, crop.width, rel)) < 0.5;
      const factor = run.box.height * img.scale < 24 ? 2 : 1;
      const psm = run.glyphs === 1 ? Tesseract.PSM.SINGLE_CHAR : Tesseract.PSM.SINGLE_LINE;
      const got = await read(rel, undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, regionMinConfidence, { psm, factor, invert: light, pass: 'largeGlyph' });
      return wordsOnRun(run, got.flatMap((l) => l.words));
    };
    // Blocks of fixed-pitch lines (a terminal) read as one block, dark text on light like the large glyphs.
    const monoBlocks = (opts.readMonospaceBlocks ?? this.options.readMonospaceBlocks) ? monospaceBlocks(lines, (w) => SYMBOLS.get(w), within, 1 / img.scale) : null;
    const monoAreas = monoBlocks?.map((b) => b.area) ?? null;
    const readMono = async (area: Rect, pitch: number): Promise<OcrLine[] | null> => {
      const px = clipTo(regionToPixels(img, area), crop);
      if (!px) return null;
      const rel = relative(px);
      const light = meanLuminance(cropOf(base, crop.width, rel)) < 0.5;
      const got = await read(rel, undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, this.options.minConfidence, { psm: Tesseract.PSM.SINGLE_BLOCK, invert: light, pass: 'monospace' });
      // On the grid a space is an empty cell: words in neighbouring cells are one (`build.log`, not `build. log`).
      return joinAdjacentCells(got, pitch, (w) => SYMBOLS.get(w), (w, sy) => SYMBOLS.set(w, sy), makeLine);
    };
    const [verticalReads, missedReads, largeReads, monoReads] = await Promise.all([
      Promise.all((verticalAreas ?? []).map(async (area) => ({ area, got: await readBlock(area, this.options.minConfidence, 'vertical') }))),
      Promise.all((missedAreas ?? []).map((area) => readBlock(area, regionMinConfidence, 'missed'))),
      Promise.all((largeRuns ?? []).map(readLarge)),
      Promise.all((monoBlocks ?? []).map(async (b) => ({ area: b.area, got: await readMono(b.area, b.pitch) }))),
    ]);
    let verticalBlocks: OcrResult['verticalBlocks'];
    if (verticalAreas) {
      let replaced = 0;
      for (const r of verticalReads) {
        if (!r.got) continue;
        const next = replaceIfMoreConfident(lines, r.area, r.got);
        if (next !== lines) replaced++;
        lines = next;
      }
      verticalBlocks = { found: verticalAreas.length, replaced };
    }
    let missedText: OcrResult['missedText'];
    if (missedAreas && missedAreas.length > 0) {
      const got = missedReads.flatMap((r) => r ?? []);
      const before = lines.reduce((n, l) => n + l.words.length, 0);
      lines = mergeLines(lines, got);
      // Net: a more confident re-read of a word the base pass had replaces it and adds nothing.
      missedText = { found: missedAreas.length, added: lines.reduce((n, l) => n + l.words.length, 0) - before };
    }
    let largeGlyphs: OcrResult['largeGlyphs'];
    if (largeRuns && largeRuns.length > 0) {
      const before = lines.reduce((n, l) => n + l.words.length, 0);
      // One line per row of each run (a run is one line, but a re-read may return a stray word beside it).
      lines = mergeLines(lines, largeReads.flatMap((ws) => (ws.length > 0 ? splitByRow(makeLine(ws)) : [])));
      largeGlyphs = { found: largeRuns.length, added: lines.reduce((n, l) => n + l.words.length, 0) - before };
    }
    let monospace: OcrResult['monospaceBlocks'];
    if (monoAreas && monoAreas.length > 0) {
      let replaced = 0;
      for (const r of monoReads) {
        if (!r.got) continue;
        const next = replaceIfMoreConfident(lines, r.area, r.got, 'characters');
        if (next !== lines) replaced++;
        lines = next;
      }
      monospace = { found: monoAreas.length, replaced };
    }
    let repaired = 0;
    if (repairTruncated) {
      const suspects = truncatedWords(lines.flatMap((l) => l.words), glyphs);
      const fixes = await Promise.all(
        suspects.map(async ({ word, area }) => {
          const got = await readArea(area, regionMinConfidence, 'truncated');
          if (!got) return null;
          const inside = got.flatMap((l) => l.words).filter((w) => {
            const cx = w.bounds.x + w.bounds.width / 2;
            const cy = w.bounds.y + w.bounds.height / 2;
            return cx >= word.bounds.x - word.bounds.height && cx <= word.bounds.x + word.bounds.width + word.bounds.height && cy >= word.bounds.y && cy <= word.bounds.y + word.bounds.height;
          });
          const best = inside.sort((a, b) => b.text.length - a.text.length)[0];
          return best && best.text.length > word.text.length && best.text.includes(word.text) ? { word, best } : null;
        }),
      );
      const swap = new Map<OcrWord, OcrWord>();
      for (const f of fixes) if (f) swap.set(f.word, f.best);
      repaired = swap.size;
      if (swap.size > 0) lines = lines.map((l) => (l.words.some((w) => swap.has(w)) ? makeLine(l.words.map((w) => swap.get(w) ?? w)) : l));
    }
    const tpost = performance.now();
    let votedWords: number | undefined;
    if (opts.voteGlyphs ?? this.options.voteGlyphs) {
      const inCrop = (w: OcrWord) => SYMBOLS.get(w)?.map((sy) => ({ ...sy, box: { ...sy.box, left: sy.box.left - crop.left, top: sy.box.top - crop.top } }));
      const voted = voteGlyphs(lines.flatMap((l) => l.words), inCrop, base, crop.width, crop.height);
      votedWords = voted.size;
      if (voted.size > 0) {
        lines = lines.map((l) => {
          if (!l.words.some((w) => voted.has(w))) return l;
          return makeLine(l.words.map((w) => {
            const text = voted.get(w);
            if (text === undefined) return w;
            const nw: OcrWord = { ...w, text };
            const syms = SYMBOLS.get(w);
            if (syms) SYMBOLS.set(nw, syms.map((sy, i) => ({ ...sy, text: [...text][i] ?? sy.text })));
            return nw;
          }));
        });
      }
    }
    let junk: OcrResult['junk'];
    if (opts.rejectJunk ?? this.options.rejectJunk) {
      const toCrop = (w: OcrWord): PixelRect | null => {
        const left = Math.floor((w.bounds.x - img.origin.x) * img.scale) - crop.left;
        const top = Math.floor((w.bounds.y - img.origin.y) * img.scale) - crop.top;
        const right = Math.ceil((w.bounds.x + w.bounds.width - img.origin.x) * img.scale) - crop.left;
        const bottom = Math.ceil((w.bounds.y + w.bounds.height - img.origin.y) * img.scale) - crop.top;
        const l = Math.max(0, left), t = Math.max(0, top);
        const r = Math.min(crop.width, right), b = Math.min(crop.height, bottom);
        return r > l && b > t ? { left: l, top: t, width: r - l, height: b - t } : null;
      };
      const found = findJunkWords(lines.flatMap((l) => l.words), base, crop.width, crop.height, toCrop);
      if (found.size > 0) {
        junk = {};
        for (const why of found.values()) junk[why] = (junk[why] ?? 0) + 1;
        lines = dropWords(lines, found, makeLine);
      }
    }
    profile.postMs = performance.now() - tpost;
    return { words: lines.flatMap((l) => l.words), lines, ms: performance.now() - t0, profile, lightTextRegions: regionsRead, lightTextRegionsFound: regions.length, upscale: frameFactor(), repairedWords: repaired, ...(verticalBlocks ? { verticalBlocks } : {}), ...(missedText ? { missedText } : {}), ...(largeGlyphs ? { largeGlyphs } : {}), ...(monospace ? { monospaceBlocks: monospace } : {}), ...(votedWords !== undefined ? { votedWords } : {}), ...(junk ? { junk } : {}) };
  }

  /** Stop every worker; pending calls fail with `OCR_FAILED`. Idempotent. */
  async close(): Promise<void> {
    await this.pool.close();
  }
}

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
  return glyphs.every((g) => {
    const cx = g.x + g.width / 2;
    const cy = g.y + g.height / 2;
    return sure.some((w) => {
      const pad = w.bounds.height / 4;
      return cx >= w.bounds.x - pad && cx <= w.bounds.x + w.bounds.width + pad && cy >= w.bounds.y - pad && cy <= w.bounds.y + w.bounds.height + pad;
    });
  });
}

/**
 * Words that look cut short: a glyph (logical points) of at least half the word's height, on its line
 * (vertical centre inside the word), outside every word, and touching the word's left or right edge (gap under
 * ⅓ of its height). Thin strokes at word edges (a light-grey "l") are dropped by a whole-frame threshold but
 * not by a tight crop's. Returns each word with the area to read again (the word and the glyph, padded by one
 * word height sideways and ¼ of it vertically). Pure.
 */
export function truncatedWords(words: OcrWord[], glyphs: Rect[]): { word: OcrWord; area: Rect }[] {
  const inWord = (g: Rect) => {
    const cx = g.x + g.width / 2;
    const cy = g.y + g.height / 2;
    return words.some((w) => cx >= w.bounds.x && cx <= w.bounds.x + w.bounds.width && cy >= w.bounds.y && cy <= w.bounds.y + w.bounds.height);
  };
  const loose = glyphs.filter((g) => !inWord(g));
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
  const inWord = (g: Rect) => {
    const cx = g.x + g.width / 2;
    const cy = g.y + g.height / 2;
    return words.some((w) => cx >= w.bounds.x - 1 && cx <= w.bounds.x + w.bounds.width + 1 && cy >= w.bounds.y - 1 && cy <= w.bounds.y + w.bounds.height + 1);
  };
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

/** Glyph height (pixels, see `estimateGlyphHeight`) under which `upscale: 'auto'` enlarges ×2. */
export const UPSCALE_X2_BELOW_PX = 12;
/** Glyph height under which `upscale: 'auto'` enlarges ×3. */
export const UPSCALE_X3_BELOW_PX = 7;

/**
 * The upscale `upscale: 'auto'` applies to a part of an image whose typical glyph height is `glyphPx`
 * pixels (`estimateGlyphHeight`; 0 = no glyph found): ×3 below `UPSCALE_X3_BELOW_PX`, ×2 below
 * `UPSCALE_X2_BELOW_PX`, else ×1 (tesseract's LSTM reads text of ≈ 20–30 px best; 1x screens draw
 * 13–14 px text with glyphs of 7–10 px, 2x screens twice that). Without a glyph, ×2 for images of fewer
 * than 2 pixels per point. Pure.
 */
export function autoUpscale(glyphPx: number, scale: number): number {
  if (glyphPx <= 0) return scale < 2 ? 2 : 1;
  if (glyphPx < UPSCALE_X3_BELOW_PX) return 3;
  return glyphPx < UPSCALE_X2_BELOW_PX ? 2 : 1;
}

/** How one band's tesseract boxes map back to the source image, and which words to keep. */
export interface PageMapping {
  /** The band that was read (source image pixels) and the rows it owns. */
  band: Band;
  /** Prepared-image pixels per source pixel. */
  factor: number;
  /** Source image geometry. */
  scale: number;
  origin: { x: number; y: number };
  minConfidence: number;
  splitLineGap: number;
}

/** Margin left and right of a vertical-text block when it is read again, logical points. */
const VERTICAL_BLOCK_MARGIN_POINTS = 8;

/** tesseract's `PolyBlockType` of a block laid out as vertical text (`PT_VERTICAL_TEXT`, publictypes.h). */
export const PT_VERTICAL_TEXT = 7;

/**
 * Bounds (logical global points) of the blocks of one band's page that tesseract's layout analysis classed as
 * vertical text (`blocktype === PT_VERTICAL_TEXT`), for the blocks whose centre row the band owns. Pure.
 */
export function verticalTextBlocks(page: Pick<Tesseract.Page, 'blocks'>, m: PageMapping): Rect[] {
  const out: Rect[] = [];
  for (const block of page.blocks ?? []) {
    if ((block.blocktype as unknown) !== PT_VERTICAL_TEXT) continue;
    if (!bandOwns(m, block.bbox)) continue;
    out.push(bboxToPoints(m, block.bbox, false));
  }
  return out;
}

/** Whether the centre row of a box (prepared-image pixels) lies in the rows the mapping's band owns. */
function bandOwns(m: PageMapping, b: Tesseract.Bbox): boolean {
  const centreRow = m.band.crop.top + (b.y0 + b.y1) / 2 / m.factor;
  return centreRow >= m.band.ownTop && centreRow < m.band.ownBottom;
}

/** A box of the prepared image mapped to logical global points (`origin + (bandOffset + box / factor) / scale`), rounded to 0.01 or not. */
function bboxToPoints(m: PageMapping, b: Tesseract.Bbox, round: boolean): Rect {
  const k = m.factor * m.scale;
  const r = (v: number) => (round ? round2(v) : v);
  return {
    x: r(m.origin.x + m.band.crop.left / m.scale + b.x0 / k),
    y: r(m.origin.y + m.band.crop.top / m.scale + b.y0 / k),
    width: r((b.x1 - b.x0) / k),
    height: r((b.y1 - b.y0) / k),
  };
}

/**
 * The characters tesseract read in each word (boxes in absolute source image pixels), for the glyph vote.
 * A side table keeps `OcrWord` (shared with the fusion) as it is.
 */
const SYMBOLS = new WeakMap<OcrWord, OcrSymbol[]>();

/** A box of the prepared image mapped to the source image's pixels (`bandOffset + box / factor`, rounded outwards). */
function bboxToSourcePixels(m: PageMapping, b: Tesseract.Bbox): PixelRect {
  const left = Math.floor(m.band.crop.left + b.x0 / m.factor);
  const top = Math.floor(m.band.crop.top + b.y0 / m.factor);
  return { left, top, width: Math.ceil(m.band.crop.left + b.x1 / m.factor) - left, height: Math.ceil(m.band.crop.top + b.y1 / m.factor) - top };
}

/** Insert `line` into `lines` (ordered by top edge) before the first line whose top is lower. Mutates `lines`. */
function insertByTop(lines: OcrLine[], line: OcrLine): void {
  const at = lines.findIndex((l) => l.bounds.y > line.bounds.y);
  lines.splice(at < 0 ? lines.length : at, 0, line);
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
  const inArea = (w: OcrWord) => {
    const cx = w.bounds.x + w.bounds.width / 2;
    const cy = w.bounds.y + w.bounds.height / 2;
    return cx >= area.x && cx <= area.x + area.width && cy >= area.y && cy <= area.y + area.height;
  };
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

/** `px` clipped to `crop` (source pixels), or null when less than 2x2 pixels remain. */
function clipTo(px: PixelRect | null, crop: PixelRect): PixelRect | null {
  if (!px) return null;
  const left = Math.max(crop.left, px.left);
  const top = Math.max(crop.top, px.top);
  const width = Math.min(crop.left + crop.width, px.left + px.width) - left;
  const height = Math.min(crop.top + crop.height, px.top + px.height) - top;
  return width >= 2 && height >= 2 ? { left, top, width, height } : null;
}

/**
 * Walk tesseract's blocks → paragraphs → lines → words of one band; keep the lines whose centre row the
 * band owns; drop words that are empty after trimming or below `minConfidence` (tesseract's 0..100 scaled
 * to 0..1); split lines at gaps wider than `splitLineGap` line heights; map boxes to logical global points
 * (`origin + (bandOffset + box / factor) / scale`). Pure.
 */
export function linesFromPage(page: Pick<Tesseract.Page, 'blocks'>, m: PageMapping): OcrLine[] {
  const k = m.factor * m.scale;
  const out: OcrLine[] = [];
  for (const block of page.blocks ?? []) {
    for (const para of block.paragraphs) {
      for (const line of para.lines) {
        if (!bandOwns(m, line.bbox)) continue;
        const maxGap = m.splitLineGap * ((line.bbox.y1 - line.bbox.y0) / k);
        let run: OcrWord[] = [];
        for (const w of line.words) {
          const text = w.text.trim();
          const confidence = Math.max(0, Math.min(1, w.confidence / 100));
          if (text === '' || confidence < m.minConfidence) continue;
          const word: OcrWord = { text, bounds: bboxToPoints(m, w.bbox, true), confidence: round2(confidence) };
          if (w.symbols?.length) SYMBOLS.set(word, w.symbols.map((sy) => ({ text: sy.text, confidence: sy.confidence / 100, box: bboxToSourcePixels(m, sy.bbox) })));
          const prev = run[run.length - 1];
          if (prev && word.bounds.x - (prev.bounds.x + prev.bounds.width) > maxGap) {
            out.push(makeLine(run));
            run = [];
          }
          run.push(word);
        }
        if (run.length > 0) out.push(makeLine(run));
      }
    }
  }
  return out;
}

/**
 * Merge the lines of the base pass with those of the light-text pass. Where words of the two passes overlap
 * (their intersection covers ≥ 30% of the smaller box), the more confident word is kept; lines keep their
 * surviving words, and lines left empty are dropped. Extra lines are placed among the base lines by their
 * top edge. Pure.
 */
export function mergeLines(base: OcrLine[], extra: OcrLine[]): OcrLine[] {
  if (extra.length === 0) return base;
  const all = [...base, ...extra].flatMap((l, li) => l.words.map((w) => ({ w, li })));
  all.sort((a, b) => b.w.confidence - a.w.confidence);
  const kept: OcrWord[] = [];
  const keep = new Set<OcrWord>();
  for (const { w } of all) {
    const area = w.bounds.width * w.bounds.height;
    const clash = kept.some((k) => intersectionArea(k.bounds, w.bounds) >= 0.3 * Math.min(area, k.bounds.width * k.bounds.height));
    if (clash) continue;
    kept.push(w);
    keep.add(w);
  }
  const survivors = (ls: OcrLine[]) =>
    ls.flatMap((l) => {
      const words = l.words.filter((w) => keep.has(w));
      return words.length > 0 ? [makeLine(words)] : [];
    });
  const out = survivors(base);
  for (const line of survivors(extra)) insertByTop(out, line);
  return out;
}

/** The words of `line` grouped into lines by row (vertical centres within half a word height), left to right. */
function splitByRow(line: OcrLine): OcrLine[] {
  const rows: OcrWord[][] = [];
  for (const w of [...line.words].sort((a, b) => a.bounds.x - b.bounds.x)) {
    const cy = w.bounds.y + w.bounds.height / 2;
    const row = rows.find((r) => Math.abs(r[0]!.bounds.y + r[0]!.bounds.height / 2 - cy) <= r[0]!.bounds.height / 2);
    if (row) row.push(w);
    else rows.push([w]);
  }
  return rows.map(makeLine);
}

/** Median of `xs` (0 when empty). */
function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The pixels of `rect` of a `width`-wide gray image, row by row. */
function cropOf(gray: Uint8Array, width: number, rect: PixelRect): Uint8Array {
  const out = new Uint8Array(rect.width * rect.height);
  for (let y = 0; y < rect.height; y++) out.set(gray.subarray((rect.top + y) * width + rect.left, (rect.top + y) * width + rect.left + rect.width), y * rect.width);
  return out;
}

function makeLine(words: OcrWord[]): OcrLine {
  return { text: words.map((w) => w.text).join(' '), bounds: union(words.map((w) => w.bounds))!, words };
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function checkUpscale(u: 'auto' | number): void {
  if (u !== 'auto' && !(typeof u === 'number' && u >= 1 && u <= 4)) {
    throw new DeskdError('VALIDATION_FAILED', 'OCR option upscale must be "auto" or a number in 1..4');
  }
}

function checkBands(b: 'auto' | number): void {
  if (b !== 'auto' && !(Number.isInteger(b) && b >= 1 && b <= 16)) {
    throw new DeskdError('VALIDATION_FAILED', 'OCR option bands must be "auto" or an integer in 1..16');
  }
}
