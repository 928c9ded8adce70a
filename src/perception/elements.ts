import type { RawAXNode, Rect } from '../platform/types.js';
import { INTERACTIVE_ROLES } from '../platform/roles.js';
import { contains, center, intersectionArea } from './geometry.js';

/** A word read by OCR. `bounds` in logical global points; `confidence` 0..1. */
export interface OcrWord {
  text: string;
  bounds: Rect;
  confidence: number;
}

/** A line of OCR text, in reading order, with its words. */
export interface OcrLine {
  text: string;
  bounds: Rect;
  words?: OcrWord[];
}

/**
 * One element of an observation: an accessible node, or OCR text that no accessible element covers.
 * `ref` is valid only within its observation (like Playwright's `[ref=e2]` and Peekaboo's snapshot ids).
 */
export interface Element {
  /** `e1`, `e2`, … unique within the observation. */
  ref: string;
  /** Role from deskd's vocabulary (`src/platform/roles.ts`); OCR-only text is `text`. */
  role: string;
  /** Accessible name (normalised); for OCR text, the text read. */
  name: string;
  /** Current value (entry text, slider/progress value); never present for password fields. */
  value?: string;
  /** On-screen bounds, logical global points. */
  bounds: Rect;
  /** States: focused, enabled, checked, selected, editable, expanded, password, … */
  states: string[];
  /** Actions the element supports (AT-SPI/AX action names). */
  actions: string[];
  /** Where the element came from: `accessibility`, `ocr`, or both (`fused`). */
  source: 'accessibility' | 'ocr' | 'fused';
  /** Backend handle for element actions and stale checks; not serialised to clients. */
  handle?: string;
}

/**
 * Normalise an accessible name: trim, collapse whitespace, and collapse an exact repetition
 * ("7 7" → "7"; GTK buttons can repeat their label in the name, per platform notes).
 */
export function normalizeName(raw: string | undefined | null): string {
  const s = (raw ?? '').replace(/\s+/g, ' ').trim();
  const words = s.split(' ');
  if (words.length % 2 === 0 && words.length > 0) {
    const half = words.length / 2;
    if (words.slice(0, half).join(' ') === words.slice(half).join(' ')) return words.slice(0, half).join(' ');
  }
  return s;
}

/** Roles kept even without a name (structure an agent may want to act on). */
const KEEP_UNNAMED: ReadonlySet<string> = new Set(['textbox', 'slider', 'progressbar', 'checkbox', 'radio', 'combobox', 'image', 'canvas', 'spinbutton']);
/** Containers whose name would only duplicate their children's text. */
const SKIP_ROLES: ReadonlySet<string> = new Set(['application', 'generic', 'unknown', 'group', 'separator', 'scrollbar', 'tabpanel', 'toolbar', 'statusbar']);

/**
 * Flatten accessibility trees into candidate elements (without refs), in document order.
 * Kept: nodes with on-screen bounds that are interactive or carry a name/value, and a few roles that
 * matter unnamed (textbox, slider, image, canvas…). Nodes whose bounds fall entirely outside `screen` are dropped.
 */
export function flattenAccessibility(roots: RawAXNode[], screen: Rect): Omit<Element, 'ref'>[] {
  const out: Omit<Element, 'ref'>[] = [];
  const walk = (n: RawAXNode): void => {
    const name = normalizeName(n.name);
    const b = n.bounds;
    const onScreen = b !== null && b.width > 0 && b.height > 0 && intersectionArea(b, screen) > 0;
    const interesting =
      !SKIP_ROLES.has(n.role) && (INTERACTIVE_ROLES.has(n.role) || name !== '' || (n.value !== undefined && n.value !== '') || KEEP_UNNAMED.has(n.role));
    if (onScreen && interesting && b) {
      const el: Omit<Element, 'ref'> = { role: n.role, name, bounds: { ...b }, states: [...n.states], actions: [...n.actions], source: 'accessibility', handle: n.handle };
      if (n.value !== undefined && !n.states.includes('password')) el.value = n.value;
      out.push(el);
    }
    for (const c of n.children) walk(c);
  };
  for (const r of roots) walk(r);
  return out;
}

/**
 * Fuse accessible elements with OCR lines into one list and assign refs `e1…eN`.
 * - An OCR line whose centre lies inside an accessible element that has no name names it (canvases, images).
 * - An OCR line not inside any accessible leaf-ish element (interactive or text) becomes a `text` element.
 * Accessible names always win over OCR text.
 */
export function fuseElements(ax: Omit<Element, 'ref'>[], lines: OcrLine[]): Element[] {
  const merged: Omit<Element, 'ref'>[] = ax.map((e) => ({ ...e }));
  for (const line of lines) {
    const c = center(line.bounds);
    // The smallest accessible element containing the line's centre.
    let best: Omit<Element, 'ref'> | undefined;
    for (const e of merged) {
      if (e.source === 'ocr' || !contains(e.bounds, c)) continue;
      if (e.role === 'window' || e.role === 'document' || e.role === 'dialog') continue;
      if (!best || e.bounds.width * e.bounds.height < best.bounds.width * best.bounds.height) best = e;
    }
    if (best) {
      if (best.name === '') {
        best.name = line.text;
        best.source = 'fused';
      } else if (best.source === 'accessibility') {
        best.source = 'fused';
      }
      continue;
    }
    merged.push({ role: 'text', name: line.text, bounds: { ...line.bounds }, states: [], actions: [], source: 'ocr' });
  }
  return merged.map((e, i) => ({ ref: `e${i + 1}`, ...e }));
}
