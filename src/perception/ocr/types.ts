/**
 * What an OCR call returns: words and lines in logical global points, the counts of each re-read pass, and
 * where the time went.
 */
import type { OcrWord, OcrLine as BaseOcrLine } from '../elements.js';
import type { RawImage, Rect } from '../../platform/types.js';
import type { JunkReason } from './junk.js';

export type { OcrWord } from '../elements.js';

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
  /**
   * Light-text regions read within the bands, flattened to dark text on white, and not again on their own
   * (`lightTextInBands`: panels of at least 40 glyphs at their bands' upscale).
   */
  lightTextInBands?: number;
  /** Words replaced by a longer reading of a tight crop around them (see `truncatedWords`). */
  repairedWords?: number;
  /**
   * Upscale the whole crop's glyphs call for (`upscale: 'auto'`: from its glyph height, see `autoUpscale`); the bands
   * are read at ×1 instead of ×1.5 with `coarseBands` (see `coarseUpscale`).
   */
  upscale?: number;
  /** Column strips of vertical-text blocks read again as one block, and how many of those readings were kept (see `repairVerticalText`). */
  verticalBlocks?: { found: number; replaced: number };
  /** Areas of glyphs outside every word read again as one block, and the words that reading added (see `repairMissedText`). */
  missedText?: { found: number; added: number };
  /** Runs of large glyphs outside every word read again on a tight crop, and the words added (see `readLargeGlyphs`). */
  largeGlyphs?: { found: number; added: number };
  /**
   * Blocks of fixed-pitch lines read again as one block, and how many of those readings were kept, in part or whole
   * (see `readMonospaceBlocks`); `parts`: the jobs they were read in when a long block was cut into parts read on
   * the workers at once (`splitMonospaceBlocks`, `splitBlockArea`).
   */
  monospaceBlocks?: { found: number; replaced: number; parts?: number };
  /** Unsure lines read again at ×2, and how many of those readings were kept (see `rereadUnsureLines`). */
  unsureLines?: { found: number; replaced: number };
  /** Words holding a digit of fixed-pitch lines read again at ×2, and how many of those readings were kept (see `rereadMonospaceDigits`). */
  monospaceDigits?: { found: number; replaced: number };
  /** Words whose characters the glyph vote corrected (see `voteGlyphs`). */
  votedWords?: number;
  /** Words dropped as junk read from borders, icons and rules, by reason (see `rejectJunk`). */
  junk?: Partial<Record<JunkReason, number>>;
  /** Where the call's time went (see {@link OcrProfile}); always set by {@link OcrEngine.recognize}. */
  profile?: OcrProfile;
}

/** The passes that send an image to tesseract. */
export type OcrPass = 'band' | 'lightText' | 'vertical' | 'missed' | 'largeGlyph' | 'monospace' | 'truncated' | 'unsure' | 'monoDigits';

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


/**
 * What the readers of a frame need from an OCR engine (the observer's `TextRecognizer`; the incremental reader,
 * `treeTextReader.ts`): words and lines of an image or of `region` of it, logical global points.
 */
export interface RegionRecognizer {
  recognize(img: RawImage, opts?: { region?: Rect }): Promise<{ words: OcrWord[]; lines: BaseOcrLine[] }>;
}
