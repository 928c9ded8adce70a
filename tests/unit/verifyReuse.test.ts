/**
 * The executor's `STALE_REF` re-check reuses the tree the observer just read (issue 18, replay speed: it
 * was one of the two full accessibility reads per replayed step) — but only when nothing could have
 * changed it: no action dispatched, no accessibility event, the same pixels on every display observed.
 * Otherwise it reads the tree again, and a moved element is still refused. Fake platform, real observer,
 * cache and verifier.
 */
import { describe, it, expect } from 'vitest';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { Observer, ObservationStore } from '../../src/perception/observer.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import type { AXSnapshot } from '../../src/platform/types.js';

function setup(): { platform: FakePlatform; observer: Observer; reads: () => number; verify: (ref: string, obsId: string) => Promise<void> } {
  const tree = () => [axNode('application', 'fakeapp', null, { handle: 'app', children: [axNode('frame', 'Main', { x: 0, y: 0, width: 400, height: 300 }, { handle: 'win', children: [axNode('button', 'Save', { x: 20, y: 20, width: 80, height: 30 }, { handle: 'save', actions: ['press'] })] })] })];
  const platform = createFakePlatform({ tree: tree() });
  let n = 0;
  const snapshot = platform.accessibility.snapshot.bind(platform.accessibility);
  platform.accessibility.snapshot = async (o) => {
    n += 1;
    return snapshot(o);
  };
  const store = new ObservationStore();
  const observer = new Observer(platform, null, store, undefined, null, { settle: false });
  const verifier = createElementVerifier(platform, null, undefined, () => observer.currentTree());
  return { platform, observer, reads: () => n, verify: (ref, obsId) => verifier(store.element(obsId, ref)) };
}

describe('the ref re-check reuses the observer\'s tree when nothing changed', () => {
  it('right after an observation: no second read of the tree', async () => {
    const { observer, reads, verify } = setup();
    const obs = await observer.observe({ ocr: false });
    const save = obs.elements.find((e) => e.name === 'Save')!;
    const before = reads();
    await verify(save.ref, obs.observationId);
    expect(reads()).toBe(before);
  });

  it('after an action, after the pixels changed, or before any observation: the tree is read again, and a moved element is refused', async () => {
    const { platform, observer, reads, verify } = setup();
    const obs = await observer.observe({ ocr: false });
    const save = obs.elements.find((e) => e.name === 'Save')!;
    // An action through the tapped platform drops the cache.
    await observer.tapPlatform(platform).mouse.move({ x: 1, y: 1 });
    let before = reads();
    await verify(save.ref, obs.observationId);
    expect(reads()).toBe(before + 1);
    // The window moved (no event, no action): the pixels differ from the observation's, so the tree is read again.
    platform.tree = [axNode('application', 'fakeapp', null, { handle: 'app', children: [axNode('frame', 'Main', { x: 200, y: 0, width: 400, height: 300 }, { handle: 'win', children: [axNode('button', 'Save', { x: 220, y: 20, width: 80, height: 30 }, { handle: 'save', actions: ['press'] })] })] })];
    platform.fill = [10, 20, 30, 255];
    before = reads();
    await expect(verify(save.ref, obs.observationId)).rejects.toMatchObject({ code: 'STALE_REF', message: expect.stringContaining('moved') });
    expect(reads()).toBe(before + 1);
    // Without any observation kept there is nothing to compare with: a plain read.
    const fresh = setup();
    const tree: AXSnapshot = await fresh.observer.currentTree();
    expect(tree.roots).toHaveLength(1);
    expect(fresh.reads()).toBe(1);
  });

  it('a tree cut short by its budget that lacks the element is no proof it vanished: the backend is read', async () => {
    const platform = createFakePlatform({ tree: [axNode('application', 'fakeapp', null, { handle: 'app', children: [axNode('button', 'Deep', { x: 0, y: 0, width: 10, height: 10 }, { handle: 'deep' })] })] });
    const verifier = createElementVerifier(platform, null, undefined, async () => ({ roots: [], truncated: true, nodeCount: 0 }));
    await expect(verifier({ ref: 'e1', role: 'button', name: 'Deep', bounds: { x: 0, y: 0, width: 10, height: 10 }, states: [], actions: [], source: 'accessibility', handle: 'deep' })).resolves.toBeUndefined();
    const strict = createElementVerifier(platform, null, undefined, async () => ({ roots: [], truncated: false, nodeCount: 0 }));
    await expect(strict({ ref: 'e1', role: 'button', name: 'Deep', bounds: { x: 0, y: 0, width: 10, height: 10 }, states: [], actions: [], source: 'accessibility', handle: 'deep' })).rejects.toMatchObject({ code: 'STALE_REF' });
  });
});
