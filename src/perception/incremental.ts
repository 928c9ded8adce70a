/**
 * Incremental OCR: read only what changed since the previous frame and reuse the rest.
 *
 * The frame is read region by region, as {@link readWindows} does (each visible window on its own, top-most
 * first; the whole display without windows). Per region, the previous frame's words and lines are kept with
 * the pixels they were read from. On the next frame:
 * - no tile of the region changed → its words are reused as they are;
 * - the region's content moved vertically (scrolling, {@link detectScroll}) → the words whose pixels (and a
 *   ring around them) equal the shifted previous frame's byte for byte are translated, and only what matches
 *   neither the shifted nor the unshifted frame (the newly exposed lines, a moved scrollbar thumb), the seams
 *   between fixed and scrolled content where text runs across them ({@link seamLinked}: not where blank rows
 *   part them, as at the top of a log pane whose first line went), and the words cut by the edge of the
 *   scrolled part (their ink partly still there) are re-read;
 * - otherwise the changed tiles are found, and the re-read starts from the changed pixels' tight box
 *   ({@link unexplainedBounds}: to the pixel, to the row of a tile column when scrolled), not from whole
 *   tiles; it is grown by a margin (above and below up to the first blank rows, at most `scrollMargin`),
 *   then to whole text lines (every previous line or word the rectangle's core touches is swallowed, until
 *   nothing more is; the `lineMargin` around a swallowed item swallows nothing by itself and is cut back
 *   where it would take in a sliver of an item not swallowed), so no word is cut; each is read with
 *   `recognize(img, {region})`; previous words whose centre lies in a re-read rectangle are dropped and the
 *   new ones added;
 * - more than `fullFraction` of the region dirty, a region new or moved, a different frame geometry, or
 *   `fresh` → the region is read whole.
 * A previous word is kept only when every tile under it is unchanged, or its own pixels (with a ring of 3
 * pixels left and right and one above and below) are unchanged (when scrolling: equal at the shifted place;
 * the ring is always compared then), so a word whose pixels changed is never reported from the cache.
 * The image of the previous read given again (the same buffer: pixels are read-only, see `RawCapture`) has
 * no changed tile; the observer does so when the platform reports nothing drawn since its last frame.
 *
 * Geometry: regions, words and lines in logical global points; tiles in image pixels.
 */
import type { RawImage, Rect, WindowInfo } from '../platform/types.js';
import type { OcrLine, OcrWord } from './elements.js';
import { center, clip, contains, grow, intersects, mergeOverlapping, mergeSameLine, pixelsToPoints, pointsToPixels, trimTo, unionRect, type PixelRect } from './geometry.js';
import { TreeTextReader, type TreeTextSource } from './treeTextReader.js';
import type { RegionRecognizer } from './ocr/types.js';
import { changedTiles, detectScroll, flatRows, rowSegmentEqual, sameGeometry, seamLinked, tileGrid, tilesToRects, TILE, unexplainedBounds, type TileGrid } from './changes.js';

/** What the incremental reader needs from an OCR engine (the observer's `TextRecognizer`), in `ocr/types.ts`. */
export type { RegionRecognizer };

/** Options of {@link IncrementalReader}. */
export interface IncrementalOptions {
  /** Tile edge, image pixels (default 32). */
  tile?: number;
  /** Fraction of a region's area above which it is read whole instead of piecewise (default 0.5). */
  fullFraction?: number;
  /** Margin added around changed tiles before growing to lines, points (default 6). */
  margin?: number;
  /**
   * Largest vertical margin around re-read rectangles of a scrolled region, points (default 24): a line
   * entering the view is half in the exposed strip and half in the shifted part, where the previous frame had
   * only a cut line, so no previous word marks how far to grow. The margin stops earlier at the first blank
   * rows (3 rows each repeating the row above, within the rectangle's columns), never below `margin`;
   * unscrolled, it is at most half a tile.
   */
  scrollMargin?: number;
  /** Margin added around each swallowed line or word, points (default 4). */
  lineMargin?: number;
  /**
   * Items taller than this (points) are not swallowed when growing to lines (default 64): tesseract sometimes
   * returns a "word" covering a table grid or a picture, and growing to it would re-read half the screen.
   * Such an item is still dropped when a change touches it.
   */
  maxLineHeight?: number;
  /** Changed tiles, over at least 3 tile rows, before a scroll is looked for (default 8). */
  scrollMinTiles?: number;
}

/** How one read was done. */
export interface IncrementalStats {
  /** `full`: every region read whole; `unchanged`: nothing read; `incremental`: some regions read piecewise or reused. */
  mode: 'full' | 'incremental' | 'unchanged';
  /** Regions (windows) considered. */
  regions: number;
  /** Regions read whole. */
  fullRegions: number;
  /** Regions reused without reading. */
  reusedRegions: number;
  /** Regions whose content was found scrolled (words translated). */
  scrolledRegions: number;
  /** Rectangles read piecewise, logical points. */
  rereadRects: Rect[];
  /** Share of the display's area sent to OCR (0..1, overlaps counted twice). */
  readFraction: number;
}

/** Result of {@link IncrementalReader.read}. Words/lines in logical global points. */
export interface IncrementalResult {
  words: OcrWord[];
  lines: OcrLine[];
  stats: IncrementalStats;
}

interface RegionState {
  region: Rect;
  words: OcrWord[];
  lines: OcrLine[];
}

/** The regions {@link readWindows} reads: visible windows clipped to the display, top-most first; else the display. */
export function readRegions(windows: WindowInfo[], display: Rect): { key: string; region: Rect }[] {
  const out: { key: string; region: Rect }[] = [];
  for (const w of windows) {
    const r = clip(w.bounds, display);
    if (r) out.push({ key: `${w.id}@${r.x},${r.y},${r.width},${r.height}`, region: r });
  }
  if (out.length === 0) out.push({ key: `display@${display.x},${display.y},${display.width},${display.height}`, region: { x: display.x, y: display.y, width: display.width, height: display.height } });
  return out;
}

/**
 * Keeps the previous frame and its OCR per region, and reads only what changed (see the module comment).
 * Calls are serialised: the cache always describes exactly the last frame read. A failed read leaves the
 * previous state in place, so the next read compares with the last frame that was read successfully.
 */
export class IncrementalReader {
  private prev: RawImage | null = null;
  private states = new Map<string, RegionState>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly tile: number;
  private readonly fullFraction: number;
  private readonly margin: number;
  private readonly lineMargin: number;
  private readonly scrollMinTiles: number;
  private readonly maxLineHeight: number;
  private readonly scrollMargin: number;

  constructor(private readonly ocr: RegionRecognizer, opts: IncrementalOptions = {}) {
    this.tile = opts.tile ?? TILE;
    this.fullFraction = opts.fullFraction ?? 0.5;
    this.margin = opts.margin ?? 6;
    this.lineMargin = opts.lineMargin ?? 4;
    this.scrollMinTiles = opts.scrollMinTiles ?? 8;
    this.maxLineHeight = opts.maxLineHeight ?? 64;
    this.scrollMargin = opts.scrollMargin ?? 24;
  }

  /** Forget the previous frame: the next read is a full one. */
  reset(): void {
    this.prev = null;
    this.states.clear();
  }

  /**
   * Read `image` (already masked) window by window, reusing what did not change since the last read.
   * `fresh: true` reads everything. The image buffer is kept (not copied) as the next read's reference:
   * callers must not modify it afterwards. `known`: the accessibility tree's text for this frame
   * (`TreeTextSource`), taken where the pixels confirm it (`TreeTextReader`); without it OCR reads everything.
   * @throws whatever the recognizer throws (the cache is then left as it was).
   */
  read(image: RawImage, windows: WindowInfo[], display: Rect, opts: { fresh?: boolean; known?: TreeTextSource } = {}): Promise<IncrementalResult> {
    const task = this.chain.then(() => this.readNow(image, windows, display, opts.fresh === true, opts.known));
    this.chain = task.catch(() => undefined);
    return task;
  }

  private async readNow(image: RawImage, windows: WindowInfo[], display: Rect, fresh: boolean, known?: TreeTextSource): Promise<IncrementalResult> {
    const regions = readRegions(windows, display);
    // Text the accessibility tree gave and the pixels confirmed (`treeText.ts`): regions read whole and changed
    // rectangles take it where it holds, OCR reads the rest.
    const tree = known ? new TreeTextReader(this.ocr, image, known) : null;
    const comparable = !fresh && this.prev !== null && sameGeometry(this.prev, image);
    const stats: IncrementalStats = { mode: 'full', regions: regions.length, fullRegions: 0, reusedRegions: 0, scrolledRegions: 0, rereadRects: [], readFraction: 0 };
    let readArea = 0;
    const next = new Map<string, RegionState>();
    await Promise.all(
      regions.map(async ({ key, region }) => {
        const old = comparable ? this.states.get(key) : undefined;
        const plan = old ? (image.data === this.prev!.data ? { full: false, shift: 0, rects: [], words: old.words, lines: old.lines } : this.plan(this.prev!, image, old, region)) : null;
        if (!plan || plan.full) {
          const r = (await tree?.readRegion(region)) ?? (await this.ocr.recognize(image, { region }));
          next.set(key, { region, words: r.words, lines: r.lines });
          stats.fullRegions++;
          readArea += region.width * region.height;
          return;
        }
        if (plan.rects.length === 0 && plan.shift === 0) stats.reusedRegions++;
        if (plan.shift !== 0) stats.scrolledRegions++;
        const plain = () => Promise.all(plan.rects.map((rect) => this.ocr.recognize(image, { region: rect })));
        const reads = (await tree?.readRects(plan.rects, old!.words, this.prev, plain, plan.shift !== 0)) ?? (await plain());
        const inRead = (b: Rect) => plan.rects.some((r) => contains(r, center(b)));
        const words = plan.words.filter((w) => !inRead(w.bounds));
        const lines = plan.lines.filter((l) => !inRead(l.bounds));
        reads.forEach((r, i) => {
          const rect = plan.rects[i]!;
          words.push(...r.words.filter((w) => contains(rect, center(w.bounds))));
          lines.push(...r.lines.filter((l) => contains(rect, center(l.bounds))));
          readArea += rect.width * rect.height;
          stats.rereadRects.push(rect);
        });
        lines.sort((a, b) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x);
        words.sort((a, b) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x);
        next.set(key, { region, words, lines });
      }),
    );
    this.states = next;
    this.prev = image;
    stats.readFraction = Math.round((readArea / Math.max(1, display.width * display.height)) * 1000) / 1000;
    if (stats.fullRegions < regions.length) stats.mode = stats.reusedRegions === regions.length ? 'unchanged' : 'incremental';
    return { ...combine(regions.map(({ key, region }) => ({ region, state: next.get(key)! }))), stats };
  }

  /**
   * Decide how to bring one region's cached words up to date with `cur`: the words/lines still valid (at
   * their new place) and the rectangles (points) to re-read; `full` when reading the region whole is
   * simpler.
   */
  private plan(prev: RawImage, cur: RawImage, old: RegionState, region: Rect): { full: boolean; shift: number; rects: Rect[]; words: OcrWord[]; lines: OcrLine[] } {
    const FULL = { full: true, shift: 0, rects: [], words: [], lines: [] };
    const pix = pointsToPixels(cur, region);
    if (!pix) return FULL;
    const grid = tileGrid(pix, this.tile);
    const flags0 = changedTiles(prev, cur, grid, 0);
    const n0 = count(flags0);
    if (n0 === 0) return { full: false, shift: 0, rects: [], words: old.words, lines: old.lines };

    let shift = 0;
    let dirty = flags0;
    // Tiles that changed (in place, or at the shifted place too when scrolled), as opposed to seam tiles.
    let changed = flags0;
    let flagsS: boolean[] | null = null;
    // Rows that repeat the row above, enough of them to part two lines of text (image pixels).
    const gap = Math.max(3, Math.round(3 * cur.scale));
    if (n0 >= this.scrollMinTiles && tileRows(grid, flags0) >= 3) {
      const s = detectScroll(prev, cur, pix);
      if (s) {
        const fs = changedTiles(prev, cur, grid, s.shift);
        const both = flags0.map((f, i) => f && fs[i]!);
        const d = [...both];
        markSeams(grid, flags0, fs, d, (a, b) => seamLinked(prev, cur, grid, a, b, s.shift, gap));
        // Keep the shift only when it explains part of the change.
        if (count(d) < n0) {
          shift = s.shift;
          flagsS = fs;
          dirty = d;
          // A tile that changed both ways may hold fixed and scrolled rows with text across them (a line cut
          // by the edge of a scrolled pane): such a tile is a seam, read whole.
          changed = both.map((f, i) => f && !seamLinked(prev, cur, grid, i, i, s.shift, gap));
        }
      }
    }
    if (count(dirty) > this.fullFraction * dirty.length) return FULL;

    // Previous items that are still valid, at their place in `cur`.
    const dy = shift / cur.scale;
    const cleanUnder = (flags: boolean[], b: Rect): boolean => {
      const p = pointsToPixels(cur, b);
      if (!p) return false;
      for (let r = Math.floor((p.y - pix.y) / grid.tile); r <= Math.floor((p.y + p.height - 1 - pix.y) / grid.tile); r++) {
        for (let c = Math.floor((p.x - pix.x) / grid.tile); c <= Math.floor((p.x + p.width - 1 - pix.x) / grid.tile); c++) {
          if (r < 0 || c < 0 || r >= grid.rows || c >= grid.cols) return false;
          if (flags[r * grid.cols + c]) return false;
        }
      }
      return true;
    };
    // Or, under a changed tile, when the pixels under it and a ring around it (`ringX` pixels left and right,
    // one above and below: a glyph added next to a word makes it another word) are those it was read from,
    // byte for byte: a re-read starts from the changed pixels, not from whole tiles, so a word that shares a
    // tile with a change is kept when its own pixels did not change. Ring pixels outside the region are not
    // compared; when scrolled, a ring or item row whose source lies outside the region fails.
    const ringX = Math.max(2, Math.round(3 * cur.scale));
    const sameAs = (b: Rect, s: number): boolean => {
      const p = pointsToPixels(cur, b);
      if (!p) return false;
      const x0 = Math.max(pix.x, p.x - ringX), x1 = Math.min(pix.x + pix.width, p.x + p.width + ringX);
      const y0 = Math.max(pix.y, p.y - 1), y1 = Math.min(pix.y + pix.height, p.y + p.height + 1);
      if (x1 <= x0 || p.y < pix.y || p.y + p.height > pix.y + pix.height) return false;
      for (let y = y0; y < y1; y++) {
        const sy = y + s;
        if (sy < pix.y || sy >= pix.y + pix.height || !rowSegmentEqual(cur, y, prev, sy, x0, x1)) return false;
      }
      return true;
    };
    // A scrolled word not kept whose pixels are still partly there at its new place (a row of its ink
    // matches shifted: a word cut by the edge of a scrolled pane) is read again there. (Unscrolled, a word
    // partly overwritten has changed pixels next to it, which are read, and the read grows to it.)
    const partly = (b: Rect, s: number): boolean => {
      const p = pointsToPixels(cur, b);
      if (!p) return false;
      const x0 = Math.max(pix.x, p.x), x1 = Math.min(pix.x + pix.width, p.x + p.width);
      if (x1 <= x0) return false;
      for (let y = Math.max(p.y, pix.y + 1); y < Math.min(p.y + p.height, pix.y + pix.height); y++) {
        const sy = y + s;
        if (sy < pix.y || sy >= pix.y + pix.height) continue;
        if (!rowSegmentEqual(cur, y, cur, y - 1, x0, x1) && rowSegmentEqual(cur, y, prev, sy, x0, x1)) return true;
      }
      return false;
    };
    const lost: Rect[] = [];
    const within = (b: Rect) => b.x >= region.x && b.y >= region.y && b.x + b.width <= region.x + region.width && b.y + b.height <= region.y + region.height;
    const keep = <T extends { text: string; bounds: Rect }>(items: T[], move: (it: T) => T, words = false): { kept: T[]; seen: Rect[] } => {
      const kept: T[] = [];
      const seen: Rect[] = [];
      for (const it of items) {
        seen.push(it.bounds);
        // Scrolled: a word whose tiles did not change may have moved content right next to it now, which
        // only the ring sees.
        if ((!flagsS && cleanUnder(flags0, it.bounds)) || sameAs(it.bounds, 0)) kept.push(it);
        if (flagsS) {
          const moved = move(it);
          const inside = clip(moved.bounds, region);
          if (!inside) continue;
          if (within(moved.bounds)) seen.push(moved.bounds);
          if (within(moved.bounds) && sameAs(moved.bounds, shift)) kept.push(moved);
          else if (words && partly(inside, shift)) lost.push(inside);
        }
      }
      return { kept: flagsS ? dedupe(kept) : kept, seen };
    };
    const moveRect = (b: Rect): Rect => ({ ...b, y: b.y - dy });
    const w = keep(old.words, (x) => ({ ...x, bounds: moveRect(x.bounds) }), true);
    const l = keep(old.lines, (x) => ({ ...x, bounds: moveRect(x.bounds), ...(x.words ? { words: x.words.map((y) => ({ ...y, bounds: moveRect(y.bounds) })) } : {}) }));

    // Dirty tiles → rectangles (points) → margin → grown to whole lines/words → merged, clipped to the region.
    const seen = [...w.seen, ...l.seen].filter((b) => b.height <= this.maxLineHeight);
    // What changed, to the pixel (to the row when scrolled): a re-read starts from the changed pixels, not
    // from whole tiles. Seam tiles (fixed and scrolled content meeting with text across) are read whole.
    const seams = dirty.map((f, i) => f && !changed[i]);
    const tight = tilesToRects(grid, changed)
      .map((p) => unexplainedBounds(prev, cur, p, grid, shift))
      .filter((p): p is PixelRect => p !== null);
    // A line of text may reach past the changed pixels (a line scrolled into view is half new, half the cut
    // line the previous frame showed; a glyph may change only in part): above and below, the margin reaches
    // the first blank rows (each repeating the row above), at most `far`.
    // Unscrolled, a change does not bring a cut line into view: half a tile (what rounding to tiles used to add) is enough.
    const far = shift !== 0 ? Math.max(this.margin, this.scrollMargin) : Math.max(this.margin, Math.min(this.scrollMargin, this.tile / 2 / cur.scale));
    const farPx = Math.ceil(far * cur.scale);
    /** Points from `p`'s top (`dir` -1) or bottom edge to the first run of `gap` blank rows beyond it (at least `margin`; `far` when none is that close). */
    const reach = (p: PixelRect, dir: -1 | 1): number => {
      const edge = dir < 0 ? p.y - 1 : p.y + p.height;
      for (let k = 0; k < farPx; k++) {
        const y = edge + dir * k;
        if (y < pix.y || y >= pix.y + pix.height) return far;
        // Rows lo..hi, `gap` of them starting at y and going away from `p`, all one and the same row.
        const lo = dir < 0 ? y - gap + 1 : y;
        const hi = dir < 0 ? y : y + gap - 1;
        if (lo < pix.y || hi >= pix.y + pix.height) return far;
        if (flatRows(cur, lo + 1, hi + 1, p.x, p.x + p.width)) return Math.max(this.margin, (k + 1) / cur.scale);
      }
      return far;
    };
    const margins = (p: PixelRect): Rect => {
      const r = pixelsToPoints(cur, p);
      const top = reach(p, -1);
      const bottom = reach(p, 1);
      return { x: r.x - this.margin, y: r.y - top, width: r.width + 2 * this.margin, height: r.height + top + bottom };
    };
    const starts = [...tight.map(margins), ...tilesToRects(grid, seams).map((p) => grow(pixelsToPoints(cur, p), this.margin, far)), ...lost.map((b) => grow(b, this.margin))];
    // Grown to whole lines: every previous line or word the rectangle's core (the changed area with its
    // margins, and the items swallowed so far) touches is swallowed, with `lineMargin` around it; that margin
    // never swallows more by itself, and is cut back where it would take in part of an item not swallowed
    // (reading a sliver of a line can make up a word that a whole read does not have).
    type Grown = Rect & { core: Rect; took: Set<number> };
    let rects: Grown[] = starts.map((r) => ({ ...r, core: r, took: new Set<number>() }));
    for (let again = true; again; ) {
      again = false;
      rects = rects.map((r) => {
        let core = r.core;
        let out: Rect = r;
        const took = r.took;
        for (let more = true; more; ) {
          more = false;
          seen.forEach((b, i) => {
            if (took.has(i) || !intersects(core, b)) return;
            took.add(i);
            core = unionRect(core, b);
            out = unionRect(unionRect(out, core), grow(b, this.lineMargin));
            more = true;
            again = true;
          });
        }
        return { ...out, core, took };
      });
      const combine = (a: Grown, b: Grown, box: Rect): Grown => ({ ...box, core: unionRect(a.core, b.core), took: new Set([...a.took, ...b.took]) });
      let merged = mergeOverlapping<Grown>(rects, { combine });
      // Pieces of one text line a little apart (a line number and the line's text) are read in one call:
      // every call has its own fixed cost in the engine. What lies between them is swallowed next pass.
      merged = mergeSameLine(merged, 2 * this.margin, combine);
      if (merged.length !== rects.length) again = true;
      rects = merged;
    }
    const reads = rects
      .map((r) => trimTo(r, r.core, seen))
      .map((r) => clip(r, region))
      .filter((r): r is Rect => r !== undefined);
    const area = reads.reduce((s, r) => s + r.width * r.height, 0);
    if (area > this.fullFraction * region.width * region.height) return FULL;
    return { full: false, shift, rects: reads, words: w.kept, lines: l.kept };
  }
}

/** Drop repeated items (same text at the same place within a point): identical content matching both unshifted and shifted. */
function dedupe<T extends { text: string; bounds: Rect }>(items: T[]): T[] {
  const out: T[] = [];
  for (const it of items) {
    const b = it.bounds;
    if (!out.some((o) => o.text === it.text && Math.abs(o.bounds.x - b.x) < 1 && Math.abs(o.bounds.y - b.y) < 1 && Math.abs(o.bounds.width - b.width) < 1)) out.push(it);
  }
  return out;
}

/**
 * Where scrolled and fixed content meet (a tile that matches only unshifted next to one that matches only
 * shifted), a word may be made of both: such tiles are re-read.
 */
function markSeams(g: TileGrid, flags0: boolean[], flagsS: boolean[], dirty: boolean[], linked: (a: number, b: number) => boolean): void {
  const onlyFixed = (i: number) => !flags0[i] && flagsS[i];
  const onlyMoved = (i: number) => flags0[i] && !flagsS[i];
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const i = r * g.cols + c;
      if (!onlyFixed(i) && !onlyMoved(i)) continue;
      const other = onlyFixed(i) ? onlyMoved : onlyFixed;
      for (let dr = -1; dr <= 1; dr++) {
        for (let dc = -1; dc <= 1; dc++) {
          const rr = r + dr, cc = c + dc;
          if (rr < 0 || cc < 0 || rr >= g.rows || cc >= g.cols) continue;
          const j = rr * g.cols + cc;
          if (!dirty[i] && other(j) && linked(i, j)) dirty[i] = true;
        }
      }
    }
  }
}

/** Combine per-region results the way {@link readWindows} does: a lower region's items under a higher region are dropped. */
function combine(items: { region: Rect; state: RegionState }[]): { words: OcrWord[]; lines: OcrLine[] } {
  const words: OcrWord[] = [];
  const lines: OcrLine[] = [];
  items.forEach(({ state }, i) => {
    const above = items.slice(0, i).map((x) => x.region);
    const visible = (b: Rect) => !above.some((a) => contains(a, center(b)));
    words.push(...state.words.filter((w) => visible(w.bounds)));
    lines.push(...state.lines.filter((l) => visible(l.bounds)));
  });
  return { words, lines };
}

/** Distinct tile rows holding a flagged tile. */
function tileRows(g: TileGrid, flags: boolean[]): number {
  let n = 0;
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      if (flags[r * g.cols + c]) {
        n++;
        break;
      }
    }
  }
  return n;
}

function count(flags: boolean[]): number {
  let n = 0;
  for (const f of flags) if (f) n++;
  return n;
}
