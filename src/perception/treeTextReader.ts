/**
 * OCR around the tree's text (`treeText.ts`): what is left of a region once the confirmed leaves are filled
 * ({@link restAreas}, {@link readRest}), and the incremental reader's use of both ({@link TreeTextReader}: regions
 * read whole, changed rectangles).
 */
import type { RawImage, Rect } from '../platform/types.js';
import { normalizeToken, type OcrLine, type OcrWord } from './elements.js';
import { center, clip, contains, grow, intersects, mergeOverlapping, pixelsToPoints, pointsToPixels, type PixelRect } from './geometry.js';
import { glyphBoxes } from './ocr/raster.js';
import { rowSegmentEqual, sameGeometry } from './changes.js';
import type { RegionRecognizer } from './ocr/types.js';
import { fillBoxes, type TreeText } from './treeText.js';

/** Longest wait for the tree's text, ms: a cold OCR read of a 1920x1080 page takes about 1 s. */
export const TREE_WAIT_MS = 1000;
/** Share of a scrolled region's earlier words that must have come from the tree for the tree's text to be taken there. */
const SCROLLED_TREE_SHARE = 0.9;
/** Glyph-like components taller than this (pixels) are not looked for in what the tree left (headline text in an image is). */
const REST_MAX_GLYPH = 200;
/** Ink this far (0..255) from its cell's background counts when looking for text the tree left. */
const REST_INK_CONTRAST = 32;
/** More areas than this, or areas over this share of the region, and the region is read whole instead. */
const REST_MAX_AREAS = 32;
const REST_MAX_SHARE = 0.5;

/**
 * Where text may be left in `region` (logical global points) of an image whose tree text was filled
 * ({@link fillBoxes}): glyph-like ink (`glyphBoxes`) grouped into areas (each glyph grown by its height
 * sideways and half of it up and down, overlapping boxes merged, then 6 points of margin). An empty list when
 * nothing glyph-like is left (OCR has nothing to read); null when the rest is too scattered or too large to be
 * worth reading in parts (read the region whole). Never throws.
 */
export function restAreas(img: RawImage, region: Rect): Rect[] | null {
  const px = pointsToPixels(img, region);
  if (!px) return [];
  // The region's pixels only, as gray (a changed rectangle is a small part of the frame).
  const gray = new Uint8Array(px.width * px.height);
  const d = img.data;
  for (let y = 0; y < px.height; y++) {
    for (let x = 0, o = ((px.y + y) * img.width + px.x) * 4; x < px.width; x++, o += 4) gray[y * px.width + x] = (d[o]! * 299 + d[o + 1]! * 587 + d[o + 2]! * 114) / 1000;
  }
  const glyphs = glyphBoxes(gray, px.width, { left: 0, top: 0, width: px.width, height: px.height }, { inkContrast: REST_INK_CONTRAST, maxHeight: REST_MAX_GLYPH });
  if (glyphs.length === 0) return [];
  const grown = glyphs.map((g) => pixelsToPoints(img, { x: px.x + g.left - g.height, y: px.y + g.top - Math.ceil(g.height / 2), width: g.width + 2 * g.height, height: g.height + 2 * Math.ceil(g.height / 2) }));
  const areas = mergeOverlapping(mergeOverlapping(grown).map((r) => grow(r, 6)))
    .map((r) => clip(r, region))
    .filter((r): r is Rect => r !== undefined);
  const area = areas.reduce((s, r) => s + r.width * r.height, 0);
  if (areas.length > REST_MAX_AREAS || area > REST_MAX_SHARE * region.width * region.height) return null;
  return areas;
}

/** Words and lines of a read (logical global points). */
type Read = { words: OcrWord[]; lines: OcrLine[] };

/**
 * OCR of `region` of an image whose tree text was filled: only the {@link restAreas}, each read on its own (the
 * region whole when they are too many or too large); words and lines whose centre is in the area read.
 * @throws whatever `ocr.recognize` throws.
 */
export async function readRest(ocr: RegionRecognizer, filled: RawImage, region: Rect): Promise<Read> {
  const areas = restAreas(filled, region);
  if (areas === null) return ocr.recognize(filled, { region });
  const reads = await Promise.all(areas.map((a) => ocr.recognize(filled, { region: a })));
  const inside = (a: Rect, b: Rect) => contains(a, center(b));
  return {
    words: reads.flatMap((r, i) => r.words.filter((w) => inside(areas[i]!, w.bounds))),
    lines: reads.flatMap((r, i) => r.lines.filter((l) => inside(areas[i]!, l.bounds))),
  };
}

/**
 * The tree's text for a frame, asked for lazily: the whole frame (`within` absent) or the leaves inside some
 * rectangles of it. Resolves null when there is no tree (it failed, or is off).
 */
export type TreeTextSource = (within?: Rect[]) => Promise<TreeText | null>;


/**
 * OCR of one frame's regions and rectangles with the tree's text taken where the pixels confirm it (the
 * incremental reader's use of this module). Its methods resolve null when the tree gave nothing to take; the
 * caller then reads as without a tree. @throws whatever the OCR engine throws.
 */
export class TreeTextReader {
  private whole: Promise<{ text: TreeText; image: RawImage } | null> | null = null;

  constructor(
    private readonly ocr: RegionRecognizer,
    private readonly image: RawImage,
    private readonly source: TreeTextSource,
    private readonly waitMs = TREE_WAIT_MS,
  ) {}

  /**
   * The tree's text, or null when the tree fails or has not answered within {@link TREE_WAIT_MS} (a huge tree read
   * to its budget): OCR then reads as without a tree rather than wait longer than it would take.
   */
  private ask(within?: Rect[]): Promise<TreeText | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.waitMs);
      timer.unref?.();
    });
    return Promise.race([this.source(within).catch(() => null), late]).finally(() => clearTimeout(timer));
  }

  /** A region read whole: the tree's text of the whole frame (asked for once per frame) and OCR of the rest. */
  async readRegion(region: Rect): Promise<Read | null> {
    this.whole ??= this.ask().then(
      (t) => (t && t.fills.length > 0 ? { text: t, image: fillBoxes(this.image, t.fills) } : null),
      () => null,
    );
    const k = await this.whole;
    return k ? withTreeText(await readRest(this.ocr, k.image, region), k.text, region) : null;
  }

  /**
   * Changed rectangles (points): the tree's text of the leaves inside them, and OCR of the rest; one read per
   * rectangle, in order. A leaf is taken only where no word was reported before (`previous`, the region's words
   * before the change), or where the words reported before came from the tree and either the tree's text differs
   * from them now or the line's pixels are those of `prev` (the frame read before): pixels that changed under a
   * leaf whose text the tree still gives as before may be a change the tree has not heard of yet (its events trail
   * the paint), and words OCR read before cannot tell, so OCR reads those. `plain` (the reads without the tree)
   * answers the rectangles the tree takes nothing in (all of them when it takes nothing); it is started at once,
   * beside the tree's answer, when OCR read most of the words there before. `scrolled` (the region scrolled since
   * `previous` was read): the tree's positions may be those before the scroll, so a leaf is taken only when its
   * words are no run of the words shown before (text scrolled in, a new line), and only when the tree gave at least
   * 90% of the words shown before; else null.
   */
  async readRects(rects: Rect[], previous: readonly OcrWord[], prev: RawImage | null, plain?: () => Promise<Read[]>, scrolled = false): Promise<Read[] | null> {
    // Scrolled: the tree's positions may still be those before the scroll, so only text the region did not show
    // before is taken (a line scrolled in), and only where the tree gave nearly all of what was shown before
    // (OCR's misreadings would make old text look new).
    if (scrolled && previous.filter((w) => w.source === 'accessibility').length < SCROLLED_TREE_SHARE * previous.length) return null;
    const shown = scrolled ? `|${previous.map((w) => normalizeToken(w.text)).join('|')}|` : '';
    // Where OCR read most of what was there before (canvas, images), the plain reads start at once, beside the
    // tree's answer; rectangles it takes nothing in use them. Where the tree gave it, the tree is waited for.
    const before = previous.filter((w) => rects.some((r) => contains(r, center(w.bounds))));
    const early = plain && before.filter((w) => w.source === 'accessibility').length < before.length / 2 ? plain() : undefined;
    early?.catch(() => {});
    const t = await this.ask(rects);
    if (!t || t.fills.length === 0) return early ?? null;
    const keep = t.areas.map((a, i) => {
      if (scrolled) return !shown.includes(`|${(t.lines[i]!.words ?? []).map((w) => normalizeToken(w.text)).join('|')}|`);
      const was = previous.filter((w) => contains(a, center(w.bounds)));
      if (was.length === 0) return true;
      if (!was.every((w) => w.source === 'accessibility')) return false;
      // The tree's own text as before: taken only over pixels that did not change since (else it may be stale).
      return normalizeToken(was.map((w) => w.text).join(' ')) !== normalizeToken(t.lines[i]!.text) || (prev !== null && samePixels(prev, this.image, t.fills[i]!.rect));
    });
    const taken: TreeText = { ...t, words: t.lines.filter((_, i) => keep[i]).flatMap((l) => l.words ?? []), lines: t.lines.filter((_, i) => keep[i]), areas: t.areas.filter((_, i) => keep[i]), fills: t.fills.filter((_, i) => keep[i]) };
    if (taken.fills.length === 0) return early ?? null;
    const filled = fillBoxes(this.image, taken.fills);
    return Promise.all(
      rects.map(async (rect, i) => {
        if (early && !taken.areas.some((a) => intersects(a, rect))) return (await early)[i]!;
        return withTreeText(await readRest(this.ocr, filled, rect), taken, rect);
      }),
    );
  }
}

/**
 * A region's OCR words and lines with the tree's words and lines inside the region (their centres) added, and
 * any OCR word or line inside an area the tree's text covers dropped; in reading order.
 */
function withTreeText(r: Read, t: TreeText, region: Rect): Read {
  const mine = (b: Rect) => contains(region, center(b));
  const fromTree = (b: Rect) => t.areas.some((a) => contains(a, center(b)));
  const order = (a: { bounds: Rect }, b: { bounds: Rect }) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x;
  return {
    words: [...r.words.filter((w) => !fromTree(w.bounds)), ...t.words.filter((w) => mine(w.bounds))].sort(order),
    lines: [...r.lines.filter((l) => !fromTree(l.bounds)), ...t.lines.filter((l) => mine(l.bounds))].sort(order),
  };
}

/** True when the pixels of `rect` (pixels, inside both images) are the same in `a` and `b`. */
function samePixels(a: RawImage, b: RawImage, rect: PixelRect): boolean {
  if (!sameGeometry(a, b)) return false;
  for (let y = rect.y; y < rect.y + rect.height; y++) if (!rowSegmentEqual(a, y, b, y, rect.x, rect.x + rect.width)) return false;
  return true;
}
