/**
 * Edges of the console sign-in module (src/http/consoleAuth.ts) that survived the mutation run of issue 13
 * ("Tests that can fail"): session eviction and expiry at the exact instant, cookie parsing, a session
 * cookie without a value, the routed static path's parameters, the sign-in throttle's window edge and
 * retry time, and the loopback Host/Origin check (https, other ports, case and whitespace, error code).
 */
import { describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { CONSOLE_STATIC_ROUTE, ConsoleSessions, SignInThrottle, assertLoopbackHostOrigin, isConsolePublicPath, parseCookies, sessionFromRequest } from '../../src/http/consoleAuth.js';

describe('ConsoleSessions', () => {
  it('keeps at most maxSessions, evicting the oldest; exactly maxSessions are kept', () => {
    const s = new ConsoleSessions({ maxSessions: 3 });
    const [a, b, c] = [s.create(), s.create(), s.create()];
    expect(s.size).toBe(3);
    expect([a, b, c].every((x) => s.get(x.id) !== null)).toBe(true);
    const d = s.create();
    expect(s.size).toBe(3);
    expect(s.get(a.id)).toBeNull();
    expect(s.get(b.id)).not.toBeNull();
    expect(s.get(d.id)).not.toBeNull();
  });

  it('a session expires at expiresAt exactly; size and create sweep expired ones; clear signs everyone out', () => {
    let now = 1000;
    const s = new ConsoleSessions({ ttlMs: 100, now: () => now });
    const a = s.create();
    expect(a.expiresAt).toBe(1100);
    now = 1099;
    expect(s.size).toBe(1);
    expect(s.get(a.id)).not.toBeNull();
    now = 1100;
    expect(s.size).toBe(0);
    const b = s.create();
    now = 1150;
    const c = s.create();
    expect(s.size).toBe(2);
    now = 1200; // b expires, c does not
    expect(s.size).toBe(1);
    expect(s.get(b.id)).toBeNull();
    expect(s.get(c.id)).not.toBeNull();
    s.clear();
    expect(s.size).toBe(0);
    expect(s.get(c.id)).toBeNull();
    expect(s.ttl).toBe(100);
  });
});

describe('parseCookies', () => {
  it('trims names and values, unquotes only a fully quoted value, skips parts without a name', () => {
    expect(parseCookies(' a = 1 ;b=  2  ')).toEqual({ a: '1', b: '2' });
    expect(parseCookies('a="x"; b="; c=y"; d="')).toEqual({ a: 'x', b: '"', c: 'y"', d: '"' });
    expect(parseCookies('=v; x=1; noequals')).toEqual({ x: '1' });
    expect(parseCookies('a=""')).toEqual({ a: '' });
    // Quoted on one side only: left as it is.
    expect(parseCookies('a="abc; b=abc"')).toEqual({ a: '"abc', b: 'abc"' });
    expect(parseCookies(undefined)).toEqual({});
  });
  it('cookies named like Object.prototype members are cookies like any other', () => {
    const c = parseCookies('constructor=1; __proto__=2; toString=3; deskd_console=s');
    expect(Object.keys(c)).toEqual(['constructor', '__proto__', 'toString', 'deskd_console']);
    expect([c['constructor'], c['__proto__'], c['toString'], c['deskd_console']]).toEqual(['1', '2', '3', 's']);
  });
});

describe('sessionFromRequest', () => {
  it('a cookie without a value, or another cookie only, is no session (and no CSRF error)', () => {
    const s = new ConsoleSessions();
    s.create();
    expect(sessionFromRequest({ method: 'POST', headers: { cookie: 'deskd_console=' } }, s)).toBeNull();
    expect(sessionFromRequest({ method: 'POST', headers: { cookie: 'other=1' } }, s)).toBeNull();
    expect(sessionFromRequest({ method: 'POST', headers: { cookie: 'deskd_console=unknown' } }, s)).toBeNull();
  });
});

describe('isConsolePublicPath on the routed static pattern', () => {
  it('needs a params object whose file is a plain file-name string', () => {
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, { file: 'console.js' })).toBe(true);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE)).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, null)).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, 'console.js')).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, { file: ['console.js'] })).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, { file: 7 })).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, {})).toBe(false);
    expect(isConsolePublicPath('POST', CONSOLE_STATIC_ROUTE, { file: 'console.js' })).toBe(false);
  });
});

describe('SignInThrottle', () => {
  it('a failure exactly windowMs old no longer counts; retryAfterMs counts from the oldest counted failure', () => {
    let t = 0;
    const th = new SignInThrottle({ maxFailures: 1, windowMs: 1000, baseDelayMs: 10, maxDelayMs: 1000, now: () => t });
    expect(th.failure()).toEqual({ limited: false, delayMs: 0, retryAfterMs: 1000 });
    t = 999;
    expect(th.recentFailures).toBe(1);
    expect(th.failure()).toEqual({ limited: true, delayMs: 10, retryAfterMs: 1 });
    t = 1000; // the first failure (t=0) leaves the window, the second (t=999) stays
    expect(th.recentFailures).toBe(1);
    expect(th.failure()).toEqual({ limited: true, delayMs: 10, retryAfterMs: 999 });
    t = 5000;
    expect(th.recentFailures).toBe(0);
    expect(th.failure()).toEqual({ limited: false, delayMs: 0, retryAfterMs: 1000 });
  });

  it('the delay doubles from baseDelayMs and stops at maxDelayMs; memory keeps exactly max + 64 failures', () => {
    const t = 0;
    const th = new SignInThrottle({ maxFailures: 2, windowMs: 60_000, baseDelayMs: 3, maxDelayMs: 20, now: () => t });
    const delays = Array.from({ length: 8 }, () => th.failure().delayMs);
    expect(delays).toEqual([0, 0, 3, 6, 12, 20, 20, 20]);
    for (let i = 0; i < 200; i++) th.failure();
    expect(th.recentFailures).toBe(2 + 64);
    expect(th.failure()).toEqual({ limited: true, delayMs: 20, retryAfterMs: 60_000 });
  });

  it('a huge number of failures still gives a finite delay capped at maxDelayMs', () => {
    let t = 0;
    const th = new SignInThrottle({ maxFailures: 0, windowMs: 10, baseDelayMs: 1, maxDelayMs: 1e12, now: () => t++ });
    let last = 0;
    for (let i = 0; i < 100; i++) last = th.failure().delayMs;
    expect(last).toBe(2 ** 9); // the window holds 10 failures (one per ms): excess 10 → 1 × 2^9
  });
});

describe('assertLoopbackHostOrigin', () => {
  const refuse = (headers: Record<string, string>, re: RegExp) => {
    let e: unknown = null;
    try {
      assertLoopbackHostOrigin({ headers });
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(DeskdError);
    expect((e as DeskdError).code).toBe('ORIGIN_NOT_ALLOWED');
    expect((e as DeskdError).message).toMatch(re);
  };

  it('refuses a missing or foreign Host with ORIGIN_NOT_ALLOWED naming it', () => {
    refuse({}, /^Host "" is not a loopback/);
    refuse({ host: 'evil.example:7820' }, /^Host "evil.example:7820"/);
  });

  it('Origin must be http:// and exactly this host and port; case and surrounding spaces of Host do not matter', () => {
    expect(() => assertLoopbackHostOrigin({ headers: { host: 'localhost:7820', origin: 'http://localhost:7820' } })).not.toThrow();
    expect(() => assertLoopbackHostOrigin({ headers: { host: ' LOCALHOST:7820 ', origin: 'http://localhost:7820' } })).not.toThrow();
    expect(() => assertLoopbackHostOrigin({ headers: { host: '127.0.0.1:7820', origin: 'http://127.0.0.1:7820' } })).not.toThrow();
    refuse({ host: 'localhost:7820', origin: 'https://localhost:7820' }, /^Origin "https:\/\/localhost:7820" is not allowed/);
    refuse({ host: 'localhost:7820', origin: 'http://localhost:3000' }, /Origin/);
    refuse({ host: 'localhost:7820', origin: 'http://127.0.0.1:7820' }, /Origin/);
    refuse({ host: 'localhost:7820', origin: 'not a url' }, /Origin/);
  });
});
