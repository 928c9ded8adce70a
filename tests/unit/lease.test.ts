import { describe, it, expect } from 'vitest';
import { ACTING_ROUTES, CLIENT_HEADER, ControllerLease, MCP_READ_ONLY_TOOLS, MIN_LEASE_TTL_MS, clientIdentity, isActingRequest, mcpCallsAny } from '../../src/http/lease.js';
import { DeskdError } from '../../src/errors.js';
import { thrown as thrownBy } from '../helpers/rejection.js';

// The controller lease's edges (src/http/lease.ts): TTL defaults and clamps, the exact expiry instant, what
// a renewal keeps, who may release, the operator's take-over, the LEASE_HELD details a client retries on,
// the client-id grammar and which requests count as acting. `guards.test.ts` covers the main walk-through.

const thrown = (f: () => unknown) => thrownBy(f, 'expected a DeskdError, nothing was thrown');

describe('ControllerLease TTLs', () => {
  it('defaults: 30 s for an explicit acquire, at most 10 min, 30 s taken by an acting request', () => {
    const l = new ControllerLease({ now: () => 1000 });
    expect(l.defaultTtlMs).toBe(30_000);
    expect(l.maxTtlMs).toBe(600_000);
    expect(l.implicitTtlMs).toBe(30_000);
    expect(l.acquire('agent/a')).toEqual({ holder: 'agent/a', acquiredAt: 1000, expiresAt: 31_000 });
    expect(l.acquire('agent/a', 10 * 600_000).expiresAt).toBe(601_000);
    const m = new ControllerLease({ now: () => 1000 });
    m.assertMayAct('agent/a');
    expect(m.current()).toEqual({ holder: 'agent/a', acquiredAt: 1000, expiresAt: 31_000 });
  });

  it('without a clock it uses the wall clock', () => {
    const before = Date.now();
    const l = new ControllerLease();
    const s = l.acquire('agent/a', 5000);
    expect(s.acquiredAt).toBeGreaterThanOrEqual(before);
    expect(s.acquiredAt).toBeLessThanOrEqual(Date.now());
    expect(s.expiresAt - s.acquiredAt).toBe(5000);
  });

  it('TTLs are clamped to [1 s, maxTtlMs] and floored to whole ms', () => {
    expect(MIN_LEASE_TTL_MS).toBe(1000);
    const l = new ControllerLease({ now: () => 0, maxTtlMs: 60_000 });
    expect(l.acquire('a', 0).expiresAt).toBe(1000);
    expect(l.acquire('a', 999).expiresAt).toBe(1000);
    expect(l.acquire('a', 1000).expiresAt).toBe(1000);
    expect(l.acquire('a', 1500.9).expiresAt).toBe(1500);
    expect(l.acquire('a', 60_000).expiresAt).toBe(60_000);
    expect(l.acquire('a', 60_001).expiresAt).toBe(60_000);
  });
});

describe('ControllerLease expiry and renewal', () => {
  it('the lease is free at exactly expiresAt, held one ms before', () => {
    let now = 0;
    const l = new ControllerLease({ now: () => now });
    l.acquire('agent/a', 5000);
    now = 4999;
    expect(l.current()?.holder).toBe('agent/a');
    expect(() => l.acquire('agent/b')).toThrow(DeskdError);
    now = 5000;
    expect(l.current()).toBeNull();
    expect(l.acquire('agent/b', 5000)).toEqual({ holder: 'agent/b', acquiredAt: 5000, expiresAt: 10_000 });
  });

  it('current() hands out a copy: changing it does not move the lease', () => {
    const l = new ControllerLease({ now: () => 0 });
    l.acquire('agent/a', 5000);
    const c = l.current()!;
    c.expiresAt = 1;
    c.holder = 'agent/evil';
    expect(l.current()).toEqual({ holder: 'agent/a', acquiredAt: 0, expiresAt: 5000 });
    const a = l.acquire('agent/a', 5000);
    a.holder = 'agent/evil';
    expect(l.current()?.holder).toBe('agent/a');
  });

  it('a renewal keeps acquiredAt and may shorten the lease; a lease taken after expiry starts anew', () => {
    let now = 0;
    const l = new ControllerLease({ now: () => now });
    l.acquire('agent/a', 20_000);
    now = 3000;
    expect(l.acquire('agent/a', 2000)).toEqual({ holder: 'agent/a', acquiredAt: 0, expiresAt: 5000 });
    now = 5000;
    expect(l.acquire('agent/a', 2000)).toEqual({ holder: 'agent/a', acquiredAt: 5000, expiresAt: 7000 });
  });
});

describe('ControllerLease.release', () => {
  it('only the holder releases, unless forced; releasing a free lease says false', () => {
    let now = 0;
    const l = new ControllerLease({ now: () => now });
    expect(l.release('agent/a')).toBe(false);
    expect(l.release('agent/a', true)).toBe(false);
    l.acquire('agent/a', 5000);
    expect(l.release('agent/b')).toBe(false);
    expect(l.current()?.holder).toBe('agent/a');
    expect(l.release('agent/a')).toBe(true);
    expect(l.current()).toBeNull();
    expect(l.release('agent/a')).toBe(false);
    l.acquire('agent/a', 5000);
    expect(l.release('operator/default', true)).toBe(true);
    expect(l.current()).toBeNull();
    l.acquire('agent/a', 5000);
    now = 5000;
    expect(l.release('agent/a')).toBe(false);
  });
});

describe('ControllerLease.assertMayAct', () => {
  it('an action by the holder extends a short lease to implicitTtlMs, never shortens a long one', () => {
    let now = 0;
    const l = new ControllerLease({ now: () => now, implicitTtlMs: 5000 });
    l.acquire('agent/a', 60_000);
    now = 1000;
    l.assertMayAct('agent/a');
    expect(l.current()).toEqual({ holder: 'agent/a', acquiredAt: 0, expiresAt: 60_000 });
    now = 58_000;
    l.assertMayAct('agent/a');
    expect(l.current()).toEqual({ holder: 'agent/a', acquiredAt: 0, expiresAt: 63_000 });
  });

  it('another client is refused and the lease is left as it was; the operator takes it over', () => {
    let now = 0;
    const l = new ControllerLease({ now: () => now, implicitTtlMs: 5000 });
    l.acquire('agent/a', 60_000);
    now = 1000;
    expect(thrown(() => l.assertMayAct('agent/b')).code).toBe('LEASE_HELD');
    expect(thrown(() => l.assertMayAct('agent/b', false)).code).toBe('LEASE_HELD');
    expect(l.current()).toEqual({ holder: 'agent/a', acquiredAt: 0, expiresAt: 60_000 });
    l.assertMayAct('operator/default', true);
    expect(l.current()).toEqual({ holder: 'operator/default', acquiredAt: 1000, expiresAt: 6000 });
    expect(thrown(() => l.assertMayAct('agent/a')).code).toBe('LEASE_HELD');
  });

  it('the holder itself is never refused, preempt or not', () => {
    const l = new ControllerLease({ now: () => 0 });
    l.acquire('agent/a', 5000);
    expect(() => l.assertMayAct('agent/a')).not.toThrow();
    expect(() => l.assertMayAct('agent/a', true)).not.toThrow();
    expect(l.current()?.holder).toBe('agent/a');
  });
});

describe('LEASE_HELD', () => {
  it('names the holder, when it expires and how long to wait (details and message)', () => {
    let now = 0;
    const l = new ControllerLease({ now: () => now });
    l.acquire('agent/a', 10_000);
    now = 2500;
    for (const f of [() => l.acquire('agent/b'), () => l.assertMayAct('agent/b')]) {
      const e = thrown(f);
      expect(e.code).toBe('LEASE_HELD');
      expect(e.details).toEqual({ holder: 'agent/a', expiresAt: 10_000, retryAfterMs: 7500 });
      expect(e.message).toContain('agent/a');
      expect(e.message).toContain('up to 8 s more');
    }
  });
});

describe('clientIdentity', () => {
  it('header grammar: 1-64 of A-Z a-z 0-9 . _ : @ -', () => {
    expect(CLIENT_HEADER).toBe('x-deskd-client');
    expect(clientIdentity('agent', 'Az09._:@-')).toBe('agent/Az09._:@-');
    expect(clientIdentity('agent', 'x'.repeat(64))).toBe(`agent/${'x'.repeat(64)}`);
    for (const bad of ['', 'x'.repeat(65), 'a b', 'a/b', 'a,b', 'ä', 'a\nb', '\na', 'a\n'])
      expect(thrown(() => clientIdentity('agent', bad)).code, JSON.stringify(bad)).toBe('VALIDATION_FAILED');
  });

  it('the refusal says what a client id may be', () => {
    expect(thrown(() => clientIdentity('agent', 'a b')).message).toBe('X-Deskd-Client must be 1-64 characters of A-Z a-z 0-9 . _ : @ -');
  });

  it('a repeated header is joined, so two values never pass as one client', () => {
    expect(clientIdentity('agent', ['one'])).toBe('agent/one');
    expect(thrown(() => clientIdentity('agent', ['one', 'two'])).code).toBe('VALIDATION_FAILED');
    expect(thrown(() => clientIdentity('agent', [])).code).toBe('VALIDATION_FAILED');
  });
});

describe('isActingRequest', () => {
  const call = (name: unknown) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } });

  it('the acting routes, by their routed pattern and any method case', () => {
    expect([...ACTING_ROUTES].sort()).toEqual(['POST /v1/actions', 'POST /v1/tasks']);
    expect(isActingRequest('post', '/v1/actions', {})).toBe(true);
    expect(isActingRequest('Post', '/v1/tasks', {})).toBe(true);
    expect(isActingRequest('GET', '/v1/tasks', undefined)).toBe(false);
    expect(isActingRequest('DELETE', '/v1/actions', undefined)).toBe(false);
  });

  it('a 404 (no routed pattern) is never acting, whatever the config', () => {
    expect(isActingRequest('POST', undefined, {}, { acting: true })).toBe(false);
    expect(isActingRequest('POST', undefined, call('click'))).toBe(false);
  });

  it('config.acting must be exactly true', () => {
    expect(isActingRequest('GET', '/v1/custom', undefined, { acting: true })).toBe(true);
    expect(isActingRequest('GET', '/v1/custom', undefined, { acting: 'yes' })).toBe(false);
    expect(isActingRequest('GET', '/v1/custom', undefined, { acting: 1 })).toBe(false);
    expect(isActingRequest('GET', '/v1/custom', undefined, {})).toBe(false);
    expect(isActingRequest('GET', '/v1/custom', undefined)).toBe(false);
  });

  it('every read-only MCP tool stays open; anything else needs the lease', () => {
    expect([...MCP_READ_ONLY_TOOLS]).toEqual(expect.arrayContaining(['find', 'list_apps', 'list_windows', 'observe', 'screenshot', 'wait_for']));
    for (const t of MCP_READ_ONLY_TOOLS) expect(isActingRequest('POST', '/mcp', call(t)), t).toBe(false);
    for (const t of ['click', 'type', 'key', 'press', 'set_value', 'focus_window', 'run_task', '']) expect(isActingRequest('POST', '/mcp', call(t)), t).toBe(true);
  });

  it('only POST /mcp reads the body', () => {
    expect(isActingRequest('GET', '/mcp', call('click'))).toBe(false);
    expect(isActingRequest('DELETE', '/mcp', call('click'))).toBe(false);
    expect(isActingRequest('POST', '/v1/observe', call('click'))).toBe(false);
    expect(isActingRequest('POST', '/mcp/', call('click'))).toBe(false);
  });
});

describe('mcpCallsAny', () => {
  const pickAll = () => true;
  it('ignores what is not a tools/call message', () => {
    for (const body of [undefined, null, 0, 'tools/call', true, [], [null, 7, 'x'], { method: 'tools/list', params: { name: 'click' } }, { method: 'initialize' }, {}])
      expect(mcpCallsAny(body, pickAll), JSON.stringify(body)).toBe(false);
  });

  it('a tools/call without a string name counts as picked (fail closed), whatever pick says', () => {
    const never = () => false;
    for (const params of [undefined, null, 'click', 42, {}, { name: 7 }, { name: null }])
      expect(mcpCallsAny({ method: 'tools/call', params }, never), JSON.stringify(params)).toBe(true);
  });

  it('passes the tool name to pick, for a single message and for any message of a batch', () => {
    const seen: string[] = [];
    const pick = (n: string) => (seen.push(n), n === 'type');
    expect(mcpCallsAny({ method: 'tools/call', params: { name: 'observe' } }, pick)).toBe(false);
    expect(mcpCallsAny([{ method: 'tools/call', params: { name: 'find' } }, null, { method: 'tools/call', params: { name: 'type' } }], pick)).toBe(true);
    expect(seen).toEqual(['observe', 'find', 'type']);
  });
});
