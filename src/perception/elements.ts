import type { RawAXNode, Rect, ValueRange, WindowInfo } from '../platform/types.js';
import { INTERACTIVE_ROLES } from '../platform/roles.js';
import { isToolkitClassName } from '../platform/names.js';
import { contains, center, intersectionArea, union } from './geometry.js';
import { markCovered, windowIndexOf } from './occlusion.js';

/** A word read by OCR. `bounds` in logical global points; `confidence` 0..1. */
export interface OcrWord {
  text: string;
  bounds: Rect;
  confidence: number;
  /**
   * Where the text came from: absent for OCR; `accessibility` for a word of an accessible text leaf that the pixels
   * under it confirmed, so OCR did not read it (`treeText.ts`; confidence 1).
   */
  source?: 'accessibility';
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
  /**
   * For a `partly-covered` element: the largest rectangle of `bounds` no other window covers (logical
   * global points); a click at its centre reaches the element. Absent when nothing covers it.
   */
  visibleBounds?: Rect;
  /** Range of a slider, spin button or progress bar (`value` is within it), when the platform reports one. */
  range?: ValueRange;
  /**
   * States: focused, enabled, checked, selected, editable, expanded, password, visible, showing, …, and
   * `covered` (another window hides all of it; `visible`/`showing` then removed) or `partly-covered`
   * (see `visibleBounds`). OCR text is pixels on screen and is never covered.
   */
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
/** Roles that only carry text: a label child names its parent, and repeats it when the parent has the same name. */
const TEXT_ROLES: ReadonlySet<string> = new Set(['label', 'text']);

/**
 * An element's name the way screen readers compute it (ARIA "accessible name computation", AT-SPI/ATK
 * practice), as far as the tree holds it:
 * 1. the accessible name (a labelled-by relation is already resolved by the backend where the toolkit
 *    gives no name: AT-SPI `RELATION_LABELLED_BY`), unless it is a toolkit class name
 *    ({@link isToolkitClassName}: `GtkButton`, `GtkImage`, …);
 * 2. else the text of the only label/text descendant (not looking inside nested interactive elements,
 *    at most 3 levels down): GTK 4's π button holds a label "π";
 * 3. else the description (the tooltip, ARIA's last name source), without a trailing `[shortcut]` hint:
 *    "Pi [Ctrl+P]" → "Pi";
 * 4. else empty: fusion then names it from the OCR text inside its bounds, or it stays unnamed with its role.
 */
export function accessibleName(n: RawAXNode): string {
  const own = normalizeName(n.name);
  if (own !== '' && !isToolkitClassName(own)) return own;
  const labels: string[] = [];
  const look = (c: RawAXNode, depth: number): void => {
    if (labels.length > 1 || depth > 3) return;
    if (INTERACTIVE_ROLES.has(c.role)) return;
    const name = normalizeName(c.name);
    if (TEXT_ROLES.has(c.role) && name !== '' && !isToolkitClassName(name)) {
      labels.push(name);
      return;
    }
    for (const g of c.children) look(g, depth + 1);
  };
  for (const c of n.children) look(c, 1);
  if (labels.length === 1) return labels[0]!;
  const desc = normalizeName((n.description ?? '').replace(/\s*\[[^\]]*\]\s*$/, ''));
  if (desc !== '' && !isToolkitClassName(desc)) return desc;
  return '';
}

/** Options of {@link flattenAccessibility}. */
export interface FlattenOptions {
  /**
   * Visible top-level windows, top-most first (`RawWindows.list()`). With them, each element's own window
   * is found (application root `pid` + window title, else bounds: see `occlusion.ts`) and the windows above
   * it mark it `covered` / `partly-covered`. Elements whose window is not listed are left as they are.
   */
  windows?: readonly WindowInfo[];
}

/** Square points of a rectangle. */
const areaOf = (r: Rect) => r.width * r.height;

/** `inner` lies inside `outer`, allowing `slack` points on every side. */
function inside(inner: Rect, outer: Rect, slack = 2): boolean {
  return inner.x >= outer.x - slack && inner.y >= outer.y - slack && inner.x + inner.width <= outer.x + outer.width + slack && inner.y + inner.height <= outer.y + outer.height + slack;
}

/**
 * Whether a descendant repeats its ancestor (the merge rule): the same normalised name, the descendant's
 * bounds inside the ancestor's (2 points of slack), and either nearly the same bounds (at least
 * {@link NEAR_AREA} of the ancestor's area) or a descendant that only carries text (`label`, `text`: a button's own label). Two
 * unnamed elements merge only when both have the same interactive role (GTK 4's nested `GtkMenuButton`s).
 */
export function isDuplicatePair(ancestor: Pick<Element, 'role' | 'name' | 'bounds'>, descendant: Pick<Element, 'role' | 'name' | 'bounds'>): boolean {
  const a = normalizeName(ancestor.name).toLowerCase();
  const d = normalizeName(descendant.name).toLowerCase();
  if (a !== d) return false;
  if (!inside(descendant.bounds, ancestor.bounds)) return false;
  const near = areaOf(descendant.bounds) >= NEAR_AREA * areaOf(ancestor.bounds);
  if (a === '') return near && ancestor.role === descendant.role && INTERACTIVE_ROLES.has(ancestor.role);
  return near || TEXT_ROLES.has(descendant.role);
}

/**
 * Share of its ancestor's area a descendant needs to count as "(nearly) the same bounds": 0.45, so GTK 4's
 * 24-point icon button inside its 34-point `GtkMenuButton` frame (0.498) is one element.
 */
export const NEAR_AREA = 0.45;

/** Which of a duplicate pair stays: actions first, then an interactive role; a tie keeps the ancestor. */
function actionability(e: Pick<Element, 'role' | 'actions'>): number {
  return (e.actions.length > 0 ? 2 : 0) + (INTERACTIVE_ROLES.has(e.role) ? 1 : 0);
}

/** Roles of a combo box's popup that, without extents of their own, are taken as closed ({@link flattenAccessibility}). */
const CLOSED_POPUP_ROLES: ReadonlySet<string> = new Set(['list', 'listbox', 'menu']);

/**
 * Flatten accessibility trees into candidate elements (without refs), in document order.
 * Kept: nodes with on-screen bounds that are interactive or carry a name/value, and a few roles that
 * matter unnamed (textbox, slider, image, canvas…). Nodes whose bounds fall entirely outside `screen` are dropped.
 * - names follow {@link accessibleName} (toolkit class names are never names);
 * - an element that repeats an element it lies in ({@link isDuplicatePair}: a button and its own label)
 *   is merged into one, which keeps the more actionable role, its actions and bounds, and the other's value
 *   when it has none;
 * - with `opts.windows`, elements covered by windows stacked above their own are marked (`occlusion.ts`);
 * - a combo box's popup (a list, list box or menu child) whose own extents are unknown is closed: it and
 *   everything below it are left out. Qt 5 keeps a closed combo box list's items `showing`, with the bounds
 *   of where the list last opened (0,0 756 wide if it never did), while the list itself answers no extents
 *   until it opens again (checked on Qt 5.15.8's lineedits example); other toolkits mark such items not
 *   showing or give them no size, which leaves them out already.
 */
export function flattenAccessibility(roots: RawAXNode[], screen: Rect, opts: FlattenOptions = {}): Omit<Element, 'ref'>[] {
  const out: Omit<Element, 'ref'>[] = [];
  const windows = opts.windows ?? [];
  /** Emitted elements on the path from the root to the node being walked (nearest last). */
  const path: Array<Omit<Element, 'ref'>> = [];
  let above: Rect[] = [];
  const walk = (n: RawAXNode, depth: number, pid: number | null | undefined, parentRole: string | null): void => {
    if (parentRole === 'combobox' && n.bounds === null && CLOSED_POPUP_ROLES.has(n.role)) return;
    if (depth === 1) {
      // A top-level window: the windows listed above it cover what it holds.
      const i = windows.length > 0 ? windowIndexOf({ pid, title: normalizeName(n.name), bounds: n.bounds }, windows) : -1;
      above = i > 0 ? windows.slice(0, i).map((w) => w.bounds) : [];
    }
    // An object on a surface of its own (a GTK 4 popover): the windows above that one cover what it holds.
    const outer = above;
    const own = n.windowId !== undefined ? windows.findIndex((w) => w.id === n.windowId) : -1;
    if (own >= 0) above = windows.slice(0, own).map((w) => w.bounds);
    const name = accessibleName(n);
    const b = n.bounds;
    const onScreen = b !== null && b.width > 0 && b.height > 0 && intersectionArea(b, screen) > 0;
    const interesting =
      !SKIP_ROLES.has(n.role) && (INTERACTIVE_ROLES.has(n.role) || name !== '' || (n.value !== undefined && n.value !== '') || KEEP_UNNAMED.has(n.role));
    let pushed = false;
    if (onScreen && interesting && b) {
      const el: Omit<Element, 'ref'> = { role: n.role, name, bounds: { ...b }, states: [...n.states], actions: [...n.actions], source: 'accessibility', handle: n.handle };
      if (n.value !== undefined && !n.states.includes('password')) el.value = n.value;
      if (n.range) el.range = { ...n.range };
      if (above.length > 0) markCovered(el, above);
      // The nearest emitted ancestors (up to 3): one that this element repeats absorbs it, or is replaced by it.
      const dup = path.slice(-3).reverse().find((a) => isDuplicatePair(a, el));
      if (dup) {
        if (actionability(el) > actionability(dup)) {
          const keepValue = dup.value;
          for (const k of Object.keys(dup) as Array<keyof typeof dup>) delete dup[k];
          Object.assign(dup, el);
          if (dup.value === undefined && keepValue !== undefined) dup.value = keepValue;
        } else if (dup.value === undefined && el.value !== undefined) dup.value = el.value;
      } else {
        out.push(el);
        path.push(el);
        pushed = true;
      }
    }
    for (const c of n.children) walk(c, depth + 1, pid, n.role);
    if (pushed) path.pop();
    above = outer;
  };
  for (const r of roots) {
    above = [];
    walk(r, 0, r.pid, null);
  }
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
  // OCR words are pixels on screen: a covered element cannot hold them, a partly covered one only where it shows.
  const hosts = merged.filter((e) => !NON_HOST_ROLES.has(e.role) && !e.states.includes('covered'));
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
        // A partly covered element hosts words only in its largest visible part (elsewhere they may be the covering window's).
        if (e.visibleBounds && !contains(e.visibleBounds, c)) continue;
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
