/**
 * Reading an observation as data: tables, boards and label → value pairs (issue 16). Pure functions over
 * an observation's elements and OCR lines; `POST /v1/read`, MCP `read` and the `cell`/`pair` wait
 * predicates build on {@link readObservation}. See docs/reading.md.
 */
import type { Rect } from '../../platform/types.js';
import type { Element, OcrLine } from '../elements.js';
import { accessibilityTables, type DraftTable } from './axTables.js';
import { readBoards } from './boards.js';
import { ocrTables } from './ocrTables.js';
import { readPairs } from './pairs.js';
import { centreIn, norm, wordsOf } from './grid.js';
import type { ReadContent, ReadKind, ReadTable } from './types.js';

export type * from './types.js';
export { isValue } from './pairs.js';

/** Roles whose text is pixels only (OCR reads what they show): their words may form OCR tables. */
const PIXEL_HOSTS: ReadonlySet<string> = new Set(['canvas', 'image', 'window', 'document', 'dialog', 'application', 'generic', 'group']);

/** What {@link readObservation} reads. */
export interface ReadSource {
  elements: readonly Element[];
  lines: readonly OcrLine[];
}

/** Options of {@link readObservation}. */
export interface ReadOptions {
  /** Which structures (default `all`). */
  kind?: ReadKind;
  /** Only what lies inside this rectangle (centres), logical global points. */
  region?: Rect;
}

/**
 * The key column of a table: the first column whose body texts are all non-empty and unique (ids, names).
 * @returns its index, or -1 when no column qualifies (rows are then matched by position).
 */
export function keyColumnOf(t: Pick<ReadTable, 'rows' | 'headers'>): number {
  if (t.rows.length === 0) return -1;
  for (let c = 0; c < t.headers.length; c++) {
    const texts = t.rows.map((r) => r.cells[c]?.text ?? '');
    if (texts.every((x) => x !== '') && new Set(texts).size === texts.length) return c;
  }
  return -1;
}

/** Give a draft table its id and row keys. */
export function finishTable(d: DraftTable, id: string): ReadTable {
  const t: ReadTable = { id, ...d, keyColumn: -1 };
  t.keyColumn = keyColumnOf(t);
  if (t.keyColumn >= 0) for (const r of t.rows) r.key = r.cells[t.keyColumn]!.text;
  return t;
}

/**
 * Read tables, boards and pairs from an observation.
 * - tables: accessibility tables first (`accessibility`, or `fused` where OCR named cells), then OCR tables
 *   from the words outside them (`ocr`); ids `t1…` in reading order;
 * - boards: columns of list-item cards outside tables; ids `b1…`;
 * - pairs: label → value outside tables and boards.
 * Elements other windows cover completely are never read. Never throws.
 */
export function readObservation(src: ReadSource, opts: ReadOptions = {}): ReadContent {
  const kind = opts.kind ?? 'all';
  const region = opts.region;
  const elements = region ? src.elements.filter((e) => centreIn(e.bounds, region)) : src.elements;
  const words = wordsOf(src.lines).filter((w) => !region || centreIn(w.bounds, region));
  // Tables are read for every kind: boards and pairs must not take table cells for cards or labels.
  const ax = accessibilityTables(elements);
  // OCR tables come from text the accessibility tree does not hold (canvases, images, apps without
  // accessibility): words inside a named accessible element (a list item, a text) belong to that element.
  const held = elements.filter((e) => e.name !== '' && e.source !== 'ocr' && !PIXEL_HOSTS.has(e.role) && e.bounds.width * e.bounds.height < 200_000).map((e) => e.bounds);
  const ocr = ocrTables(words, [...ax.map((t) => t.bounds), ...held]);
  const drafts = [...ax, ...ocr].sort((a, b) => a.bounds.y - b.bounds.y || a.bounds.x - b.bounds.x);
  const tables = drafts.map((d, i) => finishTable(d, `t${i + 1}`));
  const tableRects = tables.map((t) => t.bounds);
  const boards = kind === 'all' || kind === 'board' || kind === 'pairs' ? readBoards(elements, tableRects).map((b, i) => ({ id: `b${i + 1}`, ...b })) : [];
  const pairs = kind === 'all' || kind === 'pairs' ? readPairs(elements, words, [...tableRects, ...boards.map((b) => b.bounds)]) : [];
  return {
    tables: kind === 'all' || kind === 'table' ? tables : [],
    boards: kind === 'all' || kind === 'board' ? boards : [],
    pairs,
  };
}

/** Tables whose title or headers mention `q` (normalised, case-insensitive substring); all tables when `q` is undefined. */
export function tablesNamed(tables: readonly ReadTable[], q: string | undefined): ReadTable[] {
  if (q === undefined) return [...tables];
  const n = norm(q);
  const byTitle = tables.filter((t) => t.title !== undefined && norm(t.title).includes(n));
  return byTitle.length > 0 ? byTitle : tables.filter((t) => t.headers.some((h) => norm(h).includes(n)));
}

/**
 * Index of the column named `name` in a table: exact header match first (normalised, case-insensitive), then
 * a header containing it; a number-like string `#3` / 3 is a 0-based index.
 * @returns -1 when no header matches.
 */
export function columnIndex(t: Pick<ReadTable, 'headers'>, name: string): number {
  const n = norm(name);
  const exact = t.headers.findIndex((h) => norm(h) === n);
  if (exact >= 0) return exact;
  if (n !== '') {
    const part = t.headers.findIndex((h) => norm(h).includes(n));
    if (part >= 0) return part;
  }
  const m = /^#?(\d+)$/.exec(name.trim());
  if (m && Number(m[1]) < t.headers.length) return Number(m[1]);
  return -1;
}
