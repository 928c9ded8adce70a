import { afterEach, describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { ApprovalManager, type Approval } from '../../src/policy/approvals.js';
import type { PolicyDecision, PolicyTarget } from '../../src/policy/engine.js';

const ask: PolicyDecision = { effect: 'ask', ruleId: 'default:unmatched', reason: 'no rule matched', matched: [] };
const target: PolicyTarget = { app: 'gnome-calculator', pid: 4242, window: 'Calculator', element: { role: 'button', name: '7', states: ['focused'] } };
const click = { type: 'click', x: 100, y: 200, button: 'left' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DeskdError);
    return (e as DeskdError).code;
  }
  return undefined;
}

let managers: ApprovalManager[] = [];
function manager(timeoutMs = 60_000) {
  const m = new ApprovalManager({ timeoutMs });
  managers.push(m);
  return m;
}
afterEach(() => {
  for (const m of managers) m.close();
  managers = [];
});

describe('ApprovalManager', () => {
  it('a request waits as pending; approve resolves it; a replayed decision is 409', async () => {
    const m = manager();
    const pendingEvents: Approval[] = [];
    const decidedEvents: Approval[] = [];
    m.on('pending', (a) => pendingEvents.push(a));
    m.on('decided', (a) => decidedEvents.push(a));

    const t = m.request({ action: { type: 'type', text: '12+3' }, target, decision: ask });
    expect(t.id).toMatch(/^apr_[A-Za-z0-9_-]{12}$/);
    expect(t.approval.status).toBe('pending');
    expect(m.list().map((a) => a.id)).toEqual([t.id]);
    expect(m.list()[0]!.action.text).toBe('12+3'); // the operator sees what would be typed
    expect(pendingEvents.map((a) => a.id)).toEqual([t.id]);

    const o = m.decide(t.id, { decision: 'approve', scope: 'once' }, 'operator');
    expect(o).toMatchObject({ id: t.id, decision: 'approve', scope: 'once', by: 'operator', via: 'operator' });
    expect(await t.promise).toMatchObject({ decision: 'approve', via: 'operator' });
    expect(m.list()).toEqual([]);
    expect(m.get(t.id)?.status).toBe('approved');
    expect(decidedEvents.map((a) => [a.id, a.status])).toEqual([[t.id, 'approved']]);

    expect(codeOf(() => m.decide(t.id, { decision: 'deny' }, 'operator'))).toBe('APPROVAL_ALREADY_DECIDED');
    expect(codeOf(() => m.decide(t.id, { decision: 'approve' }, 'operator'))).toBe('APPROVAL_ALREADY_DECIDED');
    expect(m.get(t.id)?.status).toBe('approved');
  });

  it('an unknown id is 404 APPROVAL_NOT_FOUND', () => {
    const m = manager();
    expect(codeOf(() => m.decide('apr_nope', { decision: 'approve' }, 'operator'))).toBe('APPROVAL_NOT_FOUND');
    const e = (() => { try { m.decide('apr_nope', { decision: 'approve' }, 'x'); } catch (err) { return err as DeskdError; } return null; })();
    expect(e?.status).toBe(404);
  });

  it('deny resolves the promise with deny', async () => {
    const m = manager();
    const t = m.request({ action: click, target, decision: ask });
    m.decide(t.id, { decision: 'deny', scope: 'session' }, 'operator');
    expect(await t.promise).toMatchObject({ decision: 'deny', via: 'operator' });
    // A session deny is not remembered: the next identical request waits again.
    expect(m.request({ action: click, target, decision: ask }).approval.status).toBe('pending');
  });

  it('no decision before the timeout → denied; deciding afterwards is 409', async () => {
    const m = manager(20);
    const t = m.request({ action: click, target, decision: ask });
    expect(t.approval.expiresAt - t.approval.createdAt).toBe(20);
    const o = await t.promise;
    expect(o).toMatchObject({ decision: 'deny', via: 'timeout', by: 'timeout' });
    expect(m.get(t.id)?.status).toBe('denied');
    expect(m.list()).toEqual([]);
    expect(codeOf(() => m.decide(t.id, { decision: 'approve' }, 'operator'))).toBe('APPROVAL_ALREADY_DECIDED');
  });

  it('scope: session approves later requests for the same action type and target identity only', async () => {
    const m = manager();
    const first = m.request({ action: click, target, decision: ask });
    const waiting = m.request({ action: { ...click, x: 5 }, target, decision: ask }); // same type and target, already waiting
    m.decide(first.id, { decision: 'approve', scope: 'session' }, 'operator');
    expect(await waiting.promise).toMatchObject({ decision: 'approve', via: 'session-grant' });

    const again = m.request({ action: { ...click, x: 300, y: 1 }, target: { ...target, element: { role: 'button', name: '7', states: [] } }, decision: ask });
    expect(again.approval.status).toBe('approved');
    expect(await again.promise).toMatchObject({ decision: 'approve', scope: 'session', via: 'session-grant' });
    expect(m.sessionGranted(click, target)).toBe(true);

    // Different action type, pid (app restarted), window or element: ask again.
    expect(m.request({ action: { type: 'double_click', x: 1, y: 1 }, target, decision: ask }).approval.status).toBe('pending');
    expect(m.request({ action: click, target: { ...target, pid: 999 }, decision: ask }).approval.status).toBe('pending');
    expect(m.request({ action: click, target: { ...target, window: 'Other' }, decision: ask }).approval.status).toBe('pending');
    expect(m.request({ action: click, target: { ...target, element: { role: 'button', name: '8', states: [] } }, decision: ask }).approval.status).toBe('pending');
    expect(m.list()).toHaveLength(4);

    m.clearSessionGrants();
    expect(m.request({ action: click, target, decision: ask }).approval.status).toBe('pending');
  });

  it('an approval is bound to its action and target identity (assertBound)', () => {
    const m = manager();
    const t = m.request({ action: click, target, decision: ask });
    expect(codeOf(() => m.assertBound(t.id, click, target))).toBe('POLICY_DENIED'); // not approved yet
    m.decide(t.id, { decision: 'approve' }, 'operator');
    expect(codeOf(() => m.assertBound(t.id, click, target))).toBeUndefined();
    // Element states are not identity.
    expect(codeOf(() => m.assertBound(t.id, click, { ...target, element: { role: 'button', name: '7', states: [] } }))).toBeUndefined();
    expect(codeOf(() => m.assertBound(t.id, { ...click, x: 101 }, target))).toBe('TARGET_CHANGED');
    expect(codeOf(() => m.assertBound(t.id, click, { ...target, pid: 1 }))).toBe('TARGET_CHANGED');
    expect(codeOf(() => m.assertBound(t.id, click, { ...target, window: 'Calculator — other' }))).toBe('TARGET_CHANGED');
    expect(codeOf(() => m.assertBound('apr_unknown', click, target))).toBe('APPROVAL_NOT_FOUND');
    expect(t.approval.binding).toBe(m.bindingOf(click, target));
    expect(t.approval.binding).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the halt signal and cancelAll deny pending approvals', async () => {
    const m = manager();
    const ac = new AbortController();
    const a = m.request({ action: click, target, decision: ask, signal: ac.signal });
    const b = m.request({ action: { type: 'type', text: 'x' }, target, decision: ask });
    ac.abort();
    expect(await a.promise).toMatchObject({ decision: 'deny', via: 'cancelled', by: 'halt' });
    expect(m.cancelAll('shutdown')).toBe(1);
    expect(await b.promise).toMatchObject({ decision: 'deny', via: 'cancelled', by: 'shutdown' });
    expect(codeOf(() => m.decide(b.id, { decision: 'approve' }, 'operator'))).toBe('APPROVAL_ALREADY_DECIDED');

    const aborted = new AbortController();
    aborted.abort();
    const c = m.request({ action: click, target, decision: ask, signal: aborted.signal });
    expect(c.approval.status).toBe('denied');
  });

  it('forgets the oldest settled approvals beyond maxRemembered', () => {
    const m = new ApprovalManager({ timeoutMs: 60_000, maxRemembered: 2 });
    managers.push(m);
    const ids = [1, 2, 3].map((x) => m.request({ action: { ...click, x }, target, decision: ask }).id);
    for (const id of ids) m.decide(id, { decision: 'deny' }, 'operator');
    expect(codeOf(() => m.decide(ids[0]!, { decision: 'deny' }, 'operator'))).toBe('APPROVAL_NOT_FOUND');
    expect(codeOf(() => m.decide(ids[2]!, { decision: 'deny' }, 'operator'))).toBe('APPROVAL_ALREADY_DECIDED');
  });
});
