/**
 * Reading as data (src/perception/read): tables from accessible cells (spans, multi-row headers, empty and
 * off-screen cells), from OCR words (columns by gutters), pairs, boards, since-diffs, stitching and the
 * wait predicates, on element/word shapes as the observer produces them (Chromium AT-SPI cells, tesseract
 * words with one table row cut into several lines).
 */
import { describe, it, expect } from 'vitest';
import type { Element, OcrLine, OcrWord } from '../../src/perception/elements.js';
import { readObservation, keyColumnOf, columnIndex } from '../../src/perception/read/index.js';
import { accessibilityTables } from '../../src/perception/read/axTables.js';
import { ocrTables } from '../../src/perception/read/ocrTables.js';
import { readPairs, isValue } from '../../src/perception/read/pairs.js';
import { readBoards } from '../../src/perception/read/boards.js';
import { diffReads } from '../../src/perception/read/diff.js';
import { stitchRows } from '../../src/perception/read/stitch.js';
import { checkCell, checkPair, CellPredicateSchema } from '../../src/perception/read/predicates.js';

let n = 0;
const el = (role: string, name: string, x: number, y: number, w: number, h: number, extra: Partial<Element> = {}): Element => ({
  ref: `e${++n}`, role, name, bounds: { x, y, width: w, height: h }, states: ['visible', 'showing'], actions: [], source: 'accessibility', ...extra,
});
const word = (text: string, x: number, y: number, h = 12): OcrWord => ({ text, bounds: { x, y, width: text.length * 7, height: h }, confidence: 0.95 });
const line = (...ws: OcrWord[]): OcrLine => ({ text: ws.map((w) => w.text).join(' '), bounds: { x: ws[0]!.bounds.x, y: ws[0]!.bounds.y, width: 100, height: 12 }, words: ws });

/** A 3-column HTML table at (100, 100): header row, 3 body rows of 30 points. */
function trackerCells(): Element[] {
  const heads = ['ID', 'Title', 'Status'].map((t, i) => el('columnheader', t, 100 + i * 150, 100, 150, 30));
  const body = [
    ['BUG-1', 'Login fails', 'Open'],
    ['BUG-2', 'Crash on save', ''],
    ['BUG-3', 'Slow search', 'Closed'],
  ].flatMap((r, ri) => r.map((t, ci) => el('cell', t, 100 + ci * 150, 130 + ri * 30, 150, 30)));
  return [el('table', 'Bugs', 100, 100, 450, 120), ...heads, ...body];
}

describe('accessibility tables', () => {
  it('matches headers to columns, keeps an empty cell explicit and keys rows by the first unique column', () => {
    const [t] = readObservation({ elements: trackerCells(), lines: [] }).tables;
    expect(t).toBeDefined();
    expect(t!.title).toBe('Bugs');
    expect(t!.source).toBe('accessibility');
    expect(t!.headers).toEqual(['ID', 'Title', 'Status']);
    expect(t!.rows.map((r) => r.cells.map((c) => c.text))).toEqual([
      ['BUG-1', 'Login fails', 'Open'],
      ['BUG-2', 'Crash on save', ''],
      ['BUG-3', 'Slow search', 'Closed'],
    ]);
    expect(t!.keyColumn).toBe(0);
    expect(t!.rows.map((r) => r.key)).toEqual(['BUG-1', 'BUG-2', 'BUG-3']);
    expect(t!.rows[1]!.cells[2]!.ref).toMatch(/^e\d+$/);
    expect(t!.complete).toBe(true);
  });

  it('joins a two-row header (a group header spanning two columns) and never shifts cells after a colspan or rowspan', () => {
    const els = [
      el('columnheader', 'Team', 0, 0, 100, 60), // rowspan 2
      el('columnheader', 'Q1', 100, 0, 200, 30), // colspan 2
      el('columnheader', 'Revenue', 100, 30, 100, 30),
      el('columnheader', 'Cost', 200, 30, 100, 30),
      el('cell', 'North', 0, 60, 100, 30),
      el('cell', 'n/a', 100, 60, 200, 30), // colspan 2
      el('cell', 'South', 0, 90, 100, 60), // rowspan 2
      el('cell', '12', 100, 90, 100, 30),
      el('cell', '7', 200, 90, 100, 30),
      el('cell', '13', 100, 120, 100, 30),
      el('cell', '8', 200, 120, 100, 30),
    ];
    const [t] = accessibilityTables(els);
    expect(t!.headers).toEqual(['Team', 'Q1 Revenue', 'Q1 Cost']);
    expect(t!.rows.map((r) => r.cells.map((c) => c.text))).toEqual([
      ['North', 'n/a', ''],
      ['South', '12', '7'],
      ['', '13', '8'],
    ]);
    expect(t!.rows[0]!.cells[2]!.spannedBy).toEqual({ row: 0, column: 1 });
    expect(t!.rows[2]!.cells[0]!.spannedBy).toEqual({ row: 1, column: 0 });
  });

  it('uses OCR text fusion put in an unnamed cell (fused) and leaves cells another window covers out', () => {
    const els = trackerCells();
    const cell = els.find((e) => e.name === 'Closed')!;
    cell.source = 'fused';
    const covered = els.find((e) => e.name === 'Slow search')!;
    covered.states = ['covered'];
    const [t] = accessibilityTables(els);
    expect(t!.source).toBe('fused');
    expect(t!.rows[2]!.cells[1]!.text).toBe('');
  });

  it('marks a grid incomplete when rendered rows are off screen (no showing state) and leaves them out', () => {
    const els = trackerCells();
    els.push(el('cell', 'BUG-4', 100, 220, 150, 30, { states: ['visible'] }), el('cell', 'x', 250, 220, 150, 30, { states: ['visible'] }), el('cell', 'Open', 400, 220, 150, 30, { states: ['visible'] }));
    const [t] = accessibilityTables(els);
    expect(t!.rows).toHaveLength(3);
    expect(t!.complete).toBe(false);
  });

  it('groups cells without a table element into separate tables by adjacency', () => {
    const a = trackerCells().filter((e) => e.role !== 'table');
    const b = a.map((e) => ({ ...e, ref: `e${++n}`, bounds: { ...e.bounds, y: e.bounds.y + 300 } }));
    expect(accessibilityTables([...a, ...b])).toHaveLength(2);
  });
});

/** A canvas table as tesseract reads it: each row cut into two lines (the left two columns, the last). */
function canvasLines(): OcrLine[] {
  const rows = [
    ['Run', 'Branch', 'Duration'],
    ['#101', 'main', '4m 12s'],
    ['#102', 'fix login', ''],
    ['#103', 'dev', '3m 01s'],
  ];
  const out: OcrLine[] = [];
  rows.forEach((r, i) => {
    const y = 400 + i * 28;
    const ws = (t: string, x: number) => t.split(' ').filter(Boolean).map((p, k) => word(p, x + k * 40, y));
    out.push(line(...ws(r[0]!, 50), ...ws(r[1]!, 200)));
    if (r[2]) out.push(line(...ws(r[2], 400)));
  });
  return out;
}

describe('OCR tables', () => {
  it('aligns words into columns across lines; the first row is the header; an empty cell is ""', () => {
    const { tables } = readObservation({ elements: [], lines: canvasLines() });
    expect(tables).toHaveLength(1);
    const t = tables[0]!;
    expect(t.source).toBe('ocr');
    expect(t.headers).toEqual(['Run', 'Branch', 'Duration']);
    expect(t.rows.map((r) => r.cells.map((c) => c.text))).toEqual([
      ['#101', 'main', '4m 12s'],
      ['#102', 'fix login', ''],
      ['#103', 'dev', '3m 01s'],
    ]);
    expect(t.rows[1]!.cells[2]!.bounds.x).toBe(400);
  });

  it('finds no table in prose or in KPI cards of mixed text sizes', () => {
    const prose = [line(word('Deploys', 50, 50), word('are', 110, 50), word('green', 140, 50)), line(word('since', 50, 70), word('Monday', 95, 70))];
    expect(ocrTables(prose.flatMap((l) => l.words!))).toEqual([]);
    const kpi = [word('Open', 50, 50), word('bugs', 200, 50), word('3', 50, 70, 40), word('12', 200, 70, 40), word('today', 50, 120), word('week', 200, 120)];
    expect(ocrTables(kpi)).toEqual([]);
  });
});

describe('pairs', () => {
  it('pairs a KPI value with the label above it, a gauge value with the label below, and "label: value" text', () => {
    const els = [
      el('text', 'Open P1 bugs', 100, 100, 90, 14),
      el('text', '3', 100, 120, 20, 36),
      el('text', 'since Monday', 100, 162, 80, 12),
      el('text', 'Uptime: 99.95%', 400, 100, 110, 14),
      el('progressbar', 'Disk', 600, 100, 100, 10, { value: '71' }),
    ];
    const gauge = [word('284ms', 820, 150, 24), word('p95', 815, 182), word('latency', 845, 182)];
    const pairs = readPairs(els, gauge);
    const m = Object.fromEntries(pairs.map((p) => [p.label, p.value]));
    expect(m).toMatchObject({ 'Open P1 bugs': '3', Uptime: '99.95%', Disk: '71', 'p95 latency': '284ms' });
    expect(pairs.find((p) => p.label === 'since Monday')).toBeUndefined();
    expect(pairs.find((p) => p.label === 'Open P1 bugs')!.valueBounds).toEqual({ x: 100, y: 120, width: 20, height: 36 });
  });

  it('knows values from labels', () => {
    for (const v of ['3', '284ms', '99.9%', '$1,204', '1.2k', '3/5', '-4', '12 of 40']) expect(isValue(v), v).toBe(true);
    for (const v of ['P1', 'Open bugs', 'BUG-12', 'v2.1 release']) expect(isValue(v), v).toBe(false);
  });

  it('takes no label from inside a table', () => {
    const els = trackerCells();
    expect(readObservation({ elements: els, lines: [] }).pairs).toEqual([]);
  });
});

describe('boards', () => {
  it('reads columns of list-item cards with the heading above each column', () => {
    const els: Element[] = [];
    const cols = { 'To do': ['Write docs', 'Fix CI'], Doing: ['Review PR'], Done: ['Ship 1.0', 'Tag', 'Blog post'] };
    Object.entries(cols).forEach(([title, cards], c) => {
      els.push(el('heading', title, 100 + c * 260, 80, 240, 24));
      cards.forEach((t, i) => {
        els.push(el('listitem', '', 100 + c * 260, 120 + i * 70, 240, 60));
        els.push(el('text', t, 110 + c * 260, 130 + i * 70, 120, 16));
      });
    });
    const boards = readBoards(els);
    expect(boards).toHaveLength(1);
    expect(boards[0]!.columns.map((c) => [c.title, c.cards.map((x) => x.text)])).toEqual([
      ['To do', ['Write docs', 'Fix CI']],
      ['Doing', ['Review PR']],
      ['Done', ['Ship 1.0', 'Tag', 'Blog post']],
    ]);
  });

  it('does not take a horizontal menu for a board', () => {
    const els = ['Home', 'Docs', 'Blog'].map((t, i) => el('listitem', t, 100 + i * 100, 10, 90, 20));
    expect(readBoards(els)).toEqual([]);
  });
});

describe('since, stitching and predicates', () => {
  it('reports exactly the changed cell, and added and removed rows by key', () => {
    const before = readObservation({ elements: trackerCells(), lines: [] });
    const els = trackerCells();
    els.find((e) => e.name === 'Open')!.name = 'Closed';
    const gone = els.filter((e) => e.bounds.y === 190);
    const now = readObservation({ elements: els.filter((e) => !gone.includes(e)).concat([el('cell', 'BUG-9', 100, 190, 150, 30), el('cell', 'New', 250, 190, 150, 30), el('cell', 'Open', 400, 190, 150, 30)]), lines: [] });
    const d = diffReads('read_1', before, now);
    expect(d.tables).toHaveLength(1);
    expect(d.tables[0]!.changed).toEqual([{ key: 'BUG-1', cells: [{ column: 'Status', columnIndex: 2, from: 'Open', to: 'Closed', bounds: { x: 400, y: 130, width: 150, height: 30 } }] }]);
    expect(d.tables[0]!.added.map((r) => r.key)).toEqual(['BUG-9']);
    expect(d.tables[0]!.removed.map((r) => r.key)).toEqual(['BUG-3']);
    expect(diffReads('read_1', before, before).tables).toEqual([]);
  });

  it('stitches pages by key, and by overlap when no column is a key', () => {
    const row = (...t: string[]) => ({ cells: t.map((x) => ({ text: x, bounds: { x: 0, y: 0, width: 1, height: 1 } })) });
    const held = [row('1', 'a'), row('2', 'b')];
    expect(stitchRows(held, [row('2', 'b'), row('3', 'c')], 0)).toBe(1);
    expect(held.map((r) => r.cells[0]!.text)).toEqual(['1', '2', '3']);
    const h2 = [row('x', 'a'), row('x', 'b')];
    expect(stitchRows(h2, [row('x', 'b'), row('x', 'b'), row('x', 'c')], -1)).toBe(2);
    expect(h2.map((r) => r.cells[1]!.text)).toEqual(['a', 'b', 'b', 'c']);
  });

  it('tests a cell predicate by row and column names and a pair predicate, with evidence', () => {
    const c = readObservation({ elements: [...trackerCells(), el('text', 'Open P1 bugs', 700, 100, 90, 14), el('text', '3', 700, 120, 20, 36)], lines: [] });
    const p = CellPredicateSchema.parse({ table: 'Bugs', row: { column: 'ID', equals: 'bug-1' }, column: 'status', equals: 'OPEN' });
    const r = checkCell(c, p);
    expect(r.holds).toBe(true);
    expect(r.evidence).toMatchObject({ kind: 'cell', table: 't1', row: 'BUG-1', column: 'Status', text: 'Open', bounds: { x: 400, y: 130 } });
    expect(checkCell(c, { ...p, equals: 'Closed' })).toMatchObject({ holds: false, evidence: { text: 'Open' } });
    expect(checkCell(c, { ...p, row: { column: 'ID', equals: 'BUG-404' } })).toEqual({ holds: false, evidence: null });
    expect(checkCell(c, { row: { column: 'ID', equals: 'BUG-3' }, column: 'Status', matches: '^Clo' }).holds).toBe(true);
    expect(checkPair(c, { label: 'open p1 bugs', equals: '3' })).toMatchObject({ holds: true, evidence: { kind: 'pair', text: '3' } });
    expect(() => checkPair(c, { label: 'x', matches: '(' })).toThrow(/VALIDATION_FAILED|regular expression/);
    expect(CellPredicateSchema.safeParse({ row: { column: 'ID', equals: 'a' }, column: 'S', equals: 'x', matches: 'y' }).success).toBe(false);
  });

  it('finds columns by header, by part of a header, or by index', () => {
    const t = { headers: ['Run', 'Status', 'Duration (s)'] };
    expect(columnIndex(t, 'status')).toBe(1);
    expect(columnIndex(t, 'duration')).toBe(2);
    expect(columnIndex(t, '0')).toBe(0);
    expect(columnIndex(t, 'nope')).toBe(-1);
    expect(keyColumnOf({ headers: ['a', 'b'], rows: [{ cells: [{ text: 'x', bounds: { x: 0, y: 0, width: 0, height: 0 } }, { text: '1', bounds: { x: 0, y: 0, width: 0, height: 0 } }] }, { cells: [{ text: 'x', bounds: { x: 0, y: 0, width: 0, height: 0 } }, { text: '2', bounds: { x: 0, y: 0, width: 0, height: 0 } }] }] })).toBe(1);
  });
});

describe('empty OCR cells read again', () => {
  it('finds ink only where a cell has pixels off its background, and fills only OCR tables', async () => {
    const { hasInk, rereadEmptyOcrCells } = await import('../../src/perception/read/cellOcr.js');
    const w = 100, h = 40;
    const data = Buffer.alloc(w * h * 4, 255);
    for (let y = 10; y < 20; y++) for (let x = 60; x < 63; x++) data.fill(0, (y * w + x) * 4, (y * w + x) * 4 + 3); // a dark stroke
    const img = { data, width: w, height: h, channels: 4 as const, scale: 1, origin: { x: 0, y: 0 } };
    expect(hasInk(img, { x: 50, y: 5, width: 30, height: 20 })).toBe(true);
    expect(hasInk(img, { x: 0, y: 0, width: 40, height: 40 })).toBe(false);
    const c = readObservation({ elements: [], lines: canvasLines() });
    c.tables.push({ ...c.tables[0]!, id: 't2', source: 'accessibility', rows: [{ cells: [{ text: '', bounds: { x: 0, y: 0, width: 5, height: 5 } }] }] });
    const asked: number[] = [];
    const n = await rereadEmptyOcrCells(c, { id: 0, x: 0, y: 0, width: 100, height: 100, scaleFactor: 1, primary: true }, async (_d, rects) => {
      asked.push(rects.length);
      return rects.map(() => '0');
    });
    expect(n).toBe(1);
    expect(asked).toEqual([1]);
    expect(c.tables[0]!.rows[1]!.cells[2]!.text).toBe('0');
    expect(c.tables[1]!.rows[0]!.cells[0]!.text).toBe('');
  });
});
