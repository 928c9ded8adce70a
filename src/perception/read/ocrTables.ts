/**
 * Tables from OCR words alone (canvas-drawn tables, apps without accessibility): words are grouped into
 * visual rows, rows are cut into segments at column gutters (`grid.ts`), and consecutive rows with several
 * segments form a block whose columns are the union of the segments' x-extents across the block (the
 * whitespace gutters between them run through every row). A segment goes to the column it overlaps most;
 * a column with no segment in a row is an explicit `""` cell. The first row of a block is its header row.
 */
import type { Rect } from '../../platform/types.js';
import type { OcrWord } from '../elements.js';
import { union } from '../geometry.js';
import type { DraftTable } from './axTables.js';
import type { ReadCell, ReadRow } from './types.js';
import { bottom, cy, median, overlap, right, type Segment, type WordRow, wordRows } from './grid.js';

/** Least rows (header included) and columns for an OCR table. */
const MIN_ROWS = 3;
const MIN_COLS = 2;

/** Column extents of a block: merged x-intervals of its segments, left to right. */
function columnsOf(rows: readonly WordRow[]): { x1: number; x2: number }[] {
  const iv = rows.flatMap((r) => r.segments.map((s) => ({ x1: s.bounds.x, x2: right(s.bounds) }))).sort((a, b) => a.x1 - b.x1);
  const out: { x1: number; x2: number }[] = [];
  for (const i of iv) {
    const last = out[out.length - 1];
    if (last && i.x1 <= last.x2 + 2) last.x2 = Math.max(last.x2, i.x2);
    else out.push({ ...i });
  }
  return out;
}

/** Whether a run of rows looks like one table: similar text sizes, a regular pitch, most rows filling ≥ 2 columns. */
function tableLike(rows: readonly WordRow[], cols: readonly { x1: number; x2: number }[]): boolean {
  if (rows.length < MIN_ROWS || cols.length < MIN_COLS) return false;
  const hs = rows.map((r) => r.height);
  if (Math.max(...hs) > 1.7 * Math.min(...hs)) return false;
  const filled = rows.filter((r) => new Set(r.segments.map((s) => colOf(s, cols))).size >= 2).length;
  return filled >= 0.6 * rows.length;
}

function colOf(s: Segment, cols: readonly { x1: number; x2: number }[]): number {
  let best = 0;
  let bestOv = -1;
  cols.forEach((c, i) => {
    const ov = overlap(s.bounds.x, right(s.bounds) + 0.01, c.x1, c.x2 + 0.01);
    if (ov > bestOv) {
      bestOv = ov;
      best = i;
    }
  });
  return best;
}

/**
 * Tables from OCR words. Words inside `exclude` rectangles (tables the accessibility tree already gives)
 * are left out. A block ends where the gap to the next row exceeds 1.8 × the block's row pitch or a row
 * holds a single segment that spans several columns (a caption or paragraph).
 * @returns tables in reading order, without ids; `source: 'ocr'`, `complete: true` (OCR cannot know more).
 */
export function ocrTables(words: readonly OcrWord[], exclude: readonly Rect[] = []): DraftTable[] {
  const keep = words.filter((w) => !exclude.some((r) => cy(w.bounds) >= r.y && cy(w.bounds) <= bottom(r) && w.bounds.x + w.bounds.width / 2 >= r.x && w.bounds.x + w.bounds.width / 2 <= right(r)));
  const rows = wordRows(keep);
  const out: DraftTable[] = [];
  let i = 0;
  while (i < rows.length) {
    if (rows[i]!.segments.length < 2) {
      i++;
      continue;
    }
    // Grow a block of multi-segment rows at a steady pitch.
    let j = i + 1;
    const pitches: number[] = [];
    while (j < rows.length) {
      const prev = rows[j - 1]!;
      const r = rows[j]!;
      const pitch = cy(r.bounds) - cy(prev.bounds);
      const typical = pitches.length > 0 ? median(pitches) : 3 * prev.height;
      if (pitch > 1.8 * typical || r.segments.length < 2 && r.segments[0]!.bounds.width > 0.6 * union(rows.slice(i, j).map((x) => x.bounds))!.width) break;
      if (r.height > 1.7 * prev.height || prev.height > 1.7 * r.height) break;
      pitches.push(pitch);
      j++;
    }
    const block = rows.slice(i, j);
    const cols = columnsOf(block);
    if (tableLike(block, cols)) {
      out.push(tableOf(block, cols));
      i = j;
    } else i++;
  }
  return out;
}

function tableOf(block: readonly WordRow[], cols: readonly { x1: number; x2: number }[]): DraftTable {
  const grid: ReadRow[] = block.map((r) => {
    const byCol: Segment[][] = cols.map(() => []);
    for (const s of r.segments) byCol[colOf(s, cols)]!.push(s);
    const cells: ReadCell[] = byCol.map((segs, c) =>
      segs.length > 0
        ? { text: segs.map((s) => s.text).join(' '), bounds: union(segs.map((s) => s.bounds))! }
        : { text: '', bounds: { x: cols[c]!.x1, y: r.bounds.y, width: cols[c]!.x2 - cols[c]!.x1, height: r.bounds.height } },
    );
    return { cells };
  });
  const [head, ...rows] = grid;
  return {
    bounds: union(block.map((r) => r.bounds))!,
    headers: head!.cells.map((c) => c.text),
    rows,
    source: 'ocr',
    complete: true,
  };
}
