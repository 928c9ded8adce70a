/**
 * Pixel measures of 8-bit gray images shared by the OCR stages: the background level of a cell (the most
 * common of 32 luminance levels), 8-connected components of a mask, glyph boxes and the typical glyph
 * height. One implementation each: the light-text detection, the glyph measure, the junk rejection and the
 * glyph vote all read backgrounds and components through these. Pure.
 */
import type { PixelBox } from '../geometry.js';

/** Histogram scratch of {@link backgroundLevel} (synchronous use only: no call can interleave). */
const HIST = new Uint32Array(32);

/**
 * The background level of the pixels `[x0, x1) × [y0, y1)` of a gray image `width` pixels wide: the most
 * common of 32 levels (bins of 8; a tie goes to the darker bin), as the bin's centre (`bin × 8 + 4`, 4..252).
 * Flat UI backgrounds dominate a cell even under text, whose anti-aliased pixels spread over many levels.
 * An empty rectangle gives 4. O(pixels of the rectangle).
 */
export function backgroundLevel(gray: Uint8Array, width: number, x0: number, y0: number, x1: number, y1: number): number {
  HIST.fill(0);
  for (let y = y0; y < y1; y++) {
    const row = y * width;
    for (let x = x0; x < x1; x++) HIST[gray[row + x]! >> 3]! += 1;
  }
  let mode = 0;
  for (let b = 1; b < 32; b++) if (HIST[b]! > HIST[mode]!) mode = b;
  return mode * 8 + 4;
}

/** What {@link floodComponent} found: the component's bounding box (grid cells, inclusive) and its size. */
export interface Component {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  /** Cells in the component. */
  size: number;
  /** Cells of the component inside the `count` box (0 without one). */
  inside: number;
}

/** Options of {@link floodComponent}. */
export interface FloodOptions {
  /** Count the component's cells in `[x0, x1) × [y0, y1)` (grid cells) into {@link Component.inside}. */
  count?: { x0: number; y0: number; x1: number; y1: number };
  /** Called with each cell of the component (in no particular order). */
  visit?: (i: number) => void;
}

/** Stack scratch of {@link floodComponent} (always empty between calls). */
const STACK: number[] = [];

/**
 * Follow the 8-connected component of `mask` (a `w × h` grid, row-major; 1 = unvisited member, 2 =
 * visited, anything else = not a member) that holds cell `start`, which must hold 1. Every member reached is
 * set to 2 (and counted and visited as `opts` asks). Mutates `mask`; O(cells of the component).
 */
export function floodComponent(mask: Uint8Array, w: number, h: number, start: number, opts: FloodOptions = {}): Component {
  const { count, visit } = opts;
  mask[start] = 2;
  STACK.push(start);
  let minX = w, maxX = -1, minY = h, maxY = -1, size = 0, inside = 0;
  while (STACK.length > 0) {
    const k = STACK.pop()!;
    const x = k % w;
    const y = (k - x) / w;
    size++;
    if (count && x >= count.x0 && x < count.x1 && y >= count.y0 && y < count.y1) inside++;
    visit?.(k);
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
    for (let dy = -1; dy <= 1; dy++) {
      const ny = y + dy;
      if (ny < 0 || ny >= h) continue;
      for (let dx = -1; dx <= 1; dx++) {
        const nx = x + dx;
        if (nx < 0 || nx >= w) continue;
        const j = ny * w + nx;
        if (mask[j] === 1) {
          mask[j] = 2;
          STACK.push(j);
        }
      }
    }
  }
  return { minX, minY, maxX, maxY, size, inside };
}

/** Mean luminance of an 8-bit gray buffer, 0 (black) … 1 (white); 1 when empty. */
export function meanLuminance(gray: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < gray.length; i++) sum += gray[i]!;
  return gray.length > 0 ? sum / gray.length / 255 : 1;
}

/** The pixels of `rect` of a `width`-wide gray image, row by row (a new buffer of `rect.width × rect.height`). */
export function cropOf(gray: Uint8Array, width: number, rect: PixelBox): Uint8Array {
  const out = new Uint8Array(rect.width * rect.height);
  for (let y = 0; y < rect.height; y++) out.set(gray.subarray((rect.top + y) * width + rect.left, (rect.top + y) * width + rect.left + rect.width), y * rect.width);
  return out;
}

/** Options of {@link estimateGlyphHeight}. */
export interface GlyphHeightOptions {
  /** Cell side for the local background, pixels (default 12). */
  cell?: number;
  /** Luminance difference (0..255) from the cell's background that counts as ink (default 48). */
  inkContrast?: number;
  /** Tallest component counted as a glyph, pixels (default 96): frames, gauges and photos are not text. */
  maxHeight?: number;
  /** Fewest glyphs for an estimate (default 1): with fewer, {@link estimateGlyphHeight} returns 0. */
  minGlyphs?: number;
}

/**
 * Typical glyph height of the text in `rect` of a gray image (`width` pixels wide), in pixels: the median
 * height of the connected components (8-connected) of ink, where ink is a pixel at least `inkContrast` away
 * from its cell's background level ({@link backgroundLevel}), so light and dark text count alike.
 * Components under 4 pixels tall (rules, dots, noise) or over `maxHeight`, and thin vertical strokes
 * (borders: taller than 3× their width and than 24 px) are not glyphs. Lower-case letters dominate text, so
 * the value sits between the x-height and the cap height: ≈ 8–10 px for 13–14 px text at 1x, twice that at
 * 2x. Returns 0 when nothing looks like a glyph. Pure; O(pixels).
 */
export function estimateGlyphHeight(gray: Uint8Array, width: number, rect: PixelBox, opts: GlyphHeightOptions = {}): number {
  const heights = glyphBoxes(gray, width, rect, opts).map((b) => b.height);
  if (heights.length === 0 || heights.length < (opts.minGlyphs ?? 1)) return 0;
  heights.sort((a, b) => a - b);
  return heights[Math.floor(heights.length / 2)]!;
}

/**
 * The boxes (pixels of `gray`, absolute) of the connected components of ink in `rect` that look like
 * glyphs, as {@link estimateGlyphHeight} counts them. Pure; O(pixels).
 */
export function glyphBoxes(gray: Uint8Array, width: number, rect: PixelBox, opts: GlyphHeightOptions = {}): PixelBox[] {
  const cell = Math.max(2, Math.floor(opts.cell ?? 12));
  const contrast = opts.inkContrast ?? 48;
  const maxHeight = opts.maxHeight ?? 96;
  const w = rect.width;
  const h = rect.height;
  const ink = new Uint8Array(w * h);
  for (let cy = 0; cy < h; cy += cell) {
    for (let cx = 0; cx < w; cx += cell) {
      const y1 = Math.min(h, cy + cell);
      const x1 = Math.min(w, cx + cell);
      const bg = backgroundLevel(gray, width, rect.left + cx, rect.top + cy, rect.left + x1, rect.top + y1);
      for (let y = cy; y < y1; y++) {
        const row = (rect.top + y) * width + rect.left;
        for (let x = cx; x < x1; x++) if (Math.abs(gray[row + x]! - bg) > contrast) ink[y * w + x] = 1;
      }
    }
  }
  const boxes: PixelBox[] = [];
  for (let i = 0; i < ink.length; i++) {
    if (ink[i] !== 1) continue;
    const c = floodComponent(ink, w, h, i);
    const ch = c.maxY - c.minY + 1;
    const cw = c.maxX - c.minX + 1;
    if (ch < 4 || ch > maxHeight || (ch > 3 * cw && ch > 24)) continue;
    boxes.push({ left: rect.left + c.minX, top: rect.top + c.minY, width: cw, height: ch });
  }
  return boxes;
}
