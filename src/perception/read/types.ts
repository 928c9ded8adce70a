/**
 * Shapes of a read (`POST /v1/read`, MCP `read`): an observation turned into tables, boards and
 * label → value pairs. All geometry in logical global points (the space of observations and actions).
 * Ids (`t1`, `b1`) and refs are valid only within their read / observation, like element refs.
 */
import type { Rect } from '../../platform/types.js';

/** One cell: its text exactly as shown (`""` for an empty cell or a part of a merged cell), its bounds, and the element it came from. */
export interface ReadCell {
  text: string;
  /** Bounds of the cell (accessibility) or of its words (OCR); for an empty OCR cell, the column × row box. */
  bounds: Rect;
  /** Ref of the accessible element (`e12`) within the read's observation, when the cell is one. */
  ref?: string;
  /** Present when the cell is covered by a cell spanning it (row or column span): `text` is then `""`. */
  spannedBy?: { row: number; column: number };
}

/** One table row. `key` identifies the row across reads (the text of the key column, see {@link ReadTable.keyColumn}). */
export interface ReadRow {
  key?: string;
  cells: ReadCell[];
}

/** Where a table's structure came from. */
export type TableSource = 'accessibility' | 'ocr' | 'fused';

/** A table: headers matched to columns, rows of exactly `headers.length` cells. */
export interface ReadTable {
  /** `t1`, `t2`, … in reading order (top to bottom, then left to right) within the read. */
  id: string;
  /** Accessible name of the table, else the heading or text just above it. */
  title?: string;
  bounds: Rect;
  /** One per column; multi-row headers joined with a space; `""` where a column has no header. */
  headers: string[];
  rows: ReadRow[];
  /**
   * `accessibility` (cells from table/cell roles, text all from the accessibility tree), `ocr` (columns
   * aligned from OCR words), `fused` (accessibility structure, some cell text read by OCR).
   */
  source: TableSource;
  /** False when the table continues beyond what was read (a scrollable grid not scrolled to its end). */
  complete: boolean;
  /** With `scroll: true`: how many pages were scrolled to read it. */
  scrolled?: number;
  /** Index of the column whose text keys rows (first column whose texts are unique and non-empty), or -1. */
  keyColumn: number;
}

/** A card of a board column. */
export interface ReadCard {
  text: string;
  bounds: Rect;
  ref?: string;
}

/** A column of a board. */
export interface ReadBoardColumn {
  title: string;
  bounds: Rect;
  cards: ReadCard[];
}

/** A kanban-like board: columns of cards side by side. */
export interface ReadBoard {
  /** `b1`, `b2`, … within the read. */
  id: string;
  title?: string;
  bounds: Rect;
  columns: ReadBoardColumn[];
}

/** A label → value pair (KPI card, gauge, "label: value"). */
export interface ReadPair {
  label: string;
  value: string;
  /** Union of the label's and the value's bounds. */
  bounds: Rect;
  /** Bounds of the value alone. */
  valueBounds: Rect;
  /** Bounds of the label alone (layout pairs: the label is a separate text). */
  labelBounds?: Rect;
  /** How the pair was found: `colon` ("label: value" text), `accessibility` (an element's name and value), `layout` (a value and the label nearest it). */
  via: 'colon' | 'accessibility' | 'layout';
}

/** What a read returns besides ids and timings. */
export interface ReadContent {
  tables: ReadTable[];
  boards: ReadBoard[];
  pairs: ReadPair[];
}

/** Which structures to read. */
export type ReadKind = 'table' | 'board' | 'pairs' | 'all';
