/**
 * Issue 17 end to end, through the HTTP API (and MCP) of a real daemon on its own virtual display (Xvfb +
 * session bus + AT-SPI bus) with a real gnome-calculator:
 *
 * - two named agents act and observe at once (one acts while the other observes, then the other way
 *   round); the digits they clicked show in the calculator;
 * - revoking one: its next request is 401 within 1 s while the other goes on acting;
 * - an observer's click is 403 `FORBIDDEN_FOR_CREDENTIAL` over HTTP and over MCP, and nothing is clicked;
 * - a managed policy that denies typing into gnome-calculator holds against a user policy that allows
 *   everything (403 naming `managed:no-calculator-keys`, the display unchanged); the audit records name
 *   the agents and the combined policy hash;
 * - a signed managed policy changed after signing stops the daemon at start-up with `POLICY_INVALID`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/main.js';
import { loadConfig } from '../../src/config.js';
import { generatePolicyKeys, signPolicyBytes } from '../../src/governance/signing.js';
import type { AuditRecord } from '../../src/policy/audit.js';
import { launchCalculator, launchUntilReady, waitFor, type AppHandle } from '../helpers/desktop.js';

interface El { ref: string; role: string; name: string; value?: string }
interface Obs { observationId: string; elements: El[] }

const USER_ALLOW_ALL = `version: 1
limits: { actionsPerSecond: 200, burst: 1000, maxTypeChars: 2000 }
rules:
  - { id: allow-all, effect: allow, match: {} }
`;
const MANAGED = `version: 1
rules:
  - id: no-calculator-keys
    effect: deny
    description: the organisation forbids typing into the calculator
    match: { app: gnome-calculator, actions: ["@keyboard"] }
`;

let daemon: Daemon;
let dir: string;
const apps: AppHandle[] = [];

async function call<T = unknown>(token: string, method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<{ status: number; json: T; text: string }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extra },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: r.status, json: json as T, text };
}

async function addAgent(id: string, role: 'observer' | 'actor'): Promise<string> {
  const r = await call<{ token: string }>(daemon.operatorToken, 'POST', '/v1/agents', { id, role });
  expect(r.status, r.text).toBe(200);
  return r.json.token;
}

const display = (o: Obs) => o.elements.find((e) => e.role === 'textbox' || e.role === 'text')?.value ?? '';
const button = (o: Obs, name: string) => o.elements.find((e) => e.role === 'button' && e.name === name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-e2e-gov-'));
  await writeFile(join(dir, 'user.yaml'), USER_ALLOW_ALL);
  await writeFile(join(dir, 'managed-policy.yaml'), MANAGED);
  const config = loadConfig(['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', '1280x800', '--policy', join(dir, 'user.yaml')], {
    ...process.env,
    DESKD_CONFIG_DIR: join(dir, 'config'),
    DESKD_PLATFORM: 'linux',
    DESKD_TOKEN: '',
    DESKD_OPERATOR_TOKEN: '',
    DESKD_MANAGED_POLICY: join(dir, 'managed-policy.yaml'),
  });
  daemon = await startDaemon(config);
  const { app } = await launchUntilReady(
    launchCalculator,
    async () => {
      const o = (await call<Obs>(daemon.token, 'POST', '/v1/observe', { ocr: false })).json;
      return o.elements.some((e) => e.role === 'button' && e.name === '7') ? o : null;
    },
    { timeoutMs: 100_000, what: 'the calculator buttons' },
  );
  apps.push(app);
}, 180_000);

afterAll(async () => {
  for (const a of apps) await a.kill();
  await daemon?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('governance on a real desktop', () => {
  it('two agents act and observe at once; revoking one makes its next request 401 within 1 s while the other goes on', async () => {
    const alpha = await addAgent('alpha', 'actor');
    const beta = await addAgent('beta', 'actor');
    const o = (await call<Obs>(alpha, 'POST', '/v1/observe', { ocr: false })).json;
    const seven = button(o, '7')!;
    const three = button(o, '3')!;
    expect(seven && three).toBeTruthy();
    // Alpha clicks 7 while beta observes.
    const [a1, b1] = await Promise.all([
      call(alpha, 'POST', '/v1/actions', { type: 'click', target: { ref: seven.ref, observationId: o.observationId }, reason: 'enter 7' }),
      call<Obs>(beta, 'POST', '/v1/observe', { ocr: false }),
    ]);
    expect(a1.status, a1.text).toBe(200);
    expect(b1.status).toBe(200);
    expect((await call<{ lease: { holder: string } }>(beta, 'GET', '/v1/lease')).json.lease.holder).toBe('agent:alpha/default');
    expect((await call(beta, 'POST', '/v1/actions', { type: 'click', target: { ref: three.ref, observationId: o.observationId } })).status).toBe(409);
    expect((await call(alpha, 'DELETE', '/v1/lease')).status).toBe(200);
    // Beta clicks 3 while alpha observes.
    const [b2, a2] = await Promise.all([
      call(beta, 'POST', '/v1/actions', { type: 'click', target: { ref: three.ref, observationId: o.observationId }, reason: 'enter 3' }),
      call<Obs>(alpha, 'POST', '/v1/observe', { ocr: false }),
    ]);
    expect(b2.status, b2.text).toBe(200);
    expect(a2.status).toBe(200);
    await waitFor(async () => /73$/.test(display((await call<Obs>(alpha, 'POST', '/v1/observe', { ocr: false })).json).trim()) || null, 20_000, 'the calculator showing 73');

    // Revoke beta: its very next request is refused, within 1 s of the revocation.
    const t0 = Date.now();
    expect((await call(daemon.operatorToken, 'DELETE', '/v1/agents/beta')).status).toBe(200);
    const after = await call(beta, 'POST', '/v1/observe', { ocr: false });
    const ms = Date.now() - t0;
    // The very next request after the DELETE answered is refused (stronger than the "within 1 s");
    // how long that took is printed, not asserted: timings live in benchmarks.
    expect(after.status).toBe(401);
    console.log(`revocation → next request refused after ${ms} ms`);
    // Alpha goes on.
    const o2 = (await call<Obs>(alpha, 'POST', '/v1/observe', { ocr: false })).json;
    const r = await call(alpha, 'POST', '/v1/actions', { type: 'click', target: { ref: button(o2, '1')!.ref, observationId: o2.observationId }, reason: 'enter 1' });
    expect(r.status, r.text).toBe(200);
    await waitFor(async () => /731$/.test(display((await call<Obs>(alpha, 'POST', '/v1/observe', { ocr: false })).json).trim()) || null, 20_000, 'the calculator showing 731');
    await call(alpha, 'DELETE', '/v1/lease');

    const recs = (await call<{ records: AuditRecord[] }>(daemon.operatorToken, 'GET', '/v1/audit?limit=10000')).json.records;
    const decisions = recs.filter((x) => x.kind === 'decision' && (x.agent === 'alpha' || x.agent === 'beta'));
    expect(decisions.map((x) => `${x.agent}:${x.reason}`)).toEqual(expect.arrayContaining(['alpha:enter 7', 'beta:enter 3', 'alpha:enter 1']));
    for (const d of decisions) expect(d.policyHash).toBe(daemon.runtime.policy.hashFor(d.agent as string));
    expect(recs.some((x) => x.kind === 'agent' && x.event === 'revoke' && x.agent === 'beta')).toBe(true);
  });

  it("an observer's click is 403 over HTTP and MCP, and nothing is clicked", async () => {
    const watcher = await addAgent('watcher', 'observer');
    const o = (await call<Obs>(watcher, 'POST', '/v1/observe', { ocr: false })).json;
    const before = display(o);
    const nine = button(o, '9')!;
    const http = await call<{ error: { code: string } }>(watcher, 'POST', '/v1/actions', { type: 'click', target: { ref: nine.ref, observationId: o.observationId } });
    expect(http.status).toBe(403);
    expect(http.json.error.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
    const mcp = await call(watcher, 'POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click', arguments: { ref: nine.ref, observationId: o.observationId } } }, { accept: 'application/json, text/event-stream' });
    expect(mcp.status, mcp.text).toBe(403);
    expect(mcp.text).toContain('FORBIDDEN_FOR_CREDENTIAL');
    await new Promise((r) => setTimeout(r, 500));
    expect(display((await call<Obs>(watcher, 'POST', '/v1/observe', { ocr: false })).json)).toBe(before);
  });

  it('a managed deny of gnome-calculator holds against a user policy that allows everything', async () => {
    // The person at the machine frees the lease whoever holds it.
    expect((await call(daemon.operatorToken, 'DELETE', '/v1/lease')).status).toBe(200);
    const o = (await call<Obs>(daemon.token, 'POST', '/v1/observe', { ocr: false })).json;
    const before = display(o);
    // Give the calculator the keyboard focus by clicking its display area, then try to type.
    const r = await call<{ error: { code: string; message: string } }>(daemon.token, 'POST', '/v1/actions', { actions: [{ type: 'click', target: { ref: button(o, '7')!.ref, observationId: o.observationId } }, { type: 'type', text: '5' }], reason: 'try typing' });
    expect(r.status, r.text).toBe(403);
    expect(r.json.error.code).toBe('POLICY_DENIED');
    expect(r.json.error.message).toContain('managed:no-calculator-keys');
    await new Promise((res) => setTimeout(res, 500));
    expect(display((await call<Obs>(daemon.token, 'POST', '/v1/observe', { ocr: false })).json)).toBe(before);
    // Explain says the same.
    const q = `action=${encodeURIComponent(JSON.stringify({ type: 'type', text: 'x' }))}&target=${encodeURIComponent(JSON.stringify({ app: 'gnome-calculator' }))}`;
    const x = await call<{ decision: { effect: string; ruleId: string }; layers: { layer: string; effect: string | null }[] }>(daemon.operatorToken, 'GET', `/v1/policy/explain?${q}`);
    expect(x.json.decision).toMatchObject({ effect: 'deny', ruleId: 'managed:no-calculator-keys' });
    expect(x.json.layers.map((l) => `${l.layer}:${l.effect}`)).toEqual(['managed:deny', 'user:allow']);
  });

  it('a tampered signed managed policy stops start-up with POLICY_INVALID', async () => {
    const sdir = await mkdtemp(join(dir, 'signed-'));
    const keys = generatePolicyKeys();
    const file = join(sdir, 'managed-policy.yaml');
    await writeFile(file, MANAGED);
    await writeFile(join(sdir, 'managed-policy.pub'), keys.publicKeyPem);
    await writeFile(`${file}.sig`, signPolicyBytes(MANAGED, keys.privateKeyPem));
    const cfg = (env: Record<string, string>) =>
      loadConfig(['--port', '0', '--log-level', 'silent', '--no-virtual-display', '--policy', join(dir, 'user.yaml')], { ...process.env, DESKD_CONFIG_DIR: join(sdir, 'config'), DESKD_PLATFORM: 'fake', DESKD_TOKEN: '', DESKD_OPERATOR_TOKEN: '', ...env });
    // Signed as shipped: starts.
    const ok = await startDaemon(cfg({ DESKD_MANAGED_POLICY: file }));
    expect(ok.runtime.policy.managedPolicy?.rules[0]?.id).toBe('no-calculator-keys');
    await ok.close();
    // One line added after signing: refused.
    await appendFile(file, '  - { id: loosen, effect: allow, match: {} }\n');
    await expect(startDaemon(cfg({ DESKD_MANAGED_POLICY: file }))).rejects.toMatchObject({ code: 'POLICY_INVALID' });
  });
});
