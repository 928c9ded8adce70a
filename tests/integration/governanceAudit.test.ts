/**
 * Issue 17, "Intent and audit": `reason` on actions and batches over HTTP (every spelling) and MCP,
 * `requireReason` refusing before anything is dispatched, audit records with agent, reason, combined policy
 * hash and approving credential, checkpoints, and `audit verify --expect-seq / --against`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGovernanceApp, AGENT, OPERATOR } from '../helpers/governanceApp.js';
import { AuditLog, loadAuditKey, verifyAuditLog } from '../../src/policy/audit.js';
import { runSubcommand, type CliIO } from '../../src/cli/commands.js';
import { reasoningSummary, splitReason, stepReasoning, taskReason } from '../../src/governance/reason.js';

const USER = `version: 1
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
rules:
  - { id: ask-far, effect: ask, match: { actions: [click], region: { x: 0, y: 300, width: 600, height: 100 } } }
  - { id: allow-all, effect: allow, match: {} }
`;
const MANAGED_REQUIRE = `version: 1\nrequireReason: true\n`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-govaudit-'));
  await writeFile(join(dir, 'user.yaml'), USER);
  await writeFile(join(dir, 'managed.yaml'), MANAGED_REQUIRE);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const auth = (t: string) => ({ authorization: `Bearer ${t}` });
const MCP_H = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };

describe('reason and requireReason', () => {
  let h: Awaited<ReturnType<typeof buildGovernanceApp>>;
  beforeAll(async () => {
    h = await buildGovernanceApp({ userPath: join(dir, 'user.yaml'), managedPath: join(dir, 'managed.yaml') });
  });
  afterAll(async () => h.close());

  it.each(['/v1/actions', '/v1/%61ctions', '/v1/x/../actions'])('POST %s without a reason: 400 REASON_REQUIRED, nothing dispatched, the refusal audited', async (url) => {
    h.platform.events.length = 0;
    for (const payload of [{ type: 'click', x: 20, y: 110 }, { actions: [{ type: 'move', x: 5, y: 5 }, { type: 'click', x: 20, y: 110 }] }, { type: 'click', x: 20, y: 110, reason: '   ' }]) {
      const r = await h.app.inject({ method: 'POST', url, headers: auth(AGENT), payload });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.code).toBe('REASON_REQUIRED');
    }
    expect(h.platform.events).toEqual([]);
    const rec = (await h.audit.read({ limit: 5 })).filter((x) => x.kind === 'decision').at(-1)!;
    expect(rec.decision).toMatchObject({ effect: 'deny', ruleId: 'policy:requireReason' });
  });

  it('a reason over 500 characters is refused before anything runs', async () => {
    h.platform.events.length = 0;
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(AGENT), payload: { type: 'click', x: 20, y: 110, reason: 'x'.repeat(501) } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('VALIDATION_FAILED');
    const b = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(AGENT), payload: { actions: [{ type: 'click', x: 20, y: 110, reason: 7 }] } });
    expect(b.statusCode).toBe(400);
    expect(h.platform.events).toEqual([]);
  });

  it('with a reason the action runs; the decision record carries agent, reason and the combined policy hash', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(AGENT), payload: { type: 'click', x: 20, y: 110, reason: 'press 7 to start the sum' } });
    expect(r.statusCode, r.body).toBe(200);
    const rec = (await h.audit.read({ limit: 10 })).filter((x) => x.kind === 'decision').at(-1)!;
    expect(rec).toMatchObject({ actor: 'agent/default', agent: 'default', reason: 'press 7 to start the sum', policyHash: h.store.hashFor('default') });
  });

  it('a batch reason covers each action; an action of the batch may give its own', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(AGENT), payload: { reason: 'the batch', actions: [{ type: 'move', x: 5, y: 5 }, { type: 'click', x: 20, y: 110, reason: 'the click' }] } });
    expect(r.statusCode, r.body).toBe(200);
    const recs = (await h.audit.read({ limit: 10 })).filter((x) => x.kind === 'decision').slice(-2);
    expect(recs.map((x) => x.reason)).toEqual(['the batch', 'the click']);
  });

  it('MCP: an acting tool without a reason is refused (nothing dispatched); with one it runs and is audited', async () => {
    await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: auth(OPERATOR) });
    h.platform.events.length = 0;
    const call = (args: object) => h.app.inject({ method: 'POST', url: '/mcp', headers: { ...auth(AGENT), ...MCP_H }, payload: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click', arguments: args } } });
    const no = await call({ x: 20, y: 110 });
    expect(no.body).toContain('REASON_REQUIRED');
    expect(h.platform.events).toEqual([]);
    const yes = await call({ x: 20, y: 110, reason: 'mcp says why' });
    expect(yes.body).not.toContain('REASON_REQUIRED');
    expect(h.platform.events.length).toBeGreaterThan(0);
    const rec = (await h.audit.read({ limit: 10 })).filter((x) => x.kind === 'decision').at(-1)!;
    expect(rec).toMatchObject({ actor: 'mcp:agent/default', reason: 'mcp says why' });
    const tools = await h.app.inject({ method: 'POST', url: '/mcp', headers: { ...auth(AGENT), ...MCP_H }, payload: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    const list = (tools.body.match(/\{.*\}/s)?.[0] ?? '{}');
    const parsed = JSON.parse(list) as { result: { tools: { name: string; inputSchema: { properties?: Record<string, unknown> } }[] } };
    const byName = new Map(parsed.result.tools.map((t) => [t.name, t]));
    expect(Object.keys(byName.get('click')!.inputSchema.properties ?? {})).toContain('reason');
    expect(Object.keys(byName.get('observe')!.inputSchema.properties ?? {})).not.toContain('reason');
  });

  it('the approving credential is audited with the outcome', async () => {
    await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: auth(OPERATOR) });
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(AGENT), payload: { type: 'click', x: 20, y: 350, reason: 'far click' } });
    expect(r.statusCode, r.body).toBe(202);
    const id = r.json().approvals[0].id as string;
    const d = await h.app.inject({ method: 'POST', url: `/v1/approvals/${id}`, headers: { ...auth(OPERATOR), 'x-deskd-client': 'alice' }, payload: { decision: 'approve' } });
    expect(d.statusCode, d.body).toBe(200);
    await h.app.inject({ method: 'GET', url: `/v1/actions/${r.json().actionId}?waitMs=3000`, headers: auth(AGENT) });
    await expect.poll(async () => (await h.audit.read({ limit: 20 })).find((x) => x.kind === 'approval' && x.event === 'settled' && x.approvalId === id)?.outcome).toMatchObject({ decision: 'approve', by: 'operator/alice' });
  });
});

describe('task loop reasons', () => {
  it('the reasoning summary wins, then the step text, then the goal; cut to 500 characters', () => {
    const step = { text: 'I will click 7' };
    expect(taskReason(step, 'add numbers')).toBe('I will click 7');
    expect(taskReason({ text: null }, 'add numbers')).toBe('add numbers');
    const s2 = { text: 'x' };
    stepReasoning.set(s2, reasoningSummary([{ type: 'reasoning', summary: [{ type: 'summary_text', text: 'Need the 7 key first.' }] }, { type: 'message' }])!);
    expect(taskReason(s2, 'g')).toBe('Need the 7 key first.');
    expect(taskReason({ text: null }, 'g'.repeat(900))).toHaveLength(500);
    expect(reasoningSummary([{ type: 'message' }])).toBeNull();
  });

  it('splitReason takes reasons out of single actions and batches', () => {
    expect(splitReason({ type: 'click', x: 1, y: 2, reason: 'r' })).toEqual({ body: { type: 'click', x: 1, y: 2 }, reason: 'r' });
    expect(splitReason({ actions: [{ type: 'wait', reason: 'a' }, { type: 'wait' }], reason: 'b' })).toEqual({ body: { actions: [{ type: 'wait' }, { type: 'wait' }] }, reason: 'b', reasons: ['a', undefined] });
    expect(() => splitReason({ type: 'wait', reason: 'x'.repeat(501) })).toThrow(/500/);
  });
});

describe('checkpoints and truncation', () => {
  function cli(env: NodeJS.ProcessEnv) {
    const out: string[] = [];
    const io: CliIO = { out: (t) => void out.push(t), err: () => undefined, env, version: 't' };
    return { io, out };
  }

  it('a checkpoint every N records; verify --expect-seq and --against detect records cut off the end', async () => {
    const cdir = await mkdtemp(join(dir, 'cp-'));
    const file = join(cdir, 'audit.jsonl');
    const keyPath = join(cdir, 'audit.key');
    const log = await AuditLog.open({ path: file, keyPath, checkpointEvery: 3 });
    for (let i = 0; i < 7; i++) await log.append('decision', { i });
    await log.checkpoint();
    await log.close();
    const recs = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { seq: number; kind: string; checkpoint?: { seq: number; mac: string } });
    const cps = recs.filter((r) => r.kind === 'checkpoint');
    expect(cps.map((c) => c.checkpoint!.seq)).toEqual([3, 7, 9]);
    for (const c of cps) expect(recs.find((r) => r.seq === c.checkpoint!.seq)).toMatchObject({ mac: c.checkpoint!.mac });
    const key = await loadAuditKey(keyPath, { create: false });
    expect((await verifyAuditLog(file, key)).ok).toBe(true);

    const env = { DESKD_CONFIG_DIR: cdir };
    const copy = join(cdir, 'shipped.jsonl');
    await copyFile(file, copy);
    expect(await runSubcommand('audit', ['verify', file, '--expect-seq', String(recs.length), '--against', copy], cli(env).io)).toBe(0);

    // Cut the last three records: the chain still verifies, the truncation checks do not.
    await writeFile(file, recs.slice(0, -3).map((r) => JSON.stringify(r)).join('\n') + '\n');
    expect((await verifyAuditLog(file, key)).ok).toBe(true);
    const a = cli(env);
    expect(await runSubcommand('audit', ['verify', file, '--expect-seq', String(recs.length)], a.io)).toBe(1);
    expect(a.out.join('\n')).toContain('TRUNCATED');
    const b = cli(env);
    expect(await runSubcommand('audit', ['verify', file, '--against', copy], b.io)).toBe(1);
    expect(b.out.join('\n')).toMatch(/missing from the log/);
    expect(await runSubcommand('audit', ['verify', file, '--expect-seq', 'x'], cli(env).io)).toBe(2);
  });
});
