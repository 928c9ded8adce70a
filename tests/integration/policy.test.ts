import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { verifyAuditLog, loadAuditKey } from '../../src/policy/audit.js';
import { buildPolicyApp, AGENT_TOKEN, OPERATOR_TOKEN } from '../helpers/testApp.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
approvals: { timeoutMs: 5000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-calculator, effect: allow, match: { app: ["gnome-calculator"] } }
  - { id: deny-xterm, effect: deny, match: { app: ["xterm"] } }
  - { id: ask-escape, effect: ask, match: { app: ["gnome-calculator"], keys: ["escape"] } }
`;

const agent = { authorization: `Bearer ${AGENT_TOKEN}` };
const operator = { authorization: `Bearer ${OPERATOR_TOKEN}` };

let platform: FakePlatform;
let t: Awaited<ReturnType<typeof buildPolicyApp>>;

beforeEach(async () => {
  platform = createFakePlatform({
    windows: [
      { id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } },
      { id: '0xb', app: 'xterm', pid: 11, wmClass: 'XTerm', title: 'bash', bounds: { x: 600, y: 0, width: 680, height: 800 } },
    ],
  });
  platform.focusedWindowId = '0xa';
  t = await buildPolicyApp(platform, POLICY);
});
afterEach(async () => t.close());

const act = (payload: unknown, headers = agent) => t.app.inject({ method: 'POST', url: '/v1/actions', headers, payload: payload as object });

describe('perception is gated', () => {
  it('a masked app is blacked out in screenshots and left out of OCR and accessibility results', async () => {
    await t.close();
    platform.fill = [250, 250, 250, 255];
    platform.tree = [
      { handle: 'x1', role: 'application', platformRole: 'application', name: 'xterm', bounds: null, states: [], actions: [], children: [
        { handle: 'x2', role: 'textbox', platformRole: 'terminal', name: 'secret terminal', bounds: { x: 650, y: 50, width: 200, height: 100 }, states: [], actions: [], children: [] },
      ] },
      { handle: 'c1', role: 'application', platformRole: 'application', name: 'gnome-calculator', bounds: null, states: [], actions: [], children: [
        { handle: 'c2', role: 'button', platformRole: 'push button', name: '7', bounds: { x: 50, y: 50, width: 40, height: 40 }, states: [], actions: ['click'], children: [] },
      ] },
    ];
    const ocr = {
      async recognize() {
        return {
          words: [{ text: 'hunter2', bounds: { x: 700, y: 60, width: 60, height: 16 }, confidence: 0.9 }, { text: 'Calculator', bounds: { x: 100, y: 10, width: 80, height: 16 }, confidence: 0.9 }],
          lines: [{ text: 'hunter2', bounds: { x: 700, y: 60, width: 60, height: 16 } }, { text: 'Calculator', bounds: { x: 100, y: 10, width: 80, height: 16 } }],
        };
      },
    };
    t = await buildPolicyApp(platform, POLICY + 'perception:\n  mask: ["xterm"]\n', ocr);
    const o = (await t.app.inject({ method: 'POST', url: '/v1/observe', headers: agent, payload: {} })).json();
    const text = JSON.stringify(o);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('secret terminal');
    expect(o.elements.map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(['7', 'Calculator']));
    expect(o.warnings.join(' ')).toMatch(/masked by policy/);
    const shot = await t.app.inject({ method: 'GET', url: '/v1/screenshot?format=png', headers: agent });
    const sharp = (await import('sharp')).default;
    const { data, info } = await sharp(shot.rawPayload).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => data[(y * info.width + x) * info.channels]!;
    expect(px(700, 100)).toBe(0); // inside the xterm: masked
    expect(px(100, 100)).toBe(250); // inside the calculator: visible
  });
});

describe('policy on /v1/actions (fake platform, real engine, real audit log)', () => {
  it('allows a click in an allowed app and audits decision then result', async () => {
    const r = await act({ type: 'click', x: 100, y: 100 });
    expect(r.statusCode).toBe(200);
    expect(platform.events.length).toBe(3);
    const kinds = (await t.audit.read({ limit: 10 })).map((x) => x.kind);
    expect(kinds).toEqual(['decision', 'result']);
  });

  it('denies a click in the xterm with 403 POLICY_DENIED naming the rule; nothing dispatched; audited', async () => {
    const r = await act({ actions: [{ type: 'click', x: 100, y: 100 }, { type: 'click', x: 700, y: 100 }] });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('POLICY_DENIED');
    expect(r.json().error.message).toContain('deny-xterm');
    expect(platform.events).toEqual([]);
    const recs = await t.audit.read({ limit: 10 });
    expect(recs.some((x) => x.kind === 'decision' && JSON.stringify(x).includes('deny-xterm'))).toBe(true);
  });

  it('typing into the focused xterm is denied and delivers nothing', async () => {
    platform.focusedWindowId = '0xb';
    const r = await act({ type: 'type', text: 'rm -rf /' });
    expect(r.json().error.code).toBe('POLICY_DENIED');
    expect(platform.events).toEqual([]);
    expect(await readFile(t.auditPath, 'utf8')).not.toContain('rm -rf');
  });

  it('an ask waits for the operator: 202, agent cannot approve (403), operator approves, the action happens; a replayed decision → 409', async () => {
    const r = await act({ type: 'keypress', keys: ['ESC'] });
    expect(r.statusCode).toBe(202);
    const { actionId, approvals } = r.json();
    expect(approvals[0].ruleId).toBe('ask-escape');
    expect(platform.events).toEqual([]);

    const agentList = await t.app.inject({ method: 'GET', url: '/v1/approvals', headers: agent });
    expect(agentList.statusCode).toBe(403);
    expect(agentList.json().error.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
    const agentDecide = await t.app.inject({ method: 'POST', url: `/v1/approvals/${approvals[0].id}`, headers: agent, payload: { decision: 'approve' } });
    expect(agentDecide.statusCode).toBe(403);

    const list = await t.app.inject({ method: 'GET', url: '/v1/approvals', headers: operator });
    expect(list.json().approvals.map((a: { id: string }) => a.id)).toContain(approvals[0].id);
    const ok = await t.app.inject({ method: 'POST', url: `/v1/approvals/${approvals[0].id}`, headers: operator, payload: { decision: 'approve', scope: 'once' } });
    expect(ok.statusCode).toBe(200);
    const done = await t.app.inject({ method: 'GET', url: `/v1/actions/${actionId}?waitMs=5000`, headers: agent });
    expect(done.json().status).toBe('done');
    expect(platform.events).toEqual([{ kind: 'keydown', key: 'escape' }, { kind: 'keyup', key: 'escape' }]);

    const replay = await t.app.inject({ method: 'POST', url: `/v1/approvals/${approvals[0].id}`, headers: operator, payload: { decision: 'approve' } });
    expect(replay.statusCode).toBe(409);
    expect(replay.json().error.code).toBe('APPROVAL_ALREADY_DECIDED');
  });

  it('focus moved to another window between decision and dispatch → TARGET_CHANGED, nothing typed', async () => {
    const r = await act({ type: 'keypress', keys: ['escape'] });
    expect(r.statusCode).toBe(202);
    platform.focusedWindowId = '0xb';
    await t.app.inject({ method: 'POST', url: `/v1/approvals/${r.json().approvals[0].id}`, headers: operator, payload: { decision: 'approve' } });
    const out = await t.app.inject({ method: 'GET', url: `/v1/actions/${r.json().actionId}?waitMs=5000`, headers: agent });
    expect(out.json()).toMatchObject({ status: 'failed', error: { code: 'TARGET_CHANGED' } });
    expect(platform.events).toEqual([]);
  });

  it('a denied approval fails the batch with POLICY_DENIED', async () => {
    const r = await act({ type: 'keypress', keys: ['escape'] });
    await t.app.inject({ method: 'POST', url: `/v1/approvals/${r.json().approvals[0].id}`, headers: operator, payload: { decision: 'deny' } });
    const out = await t.app.inject({ method: 'GET', url: `/v1/actions/${r.json().actionId}?waitMs=5000`, headers: agent });
    expect(out.json()).toMatchObject({ status: 'failed', error: { code: 'POLICY_DENIED' } });
    expect(platform.events).toEqual([]);
  });

  it('halt (agent) refuses new actions with HALTED; only the operator can resume', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/v1/halt', headers: agent, payload: {} })).statusCode).toBe(200);
    const r = await act({ type: 'click', x: 10, y: 10 });
    expect(r.statusCode).toBe(423);
    expect(r.json().error.code).toBe('HALTED');
    expect((await t.app.inject({ method: 'POST', url: '/v1/resume', headers: agent, payload: {} })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'POST', url: '/v1/resume', headers: operator, payload: {} })).statusCode).toBe(200);
    expect((await act({ type: 'click', x: 10, y: 10 })).statusCode).toBe(200);
    expect(platform.events.length).toBe(3);
  });

  it('a locked screen refuses actions with SCREEN_LOCKED', async () => {
    platform.locked = true;
    const r = await act({ type: 'click', x: 10, y: 10 });
    expect(r.json().error.code).toBe('SCREEN_LOCKED');
    expect(platform.events).toEqual([]);
  });

  it('the audit log verifies, and editing one line makes verification fail at that line', async () => {
    await act({ type: 'click', x: 100, y: 100 });
    await act({ type: 'click', x: 700, y: 100 });
    await act({ type: 'click', x: 110, y: 100 });
    const key = await loadAuditKey(t.keyPath);
    expect((await verifyAuditLog(t.auditPath, key)).ok).toBe(true);
    const lines = (await readFile(t.auditPath, 'utf8')).split('\n');
    const edited = lines.findIndex((l, i) => i > 0 && l.includes('"ok":true'));
    expect(edited).toBeGreaterThan(0);
    lines[edited] = lines[edited]!.replace('"ok":true', '"ok":false');
    await writeFile(t.auditPath, lines.join('\n'));
    const v = await verifyAuditLog(t.auditPath, key);
    expect(v.ok).toBe(false);
    expect(v.ok === false && v.line).toBe(edited + 1);
    const viaApi = await t.app.inject({ method: 'GET', url: '/v1/audit?limit=2', headers: agent });
    expect(viaApi.statusCode).toBe(403);
  });
});

describe('keys after a click in the same batch', () => {
  it('are decided for the clicked window, and re-checked against the real focus at dispatch', async () => {
    platform.focusedWindowId = '0xb'; // the xterm has the focus before the batch
    const ok = await act({ actions: [{ type: 'click', x: 100, y: 100 }, { type: 'type', text: '12' }] });
    // Decided for the calculator (allowed); at dispatch the fake focus is still the xterm → TARGET_CHANGED.
    expect(ok.statusCode).toBe(409);
    expect(ok.json().error.code).toBe('TARGET_CHANGED');
    expect(platform.events.filter((e) => e.kind === 'type')).toEqual([]);
    platform.focusedWindowId = '0xa';
    const r = await act({ actions: [{ type: 'click', x: 100, y: 100 }, { type: 'type', text: '12' }] });
    expect(r.statusCode).toBe(200);
    expect(platform.events.filter((e) => e.kind === 'type')).toEqual([{ kind: 'type', text: '12' }]);
  });
});

describe('the kill switch cancels work already under way', () => {
  it('a halt during a running batch stops it: the wait ends with HALTED and the later type is never dispatched', async () => {
    const pending = act({ actions: [{ type: 'click', x: 100, y: 100 }, { type: 'wait', ms: 3000 }, { type: 'type', text: 'after-halt' }] });
    await new Promise((r) => setTimeout(r, 300));
    expect((await t.app.inject({ method: 'POST', url: '/v1/halt', headers: agent, payload: {} })).statusCode).toBe(200);
    const r = await pending;
    expect(r.statusCode).toBe(423);
    expect(r.json().error.code).toBe('HALTED');
    expect(platform.events.filter((e) => e.kind === 'type')).toEqual([]);
    expect(platform.events.filter((e) => e.kind === 'down')).toHaveLength(1); // the click before the halt
  });
});
