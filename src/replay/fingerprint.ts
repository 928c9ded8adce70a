import type { Point, Rect, WindowInfo } from '../platform/types.js';
import { INTERACTIVE_ROLES } from '../platform/roles.js';
import { center, contains } from '../perception/geometry.js';
import { normalizeName, type Element, type OcrLine } from '../perception/elements.js';
import type { Fingerprint } from './types.js';

/**
 * Fingerprints (issue 18): what identifies a step's target so a replay can find it again in a fresh
 * observation, and the texts an observation shows (`textsOf`, for outcomes and postconditions). Pure functions over an observation's
 * elements and lines (logical global points) and the window list read with it (top-most first).
 */

/** How far (points) left of or above an element a label may be. */
export const LABEL_RADIUS = 120;
/** Labels kept per fingerprint. */
export const MAX_LABELS = 4;
/** Path entries kept (innermost last). */
export const MAX_PATH = 16;

/** The parts of an observation a fingerprint is taken from. */
export interface FingerprintSource {
  elements: Element[];
  lines?: OcrLine[];
}

/** The top-most window holding `p` (windows are top-most first), or null. */
export function windowAt(windows: readonly WindowInfo[], p: Point): WindowInfo | null {
  return windows.find((w) => contains(w.bounds, p)) ?? null;
}

/** `r`'s centre and size as fractions of `w` (0..1 inside the window). */
export function relativeTo(r: Rect, w: Rect): { cx: number; cy: number; width: number; height: number } {
  const c = center(r);
  const fx = (v: number) => Math.round(v * 10000) / 10000;
  return { cx: fx((c.x - w.x) / Math.max(1, w.width)), cy: fx((c.y - w.y) / Math.max(1, w.height)), width: fx(r.width / Math.max(1, w.width)), height: fx(r.height / Math.max(1, w.height)) };
}

const inside = (inner: Rect, outer: Rect) =>
  inner.x >= outer.x - 1 && inner.y >= outer.y - 1 && inner.x + inner.width <= outer.x + outer.width + 1 && inner.y + inner.height <= outer.y + outer.height + 1;

/**
 * Texts of non-interactive elements (labels, static text, OCR text) nearest to `el` that lie left of it
 * (overlapping its rows) or above it (overlapping its columns), within {@link LABEL_RADIUS} points;
 * nearest first, at most {@link MAX_LABELS}.
 */
export function nearbyLabels(el: Element, elements: readonly Element[]): string[] {
  const b = el.bounds;
  const found: { text: string; d: number }[] = [];
  for (const o of elements) {
    if (o === el || INTERACTIVE_ROLES.has(o.role) || o.name === '' || o.role === 'window' || o.role === 'document' || o.role === 'frame') continue;
    const ob = o.bounds;
    if (inside(b, ob) || inside(ob, b)) continue;
    const rows = ob.y < b.y + b.height && ob.y + ob.height > b.y;
    const cols = ob.x < b.x + b.width && ob.x + ob.width > b.x;
    let d = Infinity;
    if (rows && ob.x + ob.width <= b.x + 2) d = b.x - (ob.x + ob.width);
    else if (cols && ob.y + ob.height <= b.y + 2) d = b.y - (ob.y + ob.height);
    if (d <= LABEL_RADIUS) found.push({ text: o.name.slice(0, 100), d });
  }
  found.sort((a, b2) => a.d - b2.d);
  return [...new Set(found.map((f) => f.text))].slice(0, MAX_LABELS);
}

/**
 * The containment path of `el`: accessible elements before it in the observation whose bounds hold it
 * (ancestors come before descendants in the flattened tree), outermost first, as `role` or `role:name`.
 */
export function containmentPath(el: Element, elements: readonly Element[]): string[] {
  const i = elements.indexOf(el);
  const before = i >= 0 ? elements.slice(0, i) : elements.filter((e) => e !== el);
  const out = before.filter((a) => a.source !== 'ocr' && inside(el.bounds, a.bounds) && !(a.bounds.width === el.bounds.width && a.bounds.height === el.bounds.height && a.bounds.x === el.bounds.x && a.bounds.y === el.bounds.y));
  // Outermost first: larger areas first (ties keep document order).
  out.sort((a, b) => b.bounds.width * b.bounds.height - a.bounds.width * a.bounds.height);
  return out.map((a) => (a.name ? `${a.role}:${a.name.slice(0, 60)}` : a.role)).slice(-MAX_PATH);
}

/** OCR text inside `r` (lines whose centre lies in it), in reading order. */
export function textInside(r: Rect, lines: readonly OcrLine[] | undefined): string {
  return (lines ?? [])
    .filter((l) => contains(r, center(l.bounds)))
    .map((l) => l.text)
    .join(' ')
    .slice(0, 300);
}

/**
 * The fingerprint of `el` in `obs`, with the window list read alongside (top-most first; masked windows
 * already left out by the caller).
 */
export function fingerprintOf(el: Element, obs: FingerprintSource, windows: readonly WindowInfo[]): Fingerprint {
  const w = windowAt(windows, center(el.visibleBounds ?? el.bounds));
  const fp: Fingerprint = {
    app: w?.app ?? null,
    windowTitle: w?.title ?? null,
    role: el.role,
    name: el.name.slice(0, 300),
    text: textInside(el.bounds, obs.lines),
    labels: nearbyLabels(el, obs.elements),
    relative: w ? relativeTo(el.bounds, w.bounds) : null,
    path: containmentPath(el, obs.elements),
    source: el.source,
    bounds: { ...el.bounds },
  };
  if (el.value !== undefined && !el.states.includes('password')) fp.value = el.value.slice(0, 300);
  return fp;
}

/**
 * The smallest element of `obs` holding `p` (pointer actions sent with coordinates), preferring
 * interactive roles; windows, documents and frames never count.
 */
export function elementAt(obs: FingerprintSource, p: Point): Element | null {
  let best: Element | null = null;
  const rank = (e: Element) => (INTERACTIVE_ROLES.has(e.role) ? 0 : 1);
  for (const e of obs.elements) {
    if (['window', 'document', 'frame', 'application'].includes(e.role) || e.states.includes('covered')) continue;
    if (!contains(e.visibleBounds ?? e.bounds, p)) continue;
    if (!best || rank(e) < rank(best) || (rank(e) === rank(best) && e.bounds.width * e.bounds.height < best.bounds.width * best.bounds.height)) best = e;
  }
  return best;
}

/** One text an observation shows: an element's name or value (with its role), or an OCR line (role `text`). */
export interface ShownText {
  role: string;
  text: string;
  source: 'accessibility' | 'ocr';
}

/**
 * Every text an observation shows (inside `within` when given), keyed by role and text: element names
 * and values (with the element's role), and OCR lines (role `text`).
 */
export function textsOf(obs: FingerprintSource, within?: Rect | null): Map<string, ShownText> {
  const out = new Map<string, ShownText>();
  const keep = (r: Rect) => !within || contains(within, center(r));
  const add = (role: string, raw: string, source: ShownText['source']) => {
    const text = normalizeName(raw);
    const key = `${role}\u0000${text}`;
    if (text !== '' && text.length <= 200 && !out.has(key)) out.set(key, { role, text, source });
  };
  for (const e of obs.elements) {
    if (!keep(e.bounds)) continue;
    const src = e.source === 'ocr' ? 'ocr' : 'accessibility';
    add(e.role, e.name, src);
    if (e.value !== undefined) add(e.role, e.value, src);
  }
  for (const l of obs.lines ?? []) if (keep(l.bounds)) add('text', l.text, 'ocr');
  return out;
}
