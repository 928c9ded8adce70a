/**
 * Text the accessibility tree already says, checked against the pixels, so that OCR need not read it (issue 15:
 * cold speed with the tree on).
 *
 * A web page's text leaves (AT-SPI `static`/`text` objects in Chromium, `label`s elsewhere) carry their text and
 * the bounds of its layout box. When those pixels show exactly one line of ink that fills the box edge to edge and
 * splits into as many ink runs as the text has words, the tree's text is what is drawn there: its words are
 * reported (with `source: 'accessibility'`) and the box is left out of the OCR read (filled with its background
 * before the image goes to the OCR engine). Everything else is read by OCR as before:
 * - a box with no ink, or ink that stops short of its edges (text clipped by `overflow`, an ellipsis, a
 *   transparent colour), or over no uniform background (text over an image or a gradient);
 * - text on several lines (a `\n`, a wrapped paragraph: a box taller than one line for its characters, or two
 *   rows of ink);
 * - ink whose gaps do not split into the words at about where the characters put them (something drawn over the
 *   text, a different text);
 * - a leaf covered by another window in part or whole, or overlapping another leaf (an overlay within the page);
 * - labels whose box is wider than their text (GTK allocations): their ink does not reach the box's edges.
 *
 * A leaf accepted here can still be wrong where the page draws something else over it that happens to fit the
 * same ink profile; a later change of its pixels is read by OCR (the incremental reader re-reads changed tiles
 * from the real frame, never from the tree).
 */
import type { RawAXNode, RawImage, Rect, WindowInfo } from '../platform/types.js';
import { center, clip, contains, grow, intersects, mergeOverlapping, pixelsToPoints, pointsToPixels, type PixelRect } from './geometry.js';
import { glyphBoxes } from './ocr/raster.js';
import { normalizeToken, type OcrLine, type OcrWord } from './elements.js';
import { visiblePart, windowIndexOf } from './occlusion.js';

/** Roles of accessible objects that only carry text (deskd's vocabulary: Chromium's static text is `text`). */
const TEXT_LEAF_ROLES: ReadonlySet<string> = new Set(['text', 'label']);
/** A box at most this many average character widths tall holds one line (two lines of text are ≥ 8). */
const MAX_HEIGHT_IN_CHARS = 5.5;
/** Smallest luminance difference (0..255) that counts as ink. */
const MIN_INK_CONTRAST = 24;
/** Ink is what differs from the background by at least this share of the box's largest difference. */
const INK_SHARE = 0.3;
/** The background level covers at least this share of the box, and of its rim. */
const MIN_BACKGROUND_SHARE = 0.3;
const MIN_RIM_SHARE = 0.6;
/** Blank space a glyph may leave at its side within its advance, in average character widths (`)` in a fixed-pitch font). */
const SIDE_BEARING = 0.4;
/** A word gap is at least this many times, and 2 px, wider than every gap within a word. */
const GAP_RATIO = 1.5;

/** A box filled with its background before OCR reads the frame: pixels of the image, colour as RGBA bytes. */
export interface TreeTextFill {
  rect: PixelRect;
  rgba: [number, number, number, number];
}

/** What {@link textFromTree} found: the accepted leaves' words and lines (logical global points), and their boxes. */
export interface TreeText {
  words: OcrWord[];
  lines: OcrLine[];
  /** The accepted leaves' boxes, logical global points. */
  areas: Rect[];
  /** The same boxes in the image's pixels, with the background to fill them with. */
  fills: TreeTextFill[];
  /** Text leaves looked at (on screen, not covered) and how many were accepted. */
  leaves: number;
  accepted: number;
  /** Leaves left to OCR, by reason. */
  rejected: Partial<Record<Rejection, number>>;
}

interface Leaf {
  text: string;
  bounds: Rect;
}

/**
 * The text leaves of `roots` that are on the image and not under another window (`windows` top-most first, as
 * `flattenAccessibility` places trees), with their raw text (spaces and line ends as the toolkit gave them).
 */
function textLeaves(roots: readonly RawAXNode[], windows: readonly WindowInfo[]): Leaf[] {
  const out: Leaf[] = [];
  const walk = (n: RawAXNode, depth: number, pid: number | null | undefined, above: Rect[]): void => {
    if (depth === 1 && windows.length > 0) {
      const i = windowIndexOf({ pid, title: n.name.replace(/\s+/g, ' ').trim(), bounds: n.bounds }, windows);
      above = i > 0 ? windows.slice(0, i).map((w) => w.bounds) : [];
    }
    if (n.windowId !== undefined) {
      const own = windows.findIndex((w) => w.id === n.windowId);
      if (own >= 0) above = windows.slice(0, own).map((w) => w.bounds);
    }
    const b = n.bounds;
    if (TEXT_LEAF_ROLES.has(n.role) && n.children.length === 0 && n.name.trim() !== '' && b && b.width > 0 && b.height > 0) {
      if (!n.states.includes('password') && (above.length === 0 || visiblePart(b, above).coveredFraction === 0)) out.push({ text: n.name, bounds: b });
    }
    for (const c of n.children) walk(c, depth + 1, pid, above);
  };
  for (const r of roots) walk(r, 0, r.pid, []);
  return out;
}

/** True when two boxes share more than a 2-point sliver (neighbouring text runs touch by a pixel). */
function overlap(a: Rect, b: Rect): boolean {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 2 && h > 2;
}

/** Why a leaf's text was not taken (for tests and diagnostics). */
export type Rejection = 'multi-line' | 'tall' | 'background' | 'faint' | 'rows' | 'edges' | 'lead' | 'trail' | 'gaps' | 'gap-ratio' | 'position';

/** A leaf the pixels confirm: its words' ink columns (relative to the box), its ink rows and background colour. */
interface Verified {
  words: Array<{ text: string; x0: number; x1: number }>;
  top: number;
  bottom: number;
  rgba: TreeTextFill['rgba'];
}

/**
 * Check one leaf against the pixels under it; its words (pixel columns, relative to the box) when the ink is one
 * line that fills the box and splits into its words, else null.
 */
function verify(img: RawImage, leaf: Leaf, px: PixelRect): Verified | Rejection {
  const raw = leaf.text.replace(/[\r\n]+$/, '');
  if (/[\r\n]/.test(raw)) return 'multi-line';
  const chars = [...raw].length;
  const avg = px.width / chars;
  if (px.height > avg * MAX_HEIGHT_IN_CHARS) return 'tall';
  const { width: w, height: h } = px;
  const lum = new Uint8Array(w * h);
  const hist = new Uint32Array(64);
  const d = img.data;
  for (let y = 0; y < h; y++) {
    let o = ((px.y + y) * img.width + px.x) * 4;
    for (let x = 0; x < w; x++, o += 4) {
      const l = (d[o]! * 299 + d[o + 1]! * 587 + d[o + 2]! * 114) / 1000;
      lum[y * w + x] = l;
      hist[l >> 2]!++;
    }
  }
  // The background level: the most common one on the box's rim (bold text can hold more ink than background).
  const rim = new Uint32Array(64);
  for (let x = 0; x < w; x++) {
    rim[lum[x]! >> 2]!++;
    rim[lum[(h - 1) * w + x]! >> 2]!++;
  }
  for (let y = 1; y < h - 1; y++) {
    rim[lum[y * w]! >> 2]!++;
    rim[lum[y * w + w - 1]! >> 2]!++;
  }
  let mode = 0;
  for (let i = 1; i < 64; i++) if (rim[i]! > rim[mode]!) mode = i;
  if (rim[mode]! < MIN_RIM_SHARE * (2 * w + 2 * h - 4) || hist[mode]! < MIN_BACKGROUND_SHARE * w * h) return 'background';
  // The background: the pixels of the most common level (its mean, and the first such pixel's colour).
  let sum = 0;
  let first = -1;
  for (let i = 0; i < lum.length; i++) {
    if (lum[i]! >> 2 === mode) {
      sum += lum[i]!;
      if (first < 0) first = i;
    }
  }
  const bg = sum / hist[mode]!;
  let maxDiff = 0;
  for (let i = 0; i < lum.length; i++) maxDiff = Math.max(maxDiff, Math.abs(lum[i]! - bg));
  const threshold = Math.max(MIN_INK_CONTRAST, INK_SHARE * maxDiff);
  if (maxDiff < MIN_INK_CONTRAST * 1.5) return 'faint';
  const rows = new Uint32Array(h);
  const cols = new Uint32Array(w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (Math.abs(lum[y * w + x]! - bg) >= threshold) {
        rows[y]!++;
        cols[x]!++;
      }
    }
  }
  // One line: the rows with ink form one run, apart from thin runs (an underline, a dot) set off by a gap.
  const runs: Array<[number, number]> = [];
  for (let y = 0; y < h; y++) {
    if (rows[y] === 0) continue;
    const last = runs[runs.length - 1];
    if (last && y - last[1] <= 2) last[1] = y;
    else runs.push([y, y]);
  }
  if (runs.length === 0) return 'faint';
  const tallest = Math.max(...runs.map(([a, b]) => b - a + 1));
  if (runs.filter(([a, b]) => b - a + 1 >= tallest / 2).length > 1) return 'rows';
  // The ink fills the box: it starts and ends within the leading and trailing spaces (plus 2 px of bearing).
  let left = 0;
  while (left < w && cols[left] === 0) left++;
  let right = w - 1;
  while (right > left && cols[right] === 0) right--;
  const lead = raw.length - raw.trimStart().length;
  const trail = raw.length - raw.trimEnd().length;
  if (left > 2 + (lead * 1.6 + SIDE_BEARING) * avg || w - 1 - right > 2 + (trail * 1.6 + SIDE_BEARING) * avg) return 'edges';
  if (lead > 0 && left < lead * avg * 0.4) return 'lead';
  if (trail > 0 && w - 1 - right < trail * avg * 0.4) return 'trail';
  // Words: the widest gaps between ink columns, one fewer than the words, clearly wider than the others.
  const tokens: Array<{ text: string; at: number }> = [];
  for (const m of raw.matchAll(/\S+/g)) tokens.push({ text: m[0], at: [...raw.slice(0, m.index)].length });
  const gaps: Array<{ x0: number; x1: number }> = [];
  for (let x = left; x <= right; x++) {
    if (cols[x] !== 0) continue;
    const x0 = x;
    while (x <= right && cols[x] === 0) x++;
    gaps.push({ x0, x1: x - 1 });
  }
  const need = tokens.length - 1;
  if (gaps.length < need) return 'gaps';
  const byWidth = [...gaps].sort((a, b) => b.x1 - b.x0 - (a.x1 - a.x0));
  const chosen = byWidth.slice(0, need).sort((a, b) => a.x0 - b.x0);
  if (need > 0) {
    const narrowest = byWidth[need - 1]!.x1 - byWidth[need - 1]!.x0 + 1;
    const widestOther = byWidth[need] ? byWidth[need]!.x1 - byWidth[need]!.x0 + 1 : 0;
    if (narrowest < 2 || narrowest < widestOther * GAP_RATIO || narrowest - widestOther < 2) return 'gap-ratio';
  }
  const words = tokens.map((t, i) => ({ text: t.text, x0: i === 0 ? left : chosen[i - 1]!.x1 + 1, x1: i === need ? right : chosen[i]!.x0 - 1 }));
  // Each word starts about where its characters put it (proportional fonts differ; another text would not fit).
  for (let i = 1; i < words.length; i++) {
    if (Math.abs(words[i]!.x0 - tokens[i]!.at * avg) > 0.2 * w + 2 * avg) return 'position';
  }
  const [top, bottom] = [runs[0]![0], runs[runs.length - 1]![1]];
  const p = ((px.y + Math.floor(first / w)) * img.width + px.x + (first % w)) * 4;
  return { words, top, bottom, rgba: [d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!] };
}

/**
 * The words of the tree's text leaves that the pixels of `img` confirm (see the module comment), and the boxes
 * OCR can leave out. `roots` are the (masked) accessibility roots, `windows` the visible windows top-most first;
 * `within` (logical points) limits the leaves checked to those whose box meets one of these rectangles.
 * Geometry: words, lines and areas in logical global points, fills in `img`'s pixels. Never throws.
 */
export function textFromTree(roots: readonly RawAXNode[], img: RawImage, windows: readonly WindowInfo[], within?: readonly Rect[]): TreeText {
  const out: TreeText = { words: [], lines: [], areas: [], fills: [], leaves: 0, accepted: 0, rejected: {} };
  const leaves = textLeaves(roots, windows);
  const imgPoints: Rect = { x: img.origin.x, y: img.origin.y, width: img.width / img.scale, height: img.height / img.scale };
  const inside = leaves.filter((l) => l.bounds.x >= imgPoints.x && l.bounds.y >= imgPoints.y && l.bounds.x + l.bounds.width <= imgPoints.x + imgPoints.width && l.bounds.y + l.bounds.height <= imgPoints.y + imgPoints.height);
  out.leaves = inside.length;
  const sorted = [...inside].sort((a, b) => a.bounds.x - b.bounds.x);
  const clash = new Set<Leaf>();
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length && sorted[j]!.bounds.x < sorted[i]!.bounds.x + sorted[i]!.bounds.width; j++) {
      if (overlap(sorted[i]!.bounds, sorted[j]!.bounds)) clash.add(sorted[i]!).add(sorted[j]!);
    }
  }
  for (const leaf of inside) {
    if (clash.has(leaf) || (within && !within.some((r) => intersects(r, leaf.bounds)))) continue;
    const px = pointsToPixels(img, leaf.bounds);
    if (!px || px.width < 2 || px.height < 4) continue;
    const v = verify(img, leaf, px);
    if (typeof v === 'string') {
      out.rejected[v] = (out.rejected[v] ?? 0) + 1;
      if (process.env.DESKD_DEBUG_TREE_TEXT) console.error('treeText', v, JSON.stringify(leaf.text), leaf.bounds);
      continue;
    }
    out.accepted++;
    const words = v.words.map((t) => ({ text: t.text, bounds: pixelsToPoints(img, { x: px.x + t.x0, y: px.y + v.top, width: t.x1 - t.x0 + 1, height: v.bottom - v.top + 1 }), confidence: 1, source: 'accessibility' as const }));
    out.words.push(...words);
    out.lines.push({ text: words.map((x) => x.text).join(' '), bounds: pixelsToPoints(img, { x: px.x + v.words[0]!.x0, y: px.y + v.top, width: v.words[v.words.length - 1]!.x1 - v.words[0]!.x0 + 1, height: v.bottom - v.top + 1 }), words });
    out.areas.push({ ...leaf.bounds });
    out.fills.push({ rect: px, rgba: v.rgba });
  }
  return out;
}

/**
 * A copy of `img` with every fill's box painted in its colour (the image OCR reads when the tree gave the text
 * of those boxes). `img` itself is not changed (frames are shared read-only, see `RawCapture.capture`).
 */
export function fillBoxes(img: RawImage, fills: readonly TreeTextFill[]): RawImage {
  if (fills.length === 0) return img;
  const data = Buffer.from(img.data);
  for (const f of fills) {
    const px = Buffer.from(f.rgba);
    for (let y = f.rect.y; y < f.rect.y + f.rect.height; y++) {
      const o = (y * img.width + f.rect.x) * 4;
      for (let x = 0; x < f.rect.width; x++) px.copy(data, o + x * 4);
    }
  }
  return { ...img, data };
}

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
  const gray = new Uint8Array(img.width * img.height);
  const d = img.data;
  for (let y = px.y; y < px.y + px.height; y++) {
    for (let x = px.x, o = (y * img.width + x) * 4; x < px.x + px.width; x++, o += 4) gray[y * img.width + x] = (d[o]! * 299 + d[o + 1]! * 587 + d[o + 2]! * 114) / 1000;
  }
  const glyphs = glyphBoxes(gray, img.width, { left: px.x, top: px.y, width: px.width, height: px.height }, { inkContrast: REST_INK_CONTRAST, maxHeight: REST_MAX_GLYPH });
  if (glyphs.length === 0) return [];
  const grown = glyphs.map((g) => pixelsToPoints(img, { x: g.left - g.height, y: g.top - Math.ceil(g.height / 2), width: g.width + 2 * g.height, height: g.height + 2 * Math.ceil(g.height / 2) }));
  const areas = mergeOverlapping(mergeOverlapping(grown).map((r) => grow(r, 6)))
    .map((r) => clip(r, region))
    .filter((r): r is Rect => r !== undefined);
  const area = areas.reduce((s, r) => s + r.width * r.height, 0);
  if (areas.length > REST_MAX_AREAS || area > REST_MAX_SHARE * region.width * region.height) return null;
  return areas;
}

/**
 * OCR of `region` of an image whose tree text was filled: only the {@link restAreas}, each read on its own (the
 * region whole when they are too many or too large); words and lines whose centre is in the area read.
 * @throws whatever `ocr.recognize` throws.
 */
export async function readRest(ocr: { recognize(img: RawImage, opts?: { region?: Rect }): Promise<{ words: OcrWord[]; lines: OcrLine[] }> }, filled: RawImage, region: Rect): Promise<{ words: OcrWord[]; lines: OcrLine[] }> {
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

type Read = { words: OcrWord[]; lines: OcrLine[] };

/**
 * OCR of one frame's regions and rectangles with the tree's text taken where the pixels confirm it (the
 * incremental reader's use of this module). Its methods resolve null when the tree gave nothing to take; the
 * caller then reads as without a tree. @throws whatever the OCR engine throws.
 */
export class TreeTextReader {
  private whole: Promise<{ text: TreeText; image: RawImage } | null> | null = null;

  constructor(
    private readonly ocr: { recognize(img: RawImage, opts?: { region?: Rect }): Promise<Read> },
    private readonly image: RawImage,
    private readonly source: TreeTextSource,
  ) {}

  /** A region read whole: the tree's text of the whole frame (asked for once per frame) and OCR of the rest. */
  async readRegion(region: Rect): Promise<Read | null> {
    this.whole ??= this.source().then(
      (t) => (t && t.fills.length > 0 ? { text: t, image: fillBoxes(this.image, t.fills) } : null),
      () => null,
    );
    const k = await this.whole;
    return k ? withTreeText(await readRest(this.ocr, k.image, region), k.text, region) : null;
  }

  /**
   * Changed rectangles (points): the tree's text of the leaves inside them, and OCR of the rest; one read per
   * rectangle, in order. A leaf is taken only where no word was reported before (`previous`, the region's words
   * before the change), or where the words reported before came from the tree and the tree's text differs from
   * them now: pixels that changed under a leaf whose text the tree still gives as before may be a change the tree
   * has not heard of yet (its events trail the paint), and words OCR read before cannot tell, so OCR reads those.
   * `plain` (the reads without the tree) is started at once when given, and answers the rectangles the tree takes
   * nothing in (all of them when it takes nothing).
   */
  async readRects(rects: Rect[], previous: readonly OcrWord[], plain?: () => Promise<Read[]>): Promise<Read[] | null> {
    // The plain reads start at once, beside the tree's answer: rectangles it takes nothing in use them.
    const early = plain?.();
    early?.catch(() => {});
    const t = await this.source(rects).catch(() => null);
    if (!t || t.fills.length === 0) return early ?? null;
    const keep = t.areas.map((a, i) => {
      const before = previous.filter((w) => contains(a, center(w.bounds)));
      if (before.length === 0) return true;
      return before.every((w) => w.source === 'accessibility') && normalizeToken(before.map((w) => w.text).join(' ')) !== normalizeToken(t.lines[i]!.text);
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
