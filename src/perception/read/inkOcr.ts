/**
 * Second look for the missing half of a pixel-drawn pair (issue 16, bench:read `kpi`).
 *
 * The full-frame OCR misses a value drawn inside a gauge's ring ("120MB", 26 px bold, its first and last
 * glyphs within a few pixels of the ring): tesseract's page layout takes the text and the ring for one
 * picture. Read alone, the same area is still lost when the ring is in it (measured on the bench page: 3
 * of 4 gauge boxes gave nothing or junk). What makes it readable is separating the text's ink from the
 * drawing's: text is drawn in the colour farthest from the background (dark on light, light on dark),
 * rings, bars and tracks in lighter tints. So the box is re-drawn as black on white keeping only the pixels
 * within a quarter of the way from that extreme ink to the background ({@link isolateInk}), split into rows
 * of ink, and each row read as one line; a row that gives no word of confidence ≥ 0.8 is read again from
 * the original grey levels around that ink ({@link softInk}: thin small text keeps its strokes). Measured
 * on the bench page's saved frame: all four gauge values read exactly (confidence 0.90–0.94) where the same
 * boxes unprepared gave 1 of 4; a 14 px label under a ring ("CPU") needs the soft pass (hard cut: "CPL)" 0.65).
 *
 * Where it looks ({@link orphanBoxes}): around each label or value read by OCR alone that found no other
 * half ({@link unpairedOcrItems}), within the reach of the pairing rule (`pairs.ts`: 4 × the larger text
 * height): above and below a label (a value may be 2.5 × the label's height, so 10 label heights), above
 * and below a value (5 of its heights). Words found there that the observation already holds are dropped;
 * the pairs are then read again with the rest.
 *
 * Known limits: a value drawn lighter than the darkest text in its box (a green "+12%" under a black label)
 * is lost with the drawing; at most {@link MAX_ORPHAN_BOXES} boxes and {@link MAX_INK_CALLS} line reads per
 * read; a box holding more than {@link MAX_ROWS_PER_BOX} rows of ink (a text area) is not read.
 */
import type { DisplayInfo, RawImage, Rect } from '../../platform/types.js';
import type { OcrWord } from '../elements.js';
import { clip, union } from '../geometry.js';
import { type ClosableRecognizer, type IdleEngine, idleEngineOf, pixelKey, remember } from './lineEngine.js';
import { centreIn, cx, wordsOf } from './grid.js';
import { readPairs, unpairedOcrItems, type UnpairedItem } from './pairs.js';
import type { ReadContent } from './types.js';
import type { ReadSource } from './index.js';

/** Reads the words of rectangles of a display (global points) after {@link isolateInk}; words in global points. */
export type InkReader = (display: DisplayInfo, rects: Rect[]) => Promise<OcrWord[][]>;

/** Most boxes looked at again per read. */
export const MAX_ORPHAN_BOXES = 12;
/**
 * Most rows of ink a box may hold to be read: the missing half is one line, with a few more around it (a
 * card's label, value and note); a box full of text rows is a text area the page OCR has read already (a
 * terminal, a paragraph), not the inside of a gauge.
 */
export const MAX_ROWS_PER_BOX = 4;
/** Most single-line OCR calls per read (each tens of ms warm). */
export const MAX_INK_CALLS = 24;
/** Fraction of the way from the extreme ink to the background kept as ink. */
export const INK_FRACTION = 0.25;
/** Least confidence of a word read from a prepared box (the rows hold only ink: what is read there is usually right or junk). */
const MIN_CONFIDENCE = 0.8;

const lum = (d: Buffer | Uint8Array, i: number) => (d[i]! * 77 + d[i + 1]! * 150 + d[i + 2]! * 29) >> 8;

/**
 * A rectangle of `img` (global points) re-drawn black on white, keeping only the pixels whose luminance lies
 * within `fraction` of the way from the extreme ink (the luminance reached by the 20 pixels farthest from
 * the background, on the side away from it) to the background (the most common luminance).
 * @returns the prepared image (origin at the rectangle, same scale), or null when the rectangle is outside
 *   the image or holds fewer than 20 pixels of ink.
 */
export function isolateInk(img: RawImage, r: Rect, fraction = INK_FRACTION): RawImage | null {
  const x0 = Math.max(0, Math.floor((r.x - img.origin.x) * img.scale));
  const y0 = Math.max(0, Math.floor((r.y - img.origin.y) * img.scale));
  const x1 = Math.min(img.width, Math.ceil((r.x + r.width - img.origin.x) * img.scale));
  const y1 = Math.min(img.height, Math.ceil((r.y + r.height - img.origin.y) * img.scale));
  const w = x1 - x0;
  const h = y1 - y0;
  if (w <= 0 || h <= 0) return null;
  const ch = img.channels;
  const hist = new Uint32Array(256);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) hist[lum(img.data, (y * img.width + x) * ch)]!++;
  let bg = 0;
  for (let v = 1; v < 256; v++) if (hist[v]! > hist[bg]!) bg = v;
  const dark = bg >= 128;
  let ext = bg;
  let acc = 0;
  for (let k = 0; k < 256; k++) {
    const v = dark ? k : 255 - k;
    acc += hist[v]!;
    if (acc >= 20) {
      ext = v;
      break;
    }
  }
  if (Math.abs(bg - ext) < 64) return null;
  const thr = ext + fraction * (bg - ext);
  const out = Buffer.alloc(w * h * 4, 255);
  let ink = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const l = lum(img.data, ((y0 + y) * img.width + x0 + x) * ch);
      if (dark ? l <= thr : l >= thr) {
        const o = (y * w + x) * 4;
        out[o] = out[o + 1] = out[o + 2] = 0;
        ink++;
      }
    }
  }
  if (ink < 20) return null;
  return { data: out, width: w, height: h, channels: 4, scale: img.scale, origin: { x: img.origin.x + x0 / img.scale, y: img.origin.y + y0 / img.scale } };
}

/**
 * The pixels of `src` (grey levels) where `mask` (from {@link isolateInk}) or one of its 8 neighbours has
 * ink, white elsewhere: the text with its anti-aliased edges, without the drawing around it. Small regular
 * text (a 14 px label) loses too much of its strokes to the hard cut of the mask ("CPU" read "CPL)").
 */
export function softInk(src: RawImage, mask: RawImage): RawImage {
  const w = mask.width;
  const h = mask.height;
  const ox = Math.round((mask.origin.x - src.origin.x) * src.scale);
  const oy = Math.round((mask.origin.y - src.origin.y) * src.scale);
  const inked = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && mask.data[(y * w + x) * 4] === 0;
  const out = Buffer.alloc(w * h * 4, 255);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let near = false;
      for (let dy = -1; dy <= 1 && !near; dy++) for (let dx = -1; dx <= 1 && !near; dx++) near = inked(x + dx, y + dy);
      if (!near) continue;
      const v = lum(src.data, ((oy + y) * src.width + ox + x) * src.channels);
      const o = (y * w + x) * 4;
      out[o] = out[o + 1] = out[o + 2] = v;
    }
  }
  return { ...mask, data: out };
}

/**
 * Rows of ink of a prepared image (from {@link isolateInk}): runs of pixel rows holding ink, split at 2 or
 * more blank rows, at least 5 pixels high, each cut to its ink's width and padded by 3 pixels.
 * @returns rectangles in global points.
 */
export function inkRows(img: RawImage): Rect[] {
  const rows: { y0: number; y1: number; x0: number; x1: number }[] = [];
  let cur: { y0: number; y1: number; x0: number; x1: number } | null = null;
  let blank = 0;
  for (let y = 0; y < img.height; y++) {
    let lx = -1;
    let rx = -1;
    for (let x = 0; x < img.width; x++) {
      if (img.data[(y * img.width + x) * 4] === 0) {
        if (lx < 0) lx = x;
        rx = x;
      }
    }
    if (lx < 0) {
      if (cur && ++blank >= 2) {
        rows.push(cur);
        cur = null;
      }
      continue;
    }
    blank = 0;
    if (!cur) cur = { y0: y, y1: y, x0: lx, x1: rx };
    else {
      cur.y1 = y;
      cur.x0 = Math.min(cur.x0, lx);
      cur.x1 = Math.max(cur.x1, rx);
    }
  }
  if (cur) rows.push(cur);
  const s = img.scale;
  return rows
    .filter((r) => r.y1 - r.y0 + 1 >= 5)
    .map((r) => {
      const x = Math.max(0, r.x0 - 3);
      const y = Math.max(0, r.y0 - 3);
      const x2 = Math.min(img.width, r.x1 + 4);
      const y2 = Math.min(img.height, r.y1 + 4);
      return { x: img.origin.x + x / s, y: img.origin.y + y / s, width: (x2 - x) / s, height: (y2 - y) / s };
    });
}

/**
 * Where the other half of each unpaired item may be (global points, clipped to `display`), at most
 * {@link MAX_ORPHAN_BOXES}, nearest the top first; boxes whose centre lies in `exclude` (tables, boards) are left out.
 */
export function orphanBoxes(items: readonly UnpairedItem[], display: Rect, exclude: readonly Rect[] = []): Rect[] {
  const out: Rect[] = [];
  for (const it of [...items].sort((a, b) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x)) {
    const h = it.height;
    const c = cx(it.bounds);
    const half = it.kind === 'label' ? Math.max(6 * h, it.bounds.width / 2 + h) : Math.max(3 * h, it.bounds.width / 2 + 2 * h);
    const reach = it.kind === 'label' ? 10 * h : 5 * h;
    for (const y of [it.bounds.y - reach, it.bounds.y + it.bounds.height]) {
      const b = clip({ x: Math.round(c - half), y: Math.round(y), width: Math.round(2 * half), height: Math.round(reach) }, display);
      if (b && b.height >= 8 && !exclude.some((x) => centreIn(b, x))) out.push(b);
    }
    if (out.length >= MAX_ORPHAN_BOXES) break;
  }
  return out.slice(0, MAX_ORPHAN_BOXES);
}

const CACHE_SIZE = 500;

/**
 * An {@link InkReader} over `capture` (must return masked pixels of the region asked, global points: one
 * call per read, for the region holding every box) and a
 * single-line recognizer made by `create` on first use, closed after `idleMs` ms without use (or an
 * {@link IdleEngine} shared with other readers). Boxes whose pixels were read before are answered from a cache.
 */
export function inkReader(capture: (display: DisplayInfo, region: Rect) => Promise<RawImage>, create: IdleEngine | (() => Promise<ClosableRecognizer>), idleMs = 60_000): InkReader {
  const engine = idleEngineOf(create, idleMs);
  const cache = new Map<string, OcrWord[]>();
  return async (display, rects) => {
    const out: OcrWord[][] = [];
    let calls = 0;
    const boxes = rects.map((r) => clip(r, display));
    const inside = boxes.filter((b): b is Rect => b !== undefined);
    if (inside.length === 0) return rects.map(() => []);
    engine.hold();
    try {
      // One capture of the region holding every box (one round trip to the capture backend, not one per box).
      const u = union(inside)!;
      const x0 = Math.floor(u.x);
      const y0 = Math.floor(u.y);
      const img = await capture(display, clip({ x: x0, y: y0, width: Math.ceil(u.x + u.width) - x0, height: Math.ceil(u.y + u.height) - y0 }, display)!);
      for (const box of boxes) {
        if (!box) {
          out.push([]);
          continue;
        }
        const key = pixelKey(img, box);
        const hit = cache.get(key);
        if (hit) {
          out.push(hit);
          continue;
        }
        const prepared = isolateInk(img, box);
        const words: OcrWord[] = [];
        if (prepared) {
          let soft: RawImage | null = null;
          const sure = (ws: OcrWord[]) => ws.filter((w) => w.text.trim() !== '' && w.confidence >= MIN_CONFIDENCE);
          const rows = inkRows(prepared);
          if (rows.length > MAX_ROWS_PER_BOX || calls + rows.length > MAX_INK_CALLS) {
            out.push([]);
            continue;
          }
          const e = await engine.get();
          for (const row of rows) {
            // The hard-cut ink first (bold values), then the soft one (thin small text) when nothing sure came of it.
            calls++;
            let got = sure((await e.recognize(prepared, { region: row })).words);
            if (got.length === 0 && calls < MAX_INK_CALLS) {
              calls++;
              got = sure((await e.recognize((soft ??= softInk(img, prepared)), { region: row })).words);
            }
            words.push(...got);
          }
        }
        remember(cache, key, words, CACHE_SIZE);
        out.push(words);
      }
    } finally {
      engine.release();
    }
    return out;
  };
}

/** Roles whose bounds hold pixels rather than one text (their OCR words are not "known" by being inside them). */
const PIXEL_HOSTS: ReadonlySet<string> = new Set(['canvas', 'image', 'window', 'document', 'dialog', 'application', 'generic', 'group']);

/**
 * Look again for the missing halves of pairs read from pixels ({@link orphanBoxes}, {@link isolateInk}) and,
 * when new words turn up, read the pairs again with them (`content.pairs` is replaced when that gives more
 * pairs). `region`: only what lies inside it, as the read. Words the observation already holds (OCR words
 * overlapping them, accessible text around them) are not added.
 * @returns how many pairs were added.
 */
export async function completePairs(content: ReadContent, src: ReadSource, display: DisplayInfo, read: InkReader, region?: Rect): Promise<number> {
  const elements = region ? src.elements.filter((e) => centreIn(e.bounds, region)) : src.elements;
  const words = wordsOf(src.lines).filter((w) => !region || centreIn(w.bounds, region));
  const exclude = [...content.tables.map((t) => t.bounds), ...content.boards.map((b) => b.bounds)];
  const orphans = unpairedOcrItems(elements, words, content.pairs, exclude);
  if (orphans.length === 0) return 0;
  const boxes = orphanBoxes(orphans, region ? (clip(region, display) ?? display) : display, exclude);
  if (boxes.length === 0) return 0;
  const held = elements.filter((e) => e.name !== '' && e.source !== 'ocr' && !PIXEL_HOSTS.has(e.role) && e.bounds.width * e.bounds.height < 200_000).map((e) => e.bounds);
  const known = (w: OcrWord, others: readonly OcrWord[]) => others.some((x) => centreIn(w.bounds, x.bounds) || centreIn(x.bounds, w.bounds)) || held.some((b) => centreIn(w.bounds, b));
  const fresh: OcrWord[] = [];
  for (const w of (await read(display, boxes)).flat()) if (!known(w, words) && !known(w, fresh)) fresh.push(w);
  if (fresh.length === 0) return 0;
  const pairs = readPairs(elements, [...words, ...fresh], exclude);
  if (pairs.length <= content.pairs.length) return 0;
  const added = pairs.length - content.pairs.length;
  content.pairs = pairs;
  return added;
}
