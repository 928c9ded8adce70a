import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { AuditLog } from '../../src/policy/audit.js';
import type { PolicyEffect } from '../../src/policy/engine.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { validatePolicy } from '../../src/policy/parse.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';

// PolicyGate (src/policy/gate.ts) beyond the walk-through of policyGate.test.ts: the effect-based check
// (`checkEffects`: which receiver is recorded, what each effect's entry says, the rate limit and the
// invariants over effects), `wouldAllow` (no audit, no token), the wording and details of a refused
// approval, the result record, and the halt wiring (records, unsubscribe, audit errors reported).

const KEY = Buffer.alloc(32, 7);
const policy = validatePolicy({
  version: 1,
  defaults: { unmatched: 'ask' },
  rules: [
    { id: 'allow-calc', effect: 'allow', match: { app: 'gnome-calculator' } },
    { id: 'allow-editor', effect: 'allow', match: { app: 'gedit' } },
    { id: 'deny-xterm', effect: 'deny', match: { app: 'xterm' } },
  ],
});
const calc = { app: 'gnome-calculator', pid: 10, window: 'Calculator', windowId: '0xa' };
const editor = { app: 'gedit', pid: 11, window: 'notes', windowId: '0xb' };
const xterm = { app: 'xterm', pid: 12, window: 'xterm', windowId: '0xc' };
const other = { app: 'gimp', pid: 13, window: 'GIMP', windowId: '0xd' };
const click = { type: 'click', x: 5, y: 5, button: 'left' };

let dir: string;
let audit: AuditLog;
let approvals: ApprovalManager;
let halt: HaltSwitch;
let t = 0;
let bucket: TokenBucket;
let gate: PolicyGate;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'deskd-gatefx-'));
  audit = await AuditLog.open({ path: path.join(dir, 'audit.jsonl'), key: KEY });
  approvals = new ApprovalManager({ timeoutMs: 60_000 });
  halt = new HaltSwitch();
  t = 0;
  bucket = new TokenBucket({ actionsPerSecond: 1, burst: 2 }, () => t);
  gate = new PolicyGate({ policy: () => policy, halt, approvals, audit, bucket });
});
afterEach(async () => {
  approvals.close();
  await audit.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<DeskdError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e, 'expected a DeskdError').toBeInstanceOf(DeskdError);
  return e as DeskdError;
}

describe('checkEffects', () => {
  it('allow: the recorded target is the deciding effect\'s receiver; an effect lists its own receiver only where it differs', async () => {
    const effects: PolicyEffect[] = [
      { kind: 'pointer', target: calc },
      { kind: 'keys', target: { ...editor } },
      { kind: 'pointer', target: { ...calc } },
    ];
    const r = await gate.checkEffects({ ...click, keys: ['shift'] }, effects, 'agent/a');
    expect(r.effect).toBe('allow');
    expect(r.target).toEqual(calc);
    expect(r.auditSeq).toBe(1);
    const [rec] = await audit.read();
    expect(rec).toMatchObject({ kind: 'decision', seq: 1, actor: 'agent/a', target: calc });
    expect(rec!.effects).toEqual([
      { kind: 'pointer', effect: 'allow', ruleId: 'allow-calc' },
      { kind: 'keys', effect: 'allow', ruleId: 'allow-editor', target: editor },
      { kind: 'pointer', effect: 'allow', ruleId: 'allow-calc' },
    ]);
    expect(rec!.decision).toEqual({ effect: 'allow', ruleId: 'allow-calc', reason: expect.any(String), matched: expect.any(Array) });
    expect(Object.keys(rec!.decision as object).sort()).toEqual(['effect', 'matched', 'reason', 'ruleId']);
  });

  it('the worst effect decides and its receiver is the recorded target, wherever it is in the list', async () => {
    const e = await refusal(gate.checkEffects(click, [{ kind: 'pointer', target: calc }, { kind: 'keys', target: xterm }], 'agent'));
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toContain('deny-xterm');
    const [rec] = await audit.read();
    expect(rec).toMatchObject({ target: xterm, decision: { effect: 'deny', ruleId: 'deny-xterm' } });
    expect(rec!.effects).toEqual([
      { kind: 'pointer', effect: 'allow', ruleId: 'allow-calc', target: calc },
      { kind: 'keys', effect: 'deny', ruleId: 'deny-xterm' },
    ]);
    expect(approvals.list()).toEqual([]);
  });

  it('an action without effects is decided once with an empty target, and recorded with no effects', async () => {
    const r = await gate.checkEffects({ type: 'wait' }, [], 'agent');
    expect(r.effect).toBe('ask');
    expect(r.target).toEqual({});
    const [rec] = await audit.read();
    expect(rec).toMatchObject({ kind: 'decision', target: {}, effects: [], decision: { effect: 'ask', ruleId: 'default:unmatched' } });
  });

  it('ask: one approval bound to every effect, a "requested" record naming the decision, the target returned', async () => {
    const effects: PolicyEffect[] = [{ kind: 'pointer', target: other }, { kind: 'keys', target: calc }];
    const r = await gate.checkEffects(click, effects, 'agent/b');
    if (r.effect !== 'ask') throw new Error(`expected ask, got ${r.effect}`);
    expect(r.target).toEqual(other);
    expect(r.auditSeq).toBe(1);
    const pending = approvals.list();
    expect(pending.map((a) => a.id)).toEqual([r.approval.id]);
    expect(pending[0]!.effects).toEqual(effects);
    expect(pending[0]!.target).toEqual(other);
    expect(pending[0]!.binding).toBe(approvals.bindingOf(click, other, effects));
    const recs = await audit.read();
    expect(recs.map((x) => x.kind)).toEqual(['decision', 'approval']);
    expect(recs[1]).toMatchObject({ event: 'requested', approvalId: r.approval.id, decisionSeq: 1 });
    // The pending count is per actor as the gate names it.
    for (let i = 0; i < 7; i++) {
      t += 1000;
      await gate.checkEffects({ ...click, x: i }, effects, 'agent/b');
    }
    t += 1000;
    expect((await refusal(gate.checkEffects({ ...click, x: 99 }, effects, 'agent/b'))).code).toBe('TOO_MANY_PENDING_APPROVALS');
    t += 1000;
    expect((await gate.checkEffects({ ...click, x: 99 }, effects, 'agent/c')).effect).toBe('ask');
  });

  it('halted → HALTED, screen locked → SCREEN_LOCKED: both audited, no approval opened', async () => {
    let locked = false;
    const g = new PolicyGate({ policy: () => policy, halt, approvals, audit, bucket: new TokenBucket({ actionsPerSecond: 100, burst: 100 }, () => t), screenLocked: async () => locked });
    halt.halt('operator', 'stop');
    expect((await refusal(g.checkEffects(click, [{ kind: 'pointer', target: other }], 'agent'))).code).toBe('HALTED');
    halt.resume('operator');
    locked = true;
    expect((await refusal(g.checkEffects(click, [{ kind: 'pointer', target: other }], 'agent'))).code).toBe('SCREEN_LOCKED');
    locked = false;
    expect((await g.checkEffects(click, [{ kind: 'pointer', target: calc }], 'agent')).effect).toBe('allow');
    expect((await audit.read()).map((x) => (x.decision as { ruleId: string }).ruleId)).toEqual(['invariant:halted', 'invariant:screen-locked', 'allow-calc']);
    expect(approvals.list()).toEqual([]);
  });

  it('without a screenLocked query the screen counts as unlocked', async () => {
    expect((await gate.checkEffects(click, [{ kind: 'pointer', target: calc }], 'agent')).effect).toBe('allow');
    expect((await gate.check(click, calc, 'agent')).effect).toBe('allow');
  });

  it('rate limit: RATE_LIMITED with retryAfterMs, recorded as limit:rate with each effect; a denied action takes no token', async () => {
    const fx: PolicyEffect[] = [{ kind: 'pointer', target: calc }];
    // Denied actions never spend the bucket.
    for (let i = 0; i < 3; i++) await refusal(gate.checkEffects(click, [{ kind: 'pointer', target: xterm }], 'agent'));
    expect((await gate.checkEffects(click, fx, 'agent')).effect).toBe('allow');
    expect((await gate.checkEffects(click, fx, 'agent')).effect).toBe('allow');
    const e = await refusal(gate.checkEffects(click, fx, 'agent'));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.details).toEqual({ retryAfterMs: 1000 });
    expect(e.message).toBe('Rate limit exceeded; retry in 1000 ms');
    const rec = (await audit.read()).at(-1)!;
    expect(rec).toMatchObject({ target: calc, effects: [{ kind: 'pointer', effect: 'allow', ruleId: 'allow-calc' }] });
    expect(rec.decision).toEqual({ effect: 'deny', ruleId: 'limit:rate', reason: 'rate limit exceeded; retry in 1000 ms', matched: expect.any(Array) });
    t = 1000;
    expect((await gate.checkEffects(click, fx, 'agent')).effect).toBe('allow');
  });

  it('check (single target) under the rate limit: the same refusal, the matched rules kept', async () => {
    expect((await gate.check(click, calc, 'agent')).effect).toBe('allow');
    expect((await gate.check(click, calc, 'agent')).effect).toBe('allow');
    const e = await refusal(gate.check(click, calc, 'agent'));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.message).toBe('Rate limit exceeded; retry in 1000 ms');
    expect(e.details).toEqual({ retryAfterMs: 1000 });
    const rec = (await audit.read()).at(-1)!;
    expect(rec.decision).toEqual({ effect: 'deny', ruleId: 'limit:rate', reason: 'rate limit exceeded; retry in 1000 ms', matched: ['allow-calc'] });
  });

  it('check ask: the requested record names the decision, the approval keeps the actor', async () => {
    const r = await gate.check(click, other, 'task:7');
    if (r.effect !== 'ask') throw new Error('expected ask');
    const recs = await audit.read();
    expect(recs[1]).toMatchObject({ kind: 'approval', event: 'requested', approvalId: r.approval.id, decisionSeq: r.auditSeq });
    expect(approvals.cancelWhere((a) => a === 'task:7', 'revoked')).toBe(1);
  });
});

describe('wouldAllow', () => {
  it('pure: no record, no token, no approval; the halt state counts', async () => {
    for (let i = 0; i < 5; i++) expect(gate.wouldAllow(click, [{ kind: 'pointer', target: calc }]).effect).toBe('allow');
    expect(gate.wouldAllow(click, [{ kind: 'pointer', target: calc }, { kind: 'keys', target: xterm }])).toMatchObject({ effect: 'deny', ruleId: 'deny-xterm', deciding: 1 });
    expect(gate.wouldAllow(click, [{ kind: 'pointer', target: other }]).effect).toBe('ask');
    halt.halt('operator');
    expect(gate.wouldAllow(click, [{ kind: 'pointer', target: calc }])).toMatchObject({ effect: 'deny', ruleId: 'invariant:halted' });
    halt.resume('operator');
    expect(await audit.read()).toEqual([]);
    expect(approvals.list()).toEqual([]);
    expect(bucket.tryTake(2)).toBe(true);
  });
});

describe('awaitApproval', () => {
  async function asked() {
    const r = await gate.checkEffects(click, [{ kind: 'pointer', target: other }], 'agent');
    if (r.effect !== 'ask') throw new Error('expected ask');
    return r;
  }

  it('approved: returns the outcome and records it settled with the decision it belongs to', async () => {
    const r = await asked();
    approvals.decide(r.approval.id, { decision: 'approve' }, 'alice');
    expect(await gate.awaitApproval(r)).toMatchObject({ id: r.approval.id, decision: 'approve', by: 'alice', via: 'operator' });
    const rec = (await audit.read()).at(-1)!;
    expect(rec).toMatchObject({ kind: 'approval', event: 'settled', approvalId: r.approval.id, decisionSeq: r.auditSeq, outcome: { decision: 'approve', by: 'alice', via: 'operator' } });
  });

  it('denied by the operator: POLICY_DENIED naming the rule, who denied, and details', async () => {
    const r = await asked();
    approvals.decide(r.approval.id, { decision: 'deny' }, 'alice');
    const e = await refusal(gate.awaitApproval(r));
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toBe(`Approval ${r.approval.id} for default:unmatched: denied by alice`);
    expect(e.details).toEqual({ ruleId: 'default:unmatched', approvalId: r.approval.id, via: 'operator' });
  });

  it('timed out: POLICY_DENIED "no decision before the timeout"', async () => {
    approvals.setTimeoutMs(10);
    const r = await asked();
    const e = await refusal(gate.awaitApproval(r));
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toBe(`Approval ${r.approval.id} for default:unmatched: no decision before the timeout`);
    expect(e.details).toMatchObject({ via: 'timeout' });
  });

  it('cancelled while running (shutdown, revoked credential): POLICY_DENIED "cancelled by …", not HALTED', async () => {
    const r = await asked();
    approvals.cancelAll('shutdown');
    const e = await refusal(gate.awaitApproval(r));
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toBe(`Approval ${r.approval.id} for default:unmatched: cancelled by shutdown`);
    expect(e.details).toMatchObject({ via: 'cancelled' });
  });

  it('denied by the operator while halted stays POLICY_DENIED (only a cancellation becomes HALTED)', async () => {
    const r = await asked();
    approvals.decide(r.approval.id, { decision: 'deny' }, 'alice');
    halt.halt('operator');
    expect((await refusal(gate.awaitApproval(r))).code).toBe('POLICY_DENIED');
    halt.resume('operator');
  });

  it('cancelled by a halt: HALTED', async () => {
    const r = await asked();
    halt.halt('operator', 'stop');
    const e = await refusal(gate.awaitApproval(r));
    expect(e.code).toBe('HALTED');
    expect(e.message).toBe(`Approval ${r.approval.id} cancelled: halted`);
    halt.resume('operator');
  });
});

describe('assertApprovalBound and recordResult', () => {
  it('assertApprovalBound consults the approval\'s binding, effects included', async () => {
    const effects: PolicyEffect[] = [{ kind: 'pointer', target: other }, { kind: 'keys', target: calc }];
    const r = await gate.checkEffects(click, effects, 'agent');
    if (r.effect !== 'ask') throw new Error('expected ask');
    expect((() => { try { gate.assertApprovalBound(r, click, other, effects); } catch (e) { return (e as DeskdError).code; } return null; })()).toBe('POLICY_DENIED');
    approvals.decide(r.approval.id, { decision: 'approve' }, 'alice');
    expect(() => gate.assertApprovalBound(r, click, other, effects)).not.toThrow();
    const retitled: PolicyEffect[] = [effects[0]!, { kind: 'keys', target: { ...calc, window: 'Calculator — evil' } }];
    expect(() => gate.assertApprovalBound(r, click, other, retitled)).toThrow(expect.objectContaining({ code: 'TARGET_CHANGED' }));
  });

  it('recordResult writes a result record with the decision it belongs to and every field given', async () => {
    await gate.recordResult(41, { ok: false, error: { code: 'ACTION_FAILED', message: 'boom' }, index: 2 });
    const [rec] = await audit.read();
    expect(rec).toMatchObject({ kind: 'result', decisionSeq: 41, ok: false, error: { code: 'ACTION_FAILED', message: 'boom' }, index: 2 });
  });
});

describe('wireHalt', () => {
  it('halt cancels pending approvals and records who, why and how many; resume is recorded; unsubscribe stops both', async () => {
    const unwire = gate.wireHalt();
    // The gate's own approvals carry the halt signal and are cancelled by it before the listener runs;
    // approvals opened without a signal are the ones the listener cancels and counts.
    const viaGate = await gate.checkEffects(click, [{ kind: 'pointer', target: other }], 'agent');
    const ask = { effect: 'ask' as const, ruleId: 'default:unmatched', reason: 'r', matched: [] };
    const plain = approvals.request({ action: { ...click, x: 9 }, target: other, decision: ask });
    approvals.request({ action: { ...click, x: 10 }, target: other, decision: ask });
    halt.halt('operator', 'coffee');
    expect(approvals.list()).toEqual([]);
    expect(viaGate.effect === 'ask' && (await viaGate.approval.promise)).toMatchObject({ decision: 'deny', via: 'cancelled', by: 'halt' });
    expect(await plain.promise).toMatchObject({ decision: 'deny', via: 'cancelled', by: 'halt' });
    halt.resume('alice');
    await new Promise((r) => setTimeout(r, 50));
    let recs = await audit.read();
    expect(recs.find((x) => x.kind === 'halt')).toMatchObject({ by: 'operator', reason: 'coffee', cancelledApprovals: 2 });
    expect(recs.find((x) => x.kind === 'resume')).toMatchObject({ by: 'alice' });
    unwire();
    const before = recs.length;
    halt.halt('operator');
    halt.resume('operator');
    await new Promise((r) => setTimeout(r, 50));
    recs = await audit.read();
    expect(recs.length).toBe(before);
  });

  it('an audit failure while halting is reported to onError (the halt itself stands)', async () => {
    const errors: unknown[] = [];
    const unwire = gate.wireHalt((e) => errors.push(e));
    await audit.close();
    halt.halt('operator');
    halt.resume('operator');
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toHaveLength(2);
    expect(errors.every((e) => e instanceof DeskdError && e.code === 'AUDIT_WRITE_FAILED')).toBe(true);
    unwire();
  });

  it('the default onError swallows the failure (no unhandled rejection)', async () => {
    const unwire = gate.wireHalt();
    await audit.close();
    halt.halt('operator');
    await new Promise((r) => setTimeout(r, 50));
    expect(halt.halted).toBe(true);
    halt.resume('operator');
    unwire();
  });
});
