import { afterEach, describe, expect, it } from 'vitest';
import { thrown } from '../helpers/rejection.js';
import { ApprovalManager, type Approval, type ApprovalManagerOptions } from '../../src/policy/approvals.js';
import type { PolicyDecision, PolicyEffect, PolicyTarget } from '../../src/policy/engine.js';

// ApprovalManager (src/policy/approvals.ts) beyond policyApprovals.test.ts: what a binding and a session
// grant cover (effects, points, keys), copies that cannot be changed from outside, who settled an approval
// and when, the events, the per-actor cancellation, and how many settled approvals are remembered.

const ask: PolicyDecision = { effect: 'ask', ruleId: 'ask-unlisted', reason: 'unlisted app', matched: ['ask-unlisted'] };
const win: PolicyTarget = { app: 'gedit', pid: 7, window: 'notes', windowId: '0x1' };
const button: PolicyTarget = { ...win, element: { role: 'push button', name: 'Save', states: [] } };
const click = (x: number, y: number, keys?: string[]) => ({ type: 'click', x, y, button: 'left', ...(keys ? { keys } : {}) });

let managers: ApprovalManager[] = [];
afterEach(() => {
  for (const m of managers) m.close();
  managers = [];
});
function manager(opts: Partial<ApprovalManagerOptions> = {}): ApprovalManager {
  const m = new ApprovalManager({ timeoutMs: 60_000, ...opts });
  managers.push(m);
  return m;
}

describe('bindingOf', () => {
  it('no effects and an empty effect list bind alike; effects (kind and receiver identity) change the binding', () => {
    const m = manager();
    const a = click(1, 2);
    const base = m.bindingOf(a, win);
    expect(m.bindingOf(a, win, [])).toBe(base);
    const fx: PolicyEffect[] = [{ kind: 'pointer', target: win }];
    expect(m.bindingOf(a, win, fx)).not.toBe(base);
    expect(m.bindingOf(a, win, [{ kind: 'keys', target: win }])).not.toBe(m.bindingOf(a, win, fx));
    expect(m.bindingOf(a, win, [{ kind: 'pointer', target: { ...win, window: 'other' } }])).not.toBe(m.bindingOf(a, win, fx));
    // Element states are not identity.
    const withState: PolicyEffect[] = [{ kind: 'pointer', target: { ...button, element: { role: 'push button', name: 'Save', states: ['focused'] } } }];
    expect(m.bindingOf(a, win, withState)).toBe(m.bindingOf(a, win, [{ kind: 'pointer', target: button }]));
    expect(m.bindingOf(a, win, fx)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('assertBound compares effects too: a retitled receiver of any effect is TARGET_CHANGED', () => {
    const m = manager();
    const fx: PolicyEffect[] = [{ kind: 'pointer', target: win }, { kind: 'keys', target: { app: 'gedit', pid: 7, window: 'draft', windowId: '0x2' } }];
    const t = m.request({ action: click(1, 2), target: win, effects: fx, decision: ask });
    m.decide(t.id, { decision: 'approve' }, 'alice');
    expect(() => m.assertBound(t.id, click(1, 2), win, fx)).not.toThrow();
    expect(thrown(() => m.assertBound(t.id, click(1, 2), win, [fx[0]!, { kind: 'keys', target: { ...fx[1]!.target, window: 'evil' } }])).code).toBe('TARGET_CHANGED');
    expect(thrown(() => m.assertBound(t.id, click(1, 2), win)).code).toBe('TARGET_CHANGED');
    expect(thrown(() => m.assertBound(t.id, click(1, 2), win, [fx[0]!])).code).toBe('TARGET_CHANGED');
  });

  it('assertBound on a denied approval is POLICY_DENIED naming its rule', () => {
    const m = manager();
    const t = m.request({ action: click(1, 2), target: win, decision: ask });
    m.decide(t.id, { decision: 'deny' }, 'alice');
    const e = thrown(() => m.assertBound(t.id, click(1, 2), win));
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.details).toEqual({ ruleId: 'ask-unlisted' });
    expect(e.message).toContain('denied');
  });
});

describe('what a session grant covers', () => {
  it('without an element: the same point only; with an element: that element wherever the click lands on it', () => {
    const m = manager();
    const t = m.request({ action: click(10, 20), target: win, effects: [{ kind: 'pointer', target: win }], decision: ask });
    m.decide(t.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted(click(10, 20), win, [{ kind: 'pointer', target: win }])).toBe(true);
    expect(m.sessionGranted(click(10, 21), win, [{ kind: 'pointer', target: win }])).toBe(false);
    expect(m.sessionGranted(click(11, 20), win, [{ kind: 'pointer', target: win }])).toBe(false);

    const u = m.request({ action: click(100, 100), target: button, effects: [{ kind: 'pointer', target: button }], decision: ask });
    m.decide(u.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted(click(105, 102), button, [{ kind: 'pointer', target: button }])).toBe(true);
    expect(m.sessionGranted(click(105, 102), button, [{ kind: 'keys', target: button }])).toBe(false);
  });

  it('the keys are part of it (as a chord): another modifier or none is asked again', () => {
    const m = manager();
    const fx: PolicyEffect[] = [{ kind: 'pointer', target: button }];
    const t = m.request({ action: click(1, 1, ['ctrl']), target: button, effects: fx, decision: ask });
    m.decide(t.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted(click(1, 1, ['ctrl']), button, fx)).toBe(true);
    expect(m.sessionGranted(click(1, 1, ['control']), button, fx)).toBe(true);
    expect(m.sessionGranted(click(1, 1), button, fx)).toBe(false);
    expect(m.sessionGranted(click(1, 1, ['shift']), button, fx)).toBe(false);
    expect(m.sessionGranted(click(1, 1, ['ctrl', 'shift']), button, fx)).toBe(false);
  });

  it('a drag is covered only along the same path; a move without y is its own point', () => {
    const m = manager();
    const drag = (path: { x: number; y: number }[]) => ({ type: 'drag', path });
    const t = m.request({ action: drag([{ x: 1, y: 1 }, { x: 5, y: 5 }]), target: win, decision: ask });
    m.decide(t.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted(drag([{ x: 1, y: 1 }, { x: 5, y: 5 }]), win)).toBe(true);
    expect(m.sessionGranted(drag([{ x: 1, y: 1 }, { x: 5, y: 6 }]), win)).toBe(false);
    expect(m.sessionGranted(drag([{ x: 1, y: 1 }]), win)).toBe(false);

    const mv = m.request({ action: { type: 'move', x: 3 }, target: win, decision: ask });
    m.decide(mv.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted({ type: 'move', x: 3 }, win)).toBe(true);
    expect(m.sessionGranted({ type: 'move', x: 3, y: 0 }, win)).toBe(false);
    expect(m.sessionGranted({ type: 'move', x: 4 }, win)).toBe(false);
  });

  it('the effects\' receivers count, not only the deciding target', () => {
    const m = manager();
    const other: PolicyTarget = { app: 'xterm', pid: 9, window: 'xterm', windowId: '0x9' };
    const fx: PolicyEffect[] = [{ kind: 'pointer', target: button }, { kind: 'keys', target: win }];
    const t = m.request({ action: click(1, 1, ['shift']), target: button, effects: fx, decision: ask });
    m.decide(t.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted(click(1, 1, ['shift']), button, fx)).toBe(true);
    expect(m.sessionGranted(click(1, 1, ['shift']), button, [fx[0]!, { kind: 'keys', target: other }])).toBe(false);
    expect(m.sessionGranted(click(1, 1, ['shift']), button, [fx[0]!])).toBe(false);
  });

  it('a session grant settles waiting requests it covers (by session-grant) and leaves the others pending', async () => {
    const m = manager();
    const decided: Approval[] = [];
    m.on('decided', (a) => decided.push(a));
    const first = m.request({ action: click(1, 1), target: button, decision: ask });
    const same = m.request({ action: click(1, 1), target: button, decision: ask });
    const otherEl = m.request({ action: click(1, 1), target: { ...button, element: { role: 'push button', name: 'Open', states: [] } }, decision: ask });
    const o = m.decide(first.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(o).toMatchObject({ decision: 'approve', scope: 'session', by: 'alice', via: 'operator' });
    expect(await same.promise).toMatchObject({ id: same.id, decision: 'approve', scope: 'session', by: 'session-grant', via: 'session-grant' });
    expect(m.get(otherEl.id)?.status).toBe('pending');
    expect(m.list().map((a) => a.id)).toEqual([otherEl.id]);
    expect(decided.map((a) => [a.id, a.status])).toEqual([[first.id, 'approved'], [same.id, 'approved']]);
  });

  it('an approve with scope once grants nothing for later requests', () => {
    const m = manager();
    const t = m.request({ action: click(1, 1), target: button, decision: ask });
    const o = m.decide(t.id, { decision: 'approve' }, 'alice');
    expect(o.scope).toBe('once');
    expect(m.sessionGranted(click(1, 1), button)).toBe(false);
    expect(m.request({ action: click(1, 1), target: button, decision: ask }).approval.status).toBe('pending');
  });

  it('a request a grant covers is approved at once: no pending event, not counted against the cap', async () => {
    const m = manager({ maxPendingPerActor: 1 });
    const pending: Approval[] = [];
    m.on('pending', (a) => pending.push(a));
    const t = m.request({ action: click(1, 1), target: button, decision: ask, actor: 'agent' });
    m.decide(t.id, { decision: 'approve', scope: 'session' }, 'alice');
    m.request({ action: click(2, 2), target: win, decision: ask, actor: 'agent' });
    const g = m.request({ action: click(1, 1), target: button, decision: ask, actor: 'agent' });
    expect(g.approval.status).toBe('approved');
    expect(g.approval.outcome).toMatchObject({ by: 'session-grant', via: 'session-grant', scope: 'session' });
    expect(await g.promise).toMatchObject({ decision: 'approve' });
    expect(pending).toHaveLength(2);
  });
});

describe('request', () => {
  it('a snapshot of the inputs: changing them afterwards changes neither the approval nor its binding', () => {
    const m = manager();
    const action = click(1, 2);
    const target: PolicyTarget = { ...win };
    const effects: PolicyEffect[] = [{ kind: 'pointer', target: { ...win } }];
    const t = m.request({ action, target, effects, decision: { ...ask, matched: [...ask.matched] } });
    const binding = t.approval.binding;
    action.x = 999;
    target.window = 'evil';
    effects[0]!.target.window = 'evil';
    effects.push({ kind: 'keys', target: win });
    const a = m.get(t.id)!;
    expect(a.action.x).toBe(1);
    expect(a.target.window).toBe('notes');
    expect(a.effects).toEqual([{ kind: 'pointer', target: win }]);
    expect(a.binding).toBe(binding);
    expect(binding).toBe(m.bindingOf(click(1, 2), win, [{ kind: 'pointer', target: win }]));
  });

  it('an empty effect list is stored as none', () => {
    const m = manager();
    const t = m.request({ action: click(1, 2), target: win, effects: [], decision: ask });
    expect('effects' in t.approval).toBe(false);
    expect(t.approval.binding).toBe(m.bindingOf(click(1, 2), win));
  });

  it('copies handed out (ticket, list, get, events) cannot change the manager\'s state', () => {
    const m = manager();
    let fromEvent: Approval | undefined;
    m.on('pending', (a) => (fromEvent = a));
    const t = m.request({ action: click(1, 2), target: win, decision: ask });
    t.approval.status = 'approved';
    m.list()[0]!.status = 'approved';
    m.get(t.id)!.status = 'approved';
    fromEvent!.status = 'approved';
    expect(m.get(t.id)?.status).toBe('pending');
    expect(thrown(() => m.assertBound(t.id, click(1, 2), win)).code).toBe('POLICY_DENIED');
  });

  it('times: createdAt and decidedAt from the clock, expiresAt = createdAt + the timeout in force', () => {
    let now = 1_000;
    const m = manager({ now: () => now, timeoutMs: 5000 });
    const a = m.request({ action: click(1, 2), target: win, decision: ask });
    expect(a.approval).toMatchObject({ createdAt: 1000, expiresAt: 6000, status: 'pending', outcome: null });
    m.setTimeoutMs(250);
    now = 2000;
    const b = m.request({ action: click(1, 3), target: win, decision: ask });
    expect(b.approval).toMatchObject({ createdAt: 2000, expiresAt: 2250 });
    now = 3000;
    expect(m.decide(a.id, { decision: 'approve' }, 'alice').decidedAt).toBe(3000);
    expect(m.get(a.id)?.outcome).toEqual({ id: a.id, decision: 'approve', scope: 'once', by: 'alice', via: 'operator', decidedAt: 3000 });
  });

  it('the wall clock by default', () => {
    const before = Date.now();
    const m = manager();
    const t = m.request({ action: click(1, 2), target: win, decision: ask });
    expect(t.approval.createdAt).toBeGreaterThanOrEqual(before);
    expect(t.approval.createdAt).toBeLessThanOrEqual(Date.now());
  });

  it('the timeout set later applies to approvals created after it', async () => {
    const m = manager();
    m.setTimeoutMs(15);
    const t = m.request({ action: click(1, 2), target: win, decision: ask });
    expect(await t.promise).toMatchObject({ decision: 'deny', by: 'timeout', via: 'timeout', scope: 'once' });
  });

  it('an already aborted signal: denied at once by halt, no pending event, nothing counted', async () => {
    const m = manager({ maxPendingPerActor: 1 });
    const pending: Approval[] = [];
    m.on('pending', (a) => pending.push(a));
    const ac = new AbortController();
    ac.abort();
    const t = m.request({ action: click(1, 2), target: win, decision: ask, signal: ac.signal, actor: 'agent' });
    expect(t.approval.status).toBe('denied');
    expect(await t.promise).toMatchObject({ decision: 'deny', scope: 'once', by: 'halt', via: 'cancelled' });
    expect(pending).toEqual([]);
    expect(m.request({ action: click(1, 3), target: win, decision: ask, actor: 'agent' }).approval.status).toBe('pending');
  });

  it('a signal aborted while pending denies it: by halt, once', async () => {
    const m = manager();
    const ac = new AbortController();
    const t = m.request({ action: click(1, 2), target: win, decision: ask, signal: ac.signal });
    ac.abort();
    expect(await t.promise).toMatchObject({ decision: 'deny', scope: 'once', by: 'halt', via: 'cancelled' });
  });

  it('refusals say what is wrong: unknown id, too many pending, not the approved target', () => {
    const m = manager({ maxPendingPerActor: 1 });
    expect(thrown(() => m.decide('apr_x', { decision: 'approve' }, 'alice')).message).toBe('No approval with id "apr_x"');
    expect(thrown(() => m.assertBound('apr_y', click(1, 2), win)).message).toBe('No approval with id "apr_y"');
    const t = m.request({ action: click(1, 2), target: win, decision: ask, actor: 'agent/a' });
    expect(thrown(() => m.request({ action: click(1, 3), target: win, decision: ask, actor: 'agent/a' })).message).toBe(
      "agent/a already has 1 actions waiting for the operator's approval (at most 1); wait for a decision",
    );
    m.decide(t.id, { decision: 'approve' }, 'alice');
    expect(thrown(() => m.assertBound(t.id, click(9, 9), win)).message).toBe(`The action or its target is not the one approval ${t.id} was granted for`);
  });

  it('a session grant without effects covers a later request with an empty effect list, and the reverse', () => {
    const m = manager();
    const t = m.request({ action: click(1, 2), target: button, decision: ask });
    m.decide(t.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted(click(1, 2), button, [])).toBe(true);
    expect(m.sessionGranted(click(1, 2), button)).toBe(true);
    const u = m.request({ action: click(5, 5), target: win, effects: [], decision: ask });
    m.decide(u.id, { decision: 'approve', scope: 'session' }, 'alice');
    expect(m.sessionGranted(click(5, 5), win)).toBe(true);
  });

  it('a signal aborted after the operator approved changes nothing', async () => {
    const m = manager();
    const ac = new AbortController();
    const t = m.request({ action: click(1, 2), target: win, decision: ask, signal: ac.signal });
    m.decide(t.id, { decision: 'approve' }, 'alice');
    ac.abort();
    expect(m.get(t.id)?.status).toBe('approved');
    expect(await t.promise).toMatchObject({ decision: 'approve', by: 'alice' });
  });
});

describe('decide', () => {
  it('a second decision says what the first was', () => {
    const m = manager();
    const t = m.request({ action: click(1, 2), target: win, decision: ask });
    m.decide(t.id, { decision: 'deny' }, 'alice');
    const e = thrown(() => m.decide(t.id, { decision: 'approve' }, 'bob'));
    expect(e.code).toBe('APPROVAL_ALREADY_DECIDED');
    expect(e.details).toEqual({ status: 'denied', via: 'operator' });
    expect(e.message).toContain('alice');
    expect(m.get(t.id)?.outcome?.by).toBe('alice');
  });

  it('the promise and the decided event carry the outcome', async () => {
    const m = manager();
    const decided: Approval[] = [];
    m.on('decided', (a) => decided.push(a));
    const t = m.request({ action: click(1, 2), target: win, decision: ask });
    const o = m.decide(t.id, { decision: 'deny', scope: 'once' }, 'alice');
    expect(await t.promise).toEqual(o);
    expect(decided).toHaveLength(1);
    expect(decided[0]).toMatchObject({ id: t.id, status: 'denied', outcome: o });
  });
});

describe('cancelling', () => {
  it('cancelAll counts only what was pending', async () => {
    const m = manager();
    const a = m.request({ action: click(1, 1), target: win, decision: ask });
    const b = m.request({ action: click(1, 2), target: win, decision: ask });
    m.decide(a.id, { decision: 'approve' }, 'alice');
    expect(m.cancelAll('shutdown')).toBe(1);
    expect(m.cancelAll('shutdown')).toBe(0);
    expect(await b.promise).toMatchObject({ by: 'shutdown', via: 'cancelled', decision: 'deny', scope: 'once' });
    expect(m.get(a.id)?.status).toBe('approved');
  });

  it('cancelWhere denies only the picked actor\'s pending approvals', async () => {
    const m = manager();
    const a = m.request({ action: click(1, 1), target: win, decision: ask, actor: 'agent/a' });
    const b = m.request({ action: click(1, 2), target: win, decision: ask, actor: 'agent/b' });
    const c = m.request({ action: click(1, 3), target: win, decision: ask });
    const seen: string[] = [];
    expect(m.cancelWhere((actor) => (seen.push(actor), actor === 'agent/a'), 'revoked')).toBe(1);
    expect(seen.sort()).toEqual(['agent/a', 'agent/b', 'unknown']);
    expect(await a.promise).toMatchObject({ by: 'revoked', via: 'cancelled', decision: 'deny', scope: 'once' });
    expect(m.list().map((x) => x.id)).toEqual([b.id, c.id]);
    expect(m.cancelWhere((actor) => actor === 'agent/a', 'revoked')).toBe(0);
    m.decide(b.id, { decision: 'approve' }, 'alice');
    expect(m.cancelWhere(() => true, 'revoked')).toBe(1);
    expect(m.get(b.id)?.status).toBe('approved');
  });

  it('close denies what is pending (by shutdown)', async () => {
    const m = manager();
    const t = m.request({ action: click(1, 1), target: win, decision: ask });
    m.close();
    expect(await t.promise).toMatchObject({ by: 'shutdown', via: 'cancelled' });
  });
});

describe('memory of settled approvals', () => {
  it('keeps exactly maxRemembered settled approvals, forgetting the oldest first; pending ones are never forgotten', () => {
    const m = manager({ maxRemembered: 2 });
    const waiting = m.request({ action: click(0, 0), target: win, decision: ask });
    const ids = [1, 2, 3].map((x) => m.request({ action: click(1, x), target: win, decision: ask }).id);
    m.decide(ids[0]!, { decision: 'deny' }, 'alice');
    m.decide(ids[1]!, { decision: 'deny' }, 'alice');
    expect(m.get(ids[0]!)?.status).toBe('denied');
    expect(m.get(ids[1]!)?.status).toBe('denied');
    m.decide(ids[2]!, { decision: 'deny' }, 'alice');
    expect(m.get(ids[0]!)).toBeUndefined();
    expect(m.get(ids[1]!)?.status).toBe('denied');
    expect(m.get(waiting.id)?.status).toBe('pending');
  });

  it('remembers 1000 by default', () => {
    const m = manager({ maxPendingPerActor: 2000 });
    const ids: string[] = [];
    for (let i = 0; i < 1001; i++) {
      const t = m.request({ action: click(1, i), target: win, decision: ask });
      ids.push(t.id);
      m.decide(t.id, { decision: 'deny' }, 'alice');
    }
    expect(m.get(ids[0]!)).toBeUndefined();
    expect(m.get(ids[1]!)?.status).toBe('denied');
  });
});
