/**
 * Issue 17, "Agents and roles", against the real app (guards, auth, lease, policy gate, audit, executor)
 * on the fake platform, over a real socket (raw paths are sent byte for byte):
 * named credentials stored only as hashes, the observer role refused on every acting path (HTTP in every
 * spelling, MCP in every spelling, tasks, the lease), revocation within 1 s with the agent's pending
 * approvals denied and an audit record, and the lease naming the agent.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildHardenedApp, AGENT, OPERATOR } from '../helpers/hardeningApp.js';
import { errorCode, rawRequest } from '../helpers/rawHttp.js';
import { AgentRegistry, agentOfActor, observerMayCall, principalOf, tokenHash } from '../../src/governance/agents.js';
import { clientIdentity } from '../../src/http/lease.js';

type H = Awaited<ReturnType<typeof buildHardenedApp>>;

const raw = rawRequest;
const code = errorCode;
const bearer = (t: string, client?: string) => ({ authorization: `Bearer ${t}`, ...(client ? { 'x-deskd-client': client } : {}) });
const op = bearer(OPERATOR);
const MCP_ACCEPT = { accept: 'application/json, text/event-stream' };

/** Spellings of `/v1/actions` (see security-http.test.ts). */
const ACTION_PATHS = ['/v1/actions', '/v1/%61ctions', '/%76%31/%61%63%74%69%6f%6e%73', '/v1/%41ctions', '//v1/actions', '/v1/actions/', '/V1/ACTIONS', '/v1/actions;x=1', '/v1/x/../actions', '/v1/./actions', '/v1/%2e/actions', '/v1/x/%2e%2e/actions', '/v1%2factions', '/v1/actions?x=1', '/v1/health/../actions'];
const MCP_PATHS = ['/mcp', '/%6dcp', '/mc%70', '/MCP', '/mcp/', '//mcp', '/mcp;x', '/x/../mcp', '/./mcp', '/%2e/mcp'];

const ASK_CLICKS = `
version: 1
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
rules:
  - { id: ask-right-click, effect: ask, match: { actions: [click], region: { x: 0, y: 300, width: 600, height: 100 } } }
  - { id: allow-all, effect: allow, match: {} }
`;

describe('issue 17: named agent credentials and roles', () => {
  let h: H;
  let port: number;
  let agents: AgentRegistry;
  let file: string;
  let builder: string;
  let reader: string;

  beforeAll(async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'deskd-agents-'));
    file = join(dir, 'agents.json');
    agents = await AgentRegistry.open(file);
    h = await buildHardenedApp({ policy: ASK_CLICKS, extra: { governance: { agents } } });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    port = (h.app.server.address() as { port: number }).port;
    const a = await raw(port, 'POST', '/v1/agents', op, { id: 'builder', role: 'actor' });
    expect(a.status, a.body).toBe(200);
    builder = (JSON.parse(a.body) as { token: string }).token;
    const b = await raw(port, 'POST', '/v1/agents', op, { id: 'reader', role: 'observer' });
    expect(b.status, b.body).toBe(200);
    reader = (JSON.parse(b.body) as { token: string }).token;
  });
  afterAll(async () => h.close());

  it('tokens are stored only as hashes, in a 0600 file; the list never shows them', async () => {
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(builder);
    expect(text).not.toContain(reader);
    expect(text).toContain(tokenHash(builder));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const l = await raw(port, 'GET', '/v1/agents', op);
    expect(l.status).toBe(200);
    expect(l.body).not.toContain(tokenHash(builder));
    expect(l.body).not.toContain(builder);
    expect((JSON.parse(l.body) as { agents: { id: string; role: string }[] }).agents.map((a) => `${a.id}:${a.role}`)).toEqual(['builder:actor', 'reader:observer']);
    // A fresh registry from the file knows the token by its hash.
    expect((await AgentRegistry.open(file)).authenticate(builder)).toEqual({ id: 'builder', role: 'actor' });
  });

  it('only the operator manages agents: agent tokens (default and named) get 403, no token 401; reserved and duplicate ids are refused', async () => {
    for (const t of [AGENT, builder, reader]) {
      for (const [m, p, b] of [['POST', '/v1/agents', { id: 'x1', role: 'actor' }], ['GET', '/v1/agents', undefined], ['DELETE', '/v1/agents/reader', undefined], ['GET', '/v1/%61gents', undefined]] as const) {
        const r = await raw(port, m, p, bearer(t), b);
        expect(r.status, `${m} ${p}: ${r.body}`).toBe(403);
        expect(code(r)).toBe('FORBIDDEN_FOR_CREDENTIAL');
      }
    }
    expect((await raw(port, 'GET', '/v1/agents')).status).toBe(401);
    for (const id of ['default', 'operator', 'builder', 'a/b', 'a:b', '']) {
      const r = await raw(port, 'POST', '/v1/agents', op, { id, role: 'actor' });
      expect(r.status, `${id}: ${r.body}`).toBe(400);
    }
    expect((await raw(port, 'POST', '/v1/agents', op, { id: 'x2', role: 'admin' })).status).toBe(400);
  });

  it('an actor agent acts; the audit actor and the lease name the agent, and no client header of the default token collides with it', async () => {
    h.platform.events.length = 0;
    const r = await raw(port, 'POST', '/v1/actions', bearer(builder), { type: 'click', x: 20, y: 110 });
    expect(r.status, r.body).toBe(200);
    expect(h.platform.events.length).toBeGreaterThan(0);
    const lease = JSON.parse((await raw(port, 'GET', '/v1/lease', bearer(builder))).body) as { lease: { holder: string } | null; you: string };
    expect(lease.lease?.holder).toBe('agent:builder/default');
    expect(lease.you).toBe('agent:builder/default');
    // The default token claiming the client id "builder" is another holder: refused while builder holds it.
    const other = await raw(port, 'POST', '/v1/actions', bearer(AGENT, 'builder'), { type: 'click', x: 20, y: 110 });
    expect(other.status, other.body).toBe(409);
    const recs = await h.audit.read({ limit: 50 });
    const decision = recs.filter((x) => x.kind === 'decision').at(-1)!;
    expect(decision.actor).toBe('agent:builder/default');
    await raw(port, 'DELETE', '/v1/lease', op);
  });

  it('an observer may screenshot, observe, find, wait, read windows and halt state', async () => {
    expect((await raw(port, 'GET', '/v1/screenshot', bearer(reader))).status).toBe(200);
    expect((await raw(port, 'POST', '/v1/observe', bearer(reader), {})).status).toBe(200);
    expect((await raw(port, 'POST', '/v1/find', bearer(reader), { text: 'Total' })).status).toBe(200);
    expect((await raw(port, 'POST', '/v1/wait', bearer(reader), { until: { text: 'Total' }, timeoutMs: 1000 })).status).toBe(200);
    expect((await raw(port, 'GET', '/v1/windows', bearer(reader))).status).toBe(200);
    expect((await raw(port, 'GET', '/v1/halt', bearer(reader))).status).toBe(200);
    const list = await raw(port, 'POST', '/mcp', { ...bearer(reader), ...MCP_ACCEPT }, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'observe', arguments: {} } });
    expect(list.status, list.body).toBe(200);
  });

  it.each(ACTION_PATHS)('an observer POSTing %s: 403 FORBIDDEN_FOR_CREDENTIAL or 404, never dispatched', async (path) => {
    h.platform.events.length = 0;
    const r = await raw(port, 'POST', path, bearer(reader), { type: 'click', x: 20, y: 110 });
    expect([403, 404], `${path}: ${r.status} ${r.body}`).toContain(r.status);
    expect(code(r)).toBe(r.status === 403 ? 'FORBIDDEN_FOR_CREDENTIAL' : 'NOT_FOUND');
    expect(h.platform.events).toEqual([]);
  });

  it.each(MCP_PATHS)('an observer calling an acting MCP tool at %s (single and batched): 403 or 404, never dispatched', async (path) => {
    h.platform.events.length = 0;
    const click = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click', arguments: { x: 20, y: 110 } } };
    for (const body of [click, [{ jsonrpc: '2.0', id: 0, method: 'tools/call', params: { name: 'observe', arguments: {} } }, click], { ...click, params: { arguments: { x: 1, y: 1 } } }]) {
      const r = await raw(port, 'POST', path, { ...bearer(reader), ...MCP_ACCEPT }, body);
      expect([403, 404], `${path}: ${r.status} ${r.body}`).toContain(r.status);
      if (r.status === 403) expect(code(r)).toBe('FORBIDDEN_FOR_CREDENTIAL');
    }
    expect(h.platform.events).toEqual([]);
  });

  it.each(['/v1/read', '/v1/%72ead', '/v1/x/../read'])('an observer may read %s without scrolling, never with scroll (any truthy spelling): 403, nothing dispatched', async (path) => {
    h.platform.events.length = 0;
    for (const scroll of [true, 1, 'yes', {}]) {
      const r = await raw(port, 'POST', path, bearer(reader), { scroll });
      expect([400, 403, 404], `${path} ${JSON.stringify(scroll)}: ${r.status} ${r.body}`).toContain(r.status);
      if (r.status === 403) expect(code(r)).toBe('FORBIDDEN_FOR_CREDENTIAL');
      if (scroll === true) expect(r.status, r.body).toBe(403);
    }
    expect(h.platform.events).toEqual([]);
    expect(observerMayCall('POST', '/v1/read', false, { scroll: false })).toBe(true);
    expect(observerMayCall('POST', '/v1/read', false, { scroll: true })).toBe(false);
    expect(observerMayCall('POST', '/v1/read', false, {})).toBe(true);
  });

  it('an observer cannot take the lease, start a task or cancel one', async () => {
    for (const [m, p, b] of [['POST', '/v1/lease', {}], ['POST', '/v1/tasks', { goal: 'x' }], ['POST', '/v1/tasks/t1/cancel', {}], ['POST', '/v1/%74asks', { goal: 'x' }]] as const) {
      const r = await raw(port, m, p, bearer(reader), b);
      expect([403, 404], `${m} ${p}: ${r.body}`).toContain(r.status);
      if (r.status === 403) expect(code(r)).toBe('FORBIDDEN_FOR_CREDENTIAL');
    }
    expect((await raw(port, 'GET', '/v1/lease', bearer(reader))).body).toContain('"lease":null');
  });

  it('revoking an agent: its next request is 401 within 1 s, its pending approval is denied, the other agent goes on, an audit record is written', async () => {
    const add = await raw(port, 'POST', '/v1/agents', op, { id: 'temp', role: 'actor' });
    const temp = (JSON.parse(add.body) as { token: string }).token;
    const pending = await raw(port, 'POST', '/v1/actions', bearer(temp), { type: 'click', x: 20, y: 350 });
    expect(pending.status, pending.body).toBe(202);
    const actionId = (JSON.parse(pending.body) as { actionId: string }).actionId;
    expect(h.approvals.list()).toHaveLength(1);
    h.platform.events.length = 0;

    const t0 = Date.now();
    const del = await raw(port, 'DELETE', '/v1/agents/temp', op);
    expect(del.status, del.body).toBe(200);
    const after = await raw(port, 'POST', '/v1/observe', bearer(temp), {});
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(after.status).toBe(401);
    expect(code(after)).toBe('UNAUTHORIZED');
    expect((await raw(port, 'POST', '/mcp', { ...bearer(temp), ...MCP_ACCEPT }, { jsonrpc: '2.0', id: 1, method: 'tools/list' })).status).toBe(401);

    expect(h.approvals.list()).toHaveLength(0);
    const outcome = JSON.parse((await raw(port, 'GET', `/v1/actions/${actionId}?waitMs=2000`, bearer(AGENT))).body) as { status: string };
    expect(outcome.status).toBe('failed');
    expect(h.platform.events.filter((e) => e.kind === 'down')).toEqual([]);

    // The other agent goes on.
    expect((await raw(port, 'POST', '/v1/actions', bearer(builder), { type: 'click', x: 20, y: 110 })).status).toBe(200);
    await raw(port, 'DELETE', '/v1/lease', op);

    await expect.poll(async () => (await h.audit.read({ limit: 100 })).find((r) => r.kind === 'agent' && r.event === 'revoke' && r.agent === 'temp'), { timeout: 5000 }).toMatchObject({ cancelledApprovals: 1 });
    expect((await h.audit.read({ limit: 100 })).some((r) => r.kind === 'agent' && r.event === 'add' && r.agent === 'temp')).toBe(true);
    expect(await readFile(file, 'utf8')).not.toContain('"temp"');
    expect((await raw(port, 'DELETE', '/v1/agents/temp', op)).status).toBe(404);
  });

  it('revoking the lease holder frees the lease for the others', async () => {
    const add = await raw(port, 'POST', '/v1/agents', op, { id: 'holder', role: 'actor' });
    const t = (JSON.parse(add.body) as { token: string }).token;
    expect((await raw(port, 'POST', '/v1/lease', bearer(t), { ttlMs: 60_000 })).status).toBe(200);
    expect((await raw(port, 'POST', '/v1/actions', bearer(builder), { type: 'click', x: 20, y: 110 })).status).toBe(409);
    await raw(port, 'DELETE', '/v1/agents/holder', op);
    expect((await raw(port, 'POST', '/v1/actions', bearer(builder), { type: 'click', x: 20, y: 110 })).status).toBe(200);
    await raw(port, 'DELETE', '/v1/lease', op);
  });
});

describe('the console path', () => {
  it('a console session manages agents only with the CSRF header; an agent token signing in to the console is refused', async () => {
    const h = await buildHardenedApp();
    try {
      const H = { host: '127.0.0.1:7820' };
      const CSRF = { 'x-deskd-console': '1' };
      const login = await h.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: OPERATOR } });
      expect(login.statusCode, login.body).toBe(200);
      const cookie = /deskd_console=[^;]+/.exec(String(login.headers['set-cookie']))![0];
      const noCsrf = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: { ...H, cookie }, payload: { id: 'c1', role: 'actor' } });
      expect(noCsrf.statusCode).toBe(403);
      expect(noCsrf.json().error.code).toBe('ORIGIN_NOT_ALLOWED');
      const crossSite = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: { ...H, ...CSRF, cookie, origin: 'http://evil.example' }, payload: { id: 'c1', role: 'actor' } });
      expect(crossSite.statusCode).toBe(403);
      const ok = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: { ...H, ...CSRF, cookie }, payload: { id: 'c1', role: 'observer' } });
      expect(ok.statusCode, ok.body).toBe(200);
      const token = ok.json().token as string;
      // A named agent's token never signs in to the console (operator only).
      const agentLogin = await h.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token } });
      expect(agentLogin.statusCode).toBe(401);
      const del = await h.app.inject({ method: 'DELETE', url: '/v1/agents/c1', headers: { ...H, cookie } });
      expect(del.statusCode).toBe(403);
      expect((await h.app.inject({ method: 'DELETE', url: '/v1/agents/c1', headers: { ...H, ...CSRF, cookie } })).statusCode).toBe(200);
    } finally {
      await h.close();
    }
  });
});

describe('identity helpers', () => {
  it('principals and actors map back to agents', () => {
    expect(principalOf('agent', undefined)).toBe('agent');
    expect(principalOf('agent', 'reader')).toBe('agent:reader');
    expect(principalOf('operator', 'reader')).toBe('operator');
    expect(clientIdentity(principalOf('agent', 'r'), undefined)).toBe('agent:r/default');
    expect(agentOfActor('agent:r/default')).toBe('r');
    expect(agentOfActor('mcp:agent:r/x')).toBe('r');
    expect(agentOfActor('agent/default')).toBe('default');
    expect(agentOfActor('mcp:agent/x')).toBe('default');
    expect(agentOfActor('operator/default')).toBe('operator');
    expect(agentOfActor('mcp:stdio')).toBe('stdio');
    expect(agentOfActor('task:t1', (id) => (id === 't1' ? 'r' : undefined))).toBe('r');
    expect(agentOfActor('task:t2')).toBeNull();
  });

  it('observerMayCall is fail-closed for unknown write routes', () => {
    expect(observerMayCall('POST', '/v1/observe', false)).toBe(true);
    expect(observerMayCall('POST', '/v1/new-thing', false)).toBe(false);
    expect(observerMayCall('PUT', '/v1/observe', false)).toBe(false);
    expect(observerMayCall('POST', '/mcp', true)).toBe(false);
    expect(observerMayCall('GET', '/v1/anything', false)).toBe(true);
  });
});
