import { describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { LOOPBACK_NAMES, assertHostAndOrigin, assertNoTokenInUrl, isLoopbackIp, parseAuthority } from '../../src/http/guards.js';

// DNS-rebinding, cross-site and credentials-in-URL refusals at their edges (src/http/guards.ts); the
// main cases are in guards.test.ts, the HTTP paths in hardening.test.ts and security-http.test.ts.

function refusal(f: () => unknown): DeskdError | null {
  try {
    f();
  } catch (e) {
    if (e instanceof DeskdError) return e;
    throw e;
  }
  return null;
}
const req = (headers: Record<string, string | string[]>, socket?: { localPort?: number; localAddress?: string }) => ({ headers: headers as Record<string, string>, ...(socket ? { socket } : {}) });

describe('parseAuthority edges', () => {
  it.each([
    ['  LocalHost:7820  ', { host: 'localhost', port: 7820 }],
    ['[::1]', { host: '[::1]', port: null }],
    ['[::1]:0', { host: '[::1]', port: 0 }],
    ['127.0.0.1:65535', { host: '127.0.0.1', port: 65535 }],
    ['127.0.0.1:00080', { host: '127.0.0.1', port: 80 }],
  ])('%j', (a, want) => expect(parseAuthority(a)).toEqual(want));

  it.each(['   ', '127.0.0.1:65536', '127.0.0.1:123456', '127.0.0.1:', '[::1]x', '[::1]:x', 'local host', 'a#b', 'a?b', 'a\\b', 'a:1:2', '[::1]:80:1'])('refuses %j', (a) => {
    expect(parseAuthority(a)).toBeNull();
  });

  it('an authority without a port gives null, never a parse of the empty rest', () => {
    expect(parseAuthority('localhost')?.port).toBeNull();
  });

  it('an empty host before the port parses but is no loopback name', () => {
    expect(parseAuthority(':80')).toEqual({ host: '', port: 80 });
    expect(refusal(() => assertHostAndOrigin(req({ host: ':80' }), { port: 80 }))?.code).toBe('ORIGIN_NOT_ALLOWED');
  });
});

describe('Host', () => {
  it('the loopback names are exactly 127.0.0.1, localhost and [::1]', () => {
    expect([...LOOPBACK_NAMES].sort()).toEqual(['127.0.0.1', '[::1]', 'localhost']);
    for (const h of ['127.0.0.1', 'localhost', '[::1]']) expect(refusal(() => assertHostAndOrigin(req({ host: `${h}:7820` }), { port: 7820 }))).toBeNull();
    for (const h of ['127.0.0.2', '0.0.0.0', 'localhost.', 'evil.test', '[::2]']) expect(refusal(() => assertHostAndOrigin(req({ host: `${h}:7820` }), { port: 7820 }))?.code).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('a missing Host is refused, and says so', () => {
    const e = refusal(() => assertHostAndOrigin(req({}), { port: 7820 }));
    expect(e?.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(e?.message).toBe('Host "" is not a loopback address of this daemon');
    expect(refusal(() => assertHostAndOrigin(req({ host: 'a b' }), { port: 7820 }))?.message).toBe('Host "a b" is not a loopback address of this daemon');
  });

  it('a non-loopback name says DNS rebinding; a wrong port names the daemon\'s port', () => {
    expect(refusal(() => assertHostAndOrigin(req({ host: 'evil.test:7820' }), { port: 7820 }))?.message).toContain('(DNS-rebinding protection)');
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:7821' }), { port: 7820 }))?.message).toBe('Host "localhost:7821" does not name this daemon\'s port 7820');
  });

  it('no port in Host means 80', () => {
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost' }), { port: 80 }))).toBeNull();
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost' }), { port: 7820 }))?.code).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('port null skips the port comparison (in-process inject); an explicit port wins over the socket\'s', () => {
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:1' }), { port: null }))).toBeNull();
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:1' }, { localPort: 1 }), { port: 2 }))?.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:2' }, { localPort: 1 }), { port: 2 }))).toBeNull();
    // Neither a configured port nor a socket: no comparison.
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:9' })))).toBeNull();
  });

  it('extraHosts replaces the connection\'s own address', () => {
    expect(refusal(() => assertHostAndOrigin(req({ host: 'desk.lan:7820' }), { port: 7820, extraHosts: ['desk.lan'] }))).toBeNull();
    expect(refusal(() => assertHostAndOrigin(req({ host: '192.168.1.5:7820' }, { localPort: 7820, localAddress: '192.168.1.5' }), { extraHosts: [] }))?.code).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('the connection\'s own address: IPv4-mapped addresses unwrapped, IPv6 bracketed and lower-cased; loopback and non-IPs add nothing', () => {
    expect(refusal(() => assertHostAndOrigin(req({ host: '192.168.1.5:7820' }, { localPort: 7820, localAddress: '::ffff:192.168.1.5' })))).toBeNull();
    expect(refusal(() => assertHostAndOrigin(req({ host: '[fd00::5]:7820' }, { localPort: 7820, localAddress: 'FD00::5' })))).toBeNull();
    expect(refusal(() => assertHostAndOrigin(req({ host: 'fd00::5:7820' }, { localPort: 7820, localAddress: 'fd00::5' })))?.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(refusal(() => assertHostAndOrigin(req({ host: '127.0.0.2:7820' }, { localPort: 7820, localAddress: '127.0.0.2' })))?.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(refusal(() => assertHostAndOrigin(req({ host: 'desk:7820' }, { localPort: 7820, localAddress: 'desk' })))?.code).toBe('ORIGIN_NOT_ALLOWED');
  });
});

describe('Origin and Sec-Fetch-Site', () => {
  it('Origin compared case-insensitively with http://<Host as sent>; the message names what is allowed', () => {
    expect(refusal(() => assertHostAndOrigin(req({ host: ' LocalHost:7820 ', origin: 'HTTP://localhost:7820' }), { port: 7820 }))).toBeNull();
    const e = refusal(() => assertHostAndOrigin(req({ host: 'localhost:7820', origin: 'null' }), { port: 7820 }));
    expect(e?.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(e?.message).toBe('Origin "null" is not allowed: only pages served by this daemon (http://localhost:7820) may call it');
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:7820', origin: 'https://localhost:7820' }), { port: 7820 }))?.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:7820', origin: '' }), { port: 7820 }))?.code).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('Sec-Fetch-Site: same-origin and none pass; same-site and cross-site are refused by name', () => {
    for (const s of ['same-origin', 'none']) expect(refusal(() => assertHostAndOrigin(req({ host: 'localhost:7820', 'sec-fetch-site': s }), { port: 7820 }))).toBeNull();
    for (const s of ['same-site', 'cross-site']) {
      const e = refusal(() => assertHostAndOrigin(req({ host: 'localhost:7820', 'sec-fetch-site': s }), { port: 7820 }));
      expect(e?.code).toBe('ORIGIN_NOT_ALLOWED');
      expect(e?.message).toBe(`A ${s} browser request is not allowed (Sec-Fetch-Site)`);
    }
  });
});

describe('isLoopbackIp edges', () => {
  it.each(['127.255.255.255', '::FFFF:127.0.0.1', '127.0.0.1'])('%s is loopback', (ip) => expect(isLoopbackIp(ip)).toBe(true));
  it.each(['127.0.0.1.5', '127.1', 'x127.0.0.1', '::1:1', '::ffff:10.0.0.1', '1127.0.0.1', '127.0.0.1234'])('%s is not', (ip) => expect(isLoopbackIp(ip)).toBe(false));
});

describe('credentials in the URL', () => {
  it('every credential parameter name is refused (any case); the message names it and says where the token goes', () => {
    for (const name of ['token', 'access_token', 'accesstoken', 'bearer', 'api_key', 'apikey', 'key', 'auth', 'authorization', 'password', 'session']) {
      const e = refusal(() => assertNoTokenInUrl(`/v1/health?x=1&${name.toUpperCase()}=v`));
      expect(e?.code, name).toBe('TOKEN_IN_URL');
      expect(e?.message).toBe(`Credentials are never accepted in the URL (query parameter "${name.toUpperCase()}"): send "Authorization: Bearer <token>"`);
    }
  });

  it('an empty query, a question mark inside a later parameter, or a name that only contains a credential word pass', () => {
    for (const u of ['/v1/health?', '/v1/health?tokens=1', '/v1/health?mytoken=1', '/v1/health?q=token']) expect(refusal(() => assertNoTokenInUrl(u)), u).toBeNull();
    expect(refusal(() => assertNoTokenInUrl('/a?b=1?token=2'))).toBeNull();
    expect(refusal(() => assertNoTokenInUrl('/a?b=1&token'))?.code).toBe('TOKEN_IN_URL');
  });
});
