/**
 * Property-based tests (fast-check): requests generated from the API's own zod schemas (through
 * `z.toJSONSchema`), valid, mutated and arbitrary, against the real app (guards, auth, lease, policy gate,
 * audit log, executor) on the fake platform. Properties: no 5xx, and nothing is dispatched on any 4xx.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import { ActionsBodySchema } from '../../src/actuation/schema.js';
import { FindBodySchema, ObserveBodySchema, ScreenshotQuerySchema, WaitBodySchema } from '../../src/http/schemas.js';
import { buildHardenedApp, AGENT } from '../helpers/hardeningApp.js';
import { arbFromSchema, arbNearSchema, type JsonSchema } from './jsonSchemaArb.js';

const toJson = (s: z.ZodType): JsonSchema => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

type H = Awaited<ReturnType<typeof buildHardenedApp>>;
let h: H;
beforeAll(async () => {
  h = await buildHardenedApp();
});
afterAll(async () => h.close());

const auth = { authorization: `Bearer ${AGENT}` };

/** Keep generated waits short: `wait.ms` may be 30 s and `/v1/wait` 60 s by schema. */
function shorten(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shorten);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = shorten(x);
    if (o.type === 'wait' && (typeof o.ms !== 'number' || o.ms > 20)) o.ms = typeof o.ms === 'number' ? o.ms % 20 : 5;
    if (typeof o.timeoutMs === 'number' && o.timeoutMs > 100) o.timeoutMs = o.timeoutMs % 100;
    if ('until' in o && o.timeoutMs === undefined) o.timeoutMs = 50;
    return o;
  }
  return v;
}

/** Inject a request; check the properties; return the status. */
async function check(method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = auth): Promise<number> {
  h.platform.events.length = 0;
  const r = await h.app.inject({ method, url, headers: { ...headers, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}) });
  const ctx = `${method} ${url} ${JSON.stringify(payload)?.slice(0, 400)} → ${r.statusCode} ${r.body.slice(0, 300)}`;
  // The one documented 5xx: `/v1/wait` whose condition did not hold by its deadline answers 504 TIMEOUT.
  const waitTimedOut = url === '/v1/wait' && r.statusCode === 504 && r.json().error?.code === 'TIMEOUT';
  if (!waitTimedOut) expect(r.statusCode, ctx).toBeLessThan(500);
  if (r.statusCode >= 400) {
    expect(h.platform.events, ctx).toEqual([]);
    const body = r.json();
    expect(typeof body.error?.code, ctx).toBe('string');
  }
  return r.statusCode;
}

describe('generated requests: no 5xx, nothing dispatched on a 4xx', () => {
  it('POST /v1/actions (ActionsBodySchema: single actions and batches)', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(arbNearSchema(toJson(ActionsBodySchema)), async (body) => {
        const s = await check('POST', '/v1/actions', shorten(body));
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
      }),
      { numRuns: 300 },
    );
    // The generator must reach both sides: dispatched successes and refusals.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(10);
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
  });

  it('POST /v1/actions with targets from a real observation (refs that exist, stale ones, wrong observation ids)', async () => {
    const o = (await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: { ocr: false } })).json() as { observationId: string; elements: { ref: string }[] };
    const refs = o.elements.map((e) => e.ref);
    const target = fc.record({ ref: fc.oneof(fc.constantFrom(...refs), fc.stringMatching(/^e\d{1,3}$/)), observationId: fc.oneof(fc.constant(o.observationId), fc.constant('obs_nope')) });
    const action = fc.oneof(
      fc.record({ type: fc.constantFrom('click', 'double_click', 'move', 'press', 'focus'), target }),
      fc.record({ type: fc.constant('set_value'), target, value: fc.string({ maxLength: 20 }) }),
      fc.record({ type: fc.constant('type'), text: fc.string({ unit: 'binary', maxLength: 20 }) }),
    );
    await fc.assert(fc.asyncProperty(fc.oneof(action, fc.record({ actions: fc.array(action, { minLength: 1, maxLength: 4 }) })), async (body) => void (await check('POST', '/v1/actions', body))), { numRuns: 150 });
  });

  it.each([
    ['/v1/observe', ObserveBodySchema],
    ['/v1/find', FindBodySchema],
    ['/v1/wait', WaitBodySchema],
  ] as const)('POST %s', async (url, schema) => {
    await fc.assert(fc.asyncProperty(arbNearSchema(toJson(schema)), async (body) => void (await check('POST', url, shorten(body)))), { numRuns: 60 });
  });

  it('GET /v1/screenshot with generated query strings', async () => {
    const q = fc.oneof(
      arbFromSchema(toJson(ScreenshotQuerySchema)).map((v) => new URLSearchParams(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, String(x)])).toString()),
      fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }).map((d) => new URLSearchParams(d).toString()),
    );
    await fc.assert(fc.asyncProperty(q, async (qs) => void (await check('GET', `/v1/screenshot?${qs}`))), { numRuns: 60 });
  });

  it('hostile envelopes: any route, method, Host, Origin, content type, credential and body', async () => {
    const routes = ['/v1/actions', '/v1/observe', '/v1/find', '/v1/lease', '/v1/halt', '/v1/approvals', '/v1/audit', '/mcp', '/v1/health', '/v1/nope', '/console/login', '/'];
    const env = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
      url: fc.tuple(fc.constantFrom(...routes), fc.constantFrom('', '?token=x', '?a=b', '?access_token=' + AGENT, '?%00=1')).map(([a, b]) => a + b),
      host: fc.constantFrom('localhost:80', 'evil.test', '127.0.0.1:80', '[::1]:80', 'localhost:80.evil', 'LOCALHOST:80'),
      origin: fc.constantFrom(undefined, 'http://localhost:80', 'http://evil.test', 'null'),
      type: fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'APPLICATION/JSON'),
      auth: fc.constantFrom(undefined, `Bearer ${AGENT}`, 'Bearer nope', `Basic ${AGENT}`, `Bearer ${AGENT} x`),
      body: fc.oneof(fc.constant(undefined), fc.json(), fc.string({ unit: 'binary', maxLength: 64 }), arbNearSchema(toJson(ActionsBodySchema)).map((b) => JSON.stringify(shorten(b)))),
    });
    await fc.assert(
      fc.asyncProperty(env, async (e) => {
        h.platform.events.length = 0;
        const headers: Record<string, string> = { host: e.host };
        if (e.origin) headers.origin = e.origin;
        if (e.type) headers['content-type'] = e.type;
        if (e.auth) headers.authorization = e.auth;
        const r = await h.app.inject({ method: e.method as 'GET', url: e.url, headers, ...(e.body !== undefined && e.method !== 'GET' ? { payload: e.body } : {}) });
        const ctx = `${JSON.stringify(e).slice(0, 500)} → ${r.statusCode} ${r.body.slice(0, 200)}`;
        expect(r.statusCode, ctx).toBeLessThan(500);
        if (r.statusCode >= 400) expect(h.platform.events, ctx).toEqual([]);
        // The oracle: a foreign Host/Origin is refused first (403), then a credential in the URL (400).
        const ownHost = ['localhost:80', '127.0.0.1:80', '[::1]:80', 'LOCALHOST:80'].includes(e.host);
        if (!ownHost || (e.origin !== undefined && e.origin !== `http://${e.host.toLowerCase()}`)) expect(r.statusCode, ctx).toBe(403);
        else if (/token=/.test(e.url)) expect(r.statusCode, ctx).toBe(400);
        expect(Object.keys(r.headers).some((k) => k.startsWith('access-control-allow')), ctx).toBe(false);
        // Resume if a generated request halted the daemon, so later runs still reach the executor.
        if (h.halt.state.halted) h.halt.resume('test');
      }),
      { numRuns: 300 },
    );
  });
});
