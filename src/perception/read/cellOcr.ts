/**
 * Second look at the empty cells of OCR tables. Full-frame OCR (page segmentation "auto", psm 3) drops
 * short isolated tokens — a lone "7" or "0" in a number column of a canvas table (bench:read `canvas`: 8 of
 * 12 cells of the Returns column) — while a single-line read (psm 7) of the cell alone reads them. So an
 * empty OCR cell whose pixels hold ink is read again on its own, from the masked frame (the pixels the
 * agent may see: `Observer.capture`), with a one-worker single-line engine started on first use and closed
 * when idle. A cell whose pixels have not changed is not read again (remembered by a hash of its pixels).
 */
import type { DisplayInfo, RawImage, Rect } from '../../platform/types.js';
import type { ReadContent } from './types.js';
import { clip, union } from '../geometry.js';
import { type ClosableRecognizer, type IdleEngine, idleEngineOf, pixelKey, remember } from './lineEngine.js';

/** Reads the text of rectangles of a display (global points); null where a rectangle holds no ink. */
export type CellReader = (display: DisplayInfo, rects: Rect[]) => Promise<(string | null)[]>;

/** Most cells read again per read (each costs a single-line OCR call, tens of ms warm). */
export const MAX_CELL_REREADS = 120;

/**
 * Whether a rectangle of an image holds ink: at least 4 pixels whose luminance differs by ≥ 64 levels
 * from the rectangle's most common luminance (its background). Rect in global points.
 */
export function hasInk(img: RawImage, r: Rect): boolean {
  const x0 = Math.max(0, Math.floor((r.x - img.origin.x) * img.scale));
  const y0 = Math.max(0, Math.floor((r.y - img.origin.y) * img.scale));
  const x1 = Math.min(img.width, Math.ceil((r.x + r.width - img.origin.x) * img.scale));
  const y1 = Math.min(img.height, Math.ceil((r.y + r.height - img.origin.y) * img.scale));
  if (x1 <= x0 || y1 <= y0) return false;
  const hist = new Uint32Array(256);
  const lum = (i: number) => (img.data[i]! * 77 + img.data[i + 1]! * 150 + img.data[i + 2]! * 29) >> 8;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) hist[lum((y * img.width + x) * 4)]!++;
  let bg = 0;
  for (let v = 1; v < 256; v++) if (hist[v]! > hist[bg]!) bg = v;
  let ink = 0;
  for (let v = 0; v < 256; v++) if (Math.abs(v - bg) >= 64) ink += hist[v]!;
  return ink >= 4;
}

/** Cells remembered by their pixels ({@link pixelKey}) (an unchanged screen is not read again). */
const CACHE_SIZE = 2000;

/**
 * A {@link CellReader} over `capture` (must return masked pixels; it is asked for the region holding the
 * rectangles, global points, clipped to the display: a capture of the whole display is fine too) and a
 * single-line recognizer made by `create` on first use and `close`d after `idleMs` ms without use, or an
 * {@link IdleEngine} shared with other readers (then its own idle time applies).
 */
export function cellReader(capture: (display: DisplayInfo, region: Rect) => Promise<RawImage>, create: IdleEngine | (() => Promise<ClosableRecognizer>), idleMs = 60_000): CellReader {
  const engine = idleEngineOf(create, idleMs);
  const cache = new Map<string, string | null>();
  return async (display, rects) => {
    if (rects.length === 0) return [];
    const u = union(rects)!;
    const x0 = Math.floor(u.x);
    const y0 = Math.floor(u.y);
    const around = clip({ x: x0, y: y0, width: Math.ceil(u.x + u.width) - x0, height: Math.ceil(u.y + u.height) - y0 }, display);
    if (!around) return rects.map(() => null);
    const img = await capture(display, around);
    const inked = rects.map((r) => hasInk(img, r));
    if (!inked.some(Boolean)) return rects.map(() => null);
    engine.hold();
    try {
      const out: (string | null)[] = [];
      for (let i = 0; i < rects.length; i++) {
        if (!inked[i]) {
          out.push(null);
          continue;
        }
        const key = pixelKey(img, rects[i]!);
        if (cache.has(key)) {
          out.push(cache.get(key)!);
          continue;
        }
        const r = await (await engine.get()).recognize(img, { region: rects[i]! });
        const text = r.words.map((w) => w.text).join(' ').trim() || null;
        remember(cache, key, text, CACHE_SIZE);
        out.push(text);
      }
      return out;
    } finally {
      engine.release();
    }
  };
}

/**
 * Fill the empty cells of OCR tables that hold ink with what `read` finds there (at most
 * {@link MAX_CELL_REREADS}). Cells are padded by 3 points sideways; nothing else changes.
 * @returns how many cells got text.
 */
export async function rereadEmptyOcrCells(c: ReadContent, display: DisplayInfo, read: CellReader): Promise<number> {
  const targets: { cell: { text: string; bounds: Rect } }[] = [];
  for (const t of c.tables) {
    if (t.source !== 'ocr') continue;
    for (const row of t.rows) for (const cell of row.cells) if (cell.text === '' && !cell.spannedBy && targets.length < MAX_CELL_REREADS) targets.push({ cell });
  }
  if (targets.length === 0) return 0;
  const texts = await read(display, targets.map(({ cell: { bounds: b } }) => ({ x: b.x - 3, y: b.y - 2, width: b.width + 6, height: b.height + 4 })));
  let filled = 0;
  texts.forEach((t, i) => {
    if (t) {
      targets[i]!.cell.text = t;
      filled++;
    }
  });
  return filled;
}
