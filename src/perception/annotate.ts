import sharp from 'sharp';
import type { Rect } from '../platform/types.js';
import { INTERACTIVE_ROLES } from '../platform/roles.js';
import { clip } from './geometry.js';
import type { Element } from './elements.js';
import type { EncodedImage, ImageFormat } from './image.js';

/**
 * Set-of-Marks screenshots (Yang et al., "Set-of-Mark Prompting", 2023): each element's bounds drawn as
 * a box with its ref number ("12" for `e12`) in a label at the box's top-left corner, so a model can
 * name an element by the number it sees. Drawn with an SVG overlay composited by sharp (librsvg), text in
 * DejaVu Sans.
 *
 * Geometry: the annotated image is in logical points (image pixel (x, y) is screen point origin + (x, y),
 * `scale` 1), the space element bounds are in, so box k lies exactly on the bounds of ref `ek`.
 */

/** Box colours, RGB, by kind of element (exported for tests and for clients that explain the legend). */
export const MARK_COLORS = {
  /** Interactive roles (`INTERACTIVE_ROLES`: button, textbox, link, …). */
  interactive: [230, 0, 126] as const,
  /** OCR-only text. */
  text: [0, 102, 230] as const,
  /** Everything else (headings, images, canvases, cells without actions, …). */
  other: [0, 150, 60] as const,
};

/** Which palette entry an element gets. */
export function markKind(e: Pick<Element, 'role' | 'source'>): keyof typeof MARK_COLORS {
  if (INTERACTIVE_ROLES.has(e.role)) return 'interactive';
  if (e.source === 'ocr') return 'text';
  return 'other';
}

/** Options of {@link annotateScreenshot}. */
export interface AnnotateOptions {
  /** Output format (default: the input's). */
  format?: ImageFormat;
  /** Box stroke width, points (default 2). */
  strokeWidth?: number;
  /** Label font size, points (default 12). */
  fontSize?: number;
  /**
   * Also draw elements other windows cover completely (state `covered`), with a dashed box (default false:
   * they are left out, so no box is drawn over the window that hides them).
   */
  includeCovered?: boolean;
}

const rgb = (c: readonly [number, number, number]) => `rgb(${c[0]},${c[1]},${c[2]})`;
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/**
 * Build the SVG overlay for an image of `width`x`height` points whose pixel (0, 0) is global point
 * `origin`. Boxes are drawn inside the element bounds (the stroke does not spill outside), clipped to the
 * image; labels sit just above the box when there is room, else inside its top-left corner.
 * Covered elements (state `covered`) are left out unless `opts.includeCovered` (then dashed); a partly
 * covered element's box is drawn on its `visibleBounds`, never over the window covering the rest.
 */
export function marksSvg(elements: Element[], width: number, height: number, origin: { x: number; y: number }, opts: AnnotateOptions = {}): string {
  const sw = opts.strokeWidth ?? 2;
  const fs = opts.fontSize ?? 12;
  const frame: Rect = { x: 0, y: 0, width, height };
  const boxes: string[] = [];
  const labels: string[] = [];
  for (const e of elements) {
    const covered = e.states.includes('covered');
    if (covered && !opts.includeCovered) continue;
    const shown = e.visibleBounds ?? e.bounds;
    const local = clip({ x: shown.x - origin.x, y: shown.y - origin.y, width: shown.width, height: shown.height }, frame);
    if (!local || local.width < 2 || local.height < 2) continue;
    const color = rgb(MARK_COLORS[markKind(e)]);
    const x = Math.round(local.x);
    const y = Math.round(local.y);
    const w = Math.round(local.width);
    const h = Math.round(local.height);
    const half = sw / 2;
    boxes.push(`<rect x="${x + half}" y="${y + half}" width="${Math.max(w - sw, 0)}" height="${Math.max(h - sw, 0)}" fill="none" stroke="${color}" stroke-width="${sw}"${covered ? ` stroke-dasharray="${sw * 3} ${sw * 2}"` : ''}/>`);
    const label = e.ref.replace(/^e/, '');
    const lw = Math.ceil(label.length * fs * 0.62) + 4;
    const lh = fs + 3;
    const ly = y >= lh ? y - lh : y;
    const lx = Math.min(x, Math.max(width - lw, 0));
    labels.push(
      `<rect x="${lx}" y="${ly}" width="${lw}" height="${lh}" fill="${color}"/>` +
        `<text x="${lx + 2}" y="${ly + fs}" font-family="DejaVu Sans" font-weight="bold" font-size="${fs}" fill="#ffffff">${esc(label)}</text>`,
    );
  }
  // Labels after every box, so no box is drawn over a number.
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" shape-rendering="crispEdges">${boxes.join('')}${labels.join('')}</svg>`;
}

/**
 * Draw Set-of-Marks boxes on an encoded screenshot. An image at scale ≠ 1 is first resized to logical
 * points, so the result's pixels are points (`scale` 1) whatever the display's backing scale.
 * @returns a new encoded image (same origin) in `opts.format` or the input's format.
 */
export async function annotateScreenshot(shot: EncodedImage, elements: Element[], opts: AnnotateOptions = {}): Promise<EncodedImage> {
  const format = opts.format ?? shot.format;
  let width = shot.width;
  let height = shot.height;
  let base = sharp(shot.data);
  if (shot.scale !== 1) {
    width = Math.round(shot.width / shot.scale);
    height = Math.round(shot.height / shot.scale);
    base = sharp(await base.resize(width, height, { kernel: 'lanczos3' }).toBuffer());
  }
  const svg = Buffer.from(marksSvg(elements, width, height, shot.origin, opts));
  const composed = base.composite([{ input: svg, top: 0, left: 0 }]);
  const data = format === 'png' ? await composed.png({ compressionLevel: 3 }).toBuffer() : await composed.removeAlpha().jpeg({ quality: 80 }).toBuffer();
  return { format, mimeType: format === 'png' ? 'image/png' : 'image/jpeg', data, width, height, scale: 1, origin: { ...shot.origin } };
}
