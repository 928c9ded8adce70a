/**
 * The console's routes and sign-in through `buildApp` (fake platform, real policy engine): the page is
 * public, the operator token is POSTed (never in a URL), the session cookie is HttpOnly + SameSite=Strict,
 * cookie-authenticated POSTs need `X-Deskd-Console: 1`, and Host/Origin must be this daemon's.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { buildPolicyApp, AGENT_TOKEN, OPERATOR_TOKEN } from '../helpers/testApp.js';
import { ConsoleSessions, assertLoopbackHostOrigin, isConsolePublicPath, parseCookies, sessionCookie, sessionFromRequest } from '../../src/http/consoleAuth.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
approvals: { timeoutMs: 5000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: ask-calc, effect: ask, match: { app: ["gnome-calculator"] } }
`;

let platform: FakePlatform;
let t: Awaited<ReturnType<typeof buildPolicyApp>>;
const H = { host: '127.0.0.1:7820' };
const CSRF = { 'x-deskd-console': '1' };

beforeEach(async () => {
  platform = createFakePlatform({ windows: [{ id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } }] });
  t = await buildPolicyApp(platform, POLICY);
});
afterEach(async () => t.close());

async function login(token = OPERATOR_TOKEN): Promise<string> {
  const r = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token } });
  expect(r.statusCode, r.body).toBe(200);
  const set = String(r.headers['set-cookie']);
  const id = /deskd_console=([^;]+)/.exec(set)?.[1];
  expect(id).toBeTruthy();
  return `deskd_console=${id}`;
}

describe('page and static files', () => {
  it('GET / serves the console without a credential, with a strict CSP and no token in it', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/', headers: H });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.body).toContain('id="login-form"');
    expect(r.body).not.toContain(OPERATOR_TOKEN);
    const js = await t.app.inject({ method: 'GET', url: '/console/static/console.js', headers: H });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    const css = await t.app.inject({ method: 'GET', url: '/console/static/console.css', headers: H });
    expect(css.statusCode).toBe(200);
    const other = await t.app.inject({ method: 'GET', url: '/console/static/app.ts', headers: H });
    expect(other.statusCode).toBe(404);
    // Names of Object.prototype are no console files either (a 500 before).
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const proto = await t.app.inject({ method: 'GET', url: `/console/static/${name}`, headers: H });
      expect(proto.statusCode, name).toBe(404);
    }
    // An encoded path is not a public console path at all: it needs a credential.
    const traversal = await t.app.inject({ method: 'GET', url: '/console/static/..%2F..%2Fapp.ts', headers: H });
    expect(traversal.statusCode).toBe(401);
  });
});

describe('sign-in', () => {
  it('a wrong token is 401; the right one sets an HttpOnly SameSite=Strict cookie', async () => {
    const bad = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: AGENT_TOKEN } });
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['set-cookie']).toBeUndefined();
    const ok = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: OPERATOR_TOKEN } });
    expect(ok.statusCode).toBe(200);
    const set = String(ok.headers['set-cookie']);
    expect(set).toMatch(/^deskd_console=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    expect(set).not.toContain(OPERATOR_TOKEN);
  });
  it('sign-in needs the CSRF header (a cross-site form cannot send it)', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/console/login', headers: H, payload: { token: OPERATOR_TOKEN } });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('ORIGIN_NOT_ALLOWED');
  });
  it('too many wrong tokens → 429 RATE_LIMITED for wrong ones, but the right one still signs in (no lockout)', async () => {
    for (let i = 0; i < 10; i++) {
      const w = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: `wrong-${i}-0123456789abcdef` } });
      expect(w.statusCode).toBe(401);
    }
    const limited = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: 'wrong-10-0123456789abcdef' } });
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    expect(limited.headers['set-cookie']).toBeUndefined();
    const r = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF }, payload: { token: OPERATOR_TOKEN } });
    expect(r.statusCode).toBe(200);
    expect(String(r.headers['set-cookie'])).toMatch(/^deskd_console=/);
  });
});

describe('the session cookie is the operator credential', () => {
  it('reads operator routes and decides approvals with the CSRF header; the action then runs once', async () => {
    const cookie = await login();
    const who = await t.app.inject({ method: 'GET', url: '/console/session', headers: { ...H, cookie } });
    expect(who.json()).toEqual({ role: 'operator', via: 'cookie' });
    const sub = await t.app.inject({ method: 'POST', url: '/v1/actions', headers: { authorization: `Bearer ${AGENT_TOKEN}` }, payload: { type: 'click', x: 100, y: 100 } });
    expect(sub.statusCode).toBe(202);
    const list = await t.app.inject({ method: 'GET', url: '/v1/approvals', headers: { ...H, cookie } });
    expect(list.statusCode).toBe(200);
    const id = list.json().approvals[0].id as string;
    // Without the CSRF header the cookie is refused and nothing is decided.
    const forged = await t.app.inject({ method: 'POST', url: `/v1/approvals/${id}`, headers: { ...H, cookie }, payload: { decision: 'approve' } });
    expect(forged.statusCode).toBe(403);
    expect(forged.json().error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(platform.events).toEqual([]);
    const ok = await t.app.inject({ method: 'POST', url: `/v1/approvals/${id}`, headers: { ...H, cookie, ...CSRF }, payload: { decision: 'approve', scope: 'once' } });
    expect(ok.statusCode, ok.body).toBe(200);
    const done = await t.app.inject({ method: 'GET', url: `/v1/actions/${sub.json().actionId}?waitMs=5000`, headers: { authorization: `Bearer ${AGENT_TOKEN}` } });
    expect(done.json().status).toBe('done');
    expect(platform.events.filter((e) => e.kind === 'down')).toHaveLength(1);
  });
  it('resume with the cookie works; sign-out ends the session', async () => {
    const cookie = await login();
    t.halt.halt('agent', 'test');
    const r = await t.app.inject({ method: 'POST', url: '/v1/resume', headers: { ...H, cookie, ...CSRF }, payload: {} });
    expect(r.statusCode).toBe(200);
    expect(r.json().state.halted).toBe(false);
    const out = await t.app.inject({ method: 'POST', url: '/console/logout', headers: { ...H, cookie, ...CSRF }, payload: {} });
    expect(out.statusCode).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0/);
    const after = await t.app.inject({ method: 'GET', url: '/v1/approvals', headers: { ...H, cookie } });
    expect(after.statusCode).toBe(401);
  });
  it('an unknown cookie is 401 on API routes', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/v1/approvals', headers: { ...H, cookie: 'deskd_console=made-up' } });
    expect(r.statusCode).toBe(401);
  });
  it('the agent token cannot open the operator console session route', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/console/session', headers: { ...H, authorization: `Bearer ${AGENT_TOKEN}` } });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
  });
  it('a foreign Origin or Host is refused on console routes', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF, origin: 'http://evil.example' }, payload: { token: OPERATOR_TOKEN } });
    expect(r.statusCode).toBe(403);
    const p = await t.app.inject({ method: 'GET', url: '/', headers: { host: 'rebind.example:7820' } });
    expect(p.statusCode).toBe(403);
    const other = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF, origin: 'http://127.0.0.1:3000' }, payload: { token: OPERATOR_TOKEN } });
    expect(other.statusCode).toBe(403);
    const same = await t.app.inject({ method: 'POST', url: '/console/login', headers: { ...H, ...CSRF, origin: 'http://127.0.0.1:7820' }, payload: { token: OPERATOR_TOKEN } });
    expect(same.statusCode).toBe(200);
  });
});

describe('consoleAuth helpers', () => {
  it('sessions expire and can be revoked', () => {
    let now = 1000;
    const s = new ConsoleSessions({ ttlMs: 100, now: () => now });
    const a = s.create();
    expect(s.get(a.id)?.role).toBe('operator');
    now += 100;
    expect(s.get(a.id)).toBeNull();
    const b = s.create();
    expect(s.revoke(b.id)).toBe(true);
    expect(s.get(b.id)).toBeNull();
  });
  it('sessionFromRequest: GET passes without the header, POST needs it', () => {
    const s = new ConsoleSessions();
    const { id } = s.create();
    const cookie = `other=1; deskd_console=${id}`;
    expect(sessionFromRequest({ method: 'GET', headers: { cookie } }, s)).toEqual({ role: 'operator', sessionId: id });
    expect(() => sessionFromRequest({ method: 'POST', headers: { cookie } }, s)).toThrow(/X-Deskd-Console/);
    expect(sessionFromRequest({ method: 'POST', headers: { cookie, 'x-deskd-console': '1' } }, s)).toEqual({ role: 'operator', sessionId: id });
    expect(sessionFromRequest({ method: 'GET', headers: {} }, s)).toBeNull();
    expect(sessionFromRequest({ method: 'GET', headers: { cookie } })).toBeNull();
  });
  it('public paths, cookies and Host checks', () => {
    expect(isConsolePublicPath('GET', '/')).toBe(true);
    expect(isConsolePublicPath('GET', '/console/static/console.js')).toBe(true);
    expect(isConsolePublicPath('POST', '/console/login')).toBe(true);
    expect(isConsolePublicPath('POST', '/console/logout')).toBe(false);
    expect(isConsolePublicPath('GET', '/console/session')).toBe(false);
    expect(isConsolePublicPath('POST', '/')).toBe(false);
    expect(parseCookies('a=1; b="2"; a=3')).toEqual({ a: '1', b: '2' });
    expect(sessionCookie('x', 10)).toBe('deskd_console=x; HttpOnly; SameSite=Strict; Path=/; Max-Age=10');
    expect(() => assertLoopbackHostOrigin({ headers: { host: 'localhost:7820' } })).not.toThrow();
    expect(() => assertLoopbackHostOrigin({ headers: { host: '[::1]:7820' } })).not.toThrow();
    expect(() => assertLoopbackHostOrigin({ headers: { host: '10.0.0.2:7820' } })).toThrow(/not a loopback/);
    expect(() => assertLoopbackHostOrigin({ headers: { host: 'localhost:7820', origin: 'null' } })).toThrow(/Origin/);
  });
});
