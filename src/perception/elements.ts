import type { RawAXNode, Rect } from '../platform/types.js';
import { INTERACTIVE_ROLES } from '../platform/roles.js';
import { contains, center, intersectionArea, union } from './geometry.js';

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

/** Letters and digits only, lower case: how OCR words are compared with accessible names. */
export function normalizeToken(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
}

/** True when `a` and `b` differ by at most one insertion, deletion or substitution. */
function withinOneEdit(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  let j = 0;
  let edits = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++;
      j++;
      continue;
    }
    if (++edits > 1) return false;
    if (a.length > b.length) i++;
    else if (b.length > a.length) j++;
    else {
      i++;
      j++;
    }
  }
  return edits + (a.length - i) + (b.length - j) <= 1;
}

/** Roles whose OCR text is reported as its own `text` elements too when OCR names them from several lines. */
const MULTI_TEXT_ROLES: ReadonlySet<string> = new Set(['canvas', 'image']);
/** Roles too large to host OCR words: text in them is either their children's or free text. */
const NON_HOST_ROLES: ReadonlySet<string> = new Set(['window', 'document', 'dialog']);

type Draft = Omit<Element, 'ref'>;

/**
 * Fuse accessible elements with OCR lines into one list and assign refs `e1…eN`, word by word:
 * - each OCR word goes to the smallest accessible element (not a window, document or dialog) containing its
 *   centre; it is *explained* when that element's name or value holds it (letters and digits compared, one
 *   OCR slip allowed in words of 4+ characters) — the accessible name always wins;
 * - an element without a name is named by the OCR words inside it, in reading order (canvases, images, icon
 *   buttons); a canvas or image named from several OCR lines also keeps each line as a `text` element, so
 *   every drawn value has its own bounds;
 * - words not explained (outside every element, or inside a named element whose name lacks them: text the
 *   accessibility tree does not expose) become `text` elements, one per run of consecutive words of a line.
 * Lines without `words` are treated as one word. Bounds in logical global points.
 */
export function fuseElements(ax: Draft[], lines: OcrLine[]): Element[] {
  const merged: Draft[] = ax.map((e) => ({ ...e }));
  const hosts = merged.filter((e) => !NON_HOST_ROLES.has(e.role));
  const tokens = new Map<Draft, { set: Set<string>; joined: string }>();
  for (const e of hosts) {
    const text = `${e.name} ${e.value ?? ''}`;
    tokens.set(e, { set: new Set(text.split(/\s+/).map(normalizeToken).filter(Boolean)), joined: normalizeToken(text) });
  }
  const explains = (e: Draft, word: string): boolean => {
    const k = tokens.get(e)!;
    return word.split(/\s+/).every((part) => {
      const t = normalizeToken(part);
      if (t === '' || k.set.has(t) || (t.length >= 3 && k.joined.includes(t))) return true;
      if (t.length >= 4) for (const x of k.set) if (withinOneEdit(x, t)) return true;
      return false;
    });
  };
  const named = new Map<Draft, OcrLine[]>();
  const free: OcrLine[] = [];
  for (const line of lines) {
    const words: OcrWord[] = line.words && line.words.length > 0 ? line.words : [{ text: line.text, bounds: line.bounds, confidence: 1 }];
    let run: OcrWord[] = [];
    let runHost: Draft | undefined;
    const flush = () => {
      if (run.length === 0) return;
      const l = { text: run.map((w) => w.text).join(' '), bounds: union(run.map((w) => w.bounds))!, words: run };
      if (runHost) named.get(runHost)!.push(l);
      else free.push(l);
      run = [];
      runHost = undefined;
    };
    for (const w of words) {
      const c = center(w.bounds);
      let best: Draft | undefined;
      for (const e of hosts) {
        if (!contains(e.bounds, c)) continue;
        if (!best || e.bounds.width * e.bounds.height < best.bounds.width * best.bounds.height) best = e;
      }
      if (best && best.name === '' && tokens.get(best)!.joined === '') {
        // An unnamed element: OCR names it.
        if (!named.has(best)) named.set(best, []);
        if (runHost !== best) flush();
        runHost = best;
        run.push(w);
        continue;
      }
      if (best && explains(best, w.text)) {
        if (best.source === 'accessibility') best.source = 'fused';
        flush();
        continue;
      }
      if (runHost) flush();
      run.push(w);
    }
    flush();
  }
  for (const [e, ls] of named) {
    if (ls.length === 0) continue;
    e.name = ls.map((l) => l.text).join(' ');
    e.source = 'fused';
    if (ls.length > 1 && MULTI_TEXT_ROLES.has(e.role)) free.push(...ls);
  }
  for (const l of free) merged.push({ role: 'text', name: l.text, bounds: { ...l.bounds }, states: [], actions: [], source: 'ocr' });
  return merged.map((e, i) => ({ ref: `e${i + 1}`, ...e }));
}
