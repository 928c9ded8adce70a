/**
 * Cheap wake-ups of predicate waits (issue 16, `POST /v1/wait` `until.cell` / `until.pair`).
 *
 * A full read (capture, accessibility snapshot of every application, sometimes OCR) costs hundreds of ms on
 * a loaded machine, most of it spent on things far from what a wait tests. Once a full read has found the
 * wait's target — the cell of the row, or the value of the pair — the wait watches only where it is:
 * - the target's and its anchors' pixels are compared between wake-ups (small region captures instead of
 *   the whole screen): the **target** is the cell or value tested; the **anchors** are what makes it that
 *   cell or value (the row's key cell, the pair's label). An anchor whose pixels changed means the row or
 *   card moved (a sort, a scroll, a re-layout, a window on top): the wait goes back to a full read;
 * - the target alone is read again ({@link Spot.how}): the accessible element at its centre when its text
 *   came from the accessibility tree (a hit-test of the window's application, accepted only when the
 *   element found has the target's top and bottom and its left or right edge, within {@link SAME_EDGE_PT}
 *   (a column resized by the new text keeps one edge) and its role; accessible anchors are hit-tested
 *   with it and must still show their text, since the tree may hold a moved row before the pixels show
 *   it), else a single-line OCR of its pixels (masked, as every capture for the agent). The anchors' pixels
 *   are compared before and after the read, with those they had when the focus was taken; only a
 *   difference seen twice, 60 ms apart, counts (a row caught half-repainted has not moved). Anything unexpected — another window on top, a masked window,
 *   an element of other bounds, an anchor that changed, a failing hit-test — sends the wait to a full read.
 *
 * {@link focusOf} picks the target and anchors from a full read; {@link regionReader} is the daemon's
 * implementation of {@link RegionReader} (X11 region captures, AT-SPI hit-test, the single-line OCR engine
 * of `cellOcr.ts`).
 */
import type { DisplayInfo, Point, RawAXNode, RawImage, Rect, WindowInfo } from '../../platform/types.js';
import type { Observation } from '../observer.js';
import type { ScreenFrame } from '../agentCapture.js';
import type { PerceptionMask } from '../mask.js';
import { isMasked, isWindowMasked } from '../mask.js';
import { contains } from '../geometry.js';
import type { CellPredicate, PairPredicate, PredicateEvidence } from './predicates.js';
import type { ReadContent } from './types.js';
import { columnIndex, tablesNamed } from './index.js';
import { cx, cy, norm } from './grid.js';
import type { CellReader } from './cellOcr.js';

/** Largest difference of each edge, points, between a hit-tested element and the target for it to be the target. */
export const SAME_EDGE_PT = 3;

/** A place on the screen a wait watches. */
export interface Spot {
  /** Logical global points. */
  rect: Rect;
  /** Text seen there at the last read. */
  text: string;
  /** What an OCR re-read reads and what the wait's pixel compare watches: `rect` widened where the text may grow (its column, half a text height beside a value). */
  readRect: Rect;
  /** How it is read again: the accessible element at its centre, or OCR of its pixels. */
  how: 'accessibility' | 'ocr';
  /** With `how: 'accessibility'`: the ref of the element (in the full read's observation) that showed it. */
  ref?: string;
  /** With `how: 'accessibility'`: that element's role; the element hit-tested must have it. */
  role?: string;
}

/** Where a wait's target is, after a full read found it (see the module doc). */
export interface WaitFocus {
  display: DisplayInfo;
  /** The cell or value the predicate tests. */
  target: Spot;
  /** Rectangles whose pixels must not change for the target to still be the same cell or value (row key cell, pair label). */
  anchors: Rect[];
  /**
   * The anchors as spots: accessible ones are read with an accessible target and must still show their
   * text (the tree may hold a moved row before its pixels show it).
   */
  anchorSpots: Spot[];
  /** Window (id) that showed the target at the full read; null when none was known. */
  windowId: string | null;
  /** Put a text read for the target into a copy of `c` (the full read's content), so the predicate is tested as on a full read. */
  apply(c: ReadContent, text: string, bounds: Rect): ReadContent;
}

/** What a wait needs to watch and re-read a {@link WaitFocus}. */
export interface RegionReader {
  /**
   * Capture each rectangle (a small region capture) and tell whether its pixels differ from those it had
   * at the last call with the same `token` and rectangle (false on the first call: it sets the baseline).
   * `update: false` compares without replacing the pixels kept (default true).
   * @throws DeskdError `CAPTURE_FAILED`.
   */
  changed(display: DisplayInfo, rects: readonly Rect[], token: object, opts?: { update?: boolean }): Promise<boolean[]>;
  /**
   * The window at a point now (top-most first), or null when none or when the policy masks it or a
   * masked region covers the point.
   */
  windowAt(p: Point): Promise<WindowInfo | null>;
  /**
   * Read a spot again: its text and bounds, or null when it cannot be read there (the accessible element
   * at its centre has other bounds, the hit-test failed, no window shows it).
   */
  read(display: DisplayInfo, spot: Spot, window: WindowInfo | null): Promise<{ text: string; bounds: Rect } | null>;
}

const sameRect = (a: Rect, b: Rect, tol = SAME_EDGE_PT) =>
  Math.abs(a.x - b.x) <= tol && Math.abs(a.y - b.y) <= tol && Math.abs(a.x + a.width - (b.x + b.width)) <= tol && Math.abs(a.y + a.height - (b.y + b.height)) <= tol;

/**
 * The element hit-tested is the target's: same top and bottom, and the same left or right edge (within
 * {@link SAME_EDGE_PT}) — a column that grew or shrank with its new text ("Deploying" → "Live") keeps one edge.
 */
function sameCell(a: Rect, b: Rect, tol = SAME_EDGE_PT): boolean {
  const rowSame = Math.abs(a.y - b.y) <= tol && Math.abs(a.y + a.height - (b.y + b.height)) <= tol;
  return rowSame && (Math.abs(a.x - b.x) <= tol || Math.abs(a.x + a.width - (b.x + b.width)) <= tol);
}

/**
 * The spot of a text shown at `rect`: read again by accessibility when an accessible element (not named by
 * OCR) of those bounds shows exactly that text (the cell's own element when `ref` is given), else by OCR.
 */
function spotOf(obs: Observation, rect: Rect, readRect: Rect, text: string, ref?: string): Spot {
  const el = ref !== undefined ? obs.elements.find((e) => e.ref === ref) : obs.elements.find((e) => e.source === 'accessibility' && sameRect(e.bounds, rect, 1) && (e.name === text || e.value === text));
  const shows = !!el && (norm(el.name) === norm(text) || (el.value !== undefined && norm(el.value) === norm(text)));
  if (!el || !shows || el.source !== 'accessibility' || el.handle === undefined) return { rect: { ...rect }, readRect, text, how: 'ocr' };
  return { rect: { ...rect }, readRect, text, how: 'accessibility', ref: el.ref, role: el.role };
}

const clone = (c: ReadContent): ReadContent => structuredClone(c);

/** A value's bounds widened by half its height on each side (a value that grows, "9" → "10", still fits) and 2 points above and below. */
const widen = (r: Rect): Rect => ({ x: r.x - r.height / 2, y: r.y - 2, width: r.width + r.height, height: r.height + 4 });

/**
 * The focus of a wait after a full read: where its target and anchors are, or null when the predicate's
 * target was not found (or is not one a region read can follow: a "label: value" text, an accessible value
 * element, a cell without text bounds, a row without a distinct key cell).
 */
export function focusOf(pred: { cell?: CellPredicate; pair?: PairPredicate }, content: ReadContent, obs: Observation, evidence: PredicateEvidence | null, windowId: string | null): WaitFocus | null {
  // One predicate at a time: a wait on a cell and a pair together reads fully.
  if (!evidence || (pred.cell && pred.pair)) return null;
  if (pred.cell) {
    const p = pred.cell;
    for (const t of tablesNamed(content.tables, p.table)) {
      if (t.id !== evidence.table) continue;
      const rc = columnIndex(t, p.row.column);
      const cc = columnIndex(t, p.column);
      if (rc < 0 || cc < 0 || rc === cc) return null;
      const ri = t.rows.findIndex((r) => norm(r.cells[rc]?.text ?? '') === norm(p.row.equals));
      if (ri < 0) return null;
      const ti = content.tables.indexOf(t);
      const cell = t.rows[ri]!.cells[cc]!;
      const key = t.rows[ri]!.cells[rc]!;
      if (cell.spannedBy || cell.bounds.width < 2 || cell.bounds.height < 2) return null;
      // An OCR cell's bounds are its words': a longer text would overflow them, so OCR reads the column's
      // whole width (the union of its cells: no other column's words lie there) on the cell's row.
      const col = t.rows.map((r) => r.cells[cc]!).filter((x) => !x.spannedBy && x.text !== '');
      const x0 = Math.min(cell.bounds.x, ...col.map((x) => x.bounds.x));
      const x1 = Math.max(cell.bounds.x + cell.bounds.width, ...col.map((x) => x.bounds.x + x.bounds.width));
      return {
        display: obs.display,
        target: spotOf(obs, cell.bounds, { x: x0 - 3, y: cell.bounds.y - 2, width: x1 - x0 + 6, height: cell.bounds.height + 4 }, cell.text, cell.ref),
        anchors: [{ ...key.bounds }],
        anchorSpots: [spotOf(obs, key.bounds, { ...key.bounds }, key.text, key.ref)],
        windowId,
        apply: (c, text, bounds) => {
          const out = clone(c);
          const oc = out.tables[ti]!.rows[ri]!.cells[cc]!;
          oc.text = text;
          oc.bounds = { ...bounds };
          return out;
        },
      };
    }
    return null;
  }
  if (pred.pair) {
    const pi = content.pairs.findIndex((x) => x.label === evidence.label && x.value === evidence.text && sameRect(x.valueBounds, evidence.bounds, 0));
    const pair = content.pairs[pi];
    if (!pair || pair.via !== 'layout' || !pair.labelBounds) return null;
    return {
      display: obs.display,
      target: spotOf(obs, pair.valueBounds, widen(pair.valueBounds), pair.value),
      anchors: [{ ...pair.labelBounds }],
      anchorSpots: [spotOf(obs, pair.labelBounds, { ...pair.labelBounds }, pair.label)],
      windowId,
      apply: (c, text, bounds) => {
        const out = clone(c);
        const op = out.pairs[pi]!;
        op.value = text;
        op.valueBounds = { ...bounds };
        return out;
      },
    };
  }
  return null;
}


/**
 * Whether the anchors of `f` moved: their pixels differ from those they had when `token` was first used
 * (kept, never replaced), seen twice 60 ms apart — a row caught half-repainted has not moved. A failed
 * capture counts as moved.
 */
export async function anchorsChanged(region: RegionReader, f: WaitFocus, token: object): Promise<boolean> {
  for (let look = 0; look < 2; look++) {
    if (look > 0) await new Promise((r) => setTimeout(r, 60));
    const ch = await region.changed(f.display, f.anchors, token, { update: false }).catch(() => null);
    if (ch && !ch.some(Boolean)) return false;
  }
  return true;
}

/**
 * How long an accessibility re-read waits before asking again when the hit-test found an object in flux
 * (no extents), ms. Seen in tests/e2e/readFocus.test.ts: a Chromium table cell hit-tested while its text
 * changed answered role "unknown" or its old text leaf, without extents, and the cell with its new text 100 ms
 * later.
 */
export const IN_FLUX_RETRY_MS = 100;

/** What {@link regionReader} uses of the daemon. */
export interface RegionReaderDeps {
  /** One unmasked frame of a region (compared only, never shown): `AgentCapture.frame`. */
  frame(display: DisplayInfo, region: Rect): Promise<ScreenFrame>;
  /** The visible windows, top-most first, and the perception mask over them: `Observer.windowsAndMask`. */
  windowsAndMask(): Promise<{ windows: WindowInfo[]; mask: PerceptionMask }>;
  /** Accessibility hit-test (`RawAccessibility.elementAt`); absent: accessibility spots are not read again (null). */
  elementAt?(p: Point, window?: WindowInfo): Promise<RawAXNode | null>;
  /** Single-line OCR of rectangles of the masked screen (`cellOcr.ts`); null text where a rectangle holds no ink. */
  readCells: CellReader;
}

/**
 * The daemon's {@link RegionReader}: region frames compared in memory (the unmasked pixels never leave
 * {@link ScreenFrame}), the window and mask of the moment for every re-read, the accessibility hit-test
 * for accessibility spots and single-line OCR of the masked pixels for OCR spots.
 */
export function regionReader(deps: RegionReaderDeps): RegionReader {
  const frames = new WeakMap<object, Map<string, ScreenFrame>>();
  return {
    async changed(display, rects, token, opts = {}) {
      let m = frames.get(token);
      if (!m) frames.set(token, (m = new Map()));
      const shots = await Promise.all(rects.map((r) => deps.frame(display, r)));
      return shots.map((f, i) => {
        const k = JSON.stringify(rects[i]);
        const last = m.get(k);
        if (last === undefined || opts.update !== false) m.set(k, f);
        return last !== undefined && !f.sameAs(last);
      });
    },
    async windowAt(p) {
      const { windows, mask } = await deps.windowsAndMask();
      const w = windows.find((x) => contains(x.bounds, p));
      if (!w || isWindowMasked(w, mask) || isMasked({ x: p.x, y: p.y, width: 1, height: 1 }, mask.regions)) return null;
      return w;
    },
    async read(display, spot, window) {
      if (spot.how === 'accessibility') {
        if (!deps.elementAt || !window) return null;
        const at = { x: Math.round(cx(spot.rect)), y: Math.round(cy(spot.rect)) };
        let n = await deps.elementAt(at, window).catch(() => null);
        // An object without extents is being replaced (Chromium, while a cell's text changes: the cell as role
        // "unknown", or its old text leaf): asked once more a moment later, instead of giving up the region
        // read for a full one.
        if (n && !n.bounds) {
          await new Promise((r) => setTimeout(r, IN_FLUX_RETRY_MS));
          n = await deps.elementAt(at, window).catch(() => null);
        }
        if (!n || !n.bounds || !sameCell(n.bounds, spot.rect) || (spot.role !== undefined && n.role !== spot.role)) return null;
        return { text: n.name !== '' ? n.name : (n.value ?? ''), bounds: n.bounds };
      }
      if (!window) return null;
      const [text] = await deps.readCells(display, [spot.readRect]);
      return { text: text ?? '', bounds: { ...spot.rect } };
    },
  };
}

/** The image type region captures come in (re-exported for tests). */
export type { RawImage };
