/**
 * Issue 17, "Layered policy", through the real app on the fake platform: a managed deny holds against a
 * user policy that allows everything on every input path (HTTP in several spellings, MCP, named agents),
 * an agent overlay narrows one agent, a signed managed policy refuses to load when tampered with or
 * unsigned (and keeps the last good one on reload), explain over HTTP and the CLI, sign/verify on the CLI.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGovernanceApp, AGENT, OPERATOR } from '../helpers/governanceApp.js';
import { LayeredPolicyStore } from '../../src/governance/policyStore.js';
import { generatePolicyKeys, signPolicyBytes } from '../../src/governance/signing.js';
import { policyCommand } from '../../src/governance/cli.js';
import type { CliIO } from '../../src/cli/commands.js';

const USER_ALLOW_ALL = `version: 1
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
rules:
  - { id: allow-all, effect: allow, match: {} }
`;
const MANAGED = `version: 1
rules:
  - { id: no-calc, effect: deny, description: the organisation forbids the calculator, match: { app: calc } }
`;
const OVERLAY_NO_CLICKS = `version: 1
rules:
  - { id: no-clicks, effect: deny, match: { actions: [click, double_click] } }
  - { id: rest, effect: allow, match: {} }
`;

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const x: CliIO = { out: (t) => void out.push(t), err: (t) => void err.push(t), env, version: 't' };
  return { io: x, out, err };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-govpol-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('managed deny over every input path', () => {
  let h: Awaited<ReturnType<typeof buildGovernanceApp>>;
  beforeAll(async () => {
    await writeFile(join(dir, 'user.yaml'), USER_ALLOW_ALL);
    await writeFile(join(dir, 'managed.yaml'), MANAGED);
    await writeFile(join(dir, 'overlay.yaml'), OVERLAY_NO_CLICKS);
    h = await buildGovernanceApp({ userPath: join(dir, 'user.yaml'), managedPath: join(dir, 'managed.yaml') });
  });
  afterAll(async () => h.close());

  const auth = (t: string) => ({ authorization: `Bearer ${t}` });

  it.each(['/v1/actions', '/v1/%61ctions', '/v1/./actions', '/v1/x/../actions'])('POST %s click on the calculator: 403 POLICY_DENIED by managed:no-calc, nothing dispatched', async (url) => {
    h.platform.events.length = 0;
    const r = await h.app.inject({ method: 'POST', url, headers: auth(AGENT), payload: { type: 'click', x: 20, y: 110 } });
    expect(r.statusCode, r.body).toBe(403);
    expect(r.json().error.code).toBe('POLICY_DENIED');
    expect(r.json().error.message).toContain('managed:no-calc');
    expect(h.platform.events).toEqual([]);
  });

  it('MCP click on the calculator is refused by the managed rule, nothing dispatched', async () => {
    h.platform.events.length = 0;
    const r = await h.app.inject({ method: 'POST', url: '/mcp', headers: { ...auth(AGENT), accept: 'application/json, text/event-stream', 'content-type': 'application/json' }, payload: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click', arguments: { x: 20, y: 110 } } } });
    expect(r.body).toContain('managed:no-calc');
    expect(h.platform.events).toEqual([]);
  });

  it('a named actor agent is held by the managed rule too; the audit record names the agent and the combined policy hash', async () => {
    const add = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: auth(OPERATOR), payload: { id: 'bot', role: 'actor' } });
    const token = add.json().token as string;
    await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: auth(OPERATOR) });
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(token), payload: { type: 'click', x: 20, y: 110 } });
    expect(r.statusCode, r.body).toBe(403);
    const rec = (await h.audit.read({ limit: 20 })).filter((x) => x.kind === 'decision').at(-1)!;
    expect(rec).toMatchObject({ actor: 'agent:bot/default', agent: 'bot', policyHash: h.store.hashFor('bot') });
    expect(rec.policyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(rec.policyHash).not.toBe(h.store.user.hash);
    expect((rec.decision as { ruleId: string }).ruleId).toBe('managed:no-calc');
  });

  it("an agent's overlay narrows that agent only", async () => {
    const managedFree = await buildGovernanceApp({ userPath: join(dir, 'user.yaml'), managedPath: null });
    try {
      const add = await managedFree.app.inject({ method: 'POST', url: '/v1/agents', headers: auth(OPERATOR), payload: { id: 'narrow', role: 'actor', policy: join(dir, 'overlay.yaml') } });
      expect(add.statusCode, add.body).toBe(200);
      const token = add.json().token as string;
      await expect.poll(() => managedFree.store.layersFor(managedFree.agents.get('narrow')).agent?.policy.rules.length).toBe(2);
      const denied = await managedFree.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(token), payload: { type: 'click', x: 20, y: 110 } });
      expect(denied.statusCode, denied.body).toBe(403);
      expect(denied.json().error.message).toContain('agent:narrow:no-clicks');
      await managedFree.app.inject({ method: 'DELETE', url: '/v1/lease', headers: auth(OPERATOR) });
      const ok = await managedFree.app.inject({ method: 'POST', url: '/v1/actions', headers: auth(AGENT), payload: { type: 'click', x: 20, y: 110 } });
      expect(ok.statusCode, ok.body).toBe(200);
      // An overlay file that does not parse is refused when the agent is added.
      await writeFile(join(dir, 'bad-overlay.yaml'), 'version: 2\n');
      const bad = await managedFree.app.inject({ method: 'POST', url: '/v1/agents', headers: auth(OPERATOR), payload: { id: 'bad', role: 'actor', policy: join(dir, 'bad-overlay.yaml') } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe('POLICY_INVALID');
    } finally {
      await managedFree.close();
    }
  });

  it('GET /v1/policy/explain shows each layer and the decision (operator only)', async () => {
    const q = `action=${encodeURIComponent(JSON.stringify({ type: 'click', x: 1, y: 1 }))}&target=${encodeURIComponent(JSON.stringify({ app: 'calc' }))}`;
    const r = await h.app.inject({ method: 'GET', url: `/v1/policy/explain?${q}`, headers: auth(OPERATOR) });
    expect(r.statusCode, r.body).toBe(200);
    const x = r.json();
    expect(x.decision).toMatchObject({ effect: 'deny', ruleId: 'managed:no-calc' });
    expect(x.layers.map((l: { layer: string; effect: string | null }) => `${l.layer}:${l.effect}`)).toEqual(['managed:deny', 'user:allow']);
    expect(x.layers[1].matched).toEqual(['allow-all']);
    const agentTry = await h.app.inject({ method: 'GET', url: `/v1/policy/explain?${q}`, headers: auth(AGENT) });
    expect(agentTry.statusCode).toBe(403);
    const bad = await h.app.inject({ method: 'GET', url: `/v1/policy/explain?action=${encodeURIComponent('{"type":"fly"}')}`, headers: auth(OPERATOR) });
    expect(bad.statusCode).toBe(400);
    // Typed text is never echoed.
    const typed = await h.app.inject({ method: 'GET', url: `/v1/policy/explain?action=${encodeURIComponent(JSON.stringify({ type: 'type', text: 'hunter2-secret' }))}`, headers: auth(OPERATOR) });
    expect(typed.statusCode).toBe(200);
    expect(typed.body).not.toContain('hunter2-secret');
  });
});

describe('signed managed policy', () => {
  let sdir: string;
  let keyFile: string;
  let managed: string;
  beforeAll(async () => {
    sdir = await mkdtemp(join(dir, 'signed-'));
    const c = io();
    expect(await policyCommand(['keygen', '--out', sdir], c.io)).toBe(0);
    keyFile = join(sdir, 'managed-policy.key');
    managed = join(sdir, 'managed-policy.yaml');
    await writeFile(managed, MANAGED);
  });

  it('deskd policy sign / verify round trip; verify fails after a one-byte change', async () => {
    expect(await policyCommand(['sign', managed, '--key', keyFile], io().io)).toBe(0);
    const v = io();
    expect(await policyCommand(['verify', managed], v.io)).toBe(0);
    expect(v.out.join('\n')).toContain('ok');
    const copy = join(sdir, 'copy.yaml');
    await writeFile(copy, MANAGED + '#');
    await writeFile(`${copy}.sig`, await readFile(`${managed}.sig`));
    await expect(policyCommand(['verify', copy, '--pub', join(sdir, 'managed-policy.pub')], io().io)).rejects.toThrow(/does not verify/);
  });

  it('a valid signature loads; a tampered file, a missing or foreign signature stop start-up with POLICY_INVALID', async () => {
    await policyCommand(['sign', managed, '--key', keyFile], io().io);
    const ok = await LayeredPolicyStore.open({ userPath: null, managedPath: managed, watch: false });
    expect(ok.managedPolicy?.rules[0]?.id).toBe('no-calc');
    ok.close();

    const tdir = await mkdtemp(join(dir, 'tamper-'));
    const t = join(tdir, 'managed-policy.yaml');
    await writeFile(join(tdir, 'managed-policy.pub'), await readFile(join(sdir, 'managed-policy.pub')));
    // Missing signature.
    await writeFile(t, MANAGED);
    await expect(LayeredPolicyStore.open({ userPath: null, managedPath: t, watch: false })).rejects.toMatchObject({ code: 'POLICY_INVALID' });
    // Signature of other bytes (the rule removed, signature kept).
    await writeFile(`${t}.sig`, await readFile(`${managed}.sig`));
    await writeFile(t, 'version: 1\n');
    await expect(LayeredPolicyStore.open({ userPath: null, managedPath: t, watch: false })).rejects.toMatchObject({ code: 'POLICY_INVALID' });
    // Signed by another key.
    const other = generatePolicyKeys();
    await writeFile(`${t}.sig`, signPolicyBytes('version: 1\n', other.privateKeyPem));
    await expect(LayeredPolicyStore.open({ userPath: null, managedPath: t, watch: false })).rejects.toMatchObject({ code: 'POLICY_INVALID' });
  });

  it('on reload a tampered managed policy is refused and the last good one stays in force', async () => {
    await policyCommand(['sign', managed, '--key', keyFile], io().io);
    await writeFile(join(dir, 'user2.yaml'), USER_ALLOW_ALL);
    const store = await LayeredPolicyStore.open({ userPath: join(dir, 'user2.yaml'), managedPath: managed, watch: false });
    const events: Array<{ ok: boolean; layer?: string }> = [];
    store.on('reload', (r) => events.push({ ok: r.ok, ...(r.layer ? { layer: r.layer } : {}) }));
    await appendFile(managed, '\n# loosened by someone\n');
    await store.reload();
    expect(events).toContainEqual({ ok: false, layer: 'managed' });
    expect(store.managedPolicy?.rules.map((r) => r.id)).toEqual(['no-calc']);
    expect(store.evaluate({ kind: 'action', action: { type: 'click', x: 1, y: 1 }, target: { app: 'calc' } }).effect).toBe('deny');
    store.close();
  });
});

describe('explain never logs the text it is asked about', () => {
  it('the action and target query values are redacted from the request log', async () => {
    const { pino } = await import('pino');
    const { Writable } = await import('node:stream');
    const { buildHardenedApp } = await import('../helpers/hardeningApp.js');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
    const h = await buildHardenedApp({ logger });
    try {
      const q = `action=${encodeURIComponent(JSON.stringify({ type: 'type', text: 'hunter2-logged?' }))}&target=${encodeURIComponent(JSON.stringify({ window: 'Bank secret window' }))}`;
      await h.app.inject({ method: 'GET', url: `/v1/policy/explain?${q}`, headers: { authorization: `Bearer ${OPERATOR}` } });
      await h.app.inject({ method: 'GET', url: `/v1/policy/explain?%61ction=${encodeURIComponent('{"type":"type","text":"hunter2-logged?"}')}`, headers: { authorization: `Bearer ${OPERATOR}` } });
      const all = lines.join('');
      expect(all).toContain('/v1/policy/explain');
      expect(all).toContain('[redacted]');
      expect(all).not.toContain('hunter2');
      expect(all).not.toContain('Bank%20secret');
      expect(all).not.toContain('Bank secret');
    } finally {
      await h.close();
    }
  });
});

describe('deskd policy explain (local)', () => {
  it('prints each layer and the decision', async () => {
    await writeFile(join(dir, 'u.yaml'), USER_ALLOW_ALL);
    await writeFile(join(dir, 'm.yaml'), MANAGED);
    const c = io();
    expect(await policyCommand(['explain', JSON.stringify({ type: 'click', x: 1, y: 1 }), '--target', JSON.stringify({ app: 'calc' }), '--policy', join(dir, 'u.yaml'), '--managed', join(dir, 'm.yaml')], c.io)).toBe(0);
    const text = c.out.join('\n');
    expect(text).toContain('decision: deny by managed:no-calc');
    expect(text).toMatch(/managed .*deny/);
    expect(text).toMatch(/user .*allow/);
    const j = io();
    await policyCommand(['explain', JSON.stringify({ type: 'click', x: 1, y: 1 }), '--target', JSON.stringify({ app: 'xterm' }), '--policy', join(dir, 'u.yaml'), '--managed', join(dir, 'm.yaml'), '--json'], j.io);
    expect(JSON.parse(j.out.join('')).decision.effect).toBe('allow');
  });
});
