/**
 * Issue 22 on the fake platform: the real app, routes and routing, the real WorkspaceManager with a
 * desktop stand-in (a `sleep` process group per "desktop"), each workspace a fake backend with its own
 * tree, observer, executor and lease. Checks who may create, binding, 403/404, the `workspace` parameter
 * in header/query/body, per-workspace leases, the launch policy and app environment, and that DELETE ends
 * the desktop's and apps' process groups.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import type { FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { buildFakeWorkspacesApp, WS_AGENT_TOKEN, WS_OPERATOR_TOKEN, type FakeWorkspacesApp } from '../helpers/fakeWorkspaces.js';

const AGENT = WS_AGENT_TOKEN;
const OPERATOR = WS_OPERATOR_TOKEN;

const POLICY = (workspaces: string, limits = '{ actionsPerSecond: 1000, burst: 1000, maxTypeChars: 2000 }') => `version: 1
limits: ${limits}
rules:
  - { id: allow-all, effect: allow, match: {} }
launch:
  - app: sleep
    args: { allow: ["3?"] }
workspaces: ${workspaces}
`;

type Ctx = FakeWorkspacesApp;

let ctx: Ctx | null = null;
afterEach(async () => {
  await ctx?.close();
  ctx = null;
});

/** The shared fake-workspaces app (tests/helpers/fakeWorkspaces.ts) with this file's policy, secrets in the daemon's environment, and a task runner. */
async function setup(workspaces = '{ max: 3, perAgent: 1, maxApps: 2 }', platform: NodeJS.Platform = 'linux', limits?: string): Promise<Ctx> {
  return buildFakeWorkspacesApp({
    policy: POLICY(workspaces, limits),
    platform,
    approvalsTimeoutMs: 1000,
    firstDisplay: 700,
    recognizer: null,
    baseEnv: { PATH: process.env.PATH, LANG: 'C.UTF-8', DESKD_TOKEN: 'secret-daemon-token', OPENAI_API_KEY: 'sk-secret', DISPLAY: ':0', HOME: '/root' },
    // Tasks act on the daemon's own desktop: a credential bound to a workspace is refused them.
    tasks: (own) => new TaskRunner({ observer: own.observer, actions: own.executor, config: loadAgentConfig({}, { apiKey: 'sk-unused', baseURL: 'http://127.0.0.1:9/v1' }) }),
  });
}

async function req<T = Record<string, unknown>>(token: string, method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) {
  const r = await ctx!.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}`, ...headers }, ...(payload !== undefined ? { payload: payload as object } : {}) });
  return { status: r.statusCode, json: r.json() as T & { error?: { code: string } } };
}

const names = (o: { elements: Array<{ name: string }> }) => o.elements.map((e) => e.name);

describe('workspaces on the fake platform (issue 22)', () => {
  it('only the operator creates by default; it binds a workspace to an agent, whose requests then go there', async () => {
    ctx = await setup('{ max: 3 }');
    const { token: alpha } = await ctx.agents.add({ id: 'alpha', role: 'actor' });
    const refused = await req(alpha, 'POST', '/v1/workspaces', {});
    expect(refused.status).toBe(403);
    expect(refused.json.error!.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
    const bindOther = await req(AGENT, 'POST', '/v1/workspaces', { agent: 'alpha' });
    expect(bindOther.json.error!.code).toBe('FORBIDDEN_FOR_CREDENTIAL');
    const made = await req<{ id: string; owner: string; display: string; size: string }>(OPERATOR, 'POST', '/v1/workspaces', { agent: 'alpha', size: '400x300' });
    expect(made.status).toBe(200);
    expect(made.json).toMatchObject({ owner: 'agent:alpha', display: ':700', size: '400x300' });
    // Alpha names no workspace: bound to its only one. The default agent token still sees the own desktop.
    const a = await req<{ elements: Array<{ name: string }> }>(alpha, 'POST', '/v1/observe', { ocr: false });
    expect(names(a.json)).toContain('ws0-button');
    expect(names(a.json)).not.toContain('own-button');
    const d = await req<{ elements: Array<{ name: string }> }>(AGENT, 'POST', '/v1/observe', { ocr: false });
    expect(names(d.json)).toContain('own-button');
    // The default agent token may not use alpha's workspace; unknown ids are 404.
    const forbidden = await req(AGENT, 'POST', '/v1/observe', { ocr: false }, { 'x-deskd-workspace': made.json.id });
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.error!.code).toBe('WORKSPACE_FORBIDDEN');
    const missing = await req(alpha, 'GET', '/v1/screenshot?workspace=ws_nope');
    expect(missing.status).toBe(404);
    expect(missing.json.error!.code).toBe('WORKSPACE_NOT_FOUND');
    // The operator reaches it by naming it, else its own desktop.
    const op = await req<{ elements: Array<{ name: string }> }>(OPERATOR, 'POST', '/v1/observe', { ocr: false, workspace: made.json.id });
    expect(names(op.json)).toContain('ws0-button');
    expect((await req<{ windows: Array<{ app: string }> }>(OPERATOR, 'GET', '/v1/windows')).json.windows.map((w) => w.app)).toEqual(['own']);
    expect((await req<{ windows: Array<{ app: string }> }>(OPERATOR, 'GET', `/v1/windows?workspace=${made.json.id}`)).json.windows.map((w) => w.app)).toEqual(['ws0']);
    // A task would act on the user's desktop: refused for a credential bound to a workspace.
    const task = await req(alpha, 'POST', '/v1/tasks', { goal: 'compute 7x6' });
    expect(task.status).toBe(501);
    expect(task.json.error!.code).toBe('NOT_SUPPORTED');
    // A route that does not run in workspaces refuses the header rather than ignore it.
    const halt = await req(OPERATOR, 'GET', '/v1/halt', undefined, { 'x-deskd-workspace': made.json.id });
    expect(halt.status).toBe(400);
    expect(halt.json.error!.code).toBe('VALIDATION_FAILED');
    // With two workspaces, alpha must name one; naming one works.
    const second = (await req<{ id: string }>(OPERATOR, 'POST', '/v1/workspaces', { agent: 'alpha' })).json.id;
    const ambiguous = await req(alpha, 'POST', '/v1/observe', { ocr: false });
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.json.error!.code).toBe('VALIDATION_FAILED');
    expect(names((await req<{ elements: Array<{ name: string }> }>(alpha, 'POST', '/v1/observe', { ocr: false, workspace: second })).json)).toContain('ws1-button');
    const shot = await ctx.app.inject({ method: 'GET', url: `/v1/screenshot?format=png&workspace=${made.json.id}`, headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(shot.statusCode).toBe(200);
    expect(shot.headers['content-type']).toMatch(/image\/png/);
  });

  it('two agents act at once in their own workspaces: one lease each, clicks land on their own backend', async () => {
    ctx = await setup();
    const { token: alpha } = await ctx.agents.add({ id: 'alpha', role: 'actor' });
    const { token: beta } = await ctx.agents.add({ id: 'beta', role: 'actor' });
    const wa = (await req<{ id: string }>(alpha, 'POST', '/v1/workspaces', {})).json.id;
    const wb = (await req<{ id: string }>(beta, 'POST', '/v1/workspaces', {})).json.id;
    const again = await req(alpha, 'POST', '/v1/workspaces', {});
    expect(again.status).toBe(429);
    expect(again.json.error!.code).toBe('WORKSPACE_LIMIT');
    const [ra, rb, rown] = await Promise.all([
      req(alpha, 'POST', '/v1/actions', { type: 'click', x: 20, y: 20, workspace: wa }),
      req(beta, 'POST', '/v1/actions', { actions: [{ type: 'click', x: 30, y: 30 }] }, { 'x-deskd-workspace': wb }),
      req(AGENT, 'POST', '/v1/actions', { type: 'click', x: 40, y: 40 }),
    ]);
    expect([ra.status, rb.status, rown.status]).toEqual([200, 200, 200]);
    // Each click landed on its own backend only: the moves each platform saw.
    const moves = (p: FakePlatform) => p.events.flatMap((e) => (e.kind === 'move' ? [`${e.x},${e.y}`] : []));
    expect(moves(ctx.wsPlatforms[0]!)).toEqual(['20,20']);
    expect(moves(ctx.wsPlatforms[1]!)).toEqual(['30,30']);
    expect(moves(ctx.own)).toEqual(['40,40']);
    expect(ctx.wsPlatforms.every((p) => p.events.some((e) => e.kind === 'down'))).toBe(true);
    expect((await req<{ lease: { holder: string } }>(alpha, 'GET', '/v1/lease')).json.lease.holder).toBe('agent:alpha/default');
    expect((await req<{ lease: { holder: string } }>(beta, 'GET', '/v1/lease')).json.lease.holder).toBe('agent:beta/default');
    expect((await req<{ lease: { holder: string } }>(AGENT, 'GET', '/v1/lease')).json.lease.holder).toBe('agent/default');
    // The audit log names the workspace of each decision (and none for the own desktop).
    const decisions = (await ctx.audit.read({ limit: 100 })).filter((r) => r.kind === 'decision') as Array<{ actor?: string; workspace?: string }>;
    expect(decisions.find((r) => r.actor === 'agent:alpha/default')?.workspace).toBe(wa);
    expect(decisions.find((r) => r.actor === 'agent:beta/default')?.workspace).toBe(wb);
    expect(decisions.find((r) => r.actor === 'agent/default')?.workspace).toBeUndefined();
    expect((await ctx.audit.read({ limit: 100 })).filter((r) => r.kind === 'workspace').map((r) => (r as { event?: string }).event)).toEqual(['create', 'create']);
    // MCP: the bound credential's tool calls, and the operator's with the header, land in the workspace.
    const mcp = (token: string, name: string, args: object, headers: Record<string, string> = {}) =>
      ctx!.app.inject({ method: 'POST', url: '/mcp', headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', ...headers }, payload: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } } });
    expect((await mcp(alpha, 'click', { x: 50, y: 60 })).statusCode).toBe(200);
    expect((await mcp(OPERATOR, 'click', { x: 70, y: 80 }, { 'x-deskd-workspace': wb })).statusCode).toBe(200);
    const byArgument = await mcp(OPERATOR, 'click', { x: 90, y: 90, workspace: wa });
    expect(byArgument.statusCode).toBe(200);
    expect(byArgument.body).not.toMatch(/isError":true/);
    expect(moves(ctx.wsPlatforms[0]!).at(-1)).toBe('90,90');
    expect((await mcp(alpha, 'observe', { workspace: wb })).json().error.code).toBe('WORKSPACE_FORBIDDEN');
    expect(moves(ctx.wsPlatforms[0]!).slice(0, 2)).toEqual(['20,20', '50,60']);
    expect(moves(ctx.wsPlatforms[1]!)).toEqual(['30,30', '70,80']);
    expect(moves(ctx.own)).toEqual(['40,40']);
    // Naming two different workspaces at once is refused.
    const two = await req(alpha, 'POST', '/v1/observe', { ocr: false, workspace: wa }, { 'x-deskd-workspace': wb });
    expect(two.json.error!.code).toBe('VALIDATION_FAILED');
  });

  it('launch: deny by default, args by glob, allowlisted environment, maxApps; DELETE ends every process group', async () => {
    ctx = await setup();
    const made = (await req<{ id: string }>(OPERATOR, 'POST', '/v1/workspaces', {})).json.id;
    const denied = await req(OPERATOR, 'POST', `/v1/workspaces/${made}/apps`, { app: 'xterm' });
    expect(denied.status).toBe(403);
    expect(denied.json.error!.code).toBe('POLICY_DENIED');
    const badArg = await req(OPERATOR, 'POST', `/v1/workspaces/${made}/apps`, { app: 'sleep', args: ['600'] });
    expect(badArg.json.error!.code).toBe('POLICY_DENIED');
    const ok = await req<{ pid: number; app: string }>(OPERATOR, 'POST', `/v1/workspaces/${made}/apps`, { app: 'sleep', args: ['30'] });
    expect(ok.status).toBe(200);
    const env = readFileSync(`/proc/${ok.json.pid}/environ`, 'utf8').split('\0').filter(Boolean);
    expect(env).toContain('DISPLAY=:700');
    expect(env).toContain('DBUS_SESSION_BUS_ADDRESS=unix:path=/tmp/fake-bus-0');
    expect(env).toContain('LANG=C.UTF-8');
    expect(env.some((v) => v.startsWith('HOME=') && v !== 'HOME=/root')).toBe(true);
    expect(env.filter((v) => /^(DESKD_TOKEN|OPENAI_API_KEY)=/.test(v))).toEqual([]);
    await req(OPERATOR, 'POST', `/v1/workspaces/${made}/apps`, { app: 'sleep', args: ['31'] });
    const third = await req(OPERATOR, 'POST', `/v1/workspaces/${made}/apps`, { app: 'sleep', args: ['32'] });
    expect(third.json.error!.code).toBe('WORKSPACE_LIMIT');
    const detail = await req<{ pids: Record<string, number>; apps: Array<{ pid: number }>; usage: { pids: number[]; processes: number } }>(OPERATOR, 'GET', `/v1/workspaces/${made}`);
    expect(detail.json.usage.processes).toBe(5);
    const pids = [...Object.values(detail.json.pids), ...detail.json.apps.map((a) => a.pid)];
    expect(detail.json.usage.pids.sort()).toEqual([...pids].sort());
    const del = await req<{ deleted: boolean }>(OPERATOR, 'DELETE', `/v1/workspaces/${made}`);
    expect(del.json.deleted).toBe(true);
    const alive = pids.filter((p) => {
      if (!existsSync(`/proc/${p}`)) return false;
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      return !/^[ZX]$/.test(st.slice(st.lastIndexOf(')') + 2).split(' ')[0]!);
    });
    expect(alive).toEqual([]);
    expect((await req(OPERATOR, 'GET', `/v1/workspaces/${made}`)).json.error!.code).toBe('WORKSPACE_NOT_FOUND');
    expect((await req<{ workspaces: unknown[] }>(OPERATOR, 'GET', '/v1/workspaces')).json.workspaces).toEqual([]);
  });

  it('each workspace has its own rate-limit bucket and screen lock', async () => {
    ctx = await setup('{ max: 3, perAgent: 1 }', 'linux', '{ actionsPerSecond: 0.01, burst: 2, maxTypeChars: 2000 }');
    const { token: alpha } = await ctx.agents.add({ id: 'alpha', role: 'actor' });
    const { token: beta } = await ctx.agents.add({ id: 'beta', role: 'actor' });
    await req(alpha, 'POST', '/v1/workspaces', {});
    await req(beta, 'POST', '/v1/workspaces', {});
    const click = (token: string) => req(token, 'POST', '/v1/actions', { type: 'click', x: 5, y: 5 });
    expect((await click(alpha)).status).toBe(200);
    expect((await click(alpha)).status).toBe(200);
    const third = await click(alpha);
    expect(third.status).toBe(429);
    expect(third.json.error!.code).toBe('RATE_LIMITED');
    // The user's locked screen stops actions on the own desktop only (the gate checks the lock before the
    // rate limit, so an action that passes here was never judged under the own desktop's lock).
    ctx.own.locked = true;
    const ownLocked = await click(AGENT);
    expect(ownLocked.status).toBe(423);
    expect(ownLocked.json.error!.code).toBe('SCREEN_LOCKED');
    // Beta's workspace has its whole burst, and its display is not locked.
    expect([(await click(beta)).status, (await click(beta)).status]).toEqual([200, 200]);
    ctx.own.locked = false;
    // The own desktop's bucket was not used by the workspaces either.
    expect((await click(AGENT)).status).toBe(200);
  });

  it('macOS answers NOT_SUPPORTED', async () => {
    ctx = await setup('{ max: 3 }', 'darwin');
    const r = await req(OPERATOR, 'POST', '/v1/workspaces', {});
    expect(r.status).toBe(501);
    expect(r.json.error!.code).toBe('NOT_SUPPORTED');
  });
});
