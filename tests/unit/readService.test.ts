/**
 * ReadService (src/perception/read/service.ts) with injected observe/scroll/change sources: predicate waits
 * are woken by an accessibility event or a screen change (the quiet-period re-read is set far beyond the
 * deadline, so only a wake-up can make them hold), scroll stitching stops at the end and scrolls back,
 * a refused scroll stops everything, and `since` needs a known read.
 */
import { describe, it, expect } from 'vitest';
import type { Element } from '../../src/perception/elements.js';
import type { Observation } from '../../src/perception/observer.js';
import { ReadService, type ReadServiceDeps } from '../../src/perception/read/service.js';
import { DeskdError } from '../../src/errors.js';

let n = 0;
const el = (role: string, name: string, x: number, y: number, w = 100, h = 30): Element => ({ ref: `e${++n}`, role, name, bounds: { x, y, width: w, height: h }, states: ['showing'], actions: [], source: 'accessibility' });

function table(status: string, first = 0, count = 4): Element[] {
  const out = [el('table', 'Runs', 0, 0, 200, 30 * 5), el('columnheader', 'Run', 0, 0), el('columnheader', 'Status', 100, 0)];
  for (let i = 0; i < count; i++) out.push(el('cell', `#${first + i + 1}`, 0, 30 * (i + 1)), el('cell', i === 0 ? status : 'Queued', 100, 30 * (i + 1)));
  return out;
}

function obs(elements: Element[]): Observation {
  return { observationId: `obs_${++n}`, takenAt: Date.now(), display: { id: 0, x: 0, y: 0, width: 1000, height: 800, scaleFactor: 1, primary: true }, focused: null, elements, words: [], lines: [], truncated: false, warnings: [], timings: { captureMs: 0, ocrMs: 0, accessibilityMs: 0, totalMs: 1 } };
}

function deps(current: () => Element[], extra: Partial<ReadServiceDeps> = {}): ReadServiceDeps {
  return { observe: async () => obs(current()), windows: async () => [], ...extra };
}

const pred = { cell: { row: { column: 'Run', equals: '#1' }, column: 'Status', equals: 'Passed' } };

describe('ReadService waits', () => {
  it('is woken by an accessibility event', async () => {
    let els = table('Running');
    let fire: () => void = () => {};
    const s = new ReadService(deps(() => els, { onAccessibilityChange: async (l) => ((fire = l), () => {}) }));
    setTimeout(() => {
      els = table('Passed');
      fire();
    }, 150);
    const w = await s.waitFor(pred, { timeoutMs: 4000, ocr: false, quietMs: 60_000 });
    expect(w.evidence).toMatchObject({ kind: 'cell', row: '#1', column: 'Status', text: 'Passed', bounds: { x: 100, y: 30 } });
    expect(w.polls).toBe(2);
    expect(s.get(w.read.readId).tables[0]!.rows[0]!.cells[1]!.text).toBe('Passed');
  });

  it('is woken by a screen change', async () => {
    let els = table('Running');
    let changed = false;
    const s = new ReadService(deps(() => els, { screenChanged: async () => changed && !(changed = false) }));
    setTimeout(() => {
      els = table('Passed');
      changed = true;
    }, 150);
    const w = await s.waitFor(pred, { timeoutMs: 4000, ocr: false, quietMs: 60_000 });
    expect(w.evidence.text).toBe('Passed');
  });

  it('without any wake-up it reads once and times out with the evidence, and audits both outcomes', async () => {
    const records: Record<string, unknown>[] = [];
    let els = table('Running');
    const s = new ReadService(deps(() => els, { audit: async (_k, d) => void records.push(d) }));
    setTimeout(() => (els = table('Passed')), 50);
    const e = await s.waitFor(pred, { timeoutMs: 300, ocr: false, quietMs: 60_000, actor: 'agent/x' }).catch((x: DeskdError) => x);
    expect(e).toBeInstanceOf(DeskdError);
    expect((e as DeskdError).code).toBe('TIMEOUT');
    expect((e as DeskdError).details).toMatchObject({ polls: 1, evidence: { text: 'Running' } });
    expect(records).toEqual([expect.objectContaining({ actor: 'agent/x', outcome: 'timeout', predicate: pred })]);
    await s.waitFor(pred, { timeoutMs: 300, ocr: false, actor: 'agent/x' });
    expect(records[1]).toMatchObject({ outcome: 'held', evidence: { text: 'Passed' } });
  });
});

describe('ReadService scroll', () => {
  it('stitches every row once, stops at the end, and scrolls back by what was scrolled', async () => {
    let first = 0;
    const moves: number[] = [];
    const s = new ReadService(deps(() => table('Running', first)));
    const r = await s.read({ scroll: true, ocr: false }, async (_at, dy) => {
      moves.push(dy);
      // Like the executor: answers what was sent (whole rows here), whether or not the view could move that far.
      const rows = Math.round(dy / 30);
      first = Math.max(0, Math.min(16, first + rows)); // 20 rows, 4 visible
      return rows * 30;
    });
    const t = r.tables[0]!;
    expect(r.warnings).toEqual([]);
    expect(t.rows.map((x) => x.key)).toEqual(Array.from({ length: 20 }, (_, i) => `#${i + 1}`));
    expect(t.complete).toBe(true);
    expect(first).toBe(0);
    // Forward page by page, then back by the same amounts in reverse order.
    const fwd = moves.filter((d) => d > 0);
    expect(t.scrolled).toBe(fwd.length);
    expect(moves).toEqual([...fwd, ...fwd.map((d) => -Math.round(d / 30) * 30).reverse()]); // what each page delivered
  });

  it('a refused scroll is the read\'s answer and nothing else is scrolled; since must name a known read', async () => {
    const s = new ReadService(deps(() => table('Running')));
    const calls: number[] = [];
    await expect(
      s.read({ scroll: true, ocr: false }, async (_at, dy) => {
        calls.push(dy);
        throw new DeskdError('POLICY_DENIED', 'no');
      }),
    ).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    expect(calls).toHaveLength(1);
    await expect(s.read({ since: 'read_x' })).rejects.toMatchObject({ code: 'READ_NOT_FOUND' });
  });
});
