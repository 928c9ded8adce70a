/**
 * AxCache over a backend that keeps its own tree from events (Linux AT-SPI): an event or an action drops
 * the cache's snapshot but not the backend's tree (so the backend re-reads only what the events name); only
 * `invalidate({ fresh: true })` makes the backend read everything; a screen change is passed on to it.
 */
import { describe, expect, it } from 'vitest';
import { AxCache, keepsTree, type AccessibilityChange } from '../../src/perception/axCache.js';
import type { AXSnapshot, RawAccessibility } from '../../src/platform/types.js';

function treeKeeper() {
  const log: string[] = [];
  let listener: ((e: AccessibilityChange) => void) | null = null;
  const ax: RawAccessibility & { onChange(l: (e: AccessibilityChange) => void): Promise<() => void>; resetTree(): void } = {
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
});
