/**
 * `/mcp` over Streamable HTTP on a real socket, driven by the MCP SDK client, against `buildApp` on the
 * fake platform with the real policy engine, approvals and audit log.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { buildPolicyApp, AGENT_TOKEN, OPERATOR_TOKEN } from '../helpers/testApp.js';
import { MCP_TOOL_NAMES } from '../../src/mcp/server.js';
import { textOf } from '../helpers/mcpClient.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
approvals: { timeoutMs: 5000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-calc, effect: allow, match: { app: ["gnome-calculator"] } }
  - { id: ask-escape, effect: ask, match: { app: ["gnome-calculator"], keys: ["escape"] } }
`;

let platform: FakePlatform;
let t: Awaited<ReturnType<typeof buildPolicyApp>>;
let url: URL;

beforeAll(async () => {
  platform = createFakePlatform({
    tree: [
      axNode('application', 'gnome-calculator', null, {
        children: [axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 800 }, { children: [axNode('button', '7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' })] })],
      }),
    ],
    windows: [{ id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } }],
  });
  t = await buildPolicyApp(platform, POLICY);
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = t.app.server.address() as { port: number };
  url = new URL(`http://127.0.0.1:${addr.port}/mcp`);
});
afterAll(async () => t.close());

async function connect(token: string | null): Promise<Client> {
  const client = new Client({ name: 'test', version: '1' });
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  return client;
}

describe('/mcp over Streamable HTTP', () => {
  it('lists tools, observes and clicks by ref; the fake platform receives the click', async () => {
    const client = await connect(AGENT_TOKEN);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((x) => x.name)).toEqual([...MCP_TOOL_NAMES]);
      const o = (await client.callTool({ name: 'observe', arguments: { ocr: false } })) as CallToolResult;
      const ref = /^(e\d+) button "7"/m.exec(textOf(o))?.[1];
      expect(ref, textOf(o)).toBeDefined();
      // Stateless mode: the next request is served by a new server instance that still knows the latest observation.
      const c = (await client.callTool({ name: 'click', arguments: { ref } })) as CallToolResult;
      expect(c.isError, textOf(c)).toBeFalsy();
      expect(platform.events).toEqual([{ kind: 'move', x: 30, y: 115 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }]);
      const recs = await t.audit.read({ limit: 10 });
      // The record names the credential that acted (finding 12), not just "mcp".
      expect(recs.filter((r) => r.kind === 'decision').map((r) => r.actor)).toEqual(['mcp:agent/default']);
    } finally {
      await client.close();
    }
  });

  it('an ask waits on the SSE stream until the operator approves over HTTP', async () => {
    platform.events.length = 0;
    const client = await connect(AGENT_TOKEN);
    try {
      const pending = client.callTool({ name: 'keypress', arguments: { keys: ['escape'] } }) as Promise<CallToolResult>;
      const op = { authorization: `Bearer ${OPERATOR_TOKEN}` };
      let id: string | undefined;
      for (let i = 0; i < 100 && !id; i++) {
        const list = (await t.app.inject({ method: 'GET', url: '/v1/approvals', headers: op })).json() as { approvals: { id: string; status: string }[] };
        id = list.approvals.find((a) => a.status === 'pending')?.id;
        if (!id) await new Promise((r) => setTimeout(r, 20));
      }
      expect(id).toBeDefined();
      expect(platform.events).toEqual([]);
      const d = await t.app.inject({ method: 'POST', url: `/v1/approvals/${id}`, headers: op, payload: { decision: 'approve' } });
      expect(d.statusCode).toBe(200);
      const r = await pending;
      expect(r.isError, textOf(r)).toBeFalsy();
      expect(platform.events).toEqual([{ kind: 'keydown', key: 'escape' }, { kind: 'keyup', key: 'escape' }]);
    } finally {
      await client.close();
    }
  });

  it('needs the bearer token: no token or a wrong one is 401 and nothing runs', async () => {
    await expect(connect(null)).rejects.toThrow(/401|UNAUTHORIZED/);
    await expect(connect('wrong-token-0123456789abcdef')).rejects.toThrow(/401|UNAUTHORIZED/);
    const raw = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
    expect(raw.status).toBe(401);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  });

  it('refuses a foreign Origin or a non-loopback Host (DNS rebinding) with 403 ORIGIN_NOT_ALLOWED', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${AGENT_TOKEN}` };
    const evil = await fetch(url, { method: 'POST', headers: { ...headers, origin: 'http://evil.example' }, body });
    expect(evil.status).toBe(403);
    expect(((await evil.json()) as { error: { code: string } }).error.code).toBe('ORIGIN_NOT_ALLOWED');
    const rebound = await t.app.inject({ method: 'POST', url: '/mcp', headers: { ...headers, host: 'attacker.example:7820' }, payload: body });
    expect(rebound.statusCode).toBe(403);
    const get = await fetch(url, { headers: { authorization: `Bearer ${AGENT_TOKEN}`, accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
  });
});
