/** Settle detection, the accessibility cache, the RSS-bounded OCR engine and their wiring in the Observer (fake platform). */
import { describe, it, expect } from 'vitest';
import { allowAllGate } from '../helpers/allowAllGate.js';
import { performance } from 'node:perf_hooks';
import type { AXSnapshot, RawAccessibility, RawImage, Rect } from '../../src/platform/types.js';
import { waitForSettle } from '../../src/perception/settle.js';
import { AxCache, type AccessibilityChange } from '../../src/perception/axCache.js';
import { RecyclingRecognizer, type ClosableRecognizer } from '../../src/perception/incrementalOcr.js';
import { ObservationStore, Observer } from '../../src/perception/observer.js';
import { createFakePlatform, axNode } from '../../src/platform/fake/fakePlatform.js';
import { Executor } from '../../src/actuation/executor.js';

const img = (v: number, w = 8, h = 8): RawImage => ({ data: Buffer.alloc(w * h * 4, v), width: w, height: h, channels: 4, scale: 1, origin: { x: 0, y: 0 } });

describe('waitForSettle', () => {
  it('returns once two consecutive frames are equal, with the last frame', async () => {
    const seq = [1, 2, 3, 3, 3];
    let i = 0;
    const r = await waitForSettle(async () => img(seq[Math.min(i++, seq.length - 1)]!), performance.now(), { minMs: 0, intervalMs: 1 });
    expect(r.settled).toBe(true);
    expect(r.frames).toBe(4);
    expect(r.image.data[0]).toBe(3);
  });

  it('gives up at maxMs on a screen that never stops changing', async () => {
    let i = 0;
    const r = await waitForSettle(async () => img(i++ & 255), performance.now(), { minMs: 0, maxMs: 50, intervalMs: 5 });
    expect(r.settled).toBe(false);
    expect(r.frames).toBeGreaterThan(2);
  });
});

function fakeAx() {
  let calls = 0;
  let listener: ((e: AccessibilityChange) => void) | null = null;
  const ax: RawAccessibility & { onChange(l: (e: AccessibilityChange) => void): Promise<() => void> } = {
    async snapshot(): Promise<AXSnapshot> {
      calls++;
      return { roots: [axNode('button', `b${calls}`, { x: 0, y: 0, width: 10, height: 10 })], truncated: false, nodeCount: 1 };
    },
    async focused() {
      return null;
    },
    async doAction() {
      return true;
    },
    async close() {},
    async onChange(l) {
      listener = l;
      return () => (listener = null);
    },
  };
  return { ax, calls: () => calls, emit: () => listener?.({ kind: 'children-changed', app: ':1.2', path: '/x' }) };
}
const budget = { maxDepth: 5, maxNodes: 10, timeMs: 100 };

describe('AxCache', () => {
  it('reuses a snapshot until an event, an invalidation or the TTL', async () => {
    let now = 0;
    const f = fakeAx();
    const c = new AxCache(f.ax, { now: () => now, ttlMs: 500, eventTtlMs: 2000 });
    expect(await c.start()).toBe(true);
    await c.snapshot({ scope: 'all', budget });
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(1);
    f.emit();
    const s = await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(2);
    expect(s.roots[0]!.name).toBe('b2');
    // With events, a screen change alone does not invalidate; an action does.
    c.screenChanged();
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(2);
    c.invalidate();
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(3);
    now += 2001;
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(4);
  });

  it('without events: invalidated by a screen change and a short TTL', async () => {
    let now = 0;
    const f = fakeAx();
    const { onChange: _drop, ...plain } = f.ax;
    const c = new AxCache(plain as RawAccessibility, { now: () => now });
    expect(await c.start()).toBe(false);
    await c.snapshot({ scope: 'all', budget });
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(1);
    c.screenChanged();
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(2);
    now += 501;
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(3);
  });

  it('does not keep a snapshot that was in flight when an invalidation came', async () => {
    const f = fakeAx();
    const c = new AxCache(f.ax);
    const p = c.snapshot({ scope: 'all', budget });
    c.invalidate();
    await p;
    await c.snapshot({ scope: 'all', budget });
    expect(f.calls()).toBe(2);
  });
});

describe('RecyclingRecognizer', () => {
  it('replaces the engine when RSS is over the limit, closing the old one after its calls', async () => {
    const made: { closed: boolean; calls: number }[] = [];
    const factory = async (): Promise<ClosableRecognizer> => {
      const st = { closed: false, calls: 0 };
      made.push(st);
      return {
        async recognize() {
          st.calls++;
          return { words: [], lines: [] };
        },
        async close() {
          st.closed = true;
        },
      };
    };
    let rss = 100;
    const r = await RecyclingRecognizer.create(factory, { rssLimitBytes: 200, rss: () => rss, minIntervalMs: 0 });
    await r.recognize(img(0));
    expect(made).toHaveLength(1);
    rss = 300;
    await r.recognize(img(0));
    await new Promise((res) => setTimeout(res, 10));
    expect(made).toHaveLength(2);
    expect(made[0]!.closed).toBe(true);
    expect(r.recycles).toBe(1);
    rss = 100;
    await r.recognize(img(0));
    expect(made[1]!.calls).toBe(1);
    expect(made).toHaveLength(2);
    await r.close();
    expect(made[1]!.closed).toBe(true);
  });
});

describe('RecyclingRecognizer interval', () => {
  it('replaces at most once per minIntervalMs while RSS stays high', async () => {
    let n = 0;
    const factory = async (): Promise<ClosableRecognizer> => (n++, { recognize: async () => ({ words: [], lines: [] }), close: async () => {} });
    const r = await RecyclingRecognizer.create(factory, { rssLimitBytes: 1, rss: () => 10, minIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) await r.recognize(img(0));
    await new Promise((res) => setTimeout(res, 10));
    expect(n).toBe(2);
    expect(r.recycles).toBe(1);
  });
});

describe('Observer wiring', () => {
  it('waits for the screen to settle after an action and reports the settle time; not without one', async () => {
    const fp = createFakePlatform({ tree: [axNode('button', 'OK', { x: 10, y: 10, width: 50, height: 20 })] });
    let frames = 0;
    let changing = 0;
    fp.frame = (d) => {
      frames++;
      const v = changing > 0 ? changing-- : 0;
      return { ...img(v, d.width, d.height) };
    };
    const calls: Rect[] = [];
    const ocr = { recognize: async (_i: RawImage, o?: { region?: Rect }) => (calls.push(o?.region ?? { x: 0, y: 0, width: 0, height: 0 }), { words: [], lines: [] }) };
    const observer = new Observer(fp, ocr, new ObservationStore(), undefined, null, { settle: { minMs: 0, maxMs: 300, intervalMs: 1 } });
    const first = await observer.observe();
    expect(first.timings.settleMs).toBe(0);
    expect(first.ocrStats?.mode).toBe('full');
    const second = await observer.observe();
    expect(second.ocrStats?.mode).toBe('unchanged');
    expect(second.accessibilityCached).toBe(true);

    const executor = new Executor({ platform: observer.tapPlatform(fp), store: observer.store, policy: await allowAllGate() });
    await executor.run([{ type: 'move', x: 5, y: 5 }]);
    expect(fp.events).toContainEqual({ kind: 'move', x: 5, y: 5 });
    changing = 3;
    frames = 0;
    const third = await observer.observe();
    // Frames 3, 2, 1, 0, 0: settled on the first two equal ones.
    expect(frames).toBeGreaterThanOrEqual(5);
    expect(third.timings.settleMs).toBeGreaterThan(0);
    expect(third.accessibilityCached).toBe(false);
    // The screen came back to the frame read before: nothing to read again.
    expect(third.ocrStats?.mode).toBe('unchanged');
  });

  it('fresh: true reads everything again', async () => {
    const fp = createFakePlatform();
    let n = 0;
    const ocr = { recognize: async () => (n++, { words: [], lines: [] }) };
    const observer = new Observer(fp, ocr, new ObservationStore());
    await observer.observe();
    await observer.observe();
    expect(n).toBe(1);
    const o = await observer.observe({ fresh: true });
    expect(n).toBe(2);
    expect(o.ocrStats?.mode).toBe('full');
    expect(o.accessibilityCached).toBe(false);
  });
});
