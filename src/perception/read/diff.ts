/**
 * Changes between two reads (`since`): per table, rows keyed by the key column (the later read's, else the
 * earlier's; by position when neither has one), `added`, `removed`, and `changed` with the cells that
 * differ; per pair label, the value before and after. Tables are matched by title, else by headers, else
 * by position.
 */
import type { Rect } from '../../platform/types.js';
import type { ReadContent, ReadPair, ReadRow, ReadTable } from './types.js';
import { norm } from './grid.js';

/** One cell that changed. */
export interface CellChange {
  /** Header of the column (its index when the header is empty: `#2`). */
  column: string;
  columnIndex: number;
  from: string;
  to: string;
  bounds: Rect;
}

/** Changes of one table. */
export interface TableChanges {
  /** Id of the table in the later read. */
  table: string;
  title?: string;
  added: ReadRow[];
  removed: ReadRow[];
  changed: { key: string; cells: CellChange[] }[];
}

/** Changes of the read against an earlier one. */
export interface ReadChanges {
  /** The earlier read. */
  since: string;
  tables: TableChanges[];
  /** Tables of the earlier read with no counterpart now (by id of the earlier read). */
  tablesGone: string[];
  pairs: { label: string; from: string | null; to: string | null }[];
}

function sameTable(a: ReadTable, b: ReadTable): boolean {
  if (a.title !== undefined && b.title !== undefined) return norm(a.title) === norm(b.title);
  return a.headers.length === b.headers.length && a.headers.every((h, i) => norm(h) === norm(b.headers[i]!)) && a.headers.some((h) => h !== '');
}

function rowKey(t: ReadTable, r: ReadRow, i: number, keyCol: number): string {
  return keyCol >= 0 ? (r.cells[keyCol]?.text ?? '') : `#${i}`;
}

/** Changes of `now` against `before` (see the module comment). */
export function diffTables(before: ReadTable, now: ReadTable): TableChanges {
  const keyCol = now.keyColumn >= 0 ? now.keyColumn : before.keyColumn;
  const old = new Map(before.rows.map((r, i) => [rowKey(before, r, i, keyCol), r]));
  const cur = new Map(now.rows.map((r, i) => [rowKey(now, r, i, keyCol), r]));
  const out: TableChanges = { table: now.id, ...(now.title !== undefined ? { title: now.title } : {}), added: [], removed: [], changed: [] };
  for (const [k, r] of cur) {
    const o = old.get(k);
    if (!o) {
      out.added.push(r);
      continue;
    }
    const cells: CellChange[] = [];
    r.cells.forEach((c, i) => {
      const from = o.cells[i]?.text ?? '';
      if (from !== c.text) cells.push({ column: now.headers[i] || `#${i}`, columnIndex: i, from, to: c.text, bounds: c.bounds });
    });
    if (cells.length > 0) out.changed.push({ key: k, cells });
  }
  for (const [k, r] of old) if (!cur.has(k)) out.removed.push(r);
  return out;
}

function pairChanges(before: readonly ReadPair[], now: readonly ReadPair[]): ReadChanges['pairs'] {
  const b = new Map(before.map((p) => [norm(p.label), p]));
  const n = new Map(now.map((p) => [norm(p.label), p]));
  const out: ReadChanges['pairs'] = [];
  for (const [k, p] of n) {
    const o = b.get(k);
    if (!o) out.push({ label: p.label, from: null, to: p.value });
    else if (o.value !== p.value) out.push({ label: p.label, from: o.value, to: p.value });
  }
  for (const [k, p] of b) if (!n.has(k)) out.push({ label: p.label, from: p.value, to: null });
  return out;
}

/**
 * Changes between an earlier read and this one. Tables without any change are left out of `tables`.
 */
export function diffReads(sinceId: string, before: ReadContent, now: ReadContent): ReadChanges {
  const tables: TableChanges[] = [];
  const matched = new Set<ReadTable>();
  now.tables.forEach((t, i) => {
    const o = before.tables.find((b) => !matched.has(b) && sameTable(b, t)) ?? (before.tables.length === now.tables.length ? before.tables[i] : undefined);
    if (!o || matched.has(o)) return;
    matched.add(o);
    const d = diffTables(o, t);
    if (d.added.length + d.removed.length + d.changed.length > 0) tables.push(d);
  });
  const gone = before.tables.filter((t) => !matched.has(t)).map((t) => t.id);
  return { since: sinceId, tables, tablesGone: gone, pairs: pairChanges(before.pairs, now.pairs) };
}
