/**
 * The executor's ref re-check reads the backend's kept tree with every object's extents re-read
 * (`recheckedTree`; issue 18, replay speed: it was one of the two whole accessibility reads per replayed
 * step), and the observation after an action still sees what the
 * action changed without any accessibility event — a popover it opened, a button it renamed (what GTK 4
 * and Chromium do) — because the backend's kept tree is dropped after every input event
 * (`resetTreeAfterInput`). The daemon's own wiring (`createPipeline` in runtime.ts) over the fake platform,
 * whose accessibility is made a backend that keeps its tree and hears of no change (events live, none sent).
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { createPipeline } from '../../src/runtime.js';
import { resetTreeAfterInput } from '../../src/perception/refs.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import type { AXSnapshot, RawAXNode } from '../../src/platform/types.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-fakeapp, effect: allow, match: { app: ["fakeapp"] } }
`;

/** The app: a "Mode" button (a click opens its popover with "Advanced"), a "Run" button (a click renames it "Running"). */
function tree(s: { open: boolean; running: boolean }): RawAXNode[] {
  const kids = [
    axNode('button', 'Mode', { x: 20, y: 20, width: 80, height: 30 }, { handle: 'mode', actions: ['press'] }),
    axNode('button', s.running ? 'Running' : 'Run', { x: 120, y: 20, width: 80, height: 30 }, { handle: 'run', actions: ['press'] }),
    ...(s.open ? [axNode('menu', '', { x: 20, y: 60, width: 120, height: 60 }, { handle: 'menu', children: [axNode('menuitem', 'Advanced', { x: 24, y: 64, width: 110, height: 24 }, { handle: 'adv', actions: ['click'] })] })] : []),
  ];
  return [axNode('application', 'fakeapp', null, { handle: 'app', children: [axNode('frame', 'Main', { x: 0, y: 0, width: 400, height: 300 }, { handle: 'win', children: kids })] })];
}

let dirs: string[] = [];
let closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers) await c();
  closers = [];
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});

async function setup() {
  const state = { open: false, running: false };
  const platform: FakePlatform = createFakePlatform({ tree: tree(state) });
  // A backend that keeps its tree and is told of no change (GTK 4 after a click): only a reset makes it read
  // again whole; a screen change makes its next snapshot re-read every object's extents (names stay as kept).
  let kept: AXSnapshot | null = null;
  let reads = 0;
  let rechecks = 0;
  let recheck = false;
  const read = platform.accessibility.snapshot.bind(platform.accessibility);
  const ax = platform.accessibility as typeof platform.accessibility & { resetTree(): void; screenChanged(): void; onChange(l: () => void): Promise<() => void> };
  ax.snapshot = async (o) => {
    if (!kept) {
      reads += 1;
      kept = await read(o);
      recheck = false;
    } else if (recheck) {
      rechecks += 1;
      recheck = false;
      const now = new Map<string, RawAXNode>();
      const index = (ns: RawAXNode[]): void => ns.forEach((n) => (n.handle && now.set(n.handle, n), index(n.children)));
      index((await read(o)).roots);
      const place = (ns: RawAXNode[]): void => ns.forEach((n) => ((n.bounds = (n.handle && now.get(n.handle)?.bounds) || n.bounds), place(n.children)));
      place(kept.roots);
    }
    return structuredClone(kept);
  };
  ax.resetTree = () => void (kept = null);
  ax.screenChanged = () => void (recheck = kept !== null);
  ax.onChange = async () => () => undefined;
  // The app reacts to a click where the pointer is (the last move before the release).
  const up = platform.mouse.up.bind(platform.mouse);
  platform.mouse.up = async (b) => {
    await up(b);
    const at = [...platform.events].reverse().find((e) => e.kind === 'move') as { x: number; y: number } | undefined;
    if (at && at.y < 50 && at.x < 100) state.open = true;
    if (at && at.y < 50 && at.x >= 120) state.running = true;
    platform.tree = tree(state);
  };
  const dir = await mkdtemp(join(tmpdir(), 'deskd-fresh-tree-'));
  dirs.push(dir);
  const policy = parsePolicy(POLICY, 'p.yaml');
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  closers.push(() => audit.close());
  const halt = new HaltSwitch();
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals: new ApprovalManager({ timeoutMs: 10000 }), audit });
  const { observer, executor } = await createPipeline({ platform, ocr: null, policy: () => policy, gate, halt });
  closers.push(() => observer.close());
  return { platform, state, observer, executor, reads: () => reads, rechecks: () => rechecks };
}

describe('the ref re-check reads the kept tree, and the observation after an action is fresh', () => {
  it('a click by ref that opens a popover: the re-check re-reads extents only (no whole read), and the next observation shows the popover', async () => {
    const { observer, executor, reads, rechecks } = await setup();
    expect(observer.axCache?.eventsLive).toBe(true);
    const o = await observer.observe({ ocr: false });
    const mode = o.elements.find((e) => e.role === 'button' && e.name === 'Mode')!;
    const before = reads();
    const r = await executor.run([{ type: 'click', button: 'left', target: { ref: mode.ref, observationId: o.observationId } }], 'agent');
    expect(r.status).toBe('done');
    // The re-check took the kept tree with every object's extents read again: no whole read of its own.
    expect(reads()).toBe(before);
    expect(rechecks()).toBe(1);
    const after = await observer.observe({ ocr: false });
    expect(after.elements.some((e) => e.role === 'menuitem' && e.name === 'Advanced')).toBe(true);
    expect(reads()).toBe(before + 1);
  });

  it('a click by ref that renames a button: the next observation shows the new name, and the old ref is refused', async () => {
    const { observer, executor } = await setup();
    const o = await observer.observe({ ocr: false });
    const run = o.elements.find((e) => e.role === 'button' && e.name === 'Run')!;
    expect((await executor.run([{ type: 'click', button: 'left', target: { ref: run.ref, observationId: o.observationId } }], 'agent')).status).toBe('done');
    const after = await observer.observe({ ocr: false });
    expect(after.elements.some((e) => e.role === 'button' && e.name === 'Running')).toBe(true);
    expect(after.elements.some((e) => e.role === 'button' && e.name === 'Run')).toBe(false);
    // The ref of the first observation names "Run": the re-check reads the tree (an action since) and refuses it.
    await expect(executor.run([{ type: 'click', button: 'left', target: { ref: run.ref, observationId: o.observationId } }], 'agent')).rejects.toMatchObject({ code: 'STALE_REF' });
  });

  it('a window moved since the observation (no event, no action): the re-check sees the new extents and refuses the ref; nothing is dispatched', async () => {
    const { platform, state, observer, executor } = await setup();
    const o = await observer.observe({ ocr: false });
    const mode = o.elements.find((e) => e.role === 'button' && e.name === 'Mode')!;
    const shift = (ns: RawAXNode[]): void => ns.forEach((n) => ((n.bounds = n.bounds && { ...n.bounds, x: n.bounds.x + 200 }), shift(n.children)));
    const moved = tree(state);
    shift(moved);
    platform.tree = moved;
    const dispatched = platform.events.length;
    await expect(executor.run([{ type: 'click', button: 'left', target: { ref: mode.ref, observationId: o.observationId } }], 'agent')).rejects.toMatchObject({ code: 'STALE_REF', message: expect.stringContaining('moved') });
    expect(platform.events.slice(dispatched).filter((e) => e.kind === 'down' || e.kind === 'up')).toEqual([]);
  });

  it('resetTreeAfterInput drops the kept tree after each input event ends, and leaves other backends alone', async () => {
    const platform = createFakePlatform();
    const calls: string[] = [];
    const ax = Object.assign(platform.accessibility, { resetTree: () => void calls.push('reset') });
    const move = platform.mouse.move.bind(platform.mouse);
    platform.mouse.move = async (p) => {
      calls.push('move');
      await move(p);
    };
    const p = resetTreeAfterInput(platform, ax);
    await p.mouse.move({ x: 1, y: 1 });
    await p.mouse.down('left');
    await p.keyboard.type('a');
    expect(calls).toEqual(['move', 'reset', 'reset', 'reset']);
    expect(p.capture).toBe(platform.capture);
    const plain = createFakePlatform();
    expect(resetTreeAfterInput(plain)).toBe(plain);
  });
});
