/**
 * Issue 13, findings 8 and 9, against the real app (guards, auth, lease, policy gate, audit, executor) on
 * the fake platform, over a real socket on 127.0.0.1 (raw paths are sent as written: `fetch` would resolve
 * `..` and `.` before sending):
 *
 * - finding 9: the lease and the auth hook decide on the route fastify routed the request to, never the
 *   raw URL. `POST /v1/%61ctions` and `POST /%6dcp` reached the acting routes without the lease; every
 *   spelling of an acting route (percent-escapes, double slashes, trailing slash, case, `;` parameters,
 *   dot segments) is now either routed (and gated) or not found — never dispatched;
 * - finding 8: request timeouts for headers and bodies, the connection cap that never pushes out the
 *   operator, concurrent observes per credential (429 `TOO_MANY_REQUESTS`, also for MCP's observe tool,
 *   held until the work ends even when the client went away), a 401 closes its connection, pending
 *   approvals per actor through the API.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { buildHardenedApp, AGENT, OPERATOR, fixedOcr } from '../helpers/hardeningApp.js';
import { errorCode, rawRequest } from '../helpers/rawHttp.js';
import type { TextRecognizer } from '../../src/perception/observer.js';
import { isActingRequest } from '../../src/http/lease.js';
import { resolveServerLimits } from '../../src/http/limits.js';

type H = Awaited<ReturnType<typeof buildHardenedApp>>;

/** Polls wait long: the machine running the tests may be busy. */
const POLL = { timeout: 20_000, interval: 20 };

/** One request with the path sent byte for byte (no URL normalisation), on its own connection. */
const raw = rawRequest;
const code = errorCode;

const agentAs = (client: string) => ({ authorization: `Bearer ${AGENT}`, 'x-deskd-client': client });
const operator = { authorization: `Bearer ${OPERATOR}` };

async function listen(h: H): Promise<number> {
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  return (h.app.server.address() as { port: number }).port;
}

/** Every spelling of `/v1/actions` an attacker might try. */
const ACTION_PATHS = [
  '/v1/actions',
  '/v1/%61ctions',
  '/v1/actio%6Es',
  '/%76%31/%61%63%74%69%6f%6e%73',
  '/v1/%41ctions',
  '//v1/actions',
  '/v1//actions',
  '/v1/actions/',
  '/V1/ACTIONS',
  '/v1/Actions',
  '/v1/actions;x=1',
  '/v1;x/actions',
  '/v1/x/../actions',
  '/v1/./actions',
  '/v1/%2e/actions',
  '/v1/x/%2e%2e/actions',
  '/v1/x%2f..%2factions',
  '/v1%2factions',
  '/v1/actions%2f',
  '/v1/actions%00',
  '/v1/actions?x=1',
  '/v1/health/../actions',
];

/** Every spelling of `/mcp`. */
const MCP_PATHS = ['/mcp', '/%6dcp', '/mc%70', '/%6D%43%50', '/MCP', '/mcp/', '//mcp', '/mcp;x', '/x/../mcp', '/./mcp', '/%2e/mcp'];

describe('finding 9: the lease is decided on the routed route, whatever the spelling', () => {
  let h: H;
  let port: number;
  beforeAll(async () => {
    h = await buildHardenedApp();
    port = await listen(h);
  });
  afterAll(async () => h.close());

  it.each(ACTION_PATHS)('POST %s by another client while A holds the lease: 409 LEASE_HELD or 404, never dispatched', async (path) => {
    const l = await raw(port, 'POST', '/v1/lease', agentAs('A'), { ttlMs: 60_000 });
    expect(l.status, l.body).toBe(200);
    h.platform.events.length = 0;
    const r = await raw(port, 'POST', path, agentAs('B'), { type: 'click', x: 20, y: 110 });
    expect([404, 409], `${path}: ${r.status} ${r.body}`).toContain(r.status);
    if (r.status === 409) expect(code(r)).toBe('LEASE_HELD');
    else expect(code(r)).toBe('NOT_FOUND');
    expect(h.platform.events).toEqual([]);
  });

  it('the routed spellings are the ones fastify serves: the holder itself acts through /v1/%61ctions', async () => {
    await raw(port, 'POST', '/v1/lease', agentAs('A'), { ttlMs: 60_000 });
    h.platform.events.length = 0;
    const r = await raw(port, 'POST', '/v1/%61ctions', agentAs('A'), { type: 'click', x: 20, y: 110 });
    expect(r.status, r.body).toBe(200);
    expect(h.platform.events.length).toBeGreaterThan(0);
  });

  it.each(MCP_PATHS)('POST %s calling an acting MCP tool while A holds the lease: 409 LEASE_HELD or 404, never dispatched', async (path) => {
    await raw(port, 'POST', '/v1/lease', agentAs('A'), { ttlMs: 60_000 });
    h.platform.events.length = 0;
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click', arguments: { x: 20, y: 110 } } };
    const r = await raw(port, 'POST', path, { ...agentAs('B'), accept: 'application/json, text/event-stream' }, call);
    expect([404, 409], `${path}: ${r.status} ${r.body}`).toContain(r.status);
    if (r.status === 409) expect(code(r)).toBe('LEASE_HELD');
    expect(h.platform.events).toEqual([]);
  });

  it('isActingRequest works on routed patterns and route config; an unrouted request is not acting', () => {
    expect(isActingRequest('POST', '/v1/actions', {})).toBe(true);
    expect(isActingRequest('POST', '/v1/tasks', {})).toBe(true);
    expect(isActingRequest('post', '/v1/tasks', {})).toBe(true);
    expect(isActingRequest('POST', '/v1/anything', {}, { acting: true })).toBe(true);
    expect(isActingRequest('POST', '/v1/anything', {}, { acting: 'yes' })).toBe(false);
    expect(isActingRequest('POST', undefined, {}, { acting: true })).toBe(false);
    expect(isActingRequest('GET', '/v1/actions/:id', undefined)).toBe(false);
    expect(isActingRequest('POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click' } })).toBe(true);
    expect(isActingRequest('GET', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click' } })).toBe(false);
  });
});

describe('finding 9: authentication is decided on the routed route too', () => {
  let h: H;
  let port: number;
  beforeAll(async () => {
    h = await buildHardenedApp();
    port = await listen(h);
  });
  afterAll(async () => h.close());

  const PROTECTED: [string, string][] = [
    ['GET', '/v1/%61pprovals'],
    ['GET', '/v1/audi%74'],
    ['GET', '/v1/%6cease'],
    ['POST', '/v1/%6fbserve'],
    ['GET', '/v1/%73creenshot'],
    ['POST', '/v1/%61ctions'],
    ['POST', '/%6dcp'],
    ['GET', '/console/%73ession'],
    ['GET', '/v1/health/../audit'],
    ['GET', '/v1/health/%2e%2e/audit'],
    ['GET', '/v1/health%2f..%2faudit'],
    ['GET', '/openapi.json/../v1/audit'],
    ['GET', '/console/static/../../v1/audit'],
    ['GET', '/console/static/..%2f..%2fv1%2faudit'],
    ['GET', '/console/static/%2e%2e'],
    ['POST', '/console/login/../../v1/halt'],
    ['GET', '/v1/health;/../audit'],
  ];
  it.each(PROTECTED)('%s %s without a credential: 401 or 404, never served', async (method, path) => {
    h.platform.events.length = 0;
    const r = await raw(port, method, path, {}, method === 'POST' ? {} : undefined);
    expect([401, 404], `${path}: ${r.status} ${r.body}`).toContain(r.status);
    expect(r.body).not.toMatch(/"approvals"|"records"|"lease"|"observationId"/);
    expect(h.platform.events).toEqual([]);
  });

  it('an encoded public path reaches the public route only (harmless), with the same answer as the plain one', async () => {
    const plain = await raw(port, 'GET', '/v1/health');
    const enc = await raw(port, 'GET', '/v1/healt%68');
    expect(plain.status).toBe(200);
    expect(enc.status).toBe(200);
    expect(JSON.parse(enc.body).status).toBe('ok');
    expect((await raw(port, 'GET', '/open%61pi.json')).status).toBe(200);
    // A public path with another method is not public.
    expect((await raw(port, 'POST', '/v1/health', {}, {})).status).toBe(401);
  });

  it('a 401 closes its connection even when the client asked for keep-alive (an unauthenticated client cannot keep it)', async () => {
    const r = await raw(port, 'POST', '/v1/observe', { connection: 'keep-alive' }, {});
    expect(r.status).toBe(401);
    expect(r.headers.connection).toBe('close');
    // An authenticated answer on the same kind of request keeps the connection.
    const ok = await raw(port, 'GET', '/v1/halt', { connection: 'keep-alive', authorization: `Bearer ${AGENT}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.connection).toBe('keep-alive');
  });
});

/** Open a raw TCP connection and resolve once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** Resolve with ms until the socket closes (or `limitMs` passes: resolves -1). */
function closedWithin(s: Socket, limitMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(0);
    const t = setTimeout(() => resolve(-1), limitMs);
    s.once('close', () => {
      clearTimeout(t);
      resolve(Date.now() - t0);
    });
  });
}

describe('finding 8: timeouts for headers and bodies', () => {
  let h: H;
  let port: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    h = await buildHardenedApp({ extra: { limits: { headersTimeoutMs: 500, requestTimeoutMs: 1000, checkIntervalMs: 100 } } });
    port = await listen(h);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await h.close();
  });

  it('a client that never finishes its headers is cut off after the header timeout', async () => {
    const s = await open(port);
    sockets.push(s);
    s.on('error', () => undefined);
    s.resume(); // a paused client socket would never see the server's close
    s.write('POST /v1/actions HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const ms = await closedWithin(s, 4000);
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(2500);
  });

  it('an authenticated client that sends its body slowly is answered 408 and cut off after the request timeout; nothing dispatched', async () => {
    h.platform.events.length = 0;
    const s = await open(port);
    sockets.push(s);
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => undefined);
    s.write(`POST /v1/actions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${AGENT}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
    const drip = setInterval(() => s.writable && s.write(' '), 100);
    const ms = await closedWithin(s, 5000);
    clearInterval(drip);
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(3000);
    expect(got).toMatch(/^HTTP\/1\.1 408/);
    expect(h.platform.events).toEqual([]);
  });

  it('the default limits: 10 s for headers, 30 s for a request, checked every second; bad limits are refused', () => {
    const d = resolveServerLimits();
    expect(d).toMatchObject({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, checkIntervalMs: 1000, maxConnections: 1024, maxAgentConnections: 256, backlog: 511, maxConcurrentObserves: 8 });
    expect(d.backlog).toBeLessThan(d.maxConnections);
    expect(() => resolveServerLimits({ maxConnections: 0 })).toThrow(/maxConnections/);
    expect(() => resolveServerLimits({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).toThrow(/headersTimeoutMs/);
    expect(h.app.server.requestTimeout).toBe(1000);
    expect(h.app.server.headersTimeout).toBe(500);
  });
});

describe('finding 8: the connection cap never pushes out the operator', () => {
  let h: H;
  let port: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    h = await buildHardenedApp({ extra: { limits: { maxConnections: 20 } } });
    port = await listen(h);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await h.close();
  });

  it('60 idle connections on a cap of 20: the oldest unauthenticated ones are closed; the operator halts on a new connection and its open connection survives', async () => {
    // The operator's keep-alive connection, authenticated before the flood.
    const op = await open(port);
    sockets.push(op);
    let opGot = '';
    op.on('data', (d: Buffer) => (opGot += d.toString()));
    op.write(`GET /v1/halt HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${OPERATOR}\r\n\r\n`);
    await expect.poll(() => opGot, POLL).toMatch(/^HTTP\/1\.1 200/);

    const flood: Socket[] = [];
    for (let i = 0; i < 60; i++) {
      const s = await open(port);
      s.on('error', () => undefined);
      s.write('GET /v1/observe HTTP/1.1\r\n'); // never finished
      flood.push(s);
      sockets.push(s);
    }
    await expect.poll(() => h.app.deskdLimits!.connections.counts().total, POLL).toBeLessThanOrEqual(20);
    expect(h.app.deskdLimits!.connections.evicted).toBeGreaterThanOrEqual(40);
    await expect.poll(() => flood.filter((s) => s.destroyed || s.readyState === 'closed').length, POLL).toBeGreaterThanOrEqual(40);
    expect(op.destroyed).toBe(false);

    // The operator's old connection still works, and a new one halts at once.
    opGot = '';
    op.write(`GET /v1/halt HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${OPERATOR}\r\n\r\n`);
    await expect.poll(() => opGot, POLL).toMatch(/^HTTP\/1\.1 200/);
    const t0 = performance.now();
    const halt = await raw(port, 'POST', '/v1/halt', operator, { reason: 'flood test' });
    expect(halt.status, halt.body).toBe(200);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(h.halt.state.halted).toBe(true);
  });

  it('the governor closes agent connections before operator ones, and the newcomer when only operators are left', async () => {
    const { ConnectionGovernor } = await import('../../src/http/limits.js');
    const g = new ConnectionGovernor(2);
    const fake = () => {
      const handlers: Record<string, () => void> = {};
      const s = { destroyed: false, destroy() { s.destroyed = true; handlers.close?.(); }, once(ev: string, f: () => void) { handlers[ev] = f; } };
      return s as unknown as Socket & { destroyed: boolean };
    };
    const a = fake(), b = fake(), c = fake(), d = fake();
    g.admit(a);
    g.tag(a, 'operator');
    g.admit(b);
    g.tag(b, 'agent');
    g.admit(c); // over the cap, no other unauthenticated connection: the oldest agent connection (b) goes
    expect([a.destroyed, b.destroyed, c.destroyed]).toEqual([false, true, false]);
    g.admit(d); // c is the oldest other unauthenticated connection → c goes, the newcomer stays
    expect([c.destroyed, d.destroyed]).toEqual([true, false]);
    g.tag(d, 'operator');
    const e = fake();
    g.admit(e); // only operators left: the newcomer is refused
    expect([a.destroyed, d.destroyed, e.destroyed]).toEqual([false, false, true]);
    expect(g.evicted).toBe(3);
    expect(g.counts()).toEqual({ total: 2, operator: 2, agent: 0, unauthenticated: 0 });
  });

  it('the agent credential holds at most maxAgent connections: one more is refused and stays first in line to be closed', async () => {
    const { ConnectionGovernor } = await import('../../src/http/limits.js');
    const g = new ConnectionGovernor(4, 2);
    const fake = () => {
      const handlers: Record<string, () => void> = {};
      const s = { destroyed: false, destroy() { s.destroyed = true; handlers.close?.(); }, once(ev: string, f: () => void) { handlers[ev] = f; } };
      return s as unknown as Socket & { destroyed: boolean };
    };
    const [a, b, c, d, e] = [fake(), fake(), fake(), fake(), fake()];
    for (const s of [a, b, c]) g.admit(s);
    expect([g.tag(a, 'agent'), g.tag(b, 'agent'), g.tag(c, 'agent')]).toEqual([true, true, false]);
    expect(g.tag(a, 'agent')).toBe(true); // a keep-alive request on a connection it already holds
    expect(g.counts()).toMatchObject({ agent: 2, unauthenticated: 1 });
    g.admit(d);
    expect(g.tag(d, 'operator')).toBe(true);
    g.admit(e); // over the cap: the refused agent connection c goes first
    expect([a.destroyed, b.destroyed, c.destroyed, d.destroyed, e.destroyed]).toEqual([false, false, true, false, false]);
  });

  it('an agent over its connection cap gets 429 TOO_MANY_REQUESTS and a closed connection; the operator still gets in', async () => {
    const h2 = await buildHardenedApp({ extra: { limits: { maxConnections: 10, maxAgentConnections: 3 } } });
    const held: Socket[] = [];
    try {
      const p2 = await listen(h2);
      for (let i = 0; i < 3; i++) {
        const s = await open(p2);
        s.on('error', () => undefined);
        s.write(`POST /v1/actions HTTP/1.1\r\nHost: 127.0.0.1:${p2}\r\nAuthorization: Bearer ${AGENT}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
        held.push(s);
        sockets.push(s);
      }
      await expect.poll(() => h2.app.deskdLimits!.connections.counts().agent, POLL).toBe(3);
      const r = await raw(p2, 'POST', '/v1/observe', { authorization: `Bearer ${AGENT}` }, {});
      expect(r.status, r.body).toBe(429);
      expect(code(r)).toBe('TOO_MANY_REQUESTS');
      expect(r.headers.connection).toBe('close');
      const op = await raw(p2, 'POST', '/v1/halt', operator, { reason: 'agent cap' });
      expect(op.status, op.body).toBe(200);
    } finally {
      for (const s of held) s.destroy();
      await h2.close();
    }
  });
});

/** OCR that waits until released: keeps observes in flight. */
function gatedOcr(): { ocr: TextRecognizer; release: () => void; started: () => number } {
  let open = false;
  let waiting: (() => void)[] = [];
  let n = 0;
  return {
    ocr: {
      async recognize(...args: Parameters<TextRecognizer['recognize']>) {
        n++;
        if (!open) await new Promise<void>((r) => waiting.push(r));
        return fixedOcr.recognize(...args);
      },
    },
    release() {
      open = true;
      for (const w of waiting) w();
      waiting = [];
    },
    started: () => n,
  };
}

describe('finding 8: concurrent observes per credential', () => {
  let h: H | undefined;
  const gates: { release: () => void }[] = [];
  afterEach(async () => {
    for (const g of gates.splice(0)) g.release();
    await h?.close();
    h = undefined;
  });

  it('the agent gets 8 observes in flight, the 9th and 10th are 429 TOO_MANY_REQUESTS at once; the operator has its own budget; slots free when the work ends', async () => {
    const g = gatedOcr();
    gates.push(g);
    h = await buildHardenedApp({ ocr: g.ocr });
    const port = await listen(h);
    const agent = { authorization: `Bearer ${AGENT}` };
    const inFlight = Array.from({ length: 8 }, () => raw(port, 'POST', '/v1/observe', agent, { screenshot: 'none' }));
    await expect.poll(() => h!.app.deskdLimits!.observes.count('agent'), POLL).toBe(8);
    const extra = await Promise.all([raw(port, 'POST', '/v1/observe', agent, {}), raw(port, 'GET', '/v1/screenshot', agent), raw(port, 'POST', '/v1/find', agent, { text: 'Total' })]);
    for (const r of extra) {
      expect(r.status, r.body).toBe(429);
      expect(code(r)).toBe('TOO_MANY_REQUESTS');
      expect(JSON.parse(r.body).error.details).toMatchObject({ limit: 8, inFlight: 8 });
    }
    // MCP's observe tool counts against the same budget.
    const mcp = await raw(port, 'POST', '/mcp', { ...agent, accept: 'application/json, text/event-stream' }, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'observe', arguments: {} } });
    expect(mcp.status, mcp.body).toBe(429);
    expect(code(mcp)).toBe('TOO_MANY_REQUESTS');
    // The operator is not held up by the agent's flood.
    const opObs = raw(port, 'POST', '/v1/observe', operator, { screenshot: 'none' });
    await expect.poll(() => h!.app.deskdLimits!.observes.count('operator'), POLL).toBe(1);
    g.release();
    expect((await opObs).status).toBe(200);
    expect(new Set((await Promise.all(inFlight)).map((r) => r.status))).toEqual(new Set([200]));
    expect(h.app.deskdLimits!.observes.count('agent')).toBe(0);
    expect((await raw(port, 'POST', '/v1/observe', agent, {})).status).toBe(200);
  });

  it('a client that goes away does not free its slot before the work ends (no bypass by aborting)', async () => {
    const g = gatedOcr();
    gates.push(g);
    h = await buildHardenedApp({ ocr: g.ocr, extra: { limits: { maxConcurrentObserves: 2 } } });
    const port = await listen(h);
    const agent = { authorization: `Bearer ${AGENT}` };
    const reqs = Array.from({ length: 2 }, () => {
      const data = '{}';
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/observe', agent: false, headers: { ...agent, 'content-type': 'application/json', 'content-length': '2' } });
      req.on('error', () => undefined);
      req.end(data);
      return req;
    });
    await expect.poll(() => h!.app.deskdLimits!.observes.count('agent'), POLL).toBe(2);
    for (const r of reqs) r.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const r = await raw(port, 'POST', '/v1/observe', agent, {});
    expect(r.status).toBe(429);
    g.release();
    await expect.poll(() => h!.app.deskdLimits!.observes.count('agent'), POLL).toBe(0);
    expect((await raw(port, 'POST', '/v1/observe', agent, {})).status).toBe(200);
  });
});

describe('finding 8: pending approvals per actor through the API', () => {
  let h: H;
  let port: number;
  beforeAll(async () => {
    h = await buildHardenedApp({ policy: 'version: 1\nrules:\n  - { id: ask-all, effect: ask, match: {} }\n' });
    port = await listen(h);
  });
  afterAll(async () => h.close());

  it('the 9th action waiting for the operator is refused with 429 TOO_MANY_PENDING_APPROVALS; nothing is dispatched', async () => {
    const agent = { authorization: `Bearer ${AGENT}` };
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await raw(port, 'POST', '/v1/actions', agent, { type: 'click', x: 20 + i, y: 110 })).status);
    expect(statuses).toEqual(Array(8).fill(202));
    const r = await raw(port, 'POST', '/v1/actions', agent, { type: 'click', x: 40, y: 110 });
    expect(r.status, r.body).toBe(429);
    expect(code(r)).toBe('TOO_MANY_PENDING_APPROVALS');
    expect(h.approvals.list()).toHaveLength(8);
    expect(h.platform.events).toEqual([]);
  });
});
