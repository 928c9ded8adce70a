import { describe, it, expect } from 'vitest';
import { mkdtemp, rm, writeFile, chmod, stat, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertHostAndOrigin, assertNoTokenInUrl, parseAuthority, redactUrl, stripCorsHeaders, isLoopbackIp } from '../../src/http/guards.js';
import { ControllerLease, clientIdentity, isActingRequest } from '../../src/http/lease.js';
import { assertBindAllowed, loadConfig, resolveCredential } from '../../src/config.js';
import { DeskdError } from '../../src/errors.js';

const code = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    return e instanceof DeskdError ? e.code : `not a DeskdError: ${String(e)}`;
  }
};

describe('parseAuthority', () => {
  it.each([
    ['127.0.0.1:7820', { host: '127.0.0.1', port: 7820 }],
    ['LOCALHOST:1', { host: 'localhost', port: 1 }],
    ['[::1]:7820', { host: '[::1]', port: 7820 }],
    ['localhost', { host: 'localhost', port: null }],
  ])('%s', (a, want) => expect(parseAuthority(a)).toEqual(want));
  it.each(['', 'a:b', 'localhost:99999', 'user@localhost:1', 'localhost:1/x', '[::1', 'localhost :1'])('rejects %j', (a) => expect(parseAuthority(a)).toBeNull());
});

describe('assertHostAndOrigin', () => {
  const req = (headers: Record<string, string>, socket?: { localPort?: number; localAddress?: string }) => ({ headers, ...(socket ? { socket } : {}) });
  it('uses the socket\'s local port when no port is configured', () => {
    expect(code(() => assertHostAndOrigin(req({ host: 'localhost:5000' }, { localPort: 5000, localAddress: '127.0.0.1' })))).toBeNull();
    expect(code(() => assertHostAndOrigin(req({ host: 'localhost:5001' }, { localPort: 5000, localAddress: '127.0.0.1' })))).toBe('ORIGIN_NOT_ALLOWED');
  });
  it('accepts the non-loopback IP the connection arrived on (only bound with --allow-remote), never a name', () => {
    const s = { localPort: 7820, localAddress: '192.168.1.5' };
    expect(code(() => assertHostAndOrigin(req({ host: '192.168.1.5:7820' }, s)))).toBeNull();
    expect(code(() => assertHostAndOrigin(req({ host: 'desk.example:7820' }, s)))).toBe('ORIGIN_NOT_ALLOWED');
    expect(code(() => assertHostAndOrigin(req({ host: '192.168.1.5:7820' }, { localPort: 7820, localAddress: '127.0.0.1' })))).toBe('ORIGIN_NOT_ALLOWED');
  });
  it('requires Origin to equal http://<Host> exactly', () => {
    expect(code(() => assertHostAndOrigin(req({ host: 'localhost:7820', origin: 'http://localhost:7820' }), { port: 7820 }))).toBeNull();
    expect(code(() => assertHostAndOrigin(req({ host: 'localhost:7820', origin: 'http://127.0.0.1:7820' }), { port: 7820 }))).toBe('ORIGIN_NOT_ALLOWED');
    expect(code(() => assertHostAndOrigin(req({ host: 'localhost:7820', origin: 'http://localhost:7820.evil.test' }), { port: 7820 }))).toBe('ORIGIN_NOT_ALLOWED');
  });
  it('isLoopbackIp', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'].every(isLoopbackIp)).toBe(true);
    expect(['10.0.0.1', '::', '0.0.0.0', '128.0.0.1'].some(isLoopbackIp)).toBe(false);
  });
});

describe('credentials in URLs', () => {
  it.each(['/v1/health?token=x', '/x?a=1&access_token=y', '/x?API_KEY=1', '/x?%74oken=1'])('%s → TOKEN_IN_URL', (u) => expect(code(() => assertNoTokenInUrl(u))).toBe('TOKEN_IN_URL'));
  it.each(['/v1/screenshot?format=png&display=0', '/v1/actions/act_1?waitMs=100', '/x'])('%s passes', (u) => expect(code(() => assertNoTokenInUrl(u))).toBeNull());
  it('redactUrl hides only credential values', () => {
    expect(redactUrl('/a?token=s3cret&display=1&access_token=t')).toBe('/a?token=[redacted]&display=1&access_token=[redacted]');
    expect(redactUrl('/a?format=png')).toBe('/a?format=png');
  });
});

describe('stripCorsHeaders', () => {
  it('removes Access-Control-Allow-*/Expose-* and sets nosniff', () => {
    const headers: Record<string, unknown> = { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x', 'content-type': 'application/json' };
    stripCorsHeaders({ getHeaders: () => ({ ...headers }), removeHeader: (k) => delete headers[k], header: (k, v) => (headers[k] = v) });
    expect(headers).toEqual({ 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
  });
});

describe('ControllerLease', () => {
  it('acquire, renew, refuse others, expire, release, force', () => {
    let now = 0;
    const l = new ControllerLease({ now: () => now, defaultTtlMs: 10_000, maxTtlMs: 60_000, implicitTtlMs: 5000 });
    expect(l.acquire('agent/a')).toMatchObject({ holder: 'agent/a', acquiredAt: 0, expiresAt: 10_000 });
    now = 4000;
    expect(l.acquire('agent/a', 999_999)).toMatchObject({ acquiredAt: 0, expiresAt: 64_000 });
    expect(code(() => l.acquire('agent/b'))).toBe('LEASE_HELD');
    expect(code(() => l.assertMayAct('agent/b'))).toBe('LEASE_HELD');
    expect(l.release('agent/b')).toBe(false);
    now = 64_000;
    expect(l.current()).toBeNull();
    l.assertMayAct('agent/b');
    expect(l.current()).toMatchObject({ holder: 'agent/b', expiresAt: 69_000 });
    now = 68_000;
    l.assertMayAct('agent/b');
    expect(l.current()?.expiresAt).toBe(73_000);
    l.assertMayAct('operator/default', true);
    expect(l.current()?.holder).toBe('operator/default');
    expect(l.release('operator/default', true)).toBe(true);
    expect(l.current()).toBeNull();
  });
  it('clamps tiny TTLs to 1 s', () => {
    const l = new ControllerLease({ now: () => 0 });
    expect(l.acquire('x', 1).expiresAt).toBe(1000);
  });
  it('clientIdentity', () => {
    expect(clientIdentity('agent', undefined)).toBe('agent/default');
    expect(clientIdentity('operator', 'console-1')).toBe('operator/console-1');
    expect(code(() => clientIdentity('agent', 'x'.repeat(65)))).toBe('VALIDATION_FAILED');
    expect(code(() => clientIdentity('agent', 'a/b'))).toBe('VALIDATION_FAILED');
  });
  it('isActingRequest', () => {
    expect(isActingRequest('POST', '/v1/actions', {})).toBe(true);
    expect(isActingRequest('POST', '/v1/tasks', {})).toBe(true);
    expect(isActingRequest('POST', '/v1/observe', {})).toBe(false);
    expect(isActingRequest('GET', '/v1/actions/act_1', undefined)).toBe(false);
    const call = (name: unknown) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } });
    expect(isActingRequest('POST', '/mcp', call('observe'))).toBe(false);
    expect(isActingRequest('POST', '/mcp', call('click'))).toBe(true);
    expect(isActingRequest('POST', '/mcp', call('some_new_tool'))).toBe(true);
    expect(isActingRequest('POST', '/mcp', call(42))).toBe(true);
    expect(isActingRequest('POST', '/mcp', [call('find'), call('type')])).toBe(true);
    expect(isActingRequest('POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBe(false);
  });
});

describe('binding', () => {
  it.each(['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost'])('%s is allowed', (h) => expect(code(() => assertBindAllowed(h, false))).toBeNull());
  it.each(['0.0.0.0', '::', '192.168.1.5'])('%s is refused without --allow-remote, allowed with it', (h) => {
    expect(code(() => assertBindAllowed(h, false))).toBe('REMOTE_BIND_REFUSED');
    expect(code(() => assertBindAllowed(h, true))).toBeNull();
  });
  it('a host name other than localhost is refused (it could resolve anywhere)', () => expect(code(() => assertBindAllowed('desk.example', true))).toBe('VALIDATION_FAILED'));
  it('loadConfig: loopback by default; --host needs --allow-remote', () => {
    expect(loadConfig([], {}).host).toBe('127.0.0.1');
    expect(code(() => loadConfig(['--host', '0.0.0.0'], {}))).toBe('REMOTE_BIND_REFUSED');
    expect(loadConfig(['--host', '0.0.0.0', '--allow-remote'], {})).toMatchObject({ host: '0.0.0.0', allowRemote: true });
  });
});

describe('token files must be 0600', () => {
  it('refuses a group/world-readable token file with INSECURE_FILE_MODE and leaves it untouched', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deskd-cred-'));
    try {
      const f = join(dir, 'token');
      await writeFile(f, 'a-token-of-sufficient-length-123\n');
      await chmod(f, 0o644);
      await expect(resolveCredential(dir, 'DESKD_TOKEN', 'token', {})).rejects.toMatchObject({ code: 'INSECURE_FILE_MODE', message: expect.stringContaining('chmod 600') });
      expect((await stat(f)).mode & 0o777).toBe(0o644);
      await chmod(f, 0o640);
      await expect(resolveCredential(dir, 'DESKD_TOKEN', 'token', {})).rejects.toMatchObject({ code: 'INSECURE_FILE_MODE' });
      await chmod(f, 0o600);
      await expect(resolveCredential(dir, 'DESKD_TOKEN', 'token', {})).resolves.toMatchObject({ token: 'a-token-of-sufficient-length-123', created: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('creates a missing token file with mode 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deskd-cred-'));
    try {
      const c = await resolveCredential(join(dir, 'sub'), 'DESKD_TOKEN', 'token', {});
      expect(c.created).toBe(true);
      expect((await stat(join(dir, 'sub', 'token'))).mode & 0o777).toBe(0o600);
      expect((await readFile(join(dir, 'sub', 'token'), 'utf8')).trim()).toBe(c.token);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the audit key must be 0600 too', () => {
  it('loadAuditKey refuses a group/world-readable key (AUDIT_WRITE_FAILED: the daemon does not start)', async () => {
    const { loadAuditKey } = await import('../../src/policy/audit.js');
    const dir = await mkdtemp(join(tmpdir(), 'deskd-key-'));
    try {
      const f = join(dir, 'audit.key');
      await writeFile(f, `${'ab'.repeat(32)}\n`);
      await chmod(f, 0o644);
      await expect(loadAuditKey(f)).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED', message: expect.stringContaining('chmod 600') });
      await chmod(f, 0o600);
      await expect(loadAuditKey(f)).resolves.toHaveLength(32);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
