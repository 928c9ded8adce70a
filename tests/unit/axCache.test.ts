/**
 * AxCache over a backend that keeps its own tree from events (Linux AT-SPI): an event or an action drops
 * the cache's snapshot but not the backend's tree (so the backend re-reads only what the events name); only
 * `invalidate({ fresh: true })` makes the backend read everything; a screen change is passed on to it.
 */
import { describe, expect, it } from 'vitest';
import { AxCache, keepsTree, type AccessibilityChange, type TreeKeepingAccessibility } from '../../src/perception/axCache.js';
import { Observer, ObservationStore } from '../../src/perception/observer.js';
import { createFakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { AXSnapshot, RawAccessibility, RawImage } from '../../src/platform/types.js';

function treeKeeper() {
  const log: string[] = [];
  let listener: ((e: AccessibilityChange) => void) | null = null;
  const ax: RawAccessibility & TreeKeepingAccessibility & { onChange(l: (e: AccessibilityChange) => void): Promise<() => void> } = {
    async snapshot(): Promise<AXSnapshot> {
      log.push('snapshot');
      return { roots: [], truncated: false, nodeCount: 0 };
    },
    async focused() {
      return null;
    },
    async doAction() {
      return true;
    },
    async onChange(l) {
      listener = l;
      return () => (listener = null);
    },
    resetTree() {
      log.push('reset');
    },
    async close() {},
    screenChanged() {
      log.push('screen');
    },
  };
  return { ax, log, emit: () => listener?.({ kind: 'property-change', app: ':1.2', path: '/x' }) };
}
const budget = { maxDepth: 5, maxNodes: 10, timeMs: 100 };

describe('AxCache with a tree-keeping backend', () => {
  it('events and actions ask the backend again without resetting its tree; fresh resets it', async () => {
    const f = treeKeeper();
    expect(keepsTree(f.ax)).toBe(true);
    expect(keepsTree({ snapshot() {} })).toBe(false);
    const c = new AxCache(f.ax);
    expect(await c.start()).toBe(true);
    await c.snapshot({ scope: 'all', budget });
    await c.snapshot({ scope: 'all', budget });
    expect(f.log).toEqual(['snapshot']);
    f.emit();
    await c.snapshot({ scope: 'all', budget });
    c.invalidate();
    await c.snapshot({ scope: 'all', budget });
    expect(f.log).toEqual(['snapshot', 'snapshot', 'snapshot']);
    c.invalidate({ fresh: true });
    await c.snapshot({ scope: 'all', budget });
    expect(f.log).toEqual(['snapshot', 'snapshot', 'snapshot', 'reset', 'snapshot']);
  });

  it('a screen change is passed on and drops the cached snapshot (a scroll sends no event)', async () => {
    const f = treeKeeper();
    const c = new AxCache(f.ax);
    await c.start();
    await c.snapshot({ scope: 'all', budget });
    c.screenChanged();
    await c.snapshot({ scope: 'all', budget });
    expect(f.log).toEqual(['snapshot', 'screen', 'snapshot']);
  });

  it('needs screen changes only with events live over a tree-keeping backend that takes them', async () => {
    const f = treeKeeper();
    const c = new AxCache(f.ax);
    expect(c.needsScreenChanges).toBe(false); // not started: no events, the TTL and screen changes drop it all
    await c.start();
    expect(c.needsScreenChanges).toBe(true);
    const { screenChanged: _drop, ...noScreen } = f.ax;
    const c2 = new AxCache(noScreen as typeof f.ax);
    await c2.start();
    expect(c2.needsScreenChanges).toBe(false);
    c.close();
    expect(c.needsScreenChanges).toBe(false);
  });
});

describe('Observer over a tree-keeping backend with events live', () => {
  it('compares frames even without OCR or a screenshot, so a scroll (no AT-SPI event) reaches the backend; fresh resets its tree', async () => {
    const fp = createFakePlatform();
    const f = treeKeeper();
    (fp as { accessibility: unknown }).accessibility = f.ax;
    let v = 0;
    let frames = 0;
    fp.frame = (d) => {
      frames++;
      const data = Buffer.alloc(d.width * d.height * 4, v);
      return { width: d.width, height: d.height, channels: 4, data, scale: 1, origin: { x: 0, y: 0 } } as RawImage;
    };
    const observer = new Observer(fp, null, new ObservationStore(), undefined, null, { settle: false });
    expect(await observer.start()).toBe(true);
    await observer.observe({ ocr: false });
    expect(frames).toBeGreaterThan(0);
    f.log.length = 0;
    v = 7; // the page scrolled: pixels changed, no event
    await observer.observe({ ocr: false });
    expect(f.log).toEqual(['screen', 'snapshot']);
    f.log.length = 0;
    await observer.observe({ ocr: false }); // same pixels, within the TTL: nothing asked
    expect(f.log).toEqual([]);
    await observer.observe({ ocr: false, fresh: true });
    expect(f.log).toEqual(['reset', 'snapshot']);
  });
});

