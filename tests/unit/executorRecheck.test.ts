/**
 * The executor's checks between the decision and the dispatch (src/actuation/executor.ts), through its
 * public API on the fake platform with a real PolicyGate, approvals, halt switch and audit log:
 *
 * - every effect's receiver is re-read right before dispatch: another window there → `TARGET_CHANGED`;
 *   the same window changed (title) → allowed only if the policy in force still allows it;
 * - an approved action's receivers must be the approved ones (element included), and the policy must not
 *   deny them now; a key effect predicted from a click of the same batch is compared by window;
 * - the keyboard focus is re-read between typing chunks, and the kill switch is checked there and before
 *   every action;
 * - a failure is audited as the result of its decision and names how far the batch got;
 * - results name what was hit unless the window is masked, and a masked window is never named in errors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Executor, type ExecutorDeps } from '../../src/actuation/executor.js';
import { axNode, createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { WindowInfo } from '../../src/platform/types.js';
import { ObservationStore } from '../../src/perception/observer.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { AuditLog } from '../../src/policy/audit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { parsePolicy } from '../../src/policy/parse.js';
import type { Policy } from '../../src/policy/schema.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { rejection } from '../helpers/rejection.js';

const CALC: WindowInfo = { id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } };
const EDIT: WindowInfo = { id: '0xb', app: 'gedit', pid: 11, wmClass: 'Gedit', title: 'notes', bounds: { x: 600, y: 0, width: 600, height: 800 } };
const TERM: WindowInfo = { id: '0xc', app: 'xterm', pid: 12, wmClass: 'XTerm', title: 'xterm', bounds: { x: 0, y: 0, width: 600, height: 800 } };

const LIMITS = 'limits: { actionsPerSecond: 1000, burst: 1000, maxTypeChars: 10000 }\n';
const ALLOW_CALC_EDIT_DENY_TERM = `version: 1\n${LIMITS}rules:\n  - { id: allow-calc, effect: allow, match: { app: gnome-calculator } }\n  - { id: allow-edit, effect: allow, match: { app: gedit } }\n  - { id: deny-term, effect: deny, match: { app: xterm } }\n  - { id: deny-secret-title, effect: deny, match: { window: "*secret*" } }\n  - { id: ask-review-title, effect: ask, match: { window: "*review*" } }\n  - { id: allow-no-target, effect: allow, match: { actions: [wait, screenshot] } }\n`;

let dir: string;
let platform: FakePlatform;
let halt: HaltSwitch;
let policy: Policy;
let audit: AuditLog;
let approvals: ApprovalManager;
let gate: PolicyGate;
/** Runs right after each decision, before anything of the batch is dispatched. */
let afterDecision: (() => void) | null;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-recheck-'));
  platform = createFakePlatform({
    tree: [
      axNode('application', 'gnome-calculator', null, { children: [axNode('window', 'Calculator', CALC.bounds, { children: [axNode('push button', '7', { x: 50, y: 50, width: 40, height: 40 }), axNode('push button', '8', { x: 100, y: 50, width: 40, height: 40 })] })] }),
    ],
    windows: [{ ...CALC }, { ...EDIT }],
  });
  platform.appOwners.set(platform.tree[0]!.handle, { app: 'gnome-calculator', pid: 10 });
  platform.focusedWindowId = CALC.id;
  halt = new HaltSwitch();
  policy = parsePolicy(ALLOW_CALC_EDIT_DENY_TERM, 'recheck.yaml');
  audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  approvals = new ApprovalManager({ timeoutMs: 10_000 });
  gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket({ actionsPerSecond: 1000, burst: 1000 }), approvals, audit });
  gate.wireHalt();
  afterDecision = null;
});
afterEach(async () => {
  approvals.close();
  await audit.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

/** The real gate, with {@link afterDecision} run after each `checkEffects`. */
function hookedGate(): PolicyGate {
  return new Proxy(gate, {
    get(target, key) {
      const v = Reflect.get(target, key, target) as unknown;
      if (key === 'checkEffects') {
        return async (...args: Parameters<PolicyGate['checkEffects']>) => {
          const r = await target.checkEffects(...args);
          afterDecision?.();
          return r;
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function executor(extra: Partial<ExecutorDeps> = {}): Executor {
  return new Executor({ platform, store: new ObservationStore(), policy: hookedGate(), halt, verifyElement: createElementVerifier(platform, null), ...extra });
}
const inputEvents = () => platform.events.filter((e) => e.kind !== 'activate');
const results = async () => (await audit.read()).filter((r) => r.kind === 'result');

describe('allowed actions: receivers re-read before dispatch', () => {
  it('another window now under the click point → TARGET_CHANGED, naming both windows; nothing dispatched; the refusal audited', async () => {
    afterDecision = () => platform.windowList.unshift({ ...TERM });
    const e = await rejection(executor().run([{ type: 'click', x: 100, y: 100, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('actions[0] (click) failed after 0 of 1 completed');
    expect(e.message).toContain('actions[0] (click): the pointer effect\'s target window changed from gnome-calculator "Calculator" (0xa) to xterm "xterm" (0xc)');
    expect(e.message).toContain('nothing more was dispatched');
    expect(inputEvents()).toEqual([]);
    const [r] = await results();
    expect(r).toMatchObject({ ok: false, index: 0, error: { code: 'TARGET_CHANGED' } });
  });

  it('no window at all there any more → TARGET_CHANGED ("no window")', async () => {
    afterDecision = () => {
      platform.windowList = [{ ...EDIT }];
    };
    const e = await rejection(executor().run([{ type: 'click', x: 100, y: 100, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('to no window');
    expect(inputEvents()).toEqual([]);
  });

  it('describeWindow names the windows in the message (a masked app\'s title never appears)', async () => {
    afterDecision = () => platform.windowList.unshift({ ...TERM, title: 'secret vault' });
    const e = await rejection(executor({ describeWindow: (w) => (w ? (w.app === 'xterm' ? 'a masked window' : `${w.app}`) : 'none') }).run([{ type: 'click', x: 100, y: 100, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('from gnome-calculator to a masked window');
    expect(e.message).not.toContain('secret vault');
  });

  it('the same window, retitled to one the policy denies → TARGET_CHANGED ("would now deny"); nothing dispatched', async () => {
    afterDecision = () => (platform.windowList[0]!.title = 'top secret');
    const e = await rejection(executor().run([{ type: 'click', x: 100, y: 100, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('the policy would now deny it (deny-secret-title)');
    expect(inputEvents()).toEqual([]);
  });

  it('retitled to one the policy would ask for → TARGET_CHANGED ("would now ask for"): no approval is opened at dispatch', async () => {
    afterDecision = () => (platform.windowList[0]!.title = 'code review');
    const e = await rejection(executor().run([{ type: 'click', x: 100, y: 100, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('would now ask for it (ask-review-title)');
    expect(approvals.list()).toEqual([]);
    expect(inputEvents()).toEqual([]);
  });

  it('retitled to one the policy still allows → dispatched', async () => {
    afterDecision = () => (platform.windowList[0]!.title = 'Calculator — scientific');
    const r = await executor().run([{ type: 'click', x: 100, y: 100, button: 'left' }]);
    expect(r.status).toBe('done');
    expect(inputEvents().filter((x) => x.kind === 'down')).toHaveLength(1);
  });

  it('the second action of a batch is re-checked too: the first ran, the second is refused and says so', async () => {
    let n = 0;
    afterDecision = () => {
      if (++n === 2) {
        // Both decided; move the xterm over the second point once the first click is dispatched.
        const up = platform.mouse.up.bind(platform.mouse);
        platform.mouse.up = async (b) => {
          await up(b);
          if (!platform.windowList.some((w) => w.id === TERM.id)) platform.windowList.unshift({ ...TERM, bounds: { x: 200, y: 0, width: 100, height: 100 } });
        };
      }
    };
    const e = await rejection(
      executor().run([
        { type: 'click', x: 100, y: 50, button: 'left' },
        { type: 'click', x: 250, y: 50, button: 'left' },
      ]),
    );
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('actions[1] (click) failed after 1 of 2 completed');
    expect(inputEvents().filter((x) => x.kind === 'down')).toHaveLength(1);
    expect((await results()).map((r) => [r.ok, r.index])).toEqual([[true, 0], [false, 1]]);
  });
});

describe('approved actions: the receivers must be the approved ones', () => {
  const ASK_CALC = `version: 1\n${LIMITS}rules:\n  - { id: ask-calc, effect: ask, match: { app: gnome-calculator } }\n  - { id: allow-edit, effect: allow, match: { app: gedit } }\n`;

  it('another element under the approved point (same window) → TARGET_CHANGED naming the approval', async () => {
    policy = parsePolicy(ASK_CALC, 'ask.yaml');
    const s = await executor().submit([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    if (s.status !== 'pending_approval') throw new Error(`expected an ask, got ${s.status}`);
    // The "7" button is replaced by "9" at the same place.
    platform.tree[0]!.children[0]!.children[0]!.name = '9';
    approvals.decide(s.approvals[0]!.id, { decision: 'approve' }, 'operator');
    const e = await rejection(s.outcome);
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain(`not the one approval ${s.approvals[0]!.id} was granted for`);
    expect(inputEvents()).toEqual([]);
  });

  it('unchanged → dispatched, with the hit it was approved for', async () => {
    policy = parsePolicy(ASK_CALC, 'ask.yaml');
    const s = await executor().submit([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    if (s.status !== 'pending_approval') throw new Error(`expected an ask, got ${s.status}`);
    expect(s.approvals).toEqual([{ id: expect.stringMatching(/^apr_/), index: 0, ruleId: 'ask-calc', reason: expect.any(String) }]);
    approvals.decide(s.approvals[0]!.id, { decision: 'approve' }, 'operator');
    const r = await s.outcome;
    expect(r.results[0]).toMatchObject({ type: 'click', point: { x: 60, y: 60 }, hit: { app: 'gnome-calculator', element: { role: 'push button', name: '7' } } });
  });

  it('the policy in force denies the receiver by dispatch time → TARGET_CHANGED ("now denies")', async () => {
    policy = parsePolicy(ASK_CALC, 'ask.yaml');
    const s = await executor().submit([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    if (s.status !== 'pending_approval') throw new Error(`expected an ask, got ${s.status}`);
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: deny-calc, effect: deny, match: { app: gnome-calculator } }\n`, 'deny.yaml');
    approvals.decide(s.approvals[0]!.id, { decision: 'approve' }, 'operator');
    const e = await rejection(s.outcome);
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('the policy now denies the target');
    expect(inputEvents()).toEqual([]);
  });

  it('a key effect predicted from a click of the batch is compared by window: the focused element may differ', async () => {
    policy = parsePolicy(ASK_CALC, 'ask.yaml');
    platform.focusedWindowId = EDIT.id;
    // The display gives deskd's clicks the focus (no window manager), as the X11 backend does.
    platform.windows.clickToFocus = async (id: string) => {
      platform.focusedWindowId = id;
    };
    platform.focusInfo = { app: 'gnome-calculator', pid: 10, window: 'Calculator', element: { role: 'push button', name: '8', handle: 'h8', states: ['focused'] } } as never;
    const s = await executor().submit([
      { type: 'click', x: 60, y: 60, button: 'left' },
      { type: 'type', text: '12' },
    ]);
    if (s.status !== 'pending_approval') throw new Error(`expected an ask, got ${s.status}`);
    expect(s.approvals.map((a) => a.index)).toEqual([0, 1]);
    for (const a of s.approvals) approvals.decide(a.id, { decision: 'approve' }, 'operator');
    const r = await s.outcome;
    expect(r.results.map((x) => x.type)).toEqual(['click', 'type']);
    expect(platform.events.filter((x) => x.kind === 'type').map((x) => (x as { text: string }).text).join('')).toBe('12');
  });
});

describe('the batch\'s keyboard focus is predicted from its clicks', () => {
  it('click into an allowed window then type: the keys are judged for that window, not for the one focused at decision time', async () => {
    platform.windowList = [{ ...CALC }, { ...TERM, bounds: { x: 600, y: 0, width: 600, height: 800 } }];
    platform.focusedWindowId = TERM.id;
    platform.windows.clickToFocus = async (id: string) => {
      platform.focusedWindowId = id;
    };
    const r = await executor().run([
      { type: 'click', x: 100, y: 100, button: 'left' },
      { type: 'type', text: 'ok' },
    ]);
    expect(r.results.map((x) => x.type)).toEqual(['click', 'type']);
    // Without the click first, the same text is judged for the focused xterm and denied.
    const e = await rejection(executor().run([{ type: 'type', text: 'ok' }]).then(async () => {
      platform.focusedWindowId = TERM.id;
      return executor().run([{ type: 'type', text: 'no' }]);
    }));
    expect(e.code).toBe('POLICY_DENIED');
  });

  it('a click whose focus did not go where predicted → the typing is refused before a key is sent', async () => {
    platform.windowList = [{ ...CALC }, { ...TERM, bounds: { x: 600, y: 0, width: 600, height: 800 } }];
    platform.focusedWindowId = TERM.id; // and no click-to-focus: the focus stays on the xterm
    const e = await rejection(
      executor().run([
        { type: 'click', x: 100, y: 100, button: 'left' },
        { type: 'type', text: 'rm -rf' },
      ]),
    );
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('actions[1] (type)');
    expect(platform.events.some((x) => x.kind === 'type' || x.kind === 'keydown')).toBe(false);
  });

  it('focus_window predicts the focus for the keys after it', async () => {
    platform.windowList = [{ ...TERM, bounds: { x: 600, y: 0, width: 600, height: 800 } }, { ...CALC }];
    platform.focusedWindowId = TERM.id;
    const r = await executor().run([
      { type: 'focus_window', window: CALC.id },
      { type: 'type', text: '7' },
    ] as never);
    expect(r.results.map((x) => x.type)).toEqual(['focus_window', 'type']);
    expect(platform.events.filter((x) => x.kind === 'type')).toHaveLength(1);
  });

  it('a move does not predict a focus change: keys after it are judged for the focused window', async () => {
    platform.windowList = [{ ...CALC }, { ...TERM, bounds: { x: 600, y: 0, width: 600, height: 800 } }];
    platform.focusedWindowId = TERM.id;
    platform.windows.clickToFocus = async (id: string) => {
      platform.focusedWindowId = id;
    };
    const e = await rejection(
      executor().run([
        { type: 'move', x: 100, y: 100 },
        { type: 'type', text: 'x' },
      ]),
    );
    expect(e.code).toBe('POLICY_DENIED');
    expect(platform.events).toEqual([]);
  });
});

describe('typing re-checks the focus and the kill switch between chunks', () => {
  it('the focus moves to another window after the first chunk → TARGET_CHANGED, the rest never typed', async () => {
    const type = platform.keyboard.type.bind(platform.keyboard);
    platform.keyboard.type = async (text) => {
      await type(text);
      platform.focusedWindowId = EDIT.id;
    };
    const e = await rejection(executor().run([{ type: 'type', text: 'abcdefghijklmnopqrstuvwxyz' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('the keyboard focus moved from gnome-calculator "Calculator" (0xa) to gedit "notes" (0xb) while typing; nothing more was typed');
    const typed = platform.events.filter((x) => x.kind === 'type').map((x) => (x as { text: string }).text).join('');
    expect(typed.length).toBeGreaterThan(0);
    expect(typed.length).toBeLessThanOrEqual(8);
  });

  it('the focus stays → everything is typed', async () => {
    await executor().run([{ type: 'type', text: 'abcdefghijklmnopqrstuvwxyz' }]);
    expect(platform.events.filter((x) => x.kind === 'type').map((x) => (x as { text: string }).text).join('')).toBe('abcdefghijklmnopqrstuvwxyz');
  });

  it('a halt after the first chunk → HALTED, the rest never typed', async () => {
    const type = platform.keyboard.type.bind(platform.keyboard);
    platform.keyboard.type = async (text) => {
      await type(text);
      halt.halt('operator', 'stop');
    };
    const e = await rejection(executor().run([{ type: 'type', text: 'abcdefghijklmnopqrstuvwxyz' }]));
    expect(e.code).toBe('HALTED');
    expect(platform.events.filter((x) => x.kind === 'type').map((x) => (x as { text: string }).text).join('').length).toBeLessThanOrEqual(8);
  });

  it('a halt between actions: the next one is not dispatched', async () => {
    afterDecision = () => undefined;
    const down = platform.mouse.down.bind(platform.mouse);
    platform.mouse.down = async (b) => {
      await down(b);
      halt.halt('operator');
    };
    const e = await rejection(executor().run([{ type: 'click', x: 10, y: 10, button: 'left' }, { type: 'keypress', keys: ['a'] }]));
    expect(e.code).toBe('HALTED');
    expect(e.message).toContain('actions[1] (keypress) failed after 1 of 2 completed');
    expect(platform.events.some((x) => x.kind === 'keydown')).toBe(false);
  });

  it('a halt ends a wait early with HALTED', async () => {
    const ex = executor();
    const t0 = Date.now();
    const p = ex.run([{ type: 'wait', ms: 5000 }] as never);
    setTimeout(() => halt.halt('operator'), 50);
    const e = await rejection(p);
    expect(e.code).toBe('HALTED');
    expect(Date.now() - t0).toBeLessThan(4000);
  });
});

describe('results and failures', () => {
  it('a double click is reported as double_click, with its hit and a duration', async () => {
    const r = await executor().run([{ type: 'double_click', x: 60, y: 60 }]);
    expect(r.status).toBe('done');
    expect(r.actionId).toMatch(/^act_[0-9a-f-]{36}$/);
    expect(r.results[0]).toMatchObject({ type: 'double_click', point: { x: 60, y: 60 }, hit: { app: 'gnome-calculator', element: { role: 'push button', name: '7' } } });
    expect(r.results[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(r.durationMs).toBeGreaterThanOrEqual(r.results[0]!.durationMs);
  });

  it('a masked window is never named in a result\'s hit', async () => {
    const r = await executor({ isMasked: (w) => w.app === 'gnome-calculator' }).run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(r.results[0]!.hit).toBeUndefined();
    const r2 = await executor({ isMasked: (w) => w.app === 'xterm' }).run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(r2.results[0]!.hit).toEqual({ app: 'gnome-calculator', element: { role: 'push button', name: '7' } });
  });

  it('the hit of a pointer action with held keys is the pointer\'s receiver; of a keypress, the focused window', async () => {
    platform.focusedWindowId = EDIT.id;
    const r = await executor().run([
      { type: 'keypress', keys: ['a'] },
      { type: 'click', x: 60, y: 60, button: 'left', keys: ['shift'] },
    ] as never);
    expect(r.results[0]!.hit).toMatchObject({ app: 'gedit' });
    expect(r.results[1]!.hit).toMatchObject({ app: 'gnome-calculator', element: { role: 'push button', name: '7' } });
    expect(platform.events.filter((x) => x.kind === 'down')).toHaveLength(1);
  });

  it('an OS error while dispatching → ACTION_FAILED, audited with its index; earlier actions stay done', async () => {
    let n = 0;
    const down = platform.mouse.down.bind(platform.mouse);
    platform.mouse.down = async (b) => {
      if (++n === 2) throw new Error('XTest refused the event');
      await down(b);
    };
    const e = await rejection(executor().run([{ type: 'click', x: 10, y: 10, button: 'left' }, { type: 'click', x: 20, y: 20, button: 'left' }]));
    expect(e.code).toBe('ACTION_FAILED');
    expect(e.message).toBe('actions[1] (click) failed after 1 of 2 completed: XTest refused the event');
    const rs = await results();
    expect(rs.map((r) => [r.ok, r.index])).toEqual([[true, 0], [false, 1]]);
    expect(rs[1]).toMatchObject({ error: { code: 'ACTION_FAILED', message: e.message } });
    expect(rs[0]!.actionId).toBe(rs[1]!.actionId);
    // Each result names the decision it belongs to.
    const decisions = (await audit.read()).filter((r) => r.kind === 'decision').map((r) => r.seq);
    expect(rs.map((r) => r.decisionSeq)).toEqual(decisions);
  });

  it('the screenshot action without the masked capture path is refused (CAPTURE_FAILED): the platform is never captured', async () => {
    let captured = 0;
    const cap = platform.capture.capture.bind(platform.capture);
    platform.capture.capture = async (...a) => {
      captured++;
      return cap(...a);
    };
    const e = await rejection(executor().run([{ type: 'screenshot' } as never]));
    expect(e.code).toBe('CAPTURE_FAILED');
    expect(captured).toBe(0);
  });

  it('a batch whose asks are all covered by a session grant runs at once', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: ask-calc, effect: ask, match: { app: gnome-calculator } }\n`, 'ask.yaml');
    const ex = executor();
    const s = await ex.submit([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    if (s.status !== 'pending_approval') throw new Error('expected an ask');
    approvals.decide(s.approvals[0]!.id, { decision: 'approve', scope: 'session' }, 'operator');
    await s.outcome;
    const again = await ex.submit([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(again.status).toBe('done');
    // A different element is asked again.
    const other = await ex.submit([{ type: 'click', x: 110, y: 60, button: 'left' }]);
    expect(other.status).toBe('pending_approval');
  });

  it('a denied approval: nothing dispatched, POLICY_DENIED', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: ask-calc, effect: ask, match: { app: gnome-calculator } }\n`, 'ask.yaml');
    const s = await executor().submit([{ type: 'click', x: 60, y: 60, button: 'left' }, { type: 'keypress', keys: ['a'] }]);
    if (s.status !== 'pending_approval') throw new Error('expected an ask');
    approvals.decide(s.approvals[0]!.id, { decision: 'deny' }, 'operator');
    expect((await rejection(s.outcome)).code).toBe('POLICY_DENIED');
    expect(platform.events).toEqual([]);
  });
});

describe('a click into a popup passes its hover point, which the policy judges too', () => {
  it('on a popup\'s top row, the hover point above it lies in a denied terminal: POLICY_DENIED, nothing dispatched; one row lower it is allowed', async () => {
    // An override-redirect popup of the calculator whose top edge is at y = 100, over a denied xterm above it.
    const popup: WindowInfo = { id: '0xd', app: 'gnome-calculator', pid: 10, title: '', bounds: { x: 0, y: 100, width: 200, height: 100 }, overrideRedirect: true };
    platform.windowList.unshift({ ...popup });
    platform.windowList.splice(1, 0, { ...TERM, bounds: { x: 0, y: 0, width: 600, height: 100 } });
    const e = await rejection(executor().run([{ type: 'click', x: 50, y: 100, button: 'left' }]));
    expect(e.code).toBe('POLICY_DENIED');
    expect(inputEvents()).toEqual([]);
    await executor().run([{ type: 'click', x: 50, y: 101, button: 'left' }]);
    expect(inputEvents().filter((x) => x.kind === 'move')).toEqual([
      { kind: 'move', x: 50, y: 100 },
      { kind: 'move', x: 50, y: 101 },
    ]);
  });
});

describe('the dispatch-time re-check hit-tests again only where the policy depends on the element (issue 15)', () => {
  /** Count the accessibility hit-tests and URL reads. */
  function counting(): { hitTests: number; urlReads: number } {
    const n = { hitTests: 0, urlReads: 0 };
    const ax = platform.accessibility;
    const elementAt = ax.elementAt!.bind(ax);
    const urlOf = ax.urlOf!.bind(ax);
    ax.elementAt = (p, w) => {
      n.hitTests++;
      return elementAt(p, w);
    };
    ax.urlOf = (w) => {
      n.urlReads++;
      return urlOf(w);
    };
    return n;
  }
  const calcButton = (name: string) => platform.tree[0]!.children[0]!.children.find((c) => c.name === name)!;
  const CHROMIUM: WindowInfo = { id: '0xd', app: 'chromium', pid: 13, wmClass: 'Chromium', title: 'page', bounds: { x: 0, y: 0, width: 600, height: 800 } };

  it('a policy without element rules: one hit-test per click (the decision\'s), the window read again; the result names that element', async () => {
    const n = counting();
    const r = await executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(n.hitTests).toBe(1);
    expect(r.results[0]!.hit).toEqual({ app: 'gnome-calculator', element: { role: 'push button', name: '7' } });
    expect(inputEvents().map((e) => e.kind)).toContain('down');
  });

  it('attack: the element under the point changes to a denied one after an allowed decision → re-hit-tested, TARGET_CHANGED, nothing dispatched', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: allow-calc, effect: allow, match: { app: gnome-calculator } }\n  - { id: deny-8, effect: deny, match: { element: { role: push button, name: "8" } } }\n`, 'deny-8.yaml');
    const n = counting();
    // Decided on "7"; before dispatch the app shows "8" at the same point (same window, same title).
    afterDecision = () => {
      calcButton('7').name = '8';
    };
    const e = await rejection(executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('deny-8');
    expect(n.hitTests).toBe(2);
    expect(inputEvents()).toEqual([]);
  });

  it('attack: the same with a move, a scroll and every point of a drag', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: allow-calc, effect: allow, match: { app: gnome-calculator } }\n  - { id: deny-8, effect: deny, match: { element: { name: "8" } } }\n`, 'deny-8.yaml');
    for (const action of [
      { type: 'move', x: 60, y: 60 },
      { type: 'scroll', x: 60, y: 60, scroll_x: 0, scroll_y: 3 },
      { type: 'drag', path: [{ x: 300, y: 300 }, { x: 60, y: 60 }] },
    ] as const) {
      const seven = platform.tree[0]!.children[0]!.children[0]!;
      seven.name = '7';
      afterDecision = () => {
        seven.name = '8';
      };
      const e = await rejection(executor().run([action as never]));
      expect(e.code, action.type).toBe('TARGET_CHANGED');
      expect(inputEvents(), action.type).toEqual([]);
    }
  });

  it('a URL rule: the hit-test is reused but the URL is read again; a navigation to a denied origin after the decision → TARGET_CHANGED', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: allow-chromium, effect: allow, match: { app: chromium } }\n  - { id: deny-bank, effect: deny, match: { url: "https://bank.example" } }\n`, 'deny-bank.yaml');
    platform.windowList = [{ ...CHROMIUM }];
    platform.urls.set(CHROMIUM.id, 'https://ok.example/');
    const n = counting();
    afterDecision = () => {
      platform.urls.set(CHROMIUM.id, 'https://bank.example/transfer');
    };
    const e = await rejection(executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('deny-bank');
    expect(n.urlReads).toBe(2);
    expect(n.hitTests).toBe(1);
    expect(inputEvents()).toEqual([]);
  });

  it('no URL or element rule: neither is read again', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: allow-chromium, effect: allow, match: { app: chromium } }\n`, 'allow-chromium.yaml');
    platform.windowList = [{ ...CHROMIUM }];
    platform.urls.set(CHROMIUM.id, 'https://ok.example/');
    const n = counting();
    await executor().run([{ type: 'move', x: 60, y: 60 }]);
    expect(n).toEqual({ hitTests: 1, urlReads: 1 });
  });

  it('the same window retitled after the decision (same id): nothing is reused, the element is hit-tested again', async () => {
    const n = counting();
    afterDecision = () => {
      platform.windowList[0] = { ...CALC, title: 'Calculator — 2' };
    };
    const r = await executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(n.hitTests).toBe(2);
    expect(r.results[0]!.hit?.element).toEqual({ role: 'push button', name: '7' });
  });

  it('an asked action is always hit-tested again (the approval is bound to the element)', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: ask-calc, effect: ask, match: { app: gnome-calculator } }\n`, 'ask.yaml');
    const n = counting();
    const s = await executor().submit([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    if (s.status !== 'pending_approval') throw new Error(`expected an ask, got ${s.status}`);
    calcButton('7').name = '9';
    approvals.decide(s.approvals[0]!.id, { decision: 'approve' }, 'operator');
    const e = await rejection(s.outcome);
    expect(e.code).toBe('TARGET_CHANGED');
    expect(n.hitTests).toBe(2);
    expect(inputEvents()).toEqual([]);
  });
});

describe('clicks: the hit-test runs while the decision is audited when the policy does not need the element (issue 15)', () => {
  const calcButton = (name: string) => platform.tree[0]!.children[0]!.children.find((c) => c.name === name)!;
  const decisions = async () => (await audit.read()).filter((r) => r.kind === 'decision');
  /** Wrap the hit-test: count calls, note the window asked about, and run `during` before it answers. */
  function hitTests(during?: () => void): { windows: Array<string | undefined> } {
    const seen: Array<string | undefined> = [];
    const ax = platform.accessibility;
    const elementAt = ax.elementAt!.bind(ax);
    ax.elementAt = async (p, w) => {
      seen.push(w?.id);
      const r = await elementAt(p, w);
      await new Promise((res) => setTimeout(res, 5));
      during?.();
      return r;
    };
    return { windows: seen };
  }

  it('without element rules: the decision record has the element unknown, the result and its audit record name the element hit-tested in the decided window', async () => {
    const h = hitTests();
    const r = await executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(h.windows).toEqual([CALC.id]);
    expect(r.results[0]!.hit).toEqual({ app: 'gnome-calculator', element: { role: 'push button', name: '7' } });
    const [d] = await decisions();
    expect(d).toMatchObject({ decision: { effect: 'allow', ruleId: 'allow-calc' }, target: { app: 'gnome-calculator', element: null, unknown: ['element'] } });
    const [res] = await results();
    expect(res).toMatchObject({ ok: true, decisionSeq: d!.seq, hit: { app: 'gnome-calculator', element: { role: 'push button', name: '7' } } });
  });

  it('an element rule: the hit-test runs before the decision, which names the element (a denied one is refused before anything is dispatched)', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: allow-calc, effect: allow, match: { app: gnome-calculator } }\n  - { id: deny-7, effect: deny, match: { element: { role: push button, name: "7" } } }\n`, 'deny-7.yaml');
    const e = await rejection(executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]));
    expect(e.code).toBe('POLICY_DENIED');
    expect(inputEvents()).toEqual([]);
    const [d] = await decisions();
    expect(d).toMatchObject({ decision: { effect: 'deny', ruleId: 'deny-7' }, target: { element: { role: 'push button', name: '7' } } });
    // An allowed element under the same policy: decided with the element known.
    await executor().run([{ type: 'click', x: 110, y: 60, button: 'left' }]);
    const d2 = (await decisions()).at(-1)!;
    expect(d2).toMatchObject({ decision: { effect: 'allow' }, target: { element: { role: 'push button', name: '8' }, unknown: [] } });
  });

  it('an allow rule on the element (default deny): decided on the element, never on an unknown one', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: allow-7, effect: allow, match: { app: gnome-calculator, element: { name: "7" } } }\n`, 'allow-7.yaml');
    const r = await executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(r.results[0]!.hit?.element).toEqual({ role: 'push button', name: '7' });
    expect((await decisions())[0]).toMatchObject({ decision: { ruleId: 'allow-7' }, target: { element: { name: '7' } } });
    const e = await rejection(executor().run([{ type: 'click', x: 110, y: 60, button: 'left' }]));
    expect(e.code).toBe('POLICY_DENIED');
    expect(inputEvents().filter((x) => x.kind === 'down')).toHaveLength(1);
  });

  it('attack: another window raised over the point while the deferred hit-test runs → TARGET_CHANGED, nothing dispatched (the windows are read after the hit-test ends)', async () => {
    hitTests(() => platform.windowList.unshift({ ...TERM }));
    const e = await rejection(executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('to xterm "xterm" (0xc)');
    expect(inputEvents()).toEqual([]);
  });

  it('attack: the decided window retitled to a denied title while the deferred hit-test runs → TARGET_CHANGED (would now deny), nothing dispatched', async () => {
    hitTests(() => (platform.windowList[0]!.title = 'top secret'));
    const e = await rejection(executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('deny-secret-title');
    expect(inputEvents()).toEqual([]);
  });

  it('attack: the same window id now owned by another process (a denied app) while the hit-test runs → TARGET_CHANGED, nothing dispatched', async () => {
    hitTests(() => (platform.windowList[0] = { ...TERM, id: CALC.id }));
    const e = await rejection(executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('deny-term');
    expect(inputEvents()).toEqual([]);
  });

  it('attack: the same window and pid, the process now another program (an exec: the app renamed) while the hit-test runs → TARGET_CHANGED, nothing dispatched', async () => {
    hitTests(() => (platform.windowList[0] = { ...CALC, app: 'xterm' }));
    const e = await rejection(executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]));
    expect(e.code).toBe('TARGET_CHANGED');
    expect(e.message).toContain('deny-term');
    expect(inputEvents()).toEqual([]);
  });

  it('the window retitled (allowed) during the hit-test: the deferred element is not reused, the new window is hit-tested again', async () => {
    let first = true;
    const h = hitTests(() => {
      if (first) platform.windowList[0] = { ...CALC, title: 'Calculator — 2' };
      first = false;
    });
    calcButton('7').name = '7';
    const r = await executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
    expect(h.windows).toEqual([CALC.id, CALC.id]);
    expect(r.results[0]!.hit?.element).toEqual({ role: 'push button', name: '7' });
    expect(inputEvents().map((x) => x.kind)).toContain('down');
  });

  it('attack: a click on a password field then typing in one batch → the typing is refused at the decision (the click\'s element is hit-tested for the prediction), nothing dispatched', async () => {
    policy = parsePolicy(`version: 1\n${LIMITS}rules:\n  - { id: allow-all, effect: allow, match: {} }\n`, 'allow-all.yaml');
    platform.tree[0]!.children[0]!.children.push(axNode('password text', 'PIN', { x: 200, y: 50, width: 100, height: 30 }, { states: ['enabled', 'visible', 'showing', 'focusable', 'editable', 'password'] }));
    const e = await rejection(
      executor().run([
        { type: 'click', x: 250, y: 60, button: 'left' },
        { type: 'type', text: '1234' },
      ]),
    );
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toContain('invariant:password-field');
    expect(inputEvents()).toEqual([]);
  });

  it('the result record is not awaited: a failed result append breaks the log, and the next action is refused (AUDIT_WRITE_FAILED), nothing dispatched for it', async () => {
    const fh = (audit as unknown as { fh: { write: (...a: unknown[]) => Promise<unknown> } }).fh;
    const write = fh.write;
    afterDecision = () => {
      fh.write = () => Promise.reject(new Error('EIO (test)'));
    };
    try {
      const r = await executor().run([{ type: 'click', x: 60, y: 60, button: 'left' }]);
      expect(r.status).toBe('done');
      afterDecision = null;
      const before = inputEvents().length;
      const e = await rejection(executor().run([{ type: 'click', x: 110, y: 60, button: 'left' }]));
      expect(e.code).toBe('AUDIT_WRITE_FAILED');
      expect(inputEvents()).toHaveLength(before);
    } finally {
      fh.write = write;
    }
  });
});
