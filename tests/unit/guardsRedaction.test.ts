import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CREDENTIAL_QUERY_PARAMS, LOG_REDACT_PATHS, redactUrl, safeRequestSerializer, stripCorsHeaders } from '../../src/http/guards.js';

// What never reaches the daemon's log (src/http/guards.ts, used by src/main.ts and src/app.ts): the
// logger's redaction paths applied by a real pino logger as main.ts builds it, credential query values in
// logged URLs, and the CORS headers deskd never sends.

function logged(obj: object): string {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  });
  const log = pino({ level: 'info', redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } }, sink);
  log.info(obj, 'line');
  return out;
}

describe('LOG_REDACT_PATHS (as main.ts gives them to pino)', () => {
  it.each([
    ['the request\'s Authorization header', { req: { headers: { authorization: 'Bearer S3CRET' } } }],
    ['the request\'s cookie', { req: { headers: { cookie: 'deskd_console=S3CRET' } } }],
    ['a set-cookie on the request object', { req: { headers: { 'set-cookie': 'deskd_console=S3CRET' } } }],
    ['bare headers', { headers: { authorization: 'Bearer S3CRET' } }],
    ['a bare cookie header', { headers: { cookie: 'S3CRET' } }],
    ['the answer\'s set-cookie', { res: { headers: { 'set-cookie': 'deskd_console=S3CRET' } } }],
    ['a request body', { req: { body: { anything: 'S3CRET' } } }],
    ['a body', { body: 'S3CRET' }],
    ['a token', { token: 'S3CRET' }],
    ['a nested token', { credential: { token: 'S3CRET' } }],
    ['a password', { password: 'S3CRET' }],
    ['a nested password', { login: { password: 'S3CRET' } }],
    ['typed text', { text: 'S3CRET' }],
    ['nested typed text', { step: { text: 'S3CRET' } }],
    ['an action\'s text', { action: { type: 'type', text: 'S3CRET' } }],
    ['the text of every action of a batch', { actions: [{ type: 'type', text: 'S3CRET' }, { type: 'type', text: 'S3CRET' }] }],
    ['the text of a nested batch', { request: { actions: [{ type: 'type', text: 'S3CRET' }] } }],
    ['a value', { value: 'S3CRET' }],
    ['a nested value', { action: { type: 'set_value', value: 'S3CRET' } }],
  ])('%s is redacted', (_name, obj) => {
    const line = logged(obj);
    expect(line).not.toContain('S3CRET');
    expect(line).toContain('[redacted]');
  });

  it('other fields stay readable', () => {
    const line = logged({ req: { method: 'POST', url: '/v1/actions' }, action: { type: 'click' } });
    expect(line).toContain('/v1/actions');
    expect(line).not.toContain('[redacted]');
  });
});

describe('credentials in logged URLs', () => {
  it('every credential parameter name, any case, is redacted; the others are kept as sent', () => {
    expect([...CREDENTIAL_QUERY_PARAMS].sort()).toEqual(['access_token', 'accesstoken', 'api_key', 'apikey', 'auth', 'authorization', 'bearer', 'key', 'password', 'session', 'token']);
    for (const name of CREDENTIAL_QUERY_PARAMS) {
      expect(redactUrl(`/x?${name}=S3CRET`)).toBe(`/x?${name}=[redacted]`);
      expect(redactUrl(`/x?a=1&${name.toUpperCase()}=S3CRET&b=2`)).toBe(`/x?a=1&${name.toUpperCase()}=[redacted]&b=2`);
    }
    expect(redactUrl('/x?tokens=1&keys=2')).toBe('/x?tokens=1&keys=2');
  });

  it('a percent-encoded name is recognised; a malformed escape is left as sent', () => {
    expect(redactUrl('/x?%74oken=S3CRET')).toBe('/x?%74oken=[redacted]');
    expect(redactUrl('/x?%E0%A4%A=1&token=S3CRET')).toBe('/x?%E0%A4%A=1&token=[redacted]');
  });

  it('no query, an empty query, a parameter without a value', () => {
    expect(redactUrl('/v1/health')).toBe('/v1/health');
    expect(redactUrl('/v1/health?')).toBe('/v1/health?');
    expect(redactUrl('/x?token')).toBe('/x?token');
    expect(redactUrl('/x?token=')).toBe('/x?token=[redacted]');
  });

  it('safeRequestSerializer: method, redacted url, host, remote address and port', () => {
    expect(safeRequestSerializer({ method: 'GET', url: '/v1/observe?token=S3CRET', host: '127.0.0.1:7820', ip: '127.0.0.1', socket: { remotePort: 5555 } })).toEqual({
      method: 'GET',
      url: '/v1/observe?token=[redacted]',
      host: '127.0.0.1:7820',
      remoteAddress: '127.0.0.1',
      remotePort: 5555,
    });
    expect(safeRequestSerializer({})).toEqual({ method: undefined, url: '', host: undefined, remoteAddress: undefined, remotePort: undefined });
  });
});

describe('stripCorsHeaders', () => {
  it('drops allow/expose headers in any case, keeps the other access-control and ordinary headers', () => {
    const headers: Record<string, unknown> = {
      'Access-Control-Allow-Origin': '*',
      'ACCESS-CONTROL-EXPOSE-HEADERS': 'x',
      'access-control-allow-methods': 'POST',
      'access-control-max-age': '600',
      'x-access-control-allow-origin': 'kept',
      'content-type': 'application/json',
    };
    stripCorsHeaders({ getHeaders: () => ({ ...headers }), removeHeader: (k) => delete headers[k], header: (k, v) => (headers[k] = v) });
    expect(headers).toEqual({ 'access-control-max-age': '600', 'x-access-control-allow-origin': 'kept', 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
  });
});
