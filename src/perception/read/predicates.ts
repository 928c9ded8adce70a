/**
 * Wait predicates on read structure (`POST /v1/wait` `until.cell` / `until.pair`, MCP `wait_for`):
 * - `cell`: in the table named `table` (title or header text; any table when absent), the row whose
 *   `row.column` cell equals `row.equals`, its `column` cell equals `equals` or matches `matches`;
 * - `pair`: the pair whose label is `label` (exact, else contained; normalised, case-insensitive) has a
 *   value that equals `equals` or matches `matches`.
 * Texts are compared normalised (NFKC, whitespace collapsed, case-insensitive); `matches` is a JavaScript
 * regular expression tested on the raw text (at most 200 characters; flags none).
 */
import { z } from 'zod';
import type { Rect } from '../../platform/types.js';
import { DeskdError } from '../../errors.js';
import type { ReadContent } from './types.js';
import { columnIndex, tablesNamed } from './index.js';
import { norm } from './grid.js';

const Text = z.string().min(1).max(500);
const Expect = {
  equals: z.string().max(500).optional().describe('The text must equal this (normalised, case-insensitive)'),
  matches: z.string().min(1).max(200).optional().describe('The text must match this regular expression (JavaScript syntax)'),
};
const hasExpect = (x: { equals?: string | undefined; matches?: string | undefined }) => (x.equals !== undefined) !== (x.matches !== undefined);

/** `until.cell`. */
export const CellPredicateSchema = z
  .object({
    table: Text.optional().describe("The table's title, or text of one of its headers (default: any table)"),
    row: z.object({ column: Text.describe('Column that identifies the row (header text or 0-based index)'), equals: z.string().max(500).describe('Text of that cell') }).strict(),
    column: Text.describe('Column of the cell to test (header text or 0-based index)'),
    ...Expect,
  })
  .strict()
  .refine(hasExpect, { message: 'give exactly one of equals, matches' });
export type CellPredicate = z.infer<typeof CellPredicateSchema>;

/** `until.pair`. */
export const PairPredicateSchema = z
  .object({ label: Text.describe('Label of the pair (KPI card, gauge, "label: value")'), ...Expect })
  .strict()
  .refine(hasExpect, { message: 'give exactly one of equals, matches' });
export type PairPredicate = z.infer<typeof PairPredicateSchema>;

const Rect = z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() });
/** Evidence of a predicate wait as the API answers it (`POST /v1/wait` `evidence`, MCP `wait_for`). */
export const PredicateEvidenceSchema = z.object({
  readId: z.string().describe('The read the predicate held in (a later read may give it as `since`)'),
  kind: z.enum(['cell', 'pair']),
  table: z.string().optional(),
  tableTitle: z.string().optional(),
  row: z.string().optional().describe('Key of the row'),
  column: z.string().optional(),
  label: z.string().optional(),
  text: z.string().describe('The text of the cell or the value'),
  bounds: Rect.describe('Bounds of the cell or value, logical points'),
  via: z.enum(['full', 'region']).optional().describe("How the read that held was made: 'full' (the screen read as data) or 'region' (the cell or value alone read again, after a full read found it)"),
});

/** What showed that a predicate holds (or, when it does not, what was seen). */
export interface PredicateEvidence {
  kind: 'cell' | 'pair';
  /** Table id within the read (cell predicates). */
  table?: string;
  tableTitle?: string;
  /** Key of the row (cell predicates). */
  row?: string;
  column?: string;
  label?: string;
  /** The text seen. */
  text: string;
  bounds: Rect;
}

/**
 * Compile `matches`.
 * @throws DeskdError `VALIDATION_FAILED` for an invalid regular expression.
 */
export function compileMatcher(p: { equals?: string | undefined; matches?: string | undefined }): (s: string) => boolean {
  if (p.matches !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(p.matches);
    } catch (e) {
      throw new DeskdError('VALIDATION_FAILED', `matches: not a valid regular expression: ${(e as Error).message}`);
    }
    return (s) => re.test(s);
  }
  const want = norm(p.equals ?? '');
  return (s) => norm(s) === want;
}

/**
 * Test a cell predicate on a read.
 * @returns `{holds, evidence}`: evidence is the cell tested (null when the table, row or column was not found).
 * @throws DeskdError `VALIDATION_FAILED` for an invalid `matches`.
 */
export function checkCell(c: ReadContent, p: CellPredicate): { holds: boolean; evidence: PredicateEvidence | null } {
  const test = compileMatcher(p);
  const rowWant = norm(p.row.equals);
  let seen: PredicateEvidence | null = null;
  for (const t of tablesNamed(c.tables, p.table)) {
    const rc = columnIndex(t, p.row.column);
    const cc = columnIndex(t, p.column);
    if (rc < 0 || cc < 0) continue;
    for (const r of t.rows) {
      if (norm(r.cells[rc]?.text ?? '') !== rowWant) continue;
      const cell = r.cells[cc]!;
      const ev: PredicateEvidence = { kind: 'cell', table: t.id, ...(t.title !== undefined ? { tableTitle: t.title } : {}), row: r.key ?? r.cells[rc]!.text, column: t.headers[cc] || `#${cc}`, text: cell.text, bounds: cell.bounds };
      if (test(cell.text)) return { holds: true, evidence: ev };
      seen ??= ev;
    }
  }
  return { holds: false, evidence: seen };
}

/**
 * Test a pair predicate on a read: exact label matches first, then labels containing it.
 * @throws DeskdError `VALIDATION_FAILED` for an invalid `matches`.
 */
export function checkPair(c: ReadContent, p: PairPredicate): { holds: boolean; evidence: PredicateEvidence | null } {
  const test = compileMatcher(p);
  const n = norm(p.label);
  const exact = c.pairs.filter((x) => norm(x.label) === n);
  const cands = exact.length > 0 ? exact : c.pairs.filter((x) => norm(x.label).includes(n));
  let seen: PredicateEvidence | null = null;
  for (const x of cands) {
    const ev: PredicateEvidence = { kind: 'pair', label: x.label, text: x.value, bounds: x.valueBounds };
    if (test(x.value)) return { holds: true, evidence: ev };
    seen ??= ev;
  }
  return { holds: false, evidence: seen };
}
