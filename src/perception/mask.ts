import type { RawAXNode, RawImage, Rect, WindowInfo } from '../platform/types.js';
import { center, contains, intersectionArea } from './geometry.js';

/**
 * What perception must not see: screen regions (windows of apps the policy masks) and application
 * names whose accessibility trees are dropped. Produced per observation by a {@link PerceptionGate}.
 */
export interface PerceptionMask {
  /** Regions to black out in images and to drop OCR/accessibility results from, logical points. */
  regions: Rect[];
  /** Lower-cased application names whose accessibility roots are dropped whole. */
  apps: string[];
  /** Policy rule ids that masked something (for the observation's warnings). */
  ruleIds: string[];
}

/** Computes the mask for the visible windows (the policy engine's `perceive` decisions). */
export type PerceptionGate = (windows: WindowInfo[]) => PerceptionMask;

/** True when the mask hides nothing. */
export function isEmptyMask(m: PerceptionMask): boolean {
  return m.regions.length === 0 && m.apps.length === 0;
}

/**
 * Black out masked regions of an image. `img.origin`/`img.scale` map points to pixels. The input is never
 * written: when a region covers any pixel, the pixels are copied first (capture backends may hand the same
 * buffer to later callers, see `X11Supervisor.grab`).
 * @returns `img` itself when no region covers a pixel, else a new image with its own pixels.
 */
export function maskImage(input: RawImage, regions: Rect[]): RawImage {
  let img = input;
  for (const r of regions) {
    const x0 = Math.max(0, Math.floor((r.x - img.origin.x) * img.scale));
    const y0 = Math.max(0, Math.floor((r.y - img.origin.y) * img.scale));
    const x1 = Math.min(img.width, Math.ceil((r.x + r.width - img.origin.x) * img.scale));
    const y1 = Math.min(img.height, Math.ceil((r.y + r.height - img.origin.y) * img.scale));
    if (x1 <= x0 || y1 <= y0) continue;
    if (img === input) img = { ...input, data: Buffer.from(input.data) };
    for (let y = y0; y < y1; y++) {
      const row = y * img.width * 4;
      img.data.fill(0, row + x0 * 4, row + x1 * 4);
      for (let x = x0; x < x1; x++) img.data[row + x * 4 + 3] = 255;
    }
  }
  return img;
}

/** Drop accessibility roots of masked apps, and nodes whose centre lies in a masked region. */
export function maskTree(roots: RawAXNode[], mask: PerceptionMask): RawAXNode[] {
  const apps = new Set(mask.apps);
  const keep = (n: RawAXNode): RawAXNode | null => {
    if (n.bounds && mask.regions.some((r) => intersectionArea(r, n.bounds!) > 0 && contains(r, center(n.bounds!)))) return null;
    return { ...n, children: n.children.map(keep).filter((c): c is RawAXNode => c !== null) };
  };
  return roots
    .filter((r) => !(r.role === 'application' && apps.has(r.name.toLowerCase())))
    .map(keep)
    .filter((r): r is RawAXNode => r !== null);
}

/** True when a rectangle's centre lies in a masked region (for OCR words and lines). */
export function isMasked(bounds: Rect, regions: Rect[]): boolean {
  const c = center(bounds);
  return regions.some((r) => contains(r, c));
}
