/**
 * From tesseract's page to deskd's lines: one band's blocks → paragraphs → lines → words mapped back to
 * logical global points (undoing the band's offset and the upscale), confidence-filtered and split at wide
 * gaps; the vertical-text blocks the layout found; and the merging of lines read by several passes. Pure,
 * but for the side table of the characters read in each word ({@link SYMBOLS}).
 */
import type Tesseract from 'tesseract.js';
import type { Rect } from '../../platform/types.js';
import { intersectionArea, union, type PixelBox } from '../geometry.js';
import type { OcrSymbol } from './glyphVote.js';
import type { Band } from './bands.js';
import type { OcrLine, OcrWord } from './types.js';

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
export const SYMBOLS = new WeakMap<OcrWord, OcrSymbol[]>();

/** A box of the prepared image mapped to the source image's pixels (`bandOffset + box / factor`, rounded outwards). */
function bboxToSourcePixels(m: PageMapping, b: Tesseract.Bbox): PixelBox {
  const left = Math.floor(m.band.crop.left + b.x0 / m.factor);
  const top = Math.floor(m.band.crop.top + b.y0 / m.factor);
  return { left, top, width: Math.ceil(m.band.crop.left + b.x1 / m.factor) - left, height: Math.ceil(m.band.crop.top + b.y1 / m.factor) - top };
}

/** Insert `line` into `lines` (ordered by top edge) before the first line whose top is lower. Mutates `lines`. */
export function insertByTop(lines: OcrLine[], line: OcrLine): void {
  const at = lines.findIndex((l) => l.bounds.y > line.bounds.y);
  lines.splice(at < 0 ? lines.length : at, 0, line);
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
export function splitByRow(line: OcrLine): OcrLine[] {
  const rows: OcrWord[][] = [];
  for (const w of [...line.words].sort((a, b) => a.bounds.x - b.bounds.x)) {
    const cy = w.bounds.y + w.bounds.height / 2;
    const row = rows.find((r) => Math.abs(r[0]!.bounds.y + r[0]!.bounds.height / 2 - cy) <= r[0]!.bounds.height / 2);
    if (row) row.push(w);
    else rows.push([w]);
  }
  return rows.map(makeLine);
}

/** A line of `words` (in that order): their text joined by spaces, bounds their union. */
export function makeLine(words: OcrWord[]): OcrLine {
  return { text: words.map((w) => w.text).join(' '), bounds: union(words.map((w) => w.bounds))!, words };
}

/** `v` rounded to 0.01. */
function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

