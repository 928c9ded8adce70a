/**
 * Tables from the accessibility tree (AT-SPI roles `table`, `table row`, `table cell`, `column header`,
 * `row header` mapped to deskd's `table`, `row`, `cell`, `columnheader`, `rowheader`; ARIA grids expose
 * the same roles). The observation's elements are flat, so the grid is rebuilt from the cells' bounds,
 * the way the Table interface lays it out: a cell starts in the row/column whose top/left edge it shares
 * and spans every row/column edge it covers (AT-SPI `TableCell.GetRowColumnSpan`). A spanned position is
 * an explicit `""` with `spannedBy`, never a shifted cell.
 *
 * Text: the accessible name, else the value; a cell the tree leaves unnamed carries the OCR text fusion
 * put in it (`fuseElements`, element source `fused`), and the table is then `fused`.
 */
import type { Rect } from '../../platform/types.js';
import type { Element } from '../elements.js';
import { isCovered } from '../occlusion.js';
import { union } from '../geometry.js';
import type { ReadCell, ReadRow, ReadTable, TableSource } from './types.js';
import { bottom, centreIn, clusterIndex, clusterStarts, cx, median, overlap, right } from './grid.js';

const CELL_ROLES: ReadonlySet<string> = new Set(['cell', 'columnheader', 'rowheader']);
/** Cells whose edges are within this many points share a row/column edge. */
const EDGE_TOL = 3;
/** Cells closer than this (points) belong to the same table when no table element tells. */
const LINK_GAP = 6;

/** A table as read, before ids and keys are given (see `read/index.ts`). */
export type DraftTable = Omit<ReadTable, 'id' | 'keyColumn'>;

/** Text of an element as a cell shows it. */
function cellText(e: Element): string {
  return (e.name !== '' ? e.name : e.value ?? '').replace(/\s+/g, ' ').trim();
}

/** Union-find groups of cells whose bounds, grown by {@link LINK_GAP}, touch. */
function clusters(cells: Element[]): Element[][] {
  const parent = cells.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
  const order = cells.map((_, i) => i).sort((a, b) => cells[a]!.bounds.y - cells[b]!.bounds.y);
  for (let a = 0; a < order.length; a++) {
    const A = cells[order[a]!]!.bounds;
    for (let b = a + 1; b < order.length; b++) {
      const B = cells[order[b]!]!.bounds;
      if (B.y > bottom(A) + LINK_GAP) break;
      if (overlap(A.x - LINK_GAP, right(A) + LINK_GAP, B.x, right(B)) > 0) parent[find(order[a]!)] = find(order[b]!);
    }
  }
  const groups = new Map<number, Element[]>();
  cells.forEach((c, i) => {
    const r = find(i);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r)!.push(c);
  });
  return [...groups.values()];
}

/**
 * The heading or text just above `b` (within 3 row heights, overlapping it horizontally), for a title.
 * @returns its text, or undefined.
 */
export function titleAbove(b: Rect, elements: readonly Pick<Element, 'role' | 'name' | 'bounds'>[], rowHeight: number): string | undefined {
  let best: { e: Pick<Element, 'name' | 'bounds'>; d: number } | undefined;
  for (const e of elements) {
    if (!['heading', 'text', 'label', 'paragraph'].includes(e.role) || e.name === '') continue;
    const d = b.y - bottom(e.bounds);
    if (d < -2 || d > Math.max(40, 3 * rowHeight)) continue;
    if (overlap(e.bounds.x, right(e.bounds), b.x, right(b)) <= 0) continue;
    const score = d - (e.role === 'heading' ? 10 : 0);
    if (!best || score < best.d) best = { e, d: score };
  }
  return best?.e.name;
}

/**
 * Lay out one group of cells as a grid.
 * @returns null when the group is not a table (fewer than 2 columns or 2 rows).
 */
function gridOf(cells: Element[], tableEl: Element | undefined, all: readonly Element[]): DraftTable | null {
  const colStarts = clusterStarts(cells.map((c) => c.bounds.x), EDGE_TOL);
  const rowStarts = clusterStarts(cells.map((c) => c.bounds.y), EDGE_TOL);
  if (colStarts.length < 2 || rowStarts.length < 2) return null;
  const nR = rowStarts.length;
  const nC = colStarts.length;
  type Slot = { el: Element; r: number; c: number } | { spannedBy: { row: number; column: number }; el: Element } | null;
  const grid: Slot[][] = Array.from({ length: nR }, () => Array.from({ length: nC }, () => null as Slot));
  // Larger cells first would hide smaller ones; place in reading order and let the first one win a slot.
  const sorted = [...cells].sort((a, b) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x);
  for (const el of sorted) {
    const r0 = clusterIndex(rowStarts, el.bounds.y, EDGE_TOL);
    const c0 = clusterIndex(colStarts, el.bounds.x, EDGE_TOL);
    if (grid[r0]![c0] !== null) continue; // a duplicate element of the same cell
    grid[r0]![c0] = { el, r: r0, c: c0 };
    for (let r = r0; r < nR && rowStarts[r]! < bottom(el.bounds) - EDGE_TOL; r++) {
      for (let c = c0; c < nC && colStarts[c]! < right(el.bounds) - EDGE_TOL; c++) {
        if ((r !== r0 || c !== c0) && grid[r]![c] === null) grid[r]![c] = { spannedBy: { row: r0, column: c0 }, el };
      }
    }
  }
  // Header rows: leading rows whose cells are all column headers.
  let headerRows = 0;
  for (let r = 0; r < nR; r++) {
    const slots = grid[r]!.filter((s): s is NonNullable<Slot> => s !== null);
    if (slots.length > 0 && slots.every((s) => s.el.role === 'columnheader')) headerRows = r + 1;
    else break;
  }
  if (headerRows === nR) headerRows = 0;
  const heights = cells.map((c) => c.bounds.height);
  const rowH = median(heights);
  const headers: string[] = [];
  for (let c = 0; c < nC; c++) {
    const parts: string[] = [];
    for (let r = 0; r < headerRows; r++) {
      const s = grid[r]![c] ?? null;
      const t = s ? cellText(s.el) : '';
      if (t !== '' && parts[parts.length - 1] !== t) parts.push(t);
    }
    headers.push(parts.join(' '));
  }
  let fused = false;
  const rows: ReadRow[] = [];
  for (let r = headerRows; r < nR; r++) {
    const rowTop = rowStarts[r]!;
    const cellsOut: ReadCell[] = [];
    for (let c = 0; c < nC; c++) {
      const s = grid[r]![c] ?? null;
      if (s === null) {
        // No element at all: an empty position (a missing cell of a ragged row).
        const x = colStarts[c]!;
        const w = (colStarts[c + 1] ?? x + 40) - x;
        cellsOut.push({ text: '', bounds: { x, y: rowTop, width: w, height: (rowStarts[r + 1] ?? rowTop + rowH) - rowTop } });
      } else if ('spannedBy' in s) {
        cellsOut.push({ text: '', bounds: { ...s.el.bounds }, ref: s.el.ref, spannedBy: { row: s.spannedBy.row - headerRows, column: s.spannedBy.column } });
      } else {
        if (s.el.source === 'fused' && s.el.name !== '') fused = true;
        cellsOut.push({ text: cellText(s.el), bounds: { ...s.el.bounds }, ref: s.el.ref });
      }
    }
    rows.push({ cells: cellsOut });
  }
  const bounds = union(cells.map((c) => c.bounds))!;
  // A table whose cells reach past its own element (a scroll container showing part of a virtualised grid)
  // continues beyond what is visible.
  const clipped = tableEl !== undefined && (bottom(bounds) > bottom(tableEl.bounds) + EDGE_TOL || bounds.y < tableEl.bounds.y - EDGE_TOL);
  const source: TableSource = fused ? 'fused' : 'accessibility';
  const title = tableEl && tableEl.name !== '' ? tableEl.name : titleAbove(tableEl?.bounds ?? bounds, all, rowH);
  return { ...(title ? { title } : {}), bounds: tableEl ? { ...tableEl.bounds } : bounds, headers, rows, source, complete: !clipped };
}

/**
 * Tables from an observation's accessible elements: each `table` element's cells (cells whose centre lies
 * in it, smallest table first), then cells outside any table element grouped by adjacency. Elements other
 * windows cover completely are left out.
 * @returns tables in reading order, without ids.
 */
export function accessibilityTables(elements: readonly Element[]): DraftTable[] {
  const visible = elements.filter((e) => !isCovered(e));
  const all = visible.filter((e) => CELL_ROLES.has(e.role) && e.bounds.width > 0 && e.bounds.height > 0);
  // Where the platform reports `showing` (AT-SPI STATE_SHOWING: Chromium clears it for content scrolled out of
  // its scroll container), cells without it are off screen: left out, and their table continues beyond view.
  const anyShowing = all.some((e) => e.states.includes('showing'));
  const offscreen = anyShowing ? all.filter((e) => !e.states.includes('showing')) : [];
  const cells = anyShowing ? all.filter((e) => e.states.includes('showing')) : all;
  if (cells.length === 0) return [];
  const tables = visible.filter((e) => e.role === 'table').sort((a, b) => a.bounds.width * a.bounds.height - b.bounds.width * b.bounds.height);
  const byTable = new Map<Element | undefined, Element[]>();
  /** Tables with cells the tree holds outside their visible bounds (rows rendered above/below a scroll viewport). */
  const hidden = new Set<Element>();
  for (const c of cells) {
    const t = tables.find((t) => c.bounds.x >= t.bounds.x - EDGE_TOL && c.bounds.x < right(t.bounds) && c.bounds.y < bottom(t.bounds) + 400 && bottom(c.bounds) > t.bounds.y - 400);
    if (t && overlap(c.bounds.y, bottom(c.bounds), t.bounds.y, bottom(t.bounds)) <= 0) {
      // Rendered but scrolled out of the table's viewport: not on screen, and a sign that the table continues.
      hidden.add(t);
      continue;
    }
    if (!byTable.has(t)) byTable.set(t, []);
    byTable.get(t)!.push(c);
  }
  const out: DraftTable[] = [];
  for (const [t, cs] of byTable) {
    for (const group of t ? [cs] : clusters(cs)) {
      const g = gridOf(group, t, visible);
      if (g && t && hidden.has(t)) g.complete = false;
      if (g) out.push(g);
    }
  }
  for (const g of out) {
    if (offscreen.some((c) => c.bounds.x >= g.bounds.x - EDGE_TOL && c.bounds.x < right(g.bounds) && c.bounds.y < bottom(g.bounds) + 400 && bottom(c.bounds) > g.bounds.y - 400)) g.complete = false;
  }
  return out.sort((a, b) => a.bounds.y - b.bounds.y || cx(a.bounds) - cx(b.bounds));
}
