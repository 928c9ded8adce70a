/**
 * Issue 17 through the task loop: a task started by a named agent acts under that agent's policy layers (its
 * overlay cannot be walked around by starting a task), its decisions carry the agent and a reason (the
 * model's text, else the goal), and revoking the agent cancels its task.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGovernanceApp, AGENT, OPERATOR } from '../helpers/governanceApp.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { startOpenAITestServer, computerCall, finalMessage, type OpenAITestServer } from '../helpers/openaiTestServer.js';

const USER = `version: 1
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
rules:
  - { id: allow-all, effect: allow, match: {} }
`;
const OVERLAY = `version: 1
rules:
  - { id: no-clicks, effect: deny, match: { actions: [click, double_click] } }
  - { id: rest, effect: allow, match: {} }
`;

let dir: string;
let server: OpenAITestServer;
let h: Awaited<ReturnType<typeof buildGovernanceApp>>;
const auth = (t: string) => ({ authorization: `Bearer ${t}` });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-govtask-'));
  await writeFile(join(dir, 'user.yaml'), USER);
  await writeFile(join(dir, 'overlay.yaml'), OVERLAY);
  server = await startOpenAITestServer([
    computerCall([{ type: 'click', button: 'left', x: 20, y: 110 }]),
    finalMessage('done'),
    computerCall([{ type: 'click', button: 'left', x: 20, y: 110 }]),
    finalMessage('done'),
  ]);
  h = await buildGovernanceApp({
    userPath: join(dir, 'user.yaml'),
    managedPath: null,
    tasks: ({ observer, executor }) =>
      new TaskRunner({ observer, actions: executor, config: loadAgentConfig({}, { apiKey: 'sk-test-local', baseURL: server.baseURL, retryBaseDelayMs: 5, maxRetryDelayMs: 50, waitMs: 5, timeoutMs: 5000 }) }),
  });
});
afterAll(async () => {
  await h.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('tasks act as the agent that started them', () => {
  it("a narrowed agent's task is held by its overlay; the default agent's task is not; both are audited with agent and reason", async () => {
    const add = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: auth(OPERATOR), payload: { id: 'narrow', role: 'actor', policy: join(dir, 'overlay.yaml') } });
    expect(add.statusCode, add.body).toBe(200);
    const token = add.json().token as string;
    await expect.poll(() => h.store.layersFor(h.agents.get('narrow')).agent?.policy.rules.length).toBe(2);

    h.platform.events.length = 0;
    const t1 = await h.app.inject({ method: 'POST', url: '/v1/tasks', headers: auth(token), payload: { goal: 'press seven', maxSteps: 3 } });
    expect(t1.statusCode, t1.body).toBe(202);
    const id1 = t1.json().taskId as string;
    const v1 = await h.tasks!.wait(id1);
    expect(v1.denials.map((d) => d.ruleId)).toEqual(['agent:narrow:no-clicks']);
    expect(h.platform.events.filter((e) => e.kind === 'down')).toEqual([]);
    const rec1 = (await h.audit.read({ limit: 50 })).filter((r) => r.kind === 'decision' && r.actor === `task:${id1}`);
    expect(rec1.length).toBeGreaterThan(0);
    expect(rec1[0]).toMatchObject({ agent: 'narrow', reason: 'press seven' });

    await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: auth(OPERATOR) });
    const t2 = await h.app.inject({ method: 'POST', url: '/v1/tasks', headers: auth(AGENT), payload: { goal: 'press seven too', maxSteps: 3 } });
    const v2 = await h.tasks!.wait(t2.json().taskId as string);
    expect(v2.denials).toEqual([]);
    expect(h.platform.events.filter((e) => e.kind === 'down').length).toBeGreaterThan(0);
  });
});

describe('revoking the agent that started a task', () => {
  it("denies the task's pending approval and cancels the task", async () => {
    const d = await mkdtemp(join(tmpdir(), 'deskd-govtask2-'));
    await writeFile(join(d, 'user.yaml'), `version: 1
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
rules:
  - { id: ask-far, effect: ask, match: { actions: [click], region: { x: 0, y: 300, width: 600, height: 100 } } }
  - { id: allow-all, effect: allow, match: {} }
`);
    const srv = await startOpenAITestServer([computerCall([{ type: 'click', button: 'left', x: 20, y: 350 }]), finalMessage('done'), finalMessage('done')]);
    const g = await buildGovernanceApp({
      userPath: join(d, 'user.yaml'),
      managedPath: null,
      tasks: ({ observer, executor }) =>
        new TaskRunner({ observer, actions: executor, config: loadAgentConfig({}, { apiKey: 'sk-test-local', baseURL: srv.baseURL, retryBaseDelayMs: 5, maxRetryDelayMs: 50, waitMs: 5, timeoutMs: 5000 }) }),
    });
    try {
      const add = await g.app.inject({ method: 'POST', url: '/v1/agents', headers: auth(OPERATOR), payload: { id: 'runner', role: 'actor' } });
      const token = add.json().token as string;
      g.platform.events.length = 0;
      const t = await g.app.inject({ method: 'POST', url: '/v1/tasks', headers: auth(token), payload: { goal: 'click far', maxSteps: 3 } });
      const id = t.json().taskId as string;
      await expect.poll(() => g.approvals.list().length, { timeout: 10_000 }).toBe(1);
      expect((await g.app.inject({ method: 'DELETE', url: '/v1/agents/runner', headers: auth(OPERATOR) })).statusCode).toBe(200);
      const v = await g.tasks!.wait(id);
      expect(v.status).toBe('cancelled');
      expect(g.approvals.list()).toEqual([]);
      expect(g.platform.events.filter((e) => e.kind === 'down')).toEqual([]);
      await expect.poll(async () => (await g.audit.read({ limit: 100 })).find((r) => r.kind === 'agent' && r.event === 'revoke')?.cancelledApprovals).toBe(1);
    } finally {
      await g.close();
      await srv.close();
      await rm(d, { recursive: true, force: true });
    }
  });
});
