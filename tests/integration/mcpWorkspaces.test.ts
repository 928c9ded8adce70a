/**
 * Issue 22, MCP: the `workspace` argument is listed in the input schema of every tool that perceives or
 * acts (and of no other), and works as listed: another agent's workspace is refused with
 * WORKSPACE_FORBIDDEN, the credential's own works, `find` never answers another workspace's latest
 * observation, and `replay` (which acts through the daemon's own executor) is refused inside a workspace. Also the MCP server without HTTP routing in front
 * (stdio's case) refuses a `workspace` rather than drop it. The fake platform (tests/helpers/fakeWorkspaces.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createMcpServer, MCP_TOOL_NAMES } from '../../src/mcp/server.js';
import { MCP_NOT_IN_WORKSPACES, MCP_WORKSPACE_TOOLS } from '../../src/mcp/workspace.js';
import type { ReplayService } from '../../src/replay/index.js';
import { buildFakeWorkspacesApp, WS_AGENT_TOKEN, WS_OPERATOR_TOKEN, type FakeWorkspacesApp } from '../helpers/fakeWorkspaces.js';
import { connectInMemory } from '../helpers/mcpClient.js';

let t: FakeWorkspacesApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

interface RpcAnswer {
  status: number;
  /** The JSON-RPC result (from the SSE `data:` line or the JSON body), or the HTTP error body. */
  body: { result?: { tools?: Array<{ name: string; inputSchema: { properties?: Record<string, { type?: string; description?: string }>; required?: string[] } }> } & Partial<CallToolResult>; error?: { code: string | number; message: string } };
}

async function rpc(token: string, method: string, params: object = {}, headers: Record<string, string> = {}): Promise<RpcAnswer> {
  const r = await t!.app.inject({ method: 'POST', url: '/mcp', headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', ...headers }, payload: { jsonrpc: '2.0', id: 1, method, params } });
  const data = /^data: (.*)$/m.exec(r.body)?.[1];
  return { status: r.statusCode, body: JSON.parse(data ?? r.body) };
}
const call = (token: string, name: string, args: object) => rpc(token, 'tools/call', { name, arguments: args });
const textOf = (a: RpcAnswer) => (a.body.result?.content ?? []).map((c) => (c as { text?: string }).text ?? '').join('\n');
const moves = (p: { events: Array<{ kind: string; x?: number; y?: number }> }) => p.events.flatMap((e) => (e.kind === 'move' ? [`${e.x},${e.y}`] : []));

describe('MCP tools and workspaces (issue 22)', () => {
  it('tools/list shows an optional `workspace` string on every tool that perceives or acts, and on no other', async () => {
    t = await buildFakeWorkspacesApp();
    const list = await rpc(WS_AGENT_TOKEN, 'tools/list');
    expect(list.status).toBe(200);
    const tools = list.body.result!.tools!;
    expect(tools.map((x) => x.name)).toEqual([...MCP_TOOL_NAMES]);
    for (const tool of tools) {
      const ws = tool.inputSchema.properties?.workspace;
      expect(ws, tool.name).toBeDefined();
      expect(ws!.type, tool.name).toBe('string');
      expect(ws!.description, tool.name).toMatch(/workspace id.*default.*bound/i);
      expect(tool.inputSchema.required ?? [], tool.name).not.toContain('workspace');
    }
    expect([...MCP_WORKSPACE_TOOLS].sort()).toEqual([...MCP_TOOL_NAMES].sort());
    expect([...MCP_NOT_IN_WORKSPACES]).toEqual(['replay']);
  });

  it('another agent\'s workspace is WORKSPACE_FORBIDDEN; the own one works, named or bound; find keeps to its workspace', async () => {
    t = await buildFakeWorkspacesApp();
    const { token: alpha } = await t.agents.add({ id: 'alpha', role: 'actor' });
    const { token: beta } = await t.agents.add({ id: 'beta', role: 'actor' });
    const wa = (await t.app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${WS_OPERATOR_TOKEN}` }, payload: { agent: 'alpha' } })).json().id as string;
    const wb = (await t.app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${WS_OPERATOR_TOKEN}` }, payload: { agent: 'beta' } })).json().id as string;

    // Beta names alpha's workspace: refused before any tool runs, with the stable code.
    for (const [name, args] of [['observe', { ocr: false }], ['click', { x: 5, y: 5 }], ['list_windows', {}]] as const) {
      const r = await call(beta, name, { ...args, workspace: wa });
      expect(r.status, name).toBe(403);
      expect(r.body.error!.code, name).toBe('WORKSPACE_FORBIDDEN');
    }
    expect(moves(t.wsPlatforms[0]!)).toEqual([]);
    // An unknown id is WORKSPACE_NOT_FOUND.
    expect((await call(alpha, 'observe', { ocr: false, workspace: 'ws_nope' })).body.error!.code).toBe('WORKSPACE_NOT_FOUND');

    // Alpha names its own workspace: it observes and clicks there.
    const o = await call(alpha, 'observe', { ocr: false, workspace: wa });
    expect(o.status).toBe(200);
    expect(o.body.result!.isError).toBeFalsy();
    expect(textOf(o)).toContain('ws0-button');
    expect(textOf(o)).not.toContain('own-button');
    const ref = /^(e\d+) button "ws0-button"/m.exec(textOf(o))?.[1];
    expect(ref, textOf(o)).toBeDefined();
    const c = await call(alpha, 'click', { ref, workspace: wa });
    expect(c.body.result!.isError, textOf(c)).toBeFalsy();
    expect(moves(t.wsPlatforms[0]!).at(-1)).toBe('35,25');
    // Bound (no workspace named): the same workspace.
    expect(textOf(await call(alpha, 'list_windows', {}))).toMatch(/ws0/);

    // Beta's `find` (no refresh) never answers alpha's latest observation: it observes its own workspace.
    const f = await call(beta, 'find', { role: 'button' });
    expect(f.body.result!.isError, textOf(f)).toBeFalsy();
    expect(textOf(f)).toContain('ws1-button');
    expect(textOf(f)).not.toContain('ws0-button');
    // The operator names either; without one, it is on the user's desktop.
    expect(textOf(await call(WS_OPERATOR_TOKEN, 'find', { role: 'button', refresh: true, workspace: wb }))).toContain('ws1-button');
    expect(textOf(await call(WS_OPERATOR_TOKEN, 'find', { role: 'button', refresh: true }))).toContain('own-button');
    expect(moves(t.own)).toEqual([]);
  });

  it('replay is refused inside a workspace (it would act on the user\'s desktop); outside one it runs', async () => {
    const started: unknown[] = [];
    const replay = {
      recorder: { tap: (e: unknown) => e },
      replayer: { start: async (r: unknown) => (started.push(r), 'rp_1'), wait: async () => ({ id: 'rp_1', status: 'succeeded', steps: [], durationMs: 1 }) },
      store: { list: async () => [] },
    } as unknown as ReplayService;
    t = await buildFakeWorkspacesApp({ replay });
    const { token: alpha } = await t.agents.add({ id: 'alpha', role: 'actor' });
    const wa = (await t.app.inject({ method: 'POST', url: '/v1/workspaces', headers: { authorization: `Bearer ${WS_OPERATOR_TOKEN}` }, payload: { agent: 'alpha' } })).json().id as string;
    const tools = (await rpc(alpha, 'tools/list')).body.result!.tools!;
    expect(tools.find((x) => x.name === 'replay')!.inputSchema.properties).not.toHaveProperty('workspace');
    expect(tools.find((x) => x.name === 'list_recordings')!.inputSchema.properties ?? {}).not.toHaveProperty('workspace');
    // Bound to its workspace, alpha's replay is refused; so is the operator's when it names the workspace.
    const bound = await call(alpha, 'replay', { recordingId: 'rec_1' });
    expect(bound.body.result!.isError).toBe(true);
    expect(textOf(bound)).toMatch(new RegExp(`^NOT_SUPPORTED: .*${wa}`));
    const named = await rpc(WS_OPERATOR_TOKEN, 'tools/call', { name: 'replay', arguments: { recordingId: 'rec_1' } }, { 'x-deskd-workspace': wa });
    expect(textOf(named)).toMatch(/^NOT_SUPPORTED: /);
    expect(started).toEqual([]);
    // list_recordings still answers in a workspace; the operator's replay on its own desktop starts.
    expect(textOf(await call(alpha, 'list_recordings', {}))).toBe('no recordings');
    const own = await call(WS_OPERATOR_TOKEN, 'replay', { recordingId: 'rec_1' });
    expect(own.body.result!.isError, textOf(own)).toBeFalsy();
    expect(started).toEqual([{ recordingId: 'rec_1' }]);
  });

  it('an MCP server with no workspace routing in front (deskd mcp on stdio) refuses a `workspace` instead of acting on the user\'s desktop', async () => {
    t = await buildFakeWorkspacesApp();
    const server = createMcpServer({ platform: t.own, observer: t.ownObserver, executor: t.ownExecutor, version: 't' });
    const client = await connectInMemory(server);
    try {
      const r = (await client.callTool({ name: 'click', arguments: { x: 5, y: 5, workspace: 'ws_abc' } })) as CallToolResult;
      expect(r.isError).toBe(true);
      expect((r.content[0] as { text: string }).text).toMatch(/^NOT_SUPPORTED: /);
      expect(t.own.events).toEqual([]);
      const ok = (await client.callTool({ name: 'click', arguments: { x: 5, y: 5 } })) as CallToolResult;
      expect(ok.isError).toBeFalsy();
      expect(moves(t.own).at(-1)).toBe('5,5');
    } finally {
      await client.close();
    }
  });
});
