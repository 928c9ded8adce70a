/**
 * OCR: tesseract.js workers behind {@link OcrEngine}, and the pure pieces of its pipeline (exported for tests
 * and benchmarks). One file a job:
 * - engine.ts: the engine's lifecycle (model files, close) over pool.ts (the worker pool); options.ts: its
 *   options (one zod schema);
 * - pipeline.ts: one `recognize` call as named stages over recognition.ts (the call's state, one tesseract job);
 * - rereads.ts: the block re-reads (vertical text, missed text, large glyphs, monospace blocks);
 * - repairs.ts: the re-read heuristics (which areas, which readings win); largeGlyphs.ts and monospace.ts find
 *   the large-glyph runs and fixed-pitch blocks;
 * - glyphVote.ts: the glyph vote; junk.ts: junk rejection;
 * - page.ts: tesseract's page → lines in logical points, merging lines of several passes;
 * - prepare.ts: crop, gray, upscale, encoding; bands.ts: band splitting; lightText.ts: light-text regions;
 * - raster.ts: background levels, connected components, glyph boxes;
 * - types.ts: what a call returns.
 */
export { OcrEngine, resolveLangPath, tesseractWorkerOptions } from './engine.js';
export {
  OcrEngineOptionsSchema,
  RecognizeOptionsSchema,
  type InvertMode,
  type OcrEngineOptions,
  type OcrModelVariant,
  type OcrPageSegMode,
  type RecognizeOptions,
  type ResolvedOcrOptions,
} from './options.js';
export type { OcrLine, OcrPass, OcrProfile, OcrResult, OcrWord } from './types.js';
export type { OcrLogger } from './pool.js';
export { linesFromPage, mergeLines, PT_VERTICAL_TEXT, verticalTextBlocks, type PageMapping } from './page.js';
export { columnStrip, EXPLAINED_MIN_CONFIDENCE, missedTextAreas, regionExplained, replaceIfMoreConfident, truncatedWords, type MissedTextOptions } from './repairs.js';
export { autoUpscale, coarseUpscale, encodeGray, grayCrop, regionToPixels, UPSCALE_BELOW_PX, UPSCALE_X2_BELOW_PX, UPSCALE_X3_BELOW_PX } from './prepare.js';
export { rowProfile, splitBands, type Band, type RowProfile } from './bands.js';
export { findLightTextRegions, flattenLightText, flattenRegions, isolateLightText, mergeRects, type LightTextOptions, type LightTextRegion } from './lightText.js';
export { estimateGlyphHeight, glyphBoxes, meanLuminance, type GlyphHeightOptions } from './raster.js';
