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
 * - a wrapped paragraph (a box taller than one line for its characters, or two rows of ink); a leaf whose text
 *   holds line ends (`<pre>`, a log) is checked line by line instead (`verifyLines`);
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
import { intersects, pixelsToPoints, pointsToPixels, type PixelRect } from './geometry.js';
import type { OcrLine, OcrWord } from './elements.js';
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

/** True when two boxes (pixels) share more than a 2-pixel sliver (neighbouring text runs touch by a pixel). */
function overlapPx(a: PixelRect, b: PixelRect): boolean {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 2 && h > 2;
}

/** Why a leaf's text was not taken (for tests and diagnostics). */
export type Rejection = 'tall' | 'background' | 'faint' | 'rows' | 'edges' | 'lead' | 'trail' | 'gaps' | 'gap-ratio' | 'position' | 'overlap';

/** One line of a leaf that the pixels confirm: its words' ink columns and its ink rows (pixels of the image). */
interface VerifiedLine {
  words: Array<{ text: string; x0: number; x1: number }>;
  top: number;
  bottom: number;
  /** The pixels filled before OCR reads the frame, and the colour (the box's background). */
  fill: PixelRect;
  rgba: TreeTextFill['rgba'];
}

/** The ink of a leaf's box: 1 where a pixel differs from the background (the rim's most common level). */
interface Ink {
  ink: Uint8Array;
  w: number;
  h: number;
  rgba: TreeTextFill['rgba'];
}

function inkOf(img: RawImage, px: PixelRect): Ink | Rejection {
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
  if (maxDiff < MIN_INK_CONTRAST * 1.5) return 'faint';
  const threshold = Math.max(MIN_INK_CONTRAST, INK_SHARE * maxDiff);
  const ink = new Uint8Array(w * h);
  for (let i = 0; i < lum.length; i++) if (Math.abs(lum[i]! - bg) >= threshold) ink[i] = 1;
  const p = ((px.y + Math.floor(first / w)) * img.width + px.x + (first % w)) * 4;
  return { ink, w, h, rgba: [d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!] };
}

/** Runs of rows with ink (rows apart by one blank row joined), top to bottom, and the tallest run's height. */
function rowRuns(k: Ink): { runs: Array<[number, number]>; tallest: number } {
  const runs: Array<[number, number]> = [];
  for (let y = 0; y < k.h; y++) {
    let any = false;
    for (let x = 0; x < k.w && !any; x++) any = k.ink[y * k.w + x] === 1;
    if (!any) continue;
    const last = runs[runs.length - 1];
    if (last && y - last[1] <= 2) last[1] = y;
    else runs.push([y, y]);
  }
  return { runs, tallest: Math.max(0, ...runs.map(([a, b]) => b - a + 1)) };
}

/**
 * The words of one line of text (`raw`, with its leading and trailing spaces) on the ink rows `top..bottom` of a
 * box (columns flagged in `skip` left out): the widest gaps between ink columns, one fewer than the words, each
 * clearly wider than every other gap, each word starting about where its characters put it. Also the line's ink
 * columns (`left`, `right`, relative to the box) and its own character width (`avg`, pixels).
 */
function lineWords(k: Ink, top: number, bottom: number, skip: Uint8Array | null, raw: string): { words: VerifiedLine['words']; left: number; right: number; avg: number } | Rejection {
  const cols = new Uint32Array(k.w);
  for (let y = top; y <= bottom; y++) for (let x = 0; x < k.w; x++) if (k.ink[y * k.w + x] === 1 && !skip?.[x]) cols[x]!++;
  let left = 0;
  while (left < k.w && cols[left] === 0) left++;
  let right = k.w - 1;
  while (right > left && cols[right] === 0) right--;
  if (left >= k.w) return 'faint';
  const tokens: Array<{ text: string; at: number }> = [];
  const body = raw.trim();
  for (const m of body.matchAll(/\S+/g)) tokens.push({ text: m[0], at: [...body.slice(0, m.index)].length });
  const avg = (right - left + 1) / Math.max(1, [...body].length);
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
    if (Math.abs(words[i]!.x0 - left - tokens[i]!.at * avg) > 0.2 * (right - left + 1) + 2 * avg) return 'position';
  }
  return { words, left, right, avg };
}

/**
 * Check a one-line leaf against the pixels under it: one line of ink that fills the box (within its leading and
 * trailing spaces and a side bearing) and splits into the leaf's words.
 */
function verifyLine(k: Ink, raw: string, px: PixelRect): VerifiedLine | Rejection {
  const { runs, tallest } = rowRuns(k);
  if (runs.length === 0) return 'faint';
  if (runs.filter(([a, b]) => b - a + 1 >= tallest / 2).length > 1) return 'rows';
  const [top, bottom] = [runs[0]![0], runs[runs.length - 1]![1]];
  const line = lineWords(k, top, bottom, null, raw);
  if (typeof line === 'string') return line;
  const avg = px.width / [...raw].length;
  const lead = raw.length - raw.trimStart().length;
  const trail = raw.length - raw.trimEnd().length;
  if (line.left > 2 + (lead * 1.6 + SIDE_BEARING) * avg || k.w - 1 - line.right > 2 + (trail * 1.6 + SIDE_BEARING) * avg) return 'edges';
  if (lead > 0 && line.left < lead * avg * 0.4) return 'lead';
  if (trail > 0 && k.w - 1 - line.right < trail * avg * 0.4) return 'trail';
  return { words: line.words.map((w) => ({ ...w, x0: px.x + w.x0, x1: px.x + w.x1 })), top: px.y + top, bottom: px.y + bottom, fill: px, rgba: k.rgba };
}

/**
 * Check a leaf of several lines (`<pre>` text, a log): its box is the union of its lines, the first of which may
 * start after other text on its row, the others at the box's left. Each non-empty line must be one run of ink
 * rows, in order (as many runs as such lines); on each line, the columns of other leaves' boxes on its rows
 * (`others`, pixels: the text before the first line, after the last) are left out; every line but the first
 * starts at the box's left (within its leading spaces); some line reaches the box's right edge (text cut by its
 * container does not); each line splits into its words.
 */
function verifyLines(k: Ink, lines: string[], px: PixelRect, others: readonly PixelRect[]): VerifiedLine[] | Rejection {
  const { runs, tallest } = rowRuns(k);
  const big = runs.filter(([a, b]) => b - a + 1 >= tallest / 2);
  const filled = lines.map((l, i) => ({ l, i })).filter(({ l }) => l.trim() !== '');
  if (big.length !== filled.length || big.length === 0) return 'rows';
  const out: VerifiedLine[] = [];
  let reaches = false;
  for (let j = 0; j < filled.length; j++) {
    const { l, i } = filled[j]!;
    const [top, bottom] = big[j]!;
    // Other leaves on this line's rows (the text before the first line, after the last) are not this leaf's.
    const skip = new Uint8Array(k.w);
    for (const o of others) {
      const oy0 = Math.max(o.y, px.y + top), oy1 = Math.min(o.y + o.height, px.y + bottom + 1);
      if (oy1 - oy0 < (bottom - top + 1) / 2) continue;
      for (let x = Math.max(0, o.x - px.x); x < Math.min(k.w, o.x + o.width - px.x); x++) skip[x] = 1;
    }
    const line = lineWords(k, top, bottom, skip, l);
    if (typeof line === 'string') return line;
    const lead = l.length - l.trimStart().length;
    const trail = l.length - l.trimEnd().length;
    if (i > 0 && line.left > 2 + (lead * 1.6 + SIDE_BEARING) * line.avg) return 'edges';
    if (k.w - 1 - line.right <= 2 + (trail * 1.6 + SIDE_BEARING) * line.avg) reaches = true;
    // Filled with 2 pixels around the ink (anti-aliasing), never into another leaf's columns.
    let x0 = Math.max(0, line.left - 2);
    for (let x = line.left - 1; x >= x0; x--) if (skip[x]) x0 = x + 1;
    let x1 = Math.min(k.w - 1, line.right + 2);
    for (let x = line.right + 1; x <= x1; x++) if (skip[x]) x1 = x - 1;
    const y0 = Math.max(0, top - 1);
    const y1 = Math.min(k.h - 1, bottom + 1);
    out.push({ words: line.words.map((w) => ({ ...w, x0: px.x + w.x0, x1: px.x + w.x1 })), top: px.y + top, bottom: px.y + bottom, fill: { x: px.x + x0, y: px.y + y0, width: x1 - x0 + 1, height: y1 - y0 + 1 }, rgba: k.rgba });
  }
  return reaches ? out : 'edges';
}

/** The lines of a leaf's text (a trailing line end dropped). */
function textLines(text: string): string[] {
  return text.replace(/(\r?\n)+$/, '').split(/\r?\n/);
}

/**
 * Check one leaf against the pixels under it (see the module comment): its lines' words, or why not.
 * `others` are the other one-line leaves' boxes (pixels), left out of each line of a leaf of several lines.
 */
function verify(img: RawImage, leaf: Leaf, px: PixelRect, others: readonly PixelRect[]): VerifiedLine[] | Rejection {
  const lines = textLines(leaf.text);
  if (lines.length === 1 && px.height > (px.width / [...lines[0]!].length) * MAX_HEIGHT_IN_CHARS) return 'tall';
  const k = inkOf(img, px);
  if (typeof k === 'string') return k;
  if (lines.length === 1) {
    const v = verifyLine(k, lines[0]!, px);
    return typeof v === 'string' ? v : [v];
  }
  return verifyLines(k, lines, px, others);
}

/**
 * The words of the tree's text leaves that the pixels of `img` confirm (see the module comment), and the boxes
 * OCR can leave out. `roots` are the (masked) accessibility roots, `windows` the visible windows top-most first;
 * `within` (logical points) limits the leaves checked to those whose box meets one of these rectangles.
 * Geometry: words, lines and areas in logical global points, fills in `img`'s pixels; one entry in `lines`,
 * `areas` and `fills` per line confirmed. Never throws.
 */
export function textFromTree(roots: readonly RawAXNode[], img: RawImage, windows: readonly WindowInfo[], within?: readonly Rect[]): TreeText {
  const out: TreeText = { words: [], lines: [], areas: [], fills: [], leaves: 0, accepted: 0, rejected: {} };
  const imgPoints: Rect = { x: img.origin.x, y: img.origin.y, width: img.width / img.scale, height: img.height / img.scale };
  const inside = textLeaves(roots, windows)
    .filter((l) => l.bounds.x >= imgPoints.x && l.bounds.y >= imgPoints.y && l.bounds.x + l.bounds.width <= imgPoints.x + imgPoints.width && l.bounds.y + l.bounds.height <= imgPoints.y + imgPoints.height)
    .map((leaf) => ({ leaf, px: pointsToPixels(img, leaf.bounds)!, multi: textLines(leaf.text).length > 1 }))
    .filter((c) => c.px && c.px.width >= 2 && c.px.height >= 4);
  out.leaves = inside.length;
  const reject = (why: Rejection) => {
    out.rejected[why] = (out.rejected[why] ?? 0) + 1;
  };
  // Each leaf checked; a leaf of several lines stands for its lines' boxes, not the union box (which holds the
  // text before its first line and after its last).
  // Leaves outside `within` are not checked (null); their one-line boxes still count for overlaps.
  const wanted = (l: Leaf) => !within || within.some((r) => intersects(r, l.bounds));
  const singles = inside.filter((o) => !o.multi).map((o) => o.px);
  const checked = inside.map((c) => ({ lines: wanted(c.leaf) ? verify(img, c.leaf, c.px, c.multi ? singles : []) : null }));
  const boxes = checked.flatMap((c, i) => (c.lines === null || typeof c.lines === 'string' ? (inside[i]!.multi ? [] : [{ i, box: inside[i]!.px }]) : c.lines.map((l) => ({ i, box: l.fill }))));
  // Overlapping text (an overlay within the page, text under other text): all of it is left to OCR.
  const clash = new Set<number>();
  const sorted = [...boxes].sort((a, b) => a.box.x - b.box.x);
  for (let a = 0; a < sorted.length; a++) {
    for (let b = a + 1; b < sorted.length && sorted[b]!.box.x < sorted[a]!.box.x + sorted[a]!.box.width; b++) {
      if (sorted[a]!.i !== sorted[b]!.i && overlapPx(sorted[a]!.box, sorted[b]!.box)) clash.add(sorted[a]!.i).add(sorted[b]!.i);
    }
  }
  checked.forEach(({ lines }, i) => {
    if (lines === null) return;
    if (clash.has(i)) return reject('overlap');
    if (typeof lines === 'string') return reject(lines);
    out.accepted++;
    for (const v of lines) {
      const words = v.words.map((t) => ({ text: t.text, bounds: pixelsToPoints(img, { x: t.x0, y: v.top, width: t.x1 - t.x0 + 1, height: v.bottom - v.top + 1 }), confidence: 1, source: 'accessibility' as const }));
      out.words.push(...words);
      out.lines.push({ text: words.map((x) => x.text).join(' '), bounds: pixelsToPoints(img, { x: v.words[0]!.x0, y: v.top, width: v.words[v.words.length - 1]!.x1 - v.words[0]!.x0 + 1, height: v.bottom - v.top + 1 }), words });
      out.areas.push(pixelsToPoints(img, v.fill));
      out.fills.push({ rect: v.fill, rgba: v.rgba });
    }
  });
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
