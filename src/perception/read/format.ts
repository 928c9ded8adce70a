/**
 * Text rendering of a read for people and models (CLI `deskd read`, MCP `read`): each table as aligned
 * columns under its headers, each board column with its cards, and pairs as `label: value`.
 */
import type { ReadContent, ReadTable } from './types.js';

/** Display width of a string (code points; no East Asian width tables). */
const width = (s: string) => [...s].length;
const pad = (s: string, w: number) => s + ' '.repeat(Math.max(0, w - width(s)));

/** One table as aligned text: a title line, the headers, a rule, the rows. Cells wider than `maxCell` are cut with `…`. */
export function formatTable(t: ReadTable, maxCell = 40): string {
  const cut = (s: string) => (width(s) > maxCell ? [...s].slice(0, maxCell - 1).join('') + '…' : s);
  const grid = [t.headers.map(cut), ...t.rows.map((r) => r.cells.map((c) => cut(c.text)))];
  const ws = t.headers.map((_, i) => Math.max(1, ...grid.map((row) => width(row[i] ?? ''))));
  const line = (row: string[]) => row.map((c, i) => pad(c, ws[i]!)).join('  ').trimEnd();
  const head = `${t.id}${t.title ? ` "${t.title}"` : ''}: ${t.rows.length} rows × ${t.headers.length} columns, ${t.source}${t.complete ? '' : ', incomplete'}${t.scrolled !== undefined ? `, scrolled ${t.scrolled} pages` : ''}`;
  return [head, line(grid[0]!), ws.map((w) => '-'.repeat(w)).join('  '), ...grid.slice(1).map(line)].join('\n');
}

/** A whole read as text (tables, then boards, then pairs); "nothing read" when all are empty. */
export function formatRead(c: ReadContent): string {
  const parts: string[] = c.tables.map((t) => formatTable(t));
  for (const b of c.boards) {
    parts.push([`${b.id}${b.title ? ` "${b.title}"` : ''}: board of ${b.columns.length} columns`, ...b.columns.flatMap((col) => [`  ${col.title || '(untitled)'} (${col.cards.length})`, ...col.cards.map((k) => `    - ${k.text}`)])].join('\n'));
  }
  if (c.pairs.length > 0) parts.push(['pairs:', ...c.pairs.map((p) => `  ${p.label}: ${p.value}`)].join('\n'));
  return parts.length > 0 ? parts.join('\n\n') : 'nothing read (no table, board or label/value pair)';
}
