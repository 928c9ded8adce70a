/**
 * Cheap predicate waits (src/perception/read/focus.ts and the wait loop of service.ts): once a full read
 * found the target, the wait compares the pixels of the target and its anchors and reads the target alone
 * (hit-test or single-line OCR); an anchor that changed, a region read that cannot answer (other bounds,
 * another window, a masked one) or text conditions go back to a full read. Injected observe / region
 * readers; the quiet re-read is set far beyond the deadline so only the path under test can make a wait hold.
 */
import { describe, it, expect } from 'vitest';
import type { Element, OcrLine } from '../../src/perception/elements.js';
import type { Observation } from '../../src/perception/observer.js';
import type { DisplayInfo, RawAXNode, RawImage, Rect, WindowInfo } from '../../src/platform/types.js';
import { ReadService, type ReadServiceDeps } from '../../src/perception/read/service.js';
import { focusOf, regionReader, type RegionReader, type Spot } from '../../src/perception/read/focus.js';
import { cellReader } from '../../src/perception/read/cellOcr.js';
import { readObservation } from '../../src/perception/read/index.js';
import { checkCell, checkPair } from '../../src/perception/read/predicates.js';
import { ScreenFrame, NO_MASK } from '../../src/perception/agentCapture.js';

const DISPLAY: DisplayInfo = { id: 0, x: 0, y: 0, width: 1000, height: 800, scaleFactor: 1, primary: true };
const WIN: WindowInfo = { id: '0x1', app: 'chromium', pid: 42, title: 'CI', bounds: { x: 0, y: 0, width: 1000, height: 800 } };
let n = 0;
const el = (role: string, name: string, x: number, y: number, w = 100, h = 30, extra: Partial<Element> = {}): Element => ({
  ref: `e${++n}`, role, name, bounds: { x, y, width: w, height: h }, states: ['showing'], actions: [], source: 'accessibility', handle: `1.2|/a/${n}`, ...extra,
});

/** Runs #1..#4, the first with `status`; rows start `top` points down (a row added above moves them). */
function table(status: string, top = 30): Element[] {
  const out = [el('table', 'Runs', 0, 0, 200, top + 30 * 4), el('columnheader', 'Run', 0, 0), el('columnheader', 'Status', 100, 0)];
  for (let i = 0; i < 4; i++) out.push(el('cell', `#${i + 1}`, 0, top + 30 * i), el('cell', i === 0 ? status : 'Queued', 100, top + 30 * i));
  return out;
}

function obs(elements: Element[], lines: OcrLine[] = []): Observation {
  return { observationId: `obs_${++n}`, takenAt: Date.now(), display: DISPLAY, focused: null, elements, words: lines.flatMap((l) => l.words ?? []), lines, truncated: false, warnings: [], timings: { captureMs: 0, ocrMs: 0, accessibilityMs: 0, totalMs: 1 } };
}

const cellPred = { cell: { row: { column: 'Run', equals: '#1' }, column: 'Status', equals: 'Passed' } };

/**
 * A scripted region reader: `pixels(rect)` says what a rectangle shows now (compared as strings), `text`
 * what reading the target finds, `window` the window at any point. Records its calls.
 */
function fakeRegion(s: { pixels: (r: Rect) => string; text: () => { text: string; bounds: Rect } | null; window?: () => WindowInfo | null; key?: () => string }) {
  const calls = { changed: 0, read: 0, reads: [] as Spot[] };
  const seen = new WeakMap<object, Map<string, string>>();
  const r: RegionReader = {
    async changed(_d, rects, token, opts = {}) {
      calls.changed++;
      let m = seen.get(token);
      if (!m) seen.set(token, (m = new Map()));
      return rects.map((x) => {
        const k = JSON.stringify(x);
        const now = s.pixels(x);
        const before = m.get(k);
        if (before === undefined || opts.update !== false) m.set(k, now);
        return before !== undefined && before !== now;
      });
    },
    async windowAt() {
      return s.window ? s.window() : WIN;
    },
    async read(_d, spot) {
      // The row's key cell (x 0) shows its key, unless told otherwise.
      if (spot.rect.x < 50) return { text: s.key ? s.key() : spot.text, bounds: spot.rect };
      calls.read++;
      calls.reads.push(spot);
      return s.text();
    },
  };
  return { r, calls };
}

function deps(current: () => Element[], extra: Partial<ReadServiceDeps>): ReadServiceDeps & { observed: () => number } {
  let k = 0;
  return { observe: async () => (k++, obs(current())), windows: async () => [WIN], ...extra, observed: () => k };
}

describe('focusOf', () => {
  it('targets the cell of the row, anchors it by the row key cell, and reads an accessible cell by hit-test', () => {
    const o = obs(table('Running'));
    const c = readObservation(o, { kind: 'table' });
    const f = focusOf(cellPred, c, o, checkCell(c, cellPred.cell).evidence, WIN.id)!;
    expect(f.target).toMatchObject({ rect: { x: 100, y: 30, width: 100, height: 30 }, text: 'Running', how: 'accessibility', role: 'cell' });
    expect(f.target.ref).toBe(c.tables[0]!.rows[0]!.cells[1]!.ref);
    // The column's whole width (all its cells), 3 points beside and 2 above and below.
    expect(f.target.readRect).toEqual({ x: 97, y: 28, width: 106, height: 34 });
    expect(f.anchors).toEqual([{ x: 0, y: 30, width: 100, height: 30 }]);
    expect(f.anchorSpots).toEqual([expect.objectContaining({ text: '#1', how: 'accessibility' })]);
    expect(f.windowId).toBe(WIN.id);
    // apply: a copy with the new text, the read itself untouched.
    const c2 = f.apply(c, 'Passed', { x: 100, y: 30, width: 100, height: 30 });
    expect(checkCell(c2, cellPred.cell).holds).toBe(true);
    expect(checkCell(c, cellPred.cell).holds).toBe(false);
  });

  it('reads a cell named by OCR (no accessible name) by OCR, and gives no focus without a target or on the key column itself', () => {
    const els = table('Running');
    const status = els.find((e) => e.name === 'Running')!;
    status.source = 'fused';
    const o = obs(els);
    const c = readObservation(o, { kind: 'table' });
    expect(focusOf(cellPred, c, o, checkCell(c, cellPred.cell).evidence, null)!.target.how).toBe('ocr');
    expect(focusOf(cellPred, c, o, null, null)).toBeNull();
    const onKey = { cell: { row: { column: 'Run', equals: '#1' }, column: 'Run', equals: '#9' } };
    expect(focusOf(onKey, c, o, checkCell(c, onKey.cell).evidence, null)).toBeNull();
  });

  it('follows a layout pair (value in a ring, label under it) by its value, anchored by its label; not a "label: value" text', () => {
    const words = (t: string, x: number, y: number, h: number) => ({ text: t, bounds: { x, y, width: t.length * h * 0.6, height: h }, confidence: 0.9 });
    const value = words('73%', 300, 280, 21);
    const label = words('CPU', 305, 370, 14);
    const colon = [words('Queue:', 600, 100, 14), words('12', 660, 100, 14)];
    const lines: OcrLine[] = [value, label].map((w) => ({ text: w.text, bounds: w.bounds, words: [w] }));
    lines.push({ text: 'Queue: 12', bounds: { x: 600, y: 100, width: 80, height: 14 }, words: colon });
    const o = obs([], lines);
    const c = readObservation(o, { kind: 'pairs' });
    const p = { pair: { label: 'CPU', equals: '80%' } };
    const f = focusOf(p, c, o, checkPair(c, p.pair).evidence, WIN.id)!;
    expect(f.target).toMatchObject({ rect: { x: 300, y: 280, height: 21 }, text: '73%', how: 'ocr' });
    // Widened by half the value's height each side (a longer value still fits).
    expect(f.target.readRect.x).toBeCloseTo(value.bounds.x - 10.5);
    expect(f.anchors).toEqual([expect.objectContaining({ x: 305, y: 370, height: 14 })]);
    expect(checkPair(f.apply(c, '80%', value.bounds), p.pair).holds).toBe(true);
    const q = { pair: { label: 'Queue', equals: '13' } };
    expect(checkPair(c, q.pair).evidence).not.toBeNull();
    expect(focusOf(q, c, o, checkPair(c, q.pair).evidence, WIN.id)).toBeNull();
  });
});

describe('focused waits', () => {
  it('a change of the target\'s pixels reads the cell alone and answers from it: one full read, the observation showing the new text', async () => {
    let shown = 'Running';
    const { r, calls } = fakeRegion({ pixels: (x) => (x.x > 50 ? shown : 'key'), text: () => ({ text: shown, bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    const d = deps(() => table('Running'), { region: r });
    const s = new ReadService(d);
    setTimeout(() => (shown = 'Passed'), 200);
    const w = await s.waitFor(cellPred, { timeoutMs: 4000, ocr: false, quietMs: 60_000 });
    expect(w.evidence).toMatchObject({ kind: 'cell', row: '#1', text: 'Passed', via: 'region' });
    expect(w.polls).toBe(1);
    expect(d.observed()).toBe(1);
    expect(w.regionReads).toBeGreaterThanOrEqual(2); // one right after the full read, one after the change
    expect(calls.reads.every((x) => x.how === 'accessibility' && x.rect.x === 100)).toBe(true);
    expect(s.get(w.read.readId).tables[0]!.rows[0]!.cells[1]!.text).toBe('Passed');
    expect(w.read.observationId).toBe(w.observation.observationId);
    const ref = w.read.tables[0]!.rows[0]!.cells[1]!.ref;
    expect(w.observation.elements.find((e) => e.ref === ref)!.name).toBe('Passed');
  });

  it('an accessibility event reads an accessible target alone, without waiting for pixels', async () => {
    let shown = 'Running';
    let fire: () => void = () => {};
    const { r } = fakeRegion({ pixels: () => 'same', text: () => ({ text: shown, bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    const s = new ReadService(deps(() => table('Running'), { region: r, onAccessibilityChange: async (l) => ((fire = l), () => {}) }));
    setTimeout(() => {
      shown = 'Passed';
      fire();
    }, 200);
    const w = await s.waitFor(cellPred, { timeoutMs: 4000, ocr: false, quietMs: 60_000 });
    expect(w.evidence.via).toBe('region');
    expect(w.polls).toBe(1);
  });

  it('when the row moved (its key cell\'s pixels changed) it reads fully and answers the row where it is now', async () => {
    let els = table('Running');
    let moved = false;
    const { r, calls } = fakeRegion({ pixels: (x) => (moved ? `m${x.x}` : `s${x.x}`), text: () => ({ text: 'Queued', bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    const d = deps(() => els, { region: r });
    const s = new ReadService(d);
    setTimeout(() => {
      // A run added above: #1 is now one row down, and passed.
      els = table('Passed', 60);
      moved = true;
    }, 200);
    const w = await s.waitFor(cellPred, { timeoutMs: 4000, ocr: false, quietMs: 60_000 });
    expect(w.evidence).toMatchObject({ text: 'Passed', via: 'full', bounds: { x: 100, y: 60 } });
    expect(w.polls).toBe(2);
    expect(calls.reads.length).toBeGreaterThanOrEqual(1);
  });

  it('when the tree already holds a moved row (the key cell shows another key) and the pixels do not show it yet, the region read is not trusted', async () => {
    let els = table('Running');
    let key = '#1';
    let shown = 'Running';
    const { r } = fakeRegion({ pixels: () => 'unchanged', key: () => key, text: () => ({ text: shown, bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    let fire: () => void = () => {};
    const s = new ReadService(deps(() => els, { region: r, onAccessibilityChange: async (l) => ((fire = l), () => {}) }));
    setTimeout(() => {
      // A passed run #0 was added above: at #1's old place the tree shows #0, Passed; #1 itself still runs.
      key = '#0';
      shown = 'Passed';
      els = table('Running', 60);
      fire();
    }, 200);
    const e = await s.waitFor(cellPred, { timeoutMs: 1200, ocr: false, quietMs: 60_000 }).catch((x) => x);
    expect(e.code).toBe('TIMEOUT');
    expect(e.details.evidence).toMatchObject({ text: 'Running', bounds: { y: 60 } });
    expect(e.details.polls).toBeGreaterThanOrEqual(2);
  });

  it('an anchor seen changed once (a row caught half-repainted) is not a moved row', async () => {
    let shown = 'Running';
    let glitch = 0;
    const { r } = fakeRegion({ pixels: (x) => (x.x > 50 ? shown : glitch-- > 0 ? 'half-painted' : 'key'), text: () => ({ text: shown, bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    const d = deps(() => table('Running'), { region: r });
    const s = new ReadService(d);
    setTimeout(() => (glitch = 1), 150);
    setTimeout(() => (shown = 'Passed'), 400);
    const w = await s.waitFor(cellPred, { timeoutMs: 4000, ocr: false, quietMs: 60_000 });
    expect(w.evidence.via).toBe('region');
    expect(d.observed()).toBe(1);
  });

  it('a region read that cannot answer (another element there) or another window at the target reads fully', async () => {
    for (const variant of ['element', 'window'] as const) {
      let els = table('Running');
      let changed = false;
      const { r } = fakeRegion({
        pixels: (x) => (changed && x.x > 50 ? 'new' : `old${x.x}`),
        text: () => (variant === 'element' && changed ? null : { text: 'Running', bounds: { x: 100, y: 30, width: 100, height: 30 } }),
        window: () => (variant === 'window' && changed ? { ...WIN, id: '0x2' } : WIN),
      });
      const s = new ReadService(deps(() => els, { region: r }));
      setTimeout(() => {
        els = table('Passed');
        changed = true;
      }, 200);
      const w = await s.waitFor(cellPred, { timeoutMs: 4000, ocr: false, quietMs: 60_000 });
      expect(w.evidence, variant).toMatchObject({ text: 'Passed', via: 'full' });
      expect(w.polls, variant).toBe(2);
    }
  });

  it('with text conditions (extra) a region read that holds is confirmed by a full read', async () => {
    let els = table('Running');
    let shown = 'Running';
    const { r } = fakeRegion({ pixels: (x) => (x.x > 50 ? shown : 'key'), text: () => ({ text: shown, bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    const s = new ReadService(deps(() => els, { region: r }));
    setTimeout(() => {
      shown = 'Passed';
      els = table('Passed');
    }, 200);
    const w = await s.waitFor(cellPred, { timeoutMs: 4000, ocr: false, quietMs: 60_000, extra: (o) => o.elements.some((e) => e.name === 'Passed') });
    expect(w.evidence.via).toBe('full');
    expect(w.polls).toBe(2);
    expect(w.regionReads).toBeGreaterThanOrEqual(2);
  });

  it('reads fully at least every fullEveryMs: a change no region read can see is still found', async () => {
    let els = table('Running');
    const { r } = fakeRegion({ pixels: () => 'same', text: () => ({ text: 'Running', bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    const s = new ReadService(deps(() => els, { region: r }));
    setTimeout(() => (els = table('Passed')), 100);
    const w = await s.waitFor(cellPred, { timeoutMs: 4000, ocr: false, quietMs: 60_000, fullEveryMs: 400 });
    expect(w.evidence.via).toBe('full');
    expect(w.polls).toBe(2);
  });

  it('times out with the evidence of the last region read, and counts region reads', async () => {
    const { r } = fakeRegion({ pixels: () => 'same', text: () => ({ text: 'Running', bounds: { x: 100, y: 30, width: 100, height: 30 } }) });
    const s = new ReadService(deps(() => table('Running'), { region: r }));
    const e = await s.waitFor(cellPred, { timeoutMs: 300, ocr: false, quietMs: 60_000 }).catch((x) => x);
    expect(e.code).toBe('TIMEOUT');
    expect(e.details).toMatchObject({ polls: 1, regionReads: 1, evidence: { text: 'Running' } });
  });
});

/** A raw RGBA image of `w`×`h` at `origin`, filled with `v`. */
const raw = (w: number, h: number, v: number, origin = { x: 0, y: 0 }): RawImage => ({ data: Buffer.alloc(w * h * 4, v), width: w, height: h, channels: 4, scale: 1, origin });

describe('regionReader', () => {
  it('compares each rectangle with its last capture per token (the first call is the baseline)', async () => {
    let v = 10;
    const rr = regionReader({ frame: async (_d, r) => new ScreenFrame(raw(r.width, r.height, r.x === 0 ? v : 99, r), DISPLAY), windowsAndMask: async () => ({ windows: [WIN], mask: NO_MASK }), readCells: async () => [] });
    const t = {};
    const rects = [{ x: 0, y: 0, width: 4, height: 4 }, { x: 10, y: 0, width: 4, height: 4 }];
    expect(await rr.changed(DISPLAY, rects, t)).toEqual([false, false]);
    expect(await rr.changed(DISPLAY, rects, t)).toEqual([false, false]);
    v = 11;
    // Compared without replacing the pixels kept: still changed the next time.
    expect(await rr.changed(DISPLAY, rects, t, { update: false })).toEqual([true, false]);
    expect(await rr.changed(DISPLAY, rects, t)).toEqual([true, false]);
    expect(await rr.changed(DISPLAY, rects, t)).toEqual([false, false]);
    expect(await rr.changed(DISPLAY, rects, {})).toEqual([false, false]);
  });

  it('accepts a hit-tested element only with the target\'s row edges and one side, and no window or a masked one at the point answers null', async () => {
    let node: RawAXNode | null = { handle: 'h', role: 'cell', platformRole: 'table cell', name: 'Passed', bounds: { x: 101, y: 29, width: 99, height: 31 }, states: [], actions: [], children: [] };
    let mask = NO_MASK;
    const rr = regionReader({
      frame: async (_d, r) => new ScreenFrame(raw(r.width, r.height, 0, r), DISPLAY),
      windowsAndMask: async () => ({ windows: [WIN], mask }),
      elementAt: async () => node,
      readCells: async (_d, rects) => rects.map(() => 'ocr text'),
    });
    const spot: Spot = { rect: { x: 100, y: 30, width: 100, height: 30 }, readRect: { x: 97, y: 28, width: 106, height: 34 }, text: 'Running', how: 'accessibility', role: 'cell' };
    expect(await rr.read(DISPLAY, spot, WIN)).toEqual({ text: 'Passed', bounds: node!.bounds });
    node = { ...node!, bounds: { x: 100, y: 30, width: 60, height: 30 } }; // the column shrank with the new text: same left edge
    expect(await rr.read(DISPLAY, spot, WIN)).toMatchObject({ text: 'Passed' });
    node = { ...node!, role: 'row', bounds: { x: 0, y: 30, width: 200, height: 30 } }; // the row (same right edge), not the cell
    expect(await rr.read(DISPLAY, spot, WIN)).toBeNull();
    node = null;
    expect(await rr.read(DISPLAY, spot, WIN)).toBeNull();
    expect(await rr.read(DISPLAY, { ...spot, how: 'ocr' }, WIN)).toEqual({ text: 'ocr text', bounds: spot.rect });
    expect(await rr.read(DISPLAY, { ...spot, how: 'ocr' }, null)).toBeNull();
    expect(await rr.windowAt({ x: 150, y: 45 })).toEqual(WIN);
    expect(await rr.windowAt({ x: 1500, y: 45 })).toBeNull();
    mask = { ...NO_MASK, regions: [{ x: 0, y: 0, width: 300, height: 300 }], windowIds: [] };
    expect(await rr.windowAt({ x: 150, y: 45 })).toBeNull();
    mask = { ...NO_MASK, windowIds: [WIN.id] };
    expect(await rr.windowAt({ x: 150, y: 45 })).toBeNull();
  });
});

describe('cellReader', () => {
  it('captures only the region holding the rectangles (clipped to the display), and reads inked ones', async () => {
    const asked: Rect[] = [];
    const read = cellReader(
      async (_d, region) => {
        asked.push(region);
        const img = raw(region.width, region.height, 255, { x: region.x, y: region.y });
        // Ink in the first rectangle only.
        for (let y = 2; y < 8; y++) for (let x = 2; x < 8; x++) img.data.fill(0, (y * img.width + x) * 4, (y * img.width + x) * 4 + 3);
        return img;
      },
      async () => ({ recognize: async (_img: RawImage, o?: { region?: Rect }) => ({ words: [{ text: `at ${o!.region!.x}`, bounds: o!.region!, confidence: 0.9 }], lines: [] }), close: async () => {} }),
    );
    const out = await read(DISPLAY, [{ x: 990.5, y: 0, width: 20, height: 10 }, { x: 900, y: 20, width: 20, height: 10 }]);
    expect(asked).toEqual([{ x: 900, y: 0, width: 100, height: 30 }]);
    expect(out).toEqual([null, null]);
    const out2 = await read(DISPLAY, [{ x: 100, y: 100, width: 10, height: 10 }, { x: 150, y: 100, width: 10, height: 10 }]);
    expect(asked[1]).toEqual({ x: 100, y: 100, width: 60, height: 10 });
    expect(out2).toEqual(['at 100', null]);
  });
});
