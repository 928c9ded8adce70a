/**
 * The state of one `recognize` call and the primitives its stages share: the crop and its gray pixels, the
 * upscale of a part of it (from its glyph height), the mapping between the crop's pixels and logical points,
 * and one tesseract job ({@link Recognition.read}). The stages themselves: src/perception/ocr/pipeline.ts.
 */
import { performance } from 'node:perf_hooks';
import type { RawImage, Rect } from '../../platform/types.js';
import { clip, pointsToPixels, toPixelBox, toPixelRect, type PixelBox } from '../geometry.js';
import type { OcrWorkerPool } from './pool.js';
import { flattenRegions, type LightTextRegion } from './lightText.js';
import { rowProfile, splitBands, type Band } from './bands.js';
import type { CallOptions, OcrPageSegMode } from './options.js';
import { linesFromPage, verticalTextBlocks, type PageMapping } from './page.js';
import { autoUpscale, coarseUpscale, encodeGray, grayCrop } from './prepare.js';
import { glyphBoxes, meanLuminance } from './raster.js';
import type { OcrLine, OcrPass, OcrProfile } from './types.js';

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

/** How one tesseract job reads its image. */
export interface ReadHow {
  /** Page segmentation mode for this job (default: the engine's). */
  psm?: OcrPageSegMode;
  /** Collect the blocks the layout took for vertical text (`verticalTextBlocks`) into {@link Recognition.vertical}. */
  collectVertical?: boolean;
  /** Upscale (default: from the glyph height of the part read, see `Recognition.factorOf`). */
  factor?: number;
  /** With `upscale: 'auto'` and no `factor`, read at the coarse upscale of that glyph height (`coarseUpscale`). */
  coarse?: boolean;
  /** Invert the part read (default false: it is read in the base orientation). */
  invert?: boolean;
  /** The pass the job's time and pixels count to. */
  pass: OcrPass;
}

/**
 * The state of one `recognize` call: the crop (source pixels), its gray pixels as read (`base`: inverted when
 * the crop is mostly dark), the bands, the profile, and the vertical-text blocks the band reads found.
 */
export class Recognition {
  readonly profile: OcrProfile = { passes: {}, grayMs: 0, findMs: 0, postMs: 0 };
  /** Vertical-text blocks (logical points) the band reads found, in the order the reads finished. */
  readonly vertical: Rect[] = [];
  /** The crop itself, relative to the crop. */
  readonly whole: PixelBox;
  /** The crop in logical points. */
  readonly within: Rect;
  /** Cell side of the light-text and glyph detection, pixels. */
  readonly cell: number;
  /** `max(minConfidence, lightTextMinConfidence)`: the confidence words of isolated re-reads need. */
  readonly regionMinConfidence: number;
  bands: Band[] = [];
  /** Light-text regions read isolated (`readLightText`). */
  lightTextRead = 0;
  /** Whether some job read its part below the upscale its glyphs call for (`ReadHow.coarse`). */
  coarseRead = false;
  /**
   * Light-text regions (pixels relative to the crop) flattened in {@link bandPixels} and so read by the bands
   * (`setPanels`; `lightTextInBands`), not again on their own.
   */
  panels: LightTextRegion[] = [];
  /** What band jobs read: {@link base}, with the {@link panels} flattened to dark text on white. */
  private bandPixels: Uint8Array;
  private frameFactorMemo: number | undefined;
  private glyphMemo: PixelBox[] | undefined;

  private constructor(
    private readonly pool: OcrWorkerPool,
    readonly o: CallOptions,
    readonly img: RawImage,
    /** The pixels read, source image pixels. */
    readonly crop: PixelBox,
    /** The crop's luminance as captured. */
    private readonly gray: Uint8Array,
    /** The crop's luminance in the orientation the base pass reads (inverted when mostly dark). */
    readonly base: Uint8Array,
  ) {
    this.whole = { left: 0, top: 0, width: crop.width, height: crop.height };
    this.within = this.toPoints(this.whole);
    this.cell = Math.max(6, Math.round(LIGHT_TEXT_CELL_POINTS * img.scale));
    this.regionMinConfidence = Math.max(o.minConfidence, o.lightTextMinConfidence);
    this.bandPixels = base;
  }

  /**
   * Read `panels` (light-text regions, pixels relative to the crop) within the bands: the band jobs read the base
   * orientation with each of them flattened (`flattenRegions`). Call before the first band job.
   */
  setPanels(panels: LightTextRegion[]): void {
    this.panels = panels;
    this.bandPixels = panels.length > 0 ? flattenRegions(this.base, this.crop.width, panels, this.cell) : this.base;
  }

  /** Workers the call's pool runs jobs on at once (its capacity). */
  get workers(): number {
    return this.pool.size;
  }

  /** The upscale a band job reads `band` at (as {@link read} chooses it for `pass: 'band'`). */
  bandFactor(band: Band): number {
    const detail = this.bands.length === 1 ? this.frameFactor() : this.factorOf(this.relative(band.crop), MIN_GLYPHS_BAND);
    return this.o.coarseBands && this.o.upscale === 'auto' ? coarseUpscale(detail) : detail;
  }

  /** The upscale a light-text region (pixels relative to the crop) is read at on its own ({@link readLightText}). */
  regionFactor(region: PixelBox): number {
    return this.factorOf(region, MIN_GLYPHS_REGION);
  }

  /** Stage 1: the crop's gray pixels (libvips), the base orientation, and the bands. */
  static async prepare(pool: OcrWorkerPool, o: CallOptions, img: RawImage, crop: PixelBox): Promise<Recognition> {
    const tg = performance.now();
    const gray = await grayCrop(img, crop);
    const grayMs = performance.now() - tg;
    const baseInverted = o.invert === 'always' || (o.invert === 'auto' && meanLuminance(gray) < o.darkThreshold);
    const call = new Recognition(pool, o, img, crop, gray, baseInverted ? gray.map((v) => 255 - v) : gray);
    call.profile.grayMs = grayMs;
    call.bands = call.splitIntoBands();
    return call;
  }

  /** The crop split into bands: one per worker when large (`bands: 'auto'`), at text-free gaps (see `splitBands`). */
  private splitIntoBands(): Band[] {
    const { crop, img } = this;
    // Upscales are ≥ 1: a crop already over the size needs no glyph measure to be split.
    const area = crop.width * crop.height;
    const nBands = this.o.bands === 'auto' ? (area > BAND_MIN_PIXELS || area * this.frameFactor() ** 2 > BAND_MIN_PIXELS ? this.pool.size : 1) : this.o.bands;
    // Band boundaries at text-free gaps, placed so each band holds about as much ink (see splitBands).
    const rows = nBands > 1 ? { profile: rowProfile(this.gray, crop.width, crop.height), minGap: Math.max(BAND_GAP_MIN_PIXELS, Math.round(BAND_GAP_MIN_PIXELS * img.scale)) } : undefined;
    return splitBands(crop, nBands, Math.ceil(BAND_OVERLAP_POINTS * img.scale), rows);
  }

  /**
   * The glyph boxes of the whole crop (pixels relative to the crop; `glyphBoxes` of the base orientation with the
   * call's `cell`), found once, when first needed, and shared by the upscale of every part, the light-text regions'
   * glyphs and the repairs (each of them was a pass over the pixels of its own: the main thread's finding was
   * 560–750 ms a 1920x1080 frame, docs/perception-incremental.md).
   */
  glyphs(): PixelBox[] {
    return (this.glyphMemo ??= glyphBoxes(this.base, this.crop.width, this.whole, { cell: this.cell }));
  }

  /** The glyph boxes (pixels relative to the crop) whose centre lies in `rect` (relative to the crop). */
  glyphsIn(rect: PixelBox): PixelBox[] {
    return this.glyphs().filter((g) => {
      const cx = g.left + g.width / 2;
      const cy = g.top + g.height / 2;
      return cx >= rect.left && cx < rect.left + rect.width && cy >= rect.top && cy < rect.top + rect.height;
    });
  }

  /**
   * The whole crop's upscale: from its glyph height when `upscale: 'auto'` (the image's scale is no guide:
   * Chromium at device scale 2 on X11 reports scale 1 and draws text twice as tall). Measured once, when
   * first needed (one band, a band or region with too few glyphs, the size test of a small crop, the result).
   */
  frameFactor(): number {
    const { upscale } = this.o;
    return (this.frameFactorMemo ??= upscale === 'auto' ? autoUpscale(medianHeight(this.glyphs()), this.img.scale) : upscale);
  }

  /** The upscale of a part of the crop; a part with too few glyphs for a median of its own takes the whole crop's. */
  private factorOf(rect: PixelBox, minGlyphs: number): number {
    const { upscale } = this.o;
    if (upscale !== 'auto') return upscale;
    const inside = this.glyphsIn(rect);
    return inside.length > 0 && inside.length >= minGlyphs ? autoUpscale(medianHeight(inside), this.img.scale) : this.frameFactor();
  }

  /** A box relative to the crop in logical global points. */
  toPoints(b: PixelBox): Rect {
    const { img, crop } = this;
    return {
      x: img.origin.x + (crop.left + b.left) / img.scale,
      y: img.origin.y + (crop.top + b.top) / img.scale,
      width: b.width / img.scale,
      height: b.height / img.scale,
    };
  }

  /** A box of source pixels made relative to the crop. */
  relative(r: PixelBox): PixelBox {
    return { left: r.left - this.crop.left, top: r.top - this.crop.top, width: r.width, height: r.height };
  }

  /** A box relative to the crop in source pixels. */
  absolute(r: PixelBox): PixelBox {
    return { left: r.left + this.crop.left, top: r.top + this.crop.top, width: r.width, height: r.height };
  }

  /**
   * One tesseract job: `rect` (relative to the crop) of the base orientation, prepared (light text isolated on
   * `lightTextOn` background levels, or inverted as `how` says; upscaled), read, and mapped back through
   * `band`; words under `minConfidence` dropped.
   */
  async read(rect: PixelBox, lightTextOn: number[] | undefined, band: Band, minConfidence: number, how: ReadHow): Promise<OcrLine[]> {
    const { psm, collectVertical = false } = how;
    const basePsm = this.o.psm;
    const tp = performance.now();
    const detail = how.factor ?? (this.bands.length === 1 && !lightTextOn ? this.frameFactor() : this.factorOf(rect, lightTextOn ? MIN_GLYPHS_REGION : MIN_GLYPHS_BAND));
    const factor = how.coarse && how.factor === undefined && this.o.upscale === 'auto' ? coarseUpscale(detail) : detail;
    if (factor < detail) this.coarseRead = true;
    const prepared = await encodeGray(how.pass === 'band' ? this.bandPixels : this.base, this.crop.width, rect, { invert: how.invert ?? false, factor, ...(lightTextOn ? { lightTextOn, cell: this.cell } : {}) });
    const stat = (this.profile.passes[how.pass] ??= { jobs: 0, tesseractMs: 0, megapixels: 0, prepMs: 0 });
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
    const m: PageMapping = { band, factor, scale: this.img.scale, origin: this.img.origin, minConfidence, splitLineGap: this.o.splitLineGap };
    if (collectVertical) this.vertical.push(...verticalTextBlocks(page, m));
    return linesFromPage(page, m);
  }

  /** A light-text region (pixels relative to the crop) read with its light text isolated (`isolateLightText`). */
  readLightText(r: LightTextRegion): Promise<OcrLine[]> {
    this.lightTextRead++;
    return this.read(r, r.backgrounds, { crop: this.absolute(r), ownTop: -Infinity, ownBottom: Infinity }, this.regionMinConfidence, { pass: 'lightText' });
  }

  /**
   * An area (logical points) clipped to the crop, in source pixels, or null when less than 2x2 pixels remain.
   */
  areaPixels(area: Rect): PixelBox | null {
    const px = pointsToPixels(this.img, area);
    const c = px && clip(px, toPixelRect(this.crop));
    return c && c.width >= 2 && c.height >= 2 ? toPixelBox(c) : null;
  }

  /** Read an area (points) of the crop again on its own, clipped to the crop the base pass read; null when it misses. */
  async readArea(area: Rect, minConfidence: number, pass: OcrPass, psm?: OcrPageSegMode): Promise<OcrLine[] | null> {
    const px = this.areaPixels(area);
    if (!px) return null;
    return this.read(this.relative(px), undefined, { crop: px, ownTop: -Infinity, ownBottom: Infinity }, minConfidence, psm === undefined ? { pass } : { psm, pass });
  }
}

/** The median height of `boxes` (the upper one of an even count, as `estimateGlyphHeight`), 0 without any. */
function medianHeight(boxes: PixelBox[]): number {
  if (boxes.length === 0) return 0;
  const h = boxes.map((b) => b.height).sort((a, b) => a - b);
  return h[Math.floor(h.length / 2)]!;
}
