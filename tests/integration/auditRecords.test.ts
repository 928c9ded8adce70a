/**
 * Finding 12 of issue 13, in process: audit records name the credential (and client) that acted, over
 * `/v1/actions` and over `/mcp`; keys are recorded as chords while typed text stays masked.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { axNode, createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { AGENT_TOKEN, OPERATOR_TOKEN, buildPolicyApp } from '../helpers/testApp.js';
import { mcpActor } from '../../src/mcp/http.js';
import { verifyAuditLog, loadAuditKey } from '../../src/policy/audit.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-calc, effect: allow, match: { app: ["gnome-calculator"] } }
`;

let platform: FakePlatform;
let t: Awaited<ReturnType<typeof buildPolicyApp>>;
let mcpUrl: URL;

beforeAll(async () => {
  platform = createFakePlatform({
    tree: [axNode('application', 'gnome-calculator', null, { children: [axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 800 })] })],
    windows: [{ id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } }],
    focused: { app: 'gnome-calculator', pid: 10, window: 'Calculator' },
  });
  t = await buildPolicyApp(platform, POLICY);
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  mcpUrl = new URL(`http://127.0.0.1:${(t.app.server.address() as { port: number }).port}/mcp`);
});
afterAll(async () => t.close());

/** Frees the controller lease so the next test's client may act. */
beforeEach(async () => {
  await t.app.inject({ method: 'DELETE', url: '/v1/lease', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
});

async function lastDecision() {
  const recs = await t.audit.read({ limit: 50 });
  return recs.filter((r) => r.kind === 'decision').at(-1)!;
}

async function act(token: string, body: unknown, client?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  if (client) headers['x-deskd-client'] = client;
  const r = await t.app.inject({ method: 'POST', url: '/v1/actions', headers, payload: JSON.stringify(body) });
  expect(r.statusCode, r.body).toBe(200);
}

describe('audit records name the credential that acted', () => {
  it('/v1/actions: the role and the X-Deskd-Client id', async () => {
    await act(AGENT_TOKEN, { type: 'click', x: 50, y: 50, button: 'left' });
    expect((await lastDecision()).actor).toBe('agent/default');
    await t.app.inject({ method: 'DELETE', url: '/v1/lease', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    await act(AGENT_TOKEN, { type: 'click', x: 50, y: 50, button: 'left' }, 'planner-1');
    expect((await lastDecision()).actor).toBe('agent/planner-1');
    await t.app.inject({ method: 'DELETE', url: '/v1/lease', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    await act(OPERATOR_TOKEN, { type: 'click', x: 50, y: 50, button: 'left' });
    expect((await lastDecision()).actor).toBe('operator/default');
  });

  it('/mcp: mcp: and the credential, with the client id when given', async () => {
    for (const [token, client, actor] of [
      [AGENT_TOKEN, undefined, 'mcp:agent/default'],
      [OPERATOR_TOKEN, 'console-2', 'mcp:operator/console-2'],
    ] as const) {
      await t.app.inject({ method: 'DELETE', url: '/v1/lease', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (client) headers['x-deskd-client'] = client;
      const c = new Client({ name: 'test', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers } }));
      try {
        const r = (await c.callTool({ name: 'click', arguments: { x: 40, y: 40 } })) as CallToolResult;
        expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      } finally {
        await c.close();
      }
      expect((await lastDecision()).actor).toBe(actor);
    }
  });

  it('mcpActor: role and client; a malformed client id is refused', () => {
    expect(mcpActor('agent', undefined)).toBe('mcp:agent/default');
    expect(mcpActor(undefined, 'x.y')).toBe('mcp:agent/x.y');
    expect(mcpActor('operator', 'c1')).toBe('mcp:operator/c1');
    expect(() => mcpActor('agent', 'bad id with spaces')).toThrow(/X-Deskd-Client/);
  });
});

describe('keys as chords, text masked', () => {
  it('a keypress and the keys held on a click are recorded with their canonical chord; typed text is not', async () => {
    await act(AGENT_TOKEN, { type: 'keypress', keys: ['CTRL', 'Alt', 'del'] });
    expect((await lastDecision()).action).toMatchObject({ type: 'keypress', keys: ['ctrl', 'alt', 'delete'], chord: 'alt+ctrl+delete' });
    await act(AGENT_TOKEN, { type: 'click', x: 50, y: 50, button: 'left', keys: ['SHIFT', 'CTRL'] });
    expect((await lastDecision()).action).toMatchObject({ type: 'click', chord: 'ctrl+shift' });
    await act(AGENT_TOKEN, { type: 'type', text: 'hunter2' });
    const d = await lastDecision();
    expect(d.action).toMatchObject({ type: 'type', text: '***', textLength: 7 });
    expect(JSON.stringify(await t.audit.read({ limit: 100 }))).not.toContain('hunter2');
    expect((await verifyAuditLog(t.auditPath, await loadAuditKey(t.keyPath, { create: false }))).ok).toBe(true);
  });
});
