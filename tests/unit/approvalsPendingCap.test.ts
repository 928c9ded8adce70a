/**
 * Issue 13, finding 8: a cap on pending approvals per actor. An agent that keeps asking cannot pile up
 * approvals the operator has to wade through (or memory without bound): past the cap `request()` throws
 * `TOO_MANY_PENDING_APPROVALS` and nothing is opened.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeskdError, ERROR_CODES } from '../../src/errors.js';
import { ApprovalManager, DEFAULT_MAX_PENDING_PER_ACTOR, type Approval } from '../../src/policy/approvals.js';
import type { PolicyDecision, PolicyTarget } from '../../src/policy/engine.js';

const ask: PolicyDecision = { effect: 'ask', ruleId: 'default:unmatched', reason: 'no rule matched', matched: [] };
const target: PolicyTarget = { app: 'gnome-calculator', pid: 4242, window: 'Calculator', element: { role: 'button', name: '7', states: [] } };
const click = (x: number) => ({ type: 'click', x, y: 200, button: 'left' });

let managers: ApprovalManager[] = [];
afterEach(() => {
  for (const m of managers) m.close();
  managers = [];
});
function manager(maxPendingPerActor?: number): ApprovalManager {
  const m = new ApprovalManager({ timeoutMs: 60_000, ...(maxPendingPerActor !== undefined ? { maxPendingPerActor } : {}) });
  managers.push(m);
  return m;
}

function refusal(fn: () => unknown): DeskdError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DeskdError);
    return e as DeskdError;
  }
  throw new Error('expected a refusal');
}

describe('pending approvals per actor', () => {
  it('the default cap is 8 and the code is a documented 429', () => {
    expect(DEFAULT_MAX_PENDING_PER_ACTOR).toBe(8);
    expect(ERROR_CODES.TOO_MANY_PENDING_APPROVALS.status).toBe(429);
    const m = manager();
    for (let i = 0; i < 8; i++) m.request({ action: click(i), target, decision: ask, actor: 'agent' });
    expect(refusal(() => m.request({ action: click(99), target, decision: ask, actor: 'agent' })).code).toBe('TOO_MANY_PENDING_APPROVALS');
  });

  it('past the cap the request is refused: no approval opened, no pending event; other actors are not affected', () => {
    const m = manager(3);
    const events: Approval[] = [];
    m.on('pending', (a) => events.push(a));
    for (let i = 0; i < 3; i++) m.request({ action: click(i), target, decision: ask, actor: 'agent' });
    const e = refusal(() => m.request({ action: click(3), target, decision: ask, actor: 'agent' }));
    expect(e.code).toBe('TOO_MANY_PENDING_APPROVALS');
    expect(e.details).toEqual({ limit: 3, pending: 3 });
    expect(m.list()).toHaveLength(3);
    expect(events).toHaveLength(3);
    // The operator (another actor) still gets its own approvals.
    const op = m.request({ action: click(4), target, decision: ask, actor: 'operator' });
    expect(op.approval.status).toBe('pending');
    expect(m.list()).toHaveLength(4);
  });

  it('a decided approval frees its place', async () => {
    const m = manager(2);
    const a = m.request({ action: click(1), target, decision: ask, actor: 'mcp' });
    m.request({ action: click(2), target, decision: ask, actor: 'mcp' });
    expect(refusal(() => m.request({ action: click(3), target, decision: ask, actor: 'mcp' })).code).toBe('TOO_MANY_PENDING_APPROVALS');
    m.decide(a.id, { decision: 'deny' }, 'operator');
    expect((await a.promise).decision).toBe('deny');
    const c = m.request({ action: click(3), target, decision: ask, actor: 'mcp' });
    expect(c.approval.status).toBe('pending');
  });

  it('requests without an actor share one cap (fail closed, never unlimited)', () => {
    const m = manager(2);
    m.request({ action: click(1), target, decision: ask });
    m.request({ action: click(2), target, decision: ask });
    expect(refusal(() => m.request({ action: click(3), target, decision: ask })).code).toBe('TOO_MANY_PENDING_APPROVALS');
  });
});
