import type { RawAXNode, RawImage, Rect, WindowInfo } from '../platform/types.js';
import { center, contains, intersectionArea, pointsToPixels } from './geometry.js';

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
  /** Ids of the windows (of the list the mask was computed from) that are masked; absent = none known. */
  windowIds?: string[];
  /**
   * Whether the policy hides an application (`windowTitle` omitted) or one of its windows, judged by the
   * accessible application name and window title alone. Accessibility trees hold applications whose windows
   * are not visible (unmapped, minimised, on another workspace), which no window-list region covers: they
   * are filtered with this. Absent = only {@link apps}.
   */
  hides?: (app: string, windowTitle?: string | null) => boolean;
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
    const px = pointsToPixels(img, r);
    if (!px) continue;
    const x0 = px.x, y0 = px.y, x1 = px.x + px.width, y1 = px.y + px.height;
    if (img === input) img = { ...input, data: Buffer.from(input.data) };
    for (let y = y0; y < y1; y++) {
      const row = y * img.width * 4;
      img.data.fill(0, row + x0 * 4, row + x1 * 4);
      for (let x = x0; x < x1; x++) img.data[row + x * 4 + 3] = 255;
    }
  }
  return img;
}

/**
 * Drop the accessibility roots of masked apps and the top-level windows the policy hides, by app name and
 * window title, whether those windows are visible or not (see {@link PerceptionMask.hides}). An app the
 * policy hides as a whole (`hides(app)`) keeps only the windows it allows by title (none, when the app is
 * masked); an app left with no window is dropped.
 */
export function maskApps(roots: RawAXNode[], mask: PerceptionMask): RawAXNode[] {
  const apps = new Set(mask.apps);
  const hides = mask.hides;
  const out: RawAXNode[] = [];
  for (const r of roots) {
    if (r.role !== 'application') {
      out.push(r);
      continue;
    }
    if (apps.has(r.name.toLowerCase())) continue;
    if (!hides) {
      out.push(r);
      continue;
    }
    const children = r.children.filter((c) => !(TOP_LEVEL_ROLES.has(c.role) && hides(r.name, c.name)));
    const appHidden = hides(r.name);
    if (appHidden && !children.some((c) => TOP_LEVEL_ROLES.has(c.role))) continue;
    out.push(children.length === r.children.length ? r : { ...r, children });
  }
  return out;
}

/** Roles of an application's top-level children (its windows). */
const TOP_LEVEL_ROLES: ReadonlySet<string> = new Set(['window', 'dialog', 'frame', 'alert']);

/** Drop accessibility roots of masked apps and windows ({@link maskApps}), and nodes whose centre lies in a masked region. */
export function maskTree(roots: RawAXNode[], mask: PerceptionMask): RawAXNode[] {
  const keep = (n: RawAXNode): RawAXNode | null => {
    if (n.bounds && mask.regions.some((r) => intersectionArea(r, n.bounds!) > 0 && contains(r, center(n.bounds!)))) return null;
    return { ...n, children: n.children.map(keep).filter((c): c is RawAXNode => c !== null) };
  };
  return maskApps(roots, mask)
    .map(keep)
    .filter((r): r is RawAXNode => r !== null);
}

/**
 * True when the mask hides a window: listed in `windowIds` (without `windowIds`: its app is in `apps`), or
 * hidden by app and title (`hides`, for a window not in the list the mask was computed from).
 */
export function isWindowMasked(w: WindowInfo, mask: PerceptionMask): boolean {
  if (mask.windowIds ? mask.windowIds.includes(w.id) : !!w.app && mask.apps.includes(w.app.toLowerCase())) return true;
  return !!w.app && !!mask.hides?.(w.app, w.title);
}

/** True when a rectangle's centre lies in a masked region (for OCR words and lines). */
export function isMasked(bounds: Rect, regions: Rect[]): boolean {
  const c = center(bounds);
  return regions.some((r) => contains(r, c));
}
