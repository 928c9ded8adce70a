/**
 * Hostile HTTP input against the real app (guards, auth, lease, policy gate, audit) on the fake platform:
 * every refused request must leave the fake platform's `events` empty.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { buildHardenedApp, AGENT, OPERATOR } from '../helpers/hardeningApp.js';
import { LOG_REDACT_PATHS } from '../../src/http/guards.js';
import { ControllerLease } from '../../src/http/lease.js';

type H = Awaited<ReturnType<typeof buildHardenedApp>>;
let h: H;
const agent = { authorization: `Bearer ${AGENT}` };
const operator = { authorization: `Bearer ${OPERATOR}` };
const CLICK = { type: 'click', x: 20, y: 110 };

afterEach(async () => h?.close());

describe('Host, Origin and Sec-Fetch-Site (DNS rebinding, cross-site) before anything else', () => {
  beforeEach(async () => {
    h = await buildHardenedApp({ extra: { hostCheck: { port: 7820 } } });
  });

  const routes: [string, string][] = [
    ['GET', '/v1/health'],
    ['GET', '/openapi.json'],
    ['POST', '/v1/actions'],
    ['POST', '/v1/observe'],
    ['GET', '/v1/screenshot'],
    ['POST', '/v1/lease'],
    ['GET', '/v1/nope'],
    ['OPTIONS', '/v1/actions'],
    ['POST', '/mcp'],
    ['GET', '/'],
  ];
  it.each(routes)('%s %s with a rebinding Host → 403 ORIGIN_NOT_ALLOWED, even with a valid token', async (method, url) => {
    const r = await h.app.inject({ method: method as 'GET', url, headers: { ...agent, host: 'attacker.example:7820' }, ...(method === 'POST' ? { payload: CLICK } : {}) });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(h.platform.events).toEqual([]);
  });

  it('is checked before auth: no token and a bad Host → 403, not 401', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: { host: 'evil.test:7820' }, payload: CLICK });
    expect(r.statusCode).toBe(403);
  });

  it.each([
    ['another port', { host: '127.0.0.1:9999' }],
    ['no port (80)', { host: 'localhost' }],
    ['no Host at all', { host: '' }],
    ['a loopback IP alias that is not a name deskd serves', { host: '127.0.0.2:7820' }],
    ['a foreign Origin', { host: '127.0.0.1:7820', origin: 'http://evil.test' }],
    ['Origin null (sandboxed iframe, file://)', { host: '127.0.0.1:7820', origin: 'null' }],
    ['Origin of another local port', { host: '127.0.0.1:7820', origin: 'http://127.0.0.1:3000' }],
    ['Origin on https', { host: '127.0.0.1:7820', origin: 'https://127.0.0.1:7820' }],
    ['Sec-Fetch-Site cross-site', { host: '127.0.0.1:7820', 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site same-site', { host: 'localhost:7820', 'sec-fetch-site': 'same-site' }],
  ])('%s → 403 and nothing dispatched', async (_n, headers) => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: { ...agent, ...headers }, payload: CLICK });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(h.platform.events).toEqual([]);
  });

  it.each([
    [{ host: '127.0.0.1:7820' }],
    [{ host: 'localhost:7820', origin: 'http://localhost:7820' }],
    [{ host: '[::1]:7820', origin: 'http://[::1]:7820', 'sec-fetch-site': 'same-origin' }],
  ])('the daemon\'s own host and origin are served (%o)', async (headers) => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: { ...agent, ...headers }, payload: CLICK });
    expect(r.statusCode).toBe(200);
    expect(h.platform.events.length).toBeGreaterThan(0);
  });
});

/** One raw HTTP/1.1 request with exactly the given headers (fetch may not set Host). */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

describe('on a real socket the Host port must be the port the daemon listens on', () => {
  it('the listening port is served, another port in Host is refused', async () => {
    h = await buildHardenedApp();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.app.server.address() as { port: number }).port;
    const ok = await raw(port, 'GET', '/v1/health', { host: `127.0.0.1:${port}` });
    expect(ok.status).toBe(200);
    const bad = await raw(port, 'GET', '/v1/health', { host: `127.0.0.1:${port + 1}` });
    expect(bad.status).toBe(403);
    expect(JSON.parse(bad.body).error.code).toBe('ORIGIN_NOT_ALLOWED');
    const rebound = await raw(port, 'POST', '/v1/actions', { host: `rebind.example:${port}`, ...agent, 'content-type': 'application/json' }, JSON.stringify(CLICK));
    expect(rebound.status).toBe(403);
    expect(h.platform.events).toEqual([]);
  });
});

describe('bodies: JSON only, size-limited', () => {
  beforeEach(async () => {
    h = await buildHardenedApp({ extra: { bodyLimit: 4096 } });
  });
  it.each([
    ['text/plain (a cross-site "simple" request)', 'text/plain', JSON.stringify(CLICK)],
    ['text/plain;charset=UTF-8', 'text/plain;charset=UTF-8', JSON.stringify(CLICK)],
    ['a form', 'application/x-www-form-urlencoded', 'type=click&x=20&y=110'],
    ['multipart', 'multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="type"\r\n\r\nclick\r\n--x--'],
    ['application/jsonp', 'application/jsonp', JSON.stringify(CLICK)],
  ])('%s → 415 UNSUPPORTED_MEDIA_TYPE and nothing dispatched', async (_n, type, payload) => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: { ...agent, 'content-type': type }, payload });
    expect(r.statusCode).toBe(415);
    expect(r.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(h.platform.events).toEqual([]);
  });
  it('application/json with a charset is accepted', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: { ...agent, 'content-type': 'application/json; charset=utf-8' }, payload: JSON.stringify(CLICK) });
    expect(r.statusCode).toBe(200);
  });
  it('a body over the limit → 413 PAYLOAD_TOO_LARGE and nothing dispatched', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: agent, payload: { type: 'type', text: 'a'.repeat(5000) } });
    expect(r.statusCode).toBe(413);
    expect(r.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(h.platform.events).toEqual([]);
  });
});

describe('no CORS', () => {
  beforeEach(async () => {
    h = await buildHardenedApp();
  });
  it('a preflight from the daemon\'s own origin gets no Access-Control-Allow-* headers', async () => {
    const r = await h.app.inject({
      method: 'OPTIONS', url: '/v1/actions',
      headers: { origin: 'http://localhost:80', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(r.statusCode).toBeGreaterThanOrEqual(400);
    expect(Object.keys(r.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });
  it('a preflight from another origin is refused outright', async () => {
    const r = await h.app.inject({ method: 'OPTIONS', url: '/v1/actions', headers: { origin: 'http://evil.test', 'access-control-request-method': 'POST' } });
    expect(r.statusCode).toBe(403);
    expect(Object.keys(r.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });
  it('answers carry nosniff and no Access-Control-Allow-Origin', async () => {
    const r = await h.app.inject({ method: 'GET', url: '/v1/health' });
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('tokens never in URLs', () => {
  beforeEach(async () => {
    h = await buildHardenedApp();
  });
  it.each(['token', 'access_token', 'Access_Token', 'api_key'])('?%s=<the right token> → 400 TOKEN_IN_URL, nothing dispatched', async (name) => {
    const r = await h.app.inject({ method: 'POST', url: `/v1/actions?${name}=${AGENT}`, payload: CLICK });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('TOKEN_IN_URL');
    expect(h.platform.events).toEqual([]);
  });
  it('is refused even with a valid Authorization header too, and on public routes', async () => {
    const a = await h.app.inject({ method: 'POST', url: `/v1/actions?access_token=${AGENT}`, headers: agent, payload: CLICK });
    expect(a.statusCode).toBe(400);
    const b = await h.app.inject({ method: 'GET', url: `/v1/health?token=x` });
    expect(b.json().error.code).toBe('TOKEN_IN_URL');
    expect(h.platform.events).toEqual([]);
  });
});

describe('one controller at a time: the lease', () => {
  let now = 1_000_000;
  beforeEach(async () => {
    now = 1_000_000;
    h = await buildHardenedApp({ extra: { lease: new ControllerLease({ now: () => now }) } });
  });
  const as = (client: string, creds = agent) => ({ ...creds, 'x-deskd-client': client });

  it('A holds the lease: B\'s actions → 409 LEASE_HELD with nothing dispatched; B may still observe; A acts', async () => {
    const l = await h.app.inject({ method: 'POST', url: '/v1/lease', headers: as('A'), payload: { ttlMs: 60_000 } });
    expect(l.statusCode).toBe(200);
    expect(l.json()).toMatchObject({ holder: 'agent/A', expiresAt: now + 60_000 });
    const b = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('B'), payload: CLICK });
    expect(b.statusCode).toBe(409);
    expect(b.json().error).toMatchObject({ code: 'LEASE_HELD', details: { holder: 'agent/A', expiresAt: now + 60_000 } });
    expect(h.platform.events).toEqual([]);
    const bl = await h.app.inject({ method: 'POST', url: '/v1/lease', headers: as('B'), payload: {} });
    expect(bl.json().error.code).toBe('LEASE_HELD');
    const obs = await h.app.inject({ method: 'POST', url: '/v1/observe', headers: as('B'), payload: { ocr: false } });
    expect(obs.statusCode).toBe(200);
    const a = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('A'), payload: CLICK });
    expect(a.statusCode).toBe(200);
    expect(h.platform.events.length).toBeGreaterThan(0);
  });

  it('release and expiry free the lease for another client', async () => {
    await h.app.inject({ method: 'POST', url: '/v1/lease', headers: as('A'), payload: { ttlMs: 5000 } });
    expect((await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: as('B') })).json()).toEqual({ released: false });
    expect((await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: as('A') })).json()).toEqual({ released: true });
    expect((await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('B'), payload: CLICK })).statusCode).toBe(200);
    // B now holds it implicitly (30 s); after that A may act again.
    expect((await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('A'), payload: CLICK })).statusCode).toBe(409);
    now += 30_001;
    expect((await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('A'), payload: CLICK })).statusCode).toBe(200);
  });

  it('clients that never ask for the lease cannot interleave: the first action takes it implicitly', async () => {
    expect((await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('one'), payload: CLICK })).statusCode).toBe(200);
    const n = h.platform.events.length;
    const two = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('two'), payload: CLICK });
    expect(two.statusCode).toBe(409);
    expect(h.platform.events.length).toBe(n);
    const cur = await h.app.inject({ method: 'GET', url: '/v1/lease', headers: as('two') });
    expect(cur.json()).toMatchObject({ lease: { holder: 'agent/one' }, you: 'agent/two' });
  });

  it('the operator can break a stuck lease; the kill switch is never lease-gated', async () => {
    await h.app.inject({ method: 'POST', url: '/v1/lease', headers: as('A'), payload: { ttlMs: 600_000 } });
    const halt = await h.app.inject({ method: 'POST', url: '/v1/halt', headers: as('B'), payload: { reason: 'stop' } });
    expect(halt.statusCode).toBe(200);
    const del = await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: operator });
    expect(del.json()).toEqual({ released: true });
  });

  it('an action by the operator takes the lease over; the agent is then refused', async () => {
    await h.app.inject({ method: 'POST', url: '/v1/lease', headers: as('A'), payload: { ttlMs: 600_000 } });
    const op = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: operator, payload: CLICK });
    expect(op.statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/v1/lease', headers: operator })).json().lease.holder).toBe('operator/default');
    const a = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('A'), payload: CLICK });
    expect(a.json().error.code).toBe('LEASE_HELD');
  });

  it('MCP: acting tools of another client are refused, looking tools are not', async () => {
    await h.app.inject({ method: 'POST', url: '/v1/lease', headers: as('A'), payload: {} });
    const mcp = (name: string, args: object) =>
      h.app.inject({
        method: 'POST', url: '/mcp',
        headers: { ...as('B'), accept: 'application/json, text/event-stream' },
        payload: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } },
      });
    const click = await mcp('click', { x: 20, y: 110 });
    expect(click.statusCode).toBe(409);
    expect(click.json().error.code).toBe('LEASE_HELD');
    const look = await mcp('list_apps', {});
    expect(look.statusCode).toBe(200);
    expect(h.platform.events).toEqual([]);
  });

  it('a malformed X-Deskd-Client → 400', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: as('a b/../c'), payload: CLICK });
    expect(r.statusCode).toBe(400);
    expect(h.platform.events).toEqual([]);
  });
});

describe('type: control characters refused, Unicode normalised', () => {
  beforeEach(async () => {
    h = await buildHardenedApp();
  });
  it.each(['\u0000', '\u001b[31m', '\r', '\u0007', '\u007f', 'ok\u0085'])('text with %j → 400 VALIDATION_FAILED and nothing typed', async (bad) => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: agent, payload: { type: 'type', text: `abc${bad}def` } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('VALIDATION_FAILED');
    expect(r.json().error.message).toMatch(/control character/);
    expect(h.platform.events).toEqual([]);
  });
  it('a control character in a later action of a batch refuses the whole batch', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: agent, payload: { actions: [CLICK, { type: 'type', text: 'x\u0003' }] } });
    expect(r.statusCode).toBe(400);
    expect(h.platform.events).toEqual([]);
  });
  it('newline and tab pass; decomposed text is typed in NFC', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: agent, payload: { type: 'type', text: 'Cafe\u0301\tA\u030a\n' } });
    expect(r.statusCode).toBe(200);
    const typed = h.platform.events.filter((e) => e.kind === 'type').map((e) => (e as { text: string }).text).join('');
    expect(typed).toBe('Caf\u00e9\u00c5');
    // \t and \n are sent as their keys, between the typed runs.
    const keys = h.platform.events.filter((e) => e.kind === 'keydown').map((e) => (e as { key: string }).key);
    expect(keys).toEqual(['tab', 'enter']);
  });
});

describe('secrets and typed text never reach the log', () => {
  it('Authorization, cookies, URL tokens and typed text are absent from a trace-level log', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    });
    const logger = pino({ level: 'trace', redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } }, sink);
    h = await buildHardenedApp({ logger });
    const typed = 'correct-horse-battery-staple';
    await h.app.inject({ method: 'POST', url: '/v1/actions', headers: agent, payload: { type: 'type', text: typed } });
    await h.app.inject({ method: 'POST', url: '/v1/actions', headers: agent, payload: { type: 'type', text: `${typed}\u0000` } });
    await h.app.inject({ method: 'GET', url: `/v1/health?token=${OPERATOR}&display=1` });
    await h.app.inject({ method: 'GET', url: '/console/session', headers: { cookie: 'deskd_console=SESSIONSECRET0123456789' } });
    await h.app.inject({ method: 'POST', url: '/v1/actions', headers: { authorization: 'Bearer WRONG-TOKEN-SECRET-0123' }, payload: CLICK });
    expect(out).toContain('incoming request');
    expect(out).toContain('/v1/health?token=[redacted]&display=1');
    for (const secret of [AGENT, OPERATOR, typed, 'SESSIONSECRET0123456789', 'WRONG-TOKEN-SECRET-0123']) expect(out).not.toContain(secret);
  });

  it('the redaction paths censor what deskd\'s components log (headers, actions, bodies)', () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    });
    const log = pino({ redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } }, sink);
    log.info({ req: { headers: { authorization: 'Bearer S1', cookie: 'c=S2' } } }, 'r');
    log.info({ action: { type: 'type', text: 'S3' } }, 'a');
    log.info({ batch: { actions: [{ type: 'type', text: 'S4' }] } }, 'b');
    log.info({ body: { token: 'S5' }, token: 'S6' }, 'c');
    log.info({ op: { type: 'set_value', value: 'S7' } }, 'd');
    for (const s of ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7']) expect(out).not.toContain(`"${s}"`);
    expect(out.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(7);
  });
});
