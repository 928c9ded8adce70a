/**
 * Label → value pairs: KPI cards ("Open P1 bugs" over a big "3"), gauges (a value drawn in a ring with its
 * label above or below), "label: value" text, and accessible value elements (progress bars, sliders,
 * meters: name → value).
 *
 * Items are the observation's text pieces: accessible text elements, and OCR words not inside one, cut
 * into segments at gutters (`grid.ts`). A value is an item that reads as a quantity ({@link isValue}); it
 * takes the nearest label-like item above it, else below it, else to its left on the same row, within
 * 4 × the larger text height (a gauge value sits in its ring, the label under the ring: 72 points under a 21-point value on bench:read kpi); the value's text must be at least 0.8 × the label's height above/below it
 * (KPI numbers are drawn larger than their labels). Each label is used once, nearest pairs first. A canvas
 * or image holding exactly one value pairs it with the label nearest it inside (a gauge drawn as pixels).
 */
import type { Rect } from '../../platform/types.js';
import type { Element, OcrWord } from '../elements.js';
import { isCovered } from '../occlusion.js';
import { union } from '../geometry.js';
import type { ReadPair } from './types.js';
import { bottom, centreIn, cx, cy, overlap, right, wordRows } from './grid.js';

/** A quantity: optional sign and currency, digits with separators, an optional unit or suffix; also `3/5` and `12 of 40`. */
const VALUE_RE = /^(?:[+\-−±~≈<>]?\s?[$€£¥]?\s?\d[\d,.  ]*(?:\s?(?:%|‰|ms|µs|us|ns|s|sec|min|m|h|hrs?|d|days?|k|K|M|B|G|T|GB|MB|KB|TB|GiB|MiB|x|×|pts?|rps|qps|req\/s|\/s|\/min|°C?|°F))?|\d+\s?(?:\/|of)\s?\d+)$/u;

/** True when `s` reads as a value (a number with an optional unit, see {@link VALUE_RE}). */
export function isValue(s: string): boolean {
  const t = s.trim();
  return t.length > 0 && t.length <= 24 && VALUE_RE.test(t);
}

/** True when `s` can be a label: has a letter, is not a value, at most 48 characters. */
function isLabel(s: string): boolean {
  const t = s.trim();
  return t.length > 0 && t.length <= 48 && /\p{L}/u.test(t) && !isValue(t);
}

/** A text piece with its bounds and text height (points). */
interface Item {
  text: string;
  bounds: Rect;
  height: number;
}

const TEXT_ROLES: ReadonlySet<string> = new Set(['text', 'label', 'heading', 'paragraph', 'cell', 'listitem', 'link']);
const VALUE_ROLES: ReadonlySet<string> = new Set(['progressbar', 'slider', 'spinbutton']);
const COLON_RE = /^([^:]{1,40}\p{L}[^:]{0,40}?)\s*[:：]\s+(\S.{0,60})$/u;

/**
 * The text pieces pairs are made of: accessible text elements, then segments of the OCR words no accessible
 * text element holds (canvas-drawn labels and values); `ocr` marks the latter.
 */
function pairItems(visible: readonly Element[], words: readonly OcrWord[], excluded: (r: Rect) => boolean): { items: (Item & { ocr: boolean })[] } {
  const items: (Item & { ocr: boolean })[] = [];
  const textEls = visible.filter((e) => TEXT_ROLES.has(e.role) && e.name !== '' && e.bounds.height <= 120 && e.source !== 'ocr');
  for (const e of textEls) items.push({ text: e.name, bounds: e.bounds, height: e.bounds.height, ocr: false });
  const free = words.filter((w) => !excluded(w.bounds) && !textEls.some((e) => centreIn(w.bounds, e.bounds)));
  for (const r of wordRows(free)) for (const s of r.segments) items.push({ text: s.text, bounds: s.bounds, height: Math.max(...s.words.map((w) => w.bounds.height)), ocr: true });
  return { items };
}

/** Half of a pair read only from pixels whose other half was not found (see {@link unpairedOcrItems}). */
export interface UnpairedItem {
  kind: 'label' | 'value';
  text: string;
  bounds: Rect;
  /** Tallest word height, points. */
  height: number;
}

/**
 * Labels and values read by OCR alone (pixels no accessible text element holds: canvas-drawn gauges and
 * cards) that belong to none of `pairs`, outside `exclude`: where the other half may be a text the full-frame
 * OCR missed (a value drawn inside a gauge's ring). Labels of more than 3 words are left out (sentences, not labels).
 */
export function unpairedOcrItems(elements: readonly Element[], words: readonly OcrWord[], pairs: readonly ReadPair[], exclude: readonly Rect[] = []): UnpairedItem[] {
  const excluded = (r: Rect) => exclude.some((x) => centreIn(r, x));
  const visible = elements.filter((e) => !isCovered(e) && !excluded(e.bounds));
  const { items } = pairItems(visible, words, excluded);
  const inPair = (r: Rect) => pairs.some((p) => centreIn(r, p.valueBounds) || (p.labelBounds ? centreIn(r, p.labelBounds) : centreIn(r, p.bounds)));
  const out: UnpairedItem[] = [];
  for (const it of items) {
    if (!it.ocr || inPair(it.bounds)) continue;
    if (isValue(it.text)) out.push({ kind: 'value', text: it.text, bounds: it.bounds, height: it.height });
    else if (isLabel(it.text) && it.text.trim().split(/\s+/u).length <= 3 && /\p{L}{2}/u.test(it.text)) out.push({ kind: 'label', text: it.text, bounds: it.bounds, height: it.height });
  }
  return out;
}

/**
 * Pairs of an observation, leaving out text inside `exclude` (tables and boards already read).
 * @returns pairs in reading order.
 */
export function readPairs(elements: readonly Element[], words: readonly OcrWord[], exclude: readonly Rect[] = []): ReadPair[] {
  const out: ReadPair[] = [];
  const excluded = (r: Rect) => exclude.some((x) => centreIn(r, x));
  const visible = elements.filter((e) => !isCovered(e) && !excluded(e.bounds));
  for (const e of visible) {
    if (VALUE_ROLES.has(e.role) && e.name !== '' && e.value !== undefined && e.value !== '') {
      out.push({ label: e.name, value: e.value, bounds: { ...e.bounds }, valueBounds: { ...e.bounds }, via: 'accessibility' });
    }
  }
  const { items } = pairItems(visible, words, excluded);

  const used = new Set<Item>();
  for (const it of items) {
    const m = COLON_RE.exec(it.text.trim());
    if (m && isLabel(m[1]!)) {
      out.push({ label: m[1]!.trim(), value: m[2]!.trim(), bounds: { ...it.bounds }, valueBounds: { ...it.bounds }, via: 'colon' });
      used.add(it);
    }
  }
  // A canvas or image holding one value and its label (a gauge drawn as pixels): they are a pair, however far apart.
  for (const host of visible.filter((e) => e.role === 'canvas' || e.role === 'image')) {
    const inside = items.filter((i) => !used.has(i) && centreIn(i.bounds, host.bounds));
    const vs = inside.filter((i) => isValue(i.text));
    const ls = inside.filter((i) => isLabel(i.text));
    if (vs.length !== 1 || ls.length === 0) continue;
    const v = vs[0]!;
    const l = ls.reduce((a, b) => (Math.hypot(cx(b.bounds) - cx(v.bounds), cy(b.bounds) - cy(v.bounds)) < Math.hypot(cx(a.bounds) - cx(v.bounds), cy(a.bounds) - cy(v.bounds)) ? b : a));
    used.add(v);
    used.add(l);
    out.push({ label: l.text.replace(/[:：]\s*$/u, '').trim(), value: v.text.trim(), bounds: union([l.bounds, v.bounds])!, valueBounds: { ...v.bounds }, labelBounds: { ...l.bounds }, via: 'layout' });
  }
  const values = items.filter((i) => !used.has(i) && isValue(i.text));
  const labels = items.filter((i) => !used.has(i) && isLabel(i.text));
  const cands: { v: Item; l: Item; d: number }[] = [];
  for (const v of values) {
    for (const l of labels) {
      const h = Math.max(v.height, l.height);
      const xov = overlap(v.bounds.x, right(v.bounds), l.bounds.x, right(l.bounds)) > 0 || Math.abs(cx(v.bounds) - cx(l.bounds)) < Math.max(v.bounds.width, l.bounds.width) / 2;
      const above = v.bounds.y - bottom(l.bounds);
      const below = l.bounds.y - bottom(v.bounds);
      if (xov && above >= -2 && above <= 4 * h && v.height >= 0.8 * l.height) cands.push({ v, l, d: above });
      else if (xov && below >= -2 && below <= 4 * h && v.height >= 0.8 * l.height) cands.push({ v, l, d: below + 0.5 * h });
      else if (overlap(v.bounds.y, bottom(v.bounds), l.bounds.y, bottom(l.bounds)) >= 0.5 * Math.min(v.height, l.height) && right(l.bounds) <= v.bounds.x + 1) {
        const gap = v.bounds.x - right(l.bounds);
        if (gap <= 4 * h) cands.push({ v, l, d: gap + h });
      }
    }
  }
  cands.sort((a, b) => a.d - b.d);
  const takenV = new Set<Item>();
  const takenL = new Set<Item>();
  for (const c of cands) {
    if (takenV.has(c.v) || takenL.has(c.l)) continue;
    takenV.add(c.v);
    takenL.add(c.l);
    out.push({ label: c.l.text.replace(/[:：]\s*$/u, '').trim(), value: c.v.text.trim(), bounds: union([c.l.bounds, c.v.bounds])!, valueBounds: { ...c.v.bounds }, labelBounds: { ...c.l.bounds }, via: 'layout' });
  }
  return out.sort((a, b) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x).filter((p, i, all) => i === all.findIndex((q) => q.label === p.label && q.value === p.value && cy(q.bounds) === cy(p.bounds)));
}
