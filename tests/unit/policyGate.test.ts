import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { AuditLog, verifyAuditLog } from '../../src/policy/audit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { validatePolicy } from '../../src/policy/parse.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';

const KEY = Buffer.alloc(32, 9);
const policy = validatePolicy({
  version: 1,
  defaults: { unmatched: 'ask' },
  rules: [
    { id: 'allow-calc', effect: 'allow', match: { app: 'gnome-calculator' } },
    { id: 'deny-xterm', effect: 'deny', match: { app: 'xterm' } },
  ],
});
const calc = { app: 'gnome-calculator', pid: 10, window: 'Calculator' };

let dir: string;
let audit: AuditLog;
let approvals: ApprovalManager;
let halt: HaltSwitch;
let locked = false;
let t = 0;
let gate: PolicyGate;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'deskd-gate-'));
  audit = await AuditLog.open({ path: path.join(dir, 'audit.jsonl'), key: KEY });
  approvals = new ApprovalManager({ timeoutMs: 60_000 });
  halt = new HaltSwitch();
  locked = false;
  gate = new PolicyGate({ policy: () => policy, halt, approvals, audit, bucket: new TokenBucket({ actionsPerSecond: 1, burst: 3 }, () => t), screenLocked: () => locked });
});
afterEach(async () => {
  approvals.close();
  await audit.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  return p.then(() => null, (e: unknown) => (e instanceof DeskdError ? e.code : `not a DeskdError: ${String(e)}`));
}

describe('PolicyGate', () => {
  it('allow: writes the decision before returning, then the result; text is masked; chain verifies', async () => {
    const r = await gate.check({ type: 'type', text: '12*12' }, calc, 'agent');
    expect(r).toMatchObject({ effect: 'allow', decision: { ruleId: 'allow-calc' }, auditSeq: 1 });
    await gate.recordResult(r.auditSeq, { ok: true });
    const recs = await audit.read();
    expect(recs.map((x) => [x.kind, x.seq])).toEqual([['decision', 1], ['result', 2]]);
    expect(recs[0]).toMatchObject({ actor: 'agent', action: { type: 'type', text: '***', textLength: 5 }, decision: { effect: 'allow', ruleId: 'allow-calc' } });
    expect(await readFile(path.join(dir, 'audit.jsonl'), 'utf8')).not.toContain('12*12');
    expect(await verifyAuditLog(path.join(dir, 'audit.jsonl'), KEY)).toMatchObject({ ok: true, records: 2 });
  });

  it('deny: audited, then POLICY_DENIED naming the rule', async () => {
    const e = await gate.check({ type: 'type', text: 'ls' }, { app: 'xterm' }, 'agent').catch((x: DeskdError) => x);
    expect(e).toBeInstanceOf(DeskdError);
    expect((e as DeskdError).code).toBe('POLICY_DENIED');
    expect((e as DeskdError).message).toContain('deny-xterm');
    expect((await audit.read())[0]).toMatchObject({ kind: 'decision', decision: { effect: 'deny', ruleId: 'deny-xterm' } });
  });

  it('halted → HALTED and screen locked → SCREEN_LOCKED, both audited', async () => {
    halt.halt('agent');
    expect(await codeOf(gate.check({ type: 'click', x: 1, y: 1 }, calc, 'agent'))).toBe('HALTED');
    halt.resume('operator');
    locked = true;
    expect(await codeOf(gate.check({ type: 'click', x: 1, y: 1 }, calc, 'agent'))).toBe('SCREEN_LOCKED');
    expect((await audit.read()).map((x) => (x.decision as { ruleId: string }).ruleId)).toEqual(['invariant:halted', 'invariant:screen-locked']);
  });

  it('rate limit: past the burst → RATE_LIMITED, audited as limit:rate; refills with time', async () => {
    for (let i = 0; i < 3; i++) expect((await gate.check({ type: 'click', x: 1, y: 1 }, calc, 'agent')).effect).toBe('allow');
    expect(await codeOf(gate.check({ type: 'click', x: 1, y: 1 }, calc, 'agent'))).toBe('RATE_LIMITED');
    expect((await audit.read()).at(-1)).toMatchObject({ decision: { effect: 'deny', ruleId: 'limit:rate' } });
    t += 1000;
    expect((await gate.check({ type: 'click', x: 1, y: 1 }, calc, 'agent')).effect).toBe('allow');
  });

  it('an audit failure refuses the action (fail closed)', async () => {
    await (audit as unknown as { fh: { close(): Promise<void> } }).fh.close();
    expect(await codeOf(gate.check({ type: 'click', x: 1, y: 1 }, calc, 'agent'))).toBe('AUDIT_WRITE_FAILED');
  });

  it('ask: pending until the operator approves; a denial is POLICY_DENIED', async () => {
    const r = await gate.check({ type: 'click', x: 5, y: 5 }, { app: 'gedit' }, 'agent');
    if (r.effect !== 'ask') throw new Error('expected ask');
    expect(approvals.list().map((a) => a.id)).toEqual([r.approval.id]);
    approvals.decide(r.approval.id, { decision: 'approve', scope: 'once' }, 'operator');
    expect(await gate.awaitApproval(r)).toMatchObject({ decision: 'approve', by: 'operator' });
    expect(() => approvals.assertBound(r.approval.id, { type: 'click', x: 5, y: 5 }, { app: 'gedit' })).not.toThrow();

    const r2 = await gate.check({ type: 'click', x: 5, y: 5 }, { app: 'gedit' }, 'agent');
    if (r2.effect !== 'ask') throw new Error('expected ask');
    approvals.decide(r2.approval.id, { decision: 'deny' }, 'operator');
    expect(await codeOf(gate.awaitApproval(r2))).toBe('POLICY_DENIED');
    const kinds = (await audit.read()).map((x) => `${x.kind}:${String(x.event ?? '')}`);
    expect(kinds).toEqual(['decision:', 'approval:requested', 'approval:settled', 'decision:', 'approval:requested', 'approval:settled']);
  });

  it('halting cancels pending approvals (HALTED) and is audited', async () => {
    const unwire = gate.wireHalt();
    const r = await gate.check({ type: 'click', x: 5, y: 5 }, { app: 'gedit' }, 'agent');
    if (r.effect !== 'ask') throw new Error('expected ask');
    const waiting = gate.awaitApproval(r);
    halt.halt('operator', 'stop');
    expect(await codeOf(waiting)).toBe('HALTED');
    halt.resume('operator');
    unwire();
    await audit.close();
    const kinds = (await (await import('../../src/policy/audit.js')).readAuditFile(path.join(dir, 'audit.jsonl'))).map((x) => x.kind);
    expect(kinds).toEqual(expect.arrayContaining(['decision', 'approval', 'halt', 'resume']));
    expect(await verifyAuditLog(path.join(dir, 'audit.jsonl'), KEY)).toMatchObject({ ok: true });
  });
});
