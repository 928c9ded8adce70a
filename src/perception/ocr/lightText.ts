/**
 * Light text: regions of a gray image whose text is lighter than its background (light-on-dark panels,
 * white text on coloured buttons, dark cards on a light page), and their isolation as dark text on white for
 * tesseract. Pure; measurements behind the defaults in src/perception/ocr/engine.ts and docs/perception.md.
 */
import { mergeOverlapping, type PixelBox } from '../geometry.js';
import { backgroundLevel, floodComponent } from './raster.js';

/** Background levels (0..255) below which dark text is read again on its own surface too. */
const TINTED_BELOW = 200;

/** Options of {@link findLightTextRegions}. */
export interface LightTextOptions {
  /** Cell side, pixels (default 12). */
  cell?: number;
  /** Luminance difference (0..255) from the cell's background that counts as ink (default 48). */
  inkContrast?: number;
  /** Light-ink pixels a cell needs to be flagged (default 4). */
  minInk?: number;
  /** Padding added around each region, pixels (default one cell). */
  pad?: number;
}

/**
 * Find the parts of a gray image where text is lighter than its background (light-on-dark panels, white
 * text on coloured buttons and badges, dark cards on a light page), as rectangles in the image's pixels.
 *
 * Per cell of `cell × cell` pixels: the background is its {@link backgroundLevel} (the most common of 32
 * levels); the cell is flagged when it holds at least `minInk` pixels lighter than that background by
 * `inkContrast` and more of them than darker ones, or — on a tinted background (level < 200: badges, coloured buttons) — as many
 * darker ones. Flagged cells are grouped 8-connected; each group's bounding box, padded by
 * `pad` and clipped, is one region; overlapping regions are merged. Pure; O(pixels).
 */
export function findLightTextRegions(gray: Uint8Array, width: number, height: number, opts: LightTextOptions = {}): LightTextRegion[] {
  const cell = Math.max(2, Math.floor(opts.cell ?? 12));
  const contrast = opts.inkContrast ?? 48;
  const minInk = opts.minInk ?? 4;
  const pad = opts.pad ?? cell;
  const cols = Math.ceil(width / cell);
  const rows = Math.ceil(height / cell);
  // Per flagged cell, its background level (4..252; 0 = not flagged), and 1 in `mask` (see floodComponent).
  const flagged = new Uint8Array(cols * rows);
  const mask = new Uint8Array(cols * rows);
  for (let cy = 0; cy < rows; cy++) {
    const y0 = cy * cell;
    const y1 = Math.min(height, y0 + cell);
    for (let cx = 0; cx < cols; cx++) {
      const x0 = cx * cell;
      const x1 = Math.min(width, x0 + cell);
      const bg = backgroundLevel(gray, width, x0, y0, x1, y1);
      let light = 0;
      let dark = 0;
      for (let y = y0; y < y1; y++) {
        const row = y * width;
        for (let x = x0; x < x1; x++) {
          const v = gray[row + x]!;
          if (v > bg + contrast) light++;
          else if (v < bg - contrast) dark++;
        }
      }
      // Light text on a darker surface, or dark text on a tinted surface (a badge, a coloured button).
      if ((light >= minInk && light > dark) || (bg < TINTED_BELOW && dark >= minInk && dark > light)) {
        flagged[cy * cols + cx] = bg;
        mask[cy * cols + cx] = 1;
      }
    }
  }
  // 8-connected groups of flagged cells → padded bounding boxes.
  const boxes: LightTextRegion[] = [];
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 1) continue;
    const levels = new Set<number>();
    const c = floodComponent(mask, cols, rows, i, { visit: (k) => levels.add(flagged[k]!) });
    const left = Math.max(0, c.minX * cell - pad);
    const top = Math.max(0, c.minY * cell - pad);
    const right = Math.min(width, (c.maxX + 1) * cell + pad);
    const bottom = Math.min(height, (c.maxY + 1) * cell + pad);
    boxes.push({ left, top, width: right - left, height: bottom - top, backgrounds: [...levels].sort((a, b) => a - b) });
  }
  return mergeRects(boxes);
}

/** A region found by {@link findLightTextRegions}: pixels, and the background levels (0..255) its light text sits on. */
export interface LightTextRegion extends PixelBox {
  backgrounds: number[];
}

/**
 * Turn a light-text region into dark text on white, as tesseract wants it, without the surroundings that a
 * plain inversion would turn into a black frame (a white page around a green button becomes black, and
 * Otsu's global threshold then swallows the button). `gray` holds the region's pixels (`width × height`).
 * Pixels within `tol` of one of the region's background levels are the surface (→ white); other pixels
 * connected to the region's border are the surroundings (→ white); what is left is enclosed by the surface:
 * the text, drawn dark in proportion to its distance from the nearest surface level (twice it, clamped), so
 * light and dark text on any colour come out dark on white.
 *
 * With `cell` (pixels), a background level is surface only near where it is a surface: in the cells (of
 * `cell × cell`) whose most common level it is, and their 8 neighbours. A level that a graphic contributed
 * (a gauge's grey arc) then no longer erases text of the same grey elsewhere in the region ("last minute"
 * under a gauge: lost without it). Pure.
 */
export function isolateLightText(gray: Uint8Array, width: number, height: number, backgrounds: number[], tol = 20, cell?: number): Buffer {
  return isolate(gray, width, height, backgrounds, tol, cell, false);
}

/**
 * {@link isolateLightText} that leaves the surroundings as they were: the region's surface turns white and the
 * text it encloses dark, but pixels that are not surface and connect to the region's border (the page around a
 * dark pane, dark text on that page inside the region's padding) keep their gray. For a region flattened in
 * place inside a larger image (`flattenRegions`), where whatever lies around the surface is read as it is. Pure.
 */
export function flattenLightText(gray: Uint8Array, width: number, height: number, backgrounds: number[], tol = 20, cell?: number): Buffer {
  return isolate(gray, width, height, backgrounds, tol, cell, true);
}

/**
 * A copy of a gray image (`width` pixels wide) with each of `regions` (pixels of the image) replaced by its
 * {@link flattenLightText}: light text on a dark pane becomes dark text on white where it lies, so that one
 * read of the whole image reads both polarities. `cell`: as in {@link isolateLightText}. Pure; O(pixels of the
 * regions) beside the copy.
 */
export function flattenRegions(gray: Uint8Array, width: number, regions: LightTextRegion[], cell?: number): Uint8Array {
  const out = new Uint8Array(gray);
  for (const r of regions) {
    const part = new Uint8Array(r.width * r.height);
    for (let y = 0; y < r.height; y++) part.set(gray.subarray((r.top + y) * width + r.left, (r.top + y) * width + r.left + r.width), y * r.width);
    const flat = flattenLightText(part, r.width, r.height, r.backgrounds, undefined, cell);
    for (let y = 0; y < r.height; y++) out.set(flat.subarray(y * r.width, (y + 1) * r.width), (r.top + y) * width + r.left);
  }
  return out;
}

/** {@link isolateLightText}; with `keepOutside`, the surroundings keep their gray instead of turning white. */
function isolate(gray: Uint8Array, width: number, height: number, backgrounds: number[], tol: number, cell: number | undefined, keepOutside: boolean): Buffer {
  const n = width * height;
  const out = Buffer.alloc(n, 255);
  const surface = new Uint8Array(n);
  const levelsAt = localSurfaceLevels(gray, width, height, backgrounds, tol, cell);
  for (let i = 0; i < n; i++) {
    const v = gray[i]!;
    for (const b of levelsAt(i)) {
      if (Math.abs(v - b) <= tol) {
        surface[i] = 1;
        break;
      }
    }
  }
  // Flood the non-surface pixels reachable from the border: the surroundings.
  const outside = new Uint8Array(n);
  const stack: number[] = [];
  const seed = (i: number) => {
    if (!surface[i] && !outside[i]) {
      outside[i] = 1;
      stack.push(i);
    }
  };
  for (let x = 0; x < width; x++) {
    seed(x);
    seed((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    seed(y * width);
    seed(y * width + width - 1);
  }
  while (stack.length > 0) {
    const i = stack.pop()!;
    const x = i % width;
    if (x > 0) seed(i - 1);
    if (x < width - 1) seed(i + 1);
    if (i >= width) seed(i - width);
    if (i + width < n) seed(i + width);
  }
  for (let i = 0; i < n; i++) {
    if (outside[i] && keepOutside) out[i] = gray[i]!;
    if (surface[i] || outside[i]) continue;
    const v = gray[i]!;
    let d = 255;
    const near = levelsAt(i);
    for (const l of near.length > 0 ? near : backgrounds) d = Math.min(d, Math.abs(v - l));
    // Twice the contrast: anti-aliased edges of thin strokes ("l" at 13 px) stay ink.
    out[i] = 255 - Math.min(255, 2 * d);
  }
  return out;
}

/**
 * Which background levels count as surface at each pixel: all of them without `cell`; with it, those that
 * are (within `tol`) the most common level of the pixel's cell or of one of its 8 neighbours.
 */
function localSurfaceLevels(gray: Uint8Array, width: number, height: number, backgrounds: number[], tol: number, cell?: number): (i: number) => number[] {
  if (!cell || cell < 2) return () => backgrounds;
  const cols = Math.ceil(width / cell);
  const rows = Math.ceil(height / cell);
  // Per cell: index into `backgrounds` of its mode's nearest level, or -1.
  const own = new Int16Array(cols * rows).fill(-1);
  for (let cy = 0; cy < rows; cy++) {
    for (let cx = 0; cx < cols; cx++) {
      const m = backgroundLevel(gray, width, cx * cell, cy * cell, Math.min(width, (cx + 1) * cell), Math.min(height, (cy + 1) * cell));
      let best = -1;
      for (let k = 0; k < backgrounds.length; k++) {
        const d = Math.abs(backgrounds[k]! - m);
        if (d <= tol && (best < 0 || d < Math.abs(backgrounds[best]! - m))) best = k;
      }
      own[cy * cols + cx] = best;
    }
  }
  const near: number[][] = [];
  for (let cy = 0; cy < rows; cy++) {
    for (let cx = 0; cx < cols; cx++) {
      const set = new Set<number>();
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const x = cx + dx;
          const y = cy + dy;
          if (x < 0 || y < 0 || x >= cols || y >= rows) continue;
          const k = own[y * cols + x]!;
          if (k >= 0) set.add(backgrounds[k]!);
        }
      }
      near.push([...set]);
    }
  }
  return (i) => {
    const x = i % width;
    const y = (i - x) / width;
    return near[Math.floor(y / cell) * cols + Math.floor(x / cell)]!;
  };
}

/**
 * Merge overlapping rectangles (pixels; sharing an edge is not overlapping) until none overlap, pooling the
 * background levels of merged ones (sorted, unique); sorted top to bottom, then left to right.
 * ({@link mergeOverlapping} on the boxes.)
 */
export function mergeRects<T extends PixelBox & { backgrounds?: number[] }>(rects: T[]): T[] {
  const asRects = rects.map((r) => ({ ...r, x: r.left, y: r.top }));
  const merged = mergeOverlapping(asRects, {
    touching: false,
    combine: (a, b, box) => {
      const m = { ...a, ...box };
      if (a.backgrounds || b.backgrounds) m.backgrounds = [...new Set([...(a.backgrounds ?? []), ...(b.backgrounds ?? [])])].sort((x, y) => x - y);
      return m;
    },
  });
  return merged.map(({ x, y, ...r }) => ({ ...r, left: x, top: y }) as unknown as T).sort((a, b) => a.top - b.top || a.left - b.left);
}
