/**
 * The observer starts the accessibility read as soon as the frame is captured, before the window list is in
 * (issue 15: one change with the tree on — the D-Bus calls of a tree update then run beside the window listing,
 * not after it beside OCR), and still masks the tree with the mask the window list gives. Fake platform; the
 * order of calls is checked, nothing is timed.
 */
import { describe, expect, it } from 'vitest';
import { axNode, createFakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { ObservationStore, Observer } from '../../src/perception/observer.js';
import type { PerceptionGate } from '../../src/perception/mask.js';
import type { DisplayInfo, WindowInfo } from '../../src/platform/types.js';

const displays: DisplayInfo[] = [{ id: 0, x: 0, y: 0, width: 64, height: 32, scaleFactor: 1, primary: true }];
const win = (id: string, app: string): WindowInfo => ({ id, app, pid: 1, wmClass: app, instance: app, title: app, bounds: { x: 0, y: 0, width: 64, height: 32 } });

/** A platform whose window list answers only once the accessibility snapshot has begun (or after `giveUpMs`). */
function setup(giveUpMs = 3000) {
  const fp = createFakePlatform({ displays, windows: [win('0x1', 'secret'), win('0x2', 'editor')] });
  fp.tree = [axNode('application', 'secret', null, { children: [axNode('button', 'Hidden', { x: 0, y: 0, width: 10, height: 10 })] }), axNode('application', 'editor', null, { children: [axNode('button', 'Save', { x: 20, y: 0, width: 10, height: 10 })] })];
  const order: string[] = [];
  let snapshotStarted!: () => void;
  const started = new Promise<void>((r) => (snapshotStarted = r));
  const snap0 = fp.accessibility.snapshot.bind(fp.accessibility);
  fp.accessibility.snapshot = async (o) => {
    order.push('snapshot');
    snapshotStarted();
    return snap0(o);
  };
  const list0 = fp.windows.list.bind(fp.windows);
  fp.windows.list = async () => {
    order.push('windows.list');
    await Promise.race([started, new Promise((r) => setTimeout(r, giveUpMs))]);
    order.push('windows.listed');
    return list0();
  };
  return { fp, order };
}

const maskSecret: PerceptionGate = (windows) => ({ regions: [], apps: windows.some((w) => w.app === 'secret') ? ['secret'] : [], ruleIds: ['no-secret'] });

describe('observer: the accessibility read starts before the window list is in', () => {
  it('with OCR (a frame is captured first), the snapshot begins while the window list is read; the tree is still masked', async () => {
    const { fp, order } = setup();
    const ocr = { recognize: async () => ({ words: [], lines: [] }) };
    const o = new Observer(fp, ocr, new ObservationStore(), undefined, maskSecret, { settle: false, axCache: false });
    const obs = await o.observe({});
    expect(order.indexOf('snapshot')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('snapshot')).toBeLessThan(order.indexOf('windows.listed'));
    const names = JSON.stringify(obs.elements.map((e) => e.name));
    expect(names).toContain('Save');
    expect(names).not.toContain('Hidden');
    expect(obs.warnings).toContain('masked by policy: no-secret');
  });

  it('without a frame (accessibility only, no events), the same', async () => {
    const { fp, order } = setup();
    const o = new Observer(fp, null, new ObservationStore(), undefined, maskSecret, { settle: false, axCache: false });
    const obs = await o.observe({ ocr: false });
    expect(order.indexOf('snapshot')).toBeLessThan(order.indexOf('windows.listed'));
    expect(JSON.stringify(obs.elements.map((e) => e.name))).not.toContain('Hidden');
  });

  it('a failing accessibility read is a warning after the mask warning, as before', async () => {
    const { fp } = setup(0);
    fp.axUnavailable = true;
    fp.accessibility.snapshot = async () => {
      throw new Error('bus gone');
    };
    const o = new Observer(fp, { recognize: async () => ({ words: [], lines: [] }) }, new ObservationStore(), undefined, maskSecret, { settle: false, axCache: false });
    const obs = await o.observe({});
    expect(obs.warnings).toEqual(['masked by policy: no-secret', 'accessibility: bus gone']);
  });

  it('a failing mask fails the observation and leaves no unhandled rejection', async () => {
    const { fp } = setup(0);
    const o = new Observer(fp, { recognize: async () => ({ words: [], lines: [] }) }, new ObservationStore(), undefined, () => {
      throw new Error('policy broken');
    }, { settle: false, axCache: false });
    await expect(o.observe({})).rejects.toThrow('policy broken');
  });
});
