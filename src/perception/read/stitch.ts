/**
 * Stitching the pages of a scrolled table into one (`scroll: true`): rows of a later page are appended
 * unless already held — by key (the key column's text) when the table has one, else after the longest
 * overlap between the end of the rows held and the start of the page (rows compared cell by cell).
 */
import type { ReadContent, ReadRow, ReadTable } from './types.js';
import { cx, norm } from './grid.js';

const same = (a: ReadRow, b: ReadRow) => a.cells.length === b.cells.length && a.cells.every((c, i) => c.text === b.cells[i]!.text);

/**
 * Append the rows of `page` to `held`.
 * @param keyColumn index of the key column, or -1.
 * @returns how many rows were new.
 */
export function stitchRows(held: ReadRow[], page: readonly ReadRow[], keyColumn: number): number {
  if (keyColumn >= 0) {
    const keys = new Set(held.map((r) => r.cells[keyColumn]?.text ?? ''));
    let added = 0;
    for (const r of page) {
      const k = r.cells[keyColumn]?.text ?? '';
      if (k === '' || keys.has(k)) continue;
      keys.add(k);
      held.push(r);
      added++;
    }
    return added;
  }
  let best = 0;
  for (let n = Math.min(held.length, page.length); n > 0; n--) {
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = same(held[held.length - n + i]!, page[i]!);
    if (ok) {
      best = n;
      break;
    }
  }
  const fresh = page.slice(best);
  held.push(...fresh);
  return fresh.length;
}

/** The texts of a table's rows, to tell whether a page moved. */
export const signature = (t: Pick<ReadTable, 'rows'>) => JSON.stringify(t.rows.map((r) => r.cells.map((c) => c.text)));

/** The table of `c` that is `t` seen again: same title, else same headers, else the nearest. */
export function sameTableIn(c: ReadContent, t: ReadTable): ReadTable | undefined {
  const byTitle = t.title !== undefined ? c.tables.find((x) => x.title !== undefined && norm(x.title) === norm(t.title!)) : undefined;
  if (byTitle) return byTitle;
  const byHeaders = c.tables.find((x) => x.headers.length === t.headers.length && x.headers.every((h, i) => norm(h) === norm(t.headers[i]!)) && x.headers.some((h) => h !== ''));
  if (byHeaders) return byHeaders;
  return [...c.tables].sort((a, b) => Math.hypot(cx(a.bounds) - cx(t.bounds), a.bounds.y - t.bounds.y) - Math.hypot(cx(b.bounds) - cx(t.bounds), b.bounds.y - t.bounds.y))[0];
}
