/**
 * Issue 17, "Fleet observability on OpenTelemetry": an in-test OTLP/HTTP receiver gets the spans of one
 * observe and one action (with the names and parent links of src/telemetry/instrument.ts) and no
 * screenshot, typed text, reason text or token in anything exported; `GET /metrics` is Prometheus text
 * (operator only). Without an OTLP endpoint nothing is exported.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGovernanceApp, AGENT, OPERATOR } from '../helpers/governanceApp.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';

interface OtlpSpan {
  name: string;
  spanId: string;
  parentSpanId?: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

const SECRET_TEXT = 'Typed-s3cret-9f2c';
const SECRET_REASON = 'reason-words-7d1e';

let receiver: Server;
let port: number;
const bodies: string[] = [];
let dir: string;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let b = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (b += c));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(b);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  port = (receiver.address() as { port: number }).port;
  dir = await mkdtemp(join(tmpdir(), 'deskd-otel-'));
  await writeFile(join(dir, 'user.yaml'), 'version: 1\nlimits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n');
});
afterAll(async () => {
  await new Promise<void>((r) => receiver.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

function spansOf(): OtlpSpan[] {
  const out: OtlpSpan[] = [];
  for (const b of bodies) {
    const j = JSON.parse(b) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
    for (const rs of j.resourceSpans) for (const ss of rs.scopeSpans) out.push(...ss.spans);
  }
  return out;
}

describe('OTLP traces and Prometheus metrics', () => {
  let h: Awaited<ReturnType<typeof buildGovernanceApp>>;
  let tel: Telemetry;
  beforeAll(async () => {
    tel = Telemetry.create({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_SERVICE_NAME: 'deskd-test' }, version: 't', pendingApprovals: () => h?.approvals.list().length ?? 0 });
    h = await buildGovernanceApp({ userPath: join(dir, 'user.yaml'), managedPath: null, telemetry: tel });
  });
  afterAll(async () => {
    await h.close();
    await tel.close();
  });

  it('one observe and one action export their spans with the documented names and parents, and no secret', async () => {
    const auth = { authorization: `Bearer ${AGENT}` };
    const o = await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: { screenshot: 'png' } });
    expect(o.statusCode, o.body).toBe(200);
    const png = (o.json() as { screenshot?: { data: string } }).screenshot?.data ?? '';
    expect(png.length).toBeGreaterThan(100);
    const a = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth, payload: { reason: SECRET_REASON, actions: [{ type: 'click', x: 20, y: 210 }, { type: 'type', text: SECRET_TEXT }] } });
    expect(a.statusCode, a.body).toBe(200);
    await tel.flush();
    await expect.poll(() => spansOf().some((s) => s.name === 'deskd.action.dispatch'), { timeout: 10_000 }).toBe(true);

    const spans = spansOf();
    const byName = (n: string) => spans.filter((s) => s.name === n);
    const one = (n: string) => {
      const s = byName(n);
      expect(s.length, `${n} in ${spans.map((x) => x.name).join(', ')}`).toBeGreaterThanOrEqual(1);
      return s[0]!;
    };
    const httpObserve = one('POST /v1/observe');
    const observe = one('deskd.observe');
    expect(observe.parentSpanId).toBe(httpObserve.spanId);
    for (const c of ['deskd.observe.capture', 'deskd.observe.ocr', 'deskd.observe.accessibility', 'deskd.observe.fusion']) expect(one(c).parentSpanId).toBe(observe.spanId);
    const httpAct = one('POST /v1/actions');
    const action = one('deskd.action');
    expect(action.parentSpanId).toBe(httpAct.spanId);
    const decides = byName('deskd.policy.decide');
    expect(decides).toHaveLength(2);
    for (const d of decides) expect(d.parentSpanId).toBe(action.spanId);
    expect(one('deskd.action.dispatch').parentSpanId).toBe(action.spanId);
    const attr = (s: OtlpSpan, k: string) => s.attributes?.find((x) => x.key === k)?.value;
    expect(attr(httpAct, 'http.route')).toEqual({ stringValue: '/v1/actions' });
    expect(attr(httpAct, 'http.response.status_code')).toEqual({ intValue: 200 });
    expect(attr(action, 'deskd.actions.types')).toEqual({ stringValue: 'click,type' });
    expect(attr(decides[0]!, 'deskd.policy.rule')).toEqual({ stringValue: 'allow-all' });

    const all = bodies.join('\n');
    for (const secret of [SECRET_TEXT, SECRET_REASON, AGENT, OPERATOR, png.slice(0, 64), 'iVBORw0KGgo']) expect(all).not.toContain(secret);
    expect(all).toContain('deskd-test');
  });

  it('GET /metrics is Prometheus text with the decision, latency, pending-approval and RSS metrics (operator only)', async () => {
    const r = await h.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = r.body.split('\n').filter((l) => l !== '');
    // Every line is a comment (# HELP, # TYPE, # UNIT; any other # line is a comment too) or a sample: name{labels} value.
    for (const l of lines) expect(l, l).toMatch(/^(# .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?[0-9.eE+-]+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (NaN|\+Inf|-Inf))$/);
    expect(r.body).toMatch(/deskd_policy_decisions(_total)?\{effect="allow",rule="allow-all"[^}]*\} 2\n/);
    expect(r.body).toMatch(/deskd_observe_duration_milliseconds_bucket|deskd_observe_duration_bucket/);
    expect(r.body).toMatch(/deskd_action_duration/);
    expect(r.body).toMatch(/deskd_approvals_pending/);
    expect(r.body).toMatch(/deskd_process_rss/);
    expect(r.body).not.toContain(SECRET_TEXT);
    const agent = await h.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${AGENT}` } });
    expect(agent.statusCode).toBe(403);
    expect((await h.app.inject({ method: 'GET', url: '/%6detrics' })).statusCode).toBe(401);
  });

  it('without an OTLP endpoint no span is recorded', async () => {
    const t = Telemetry.create({ env: {} });
    expect(t.tracing).toBe(false);
    expect(await t.span('x', {}, async (s) => s.isRecording())).toBe(false);
    await t.close();
  });
});
