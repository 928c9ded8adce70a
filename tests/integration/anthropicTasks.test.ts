/**
 * Model-driven tasks with Claude (`DESKD_MODEL_PROVIDER=anthropic`) against a local Messages-compatible
 * test server serving recorded response shapes (tests/fixtures/anthropic), with the real
 * `@anthropic-ai/sdk`, the fake platform (1920x1080 points: screenshots scaled to 1429x804), the real
 * executor and the real policy engine (gate, approvals, audit log), through the task HTTP API.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { approvalDenier } from '../../src/agent/approvals.js';
import type { TaskEvent } from '../../src/agent/types.js';
import { buildPolicyStack } from '../helpers/testApp.js';
import { closeTaskHarness, taskRoutesApp, until } from '../helpers/taskApp.js';
import { countImages, finalText, lastImage, lastToolResults, overloaded, rateLimited, startAnthropicTestServer, toolUses, type ScriptEntry } from '../helpers/anthropicTestServer.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
approvals: { timeoutMs: 10000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: deny-danger-zone, effect: deny, match: { region: { x: 1500, y: 0, width: 420, height: 200 } } }
  - { id: ask-escape, effect: ask, match: { keys: ["escape"] } }
  - { id: allow-fakeapp, effect: allow, match: { app: ["fakeapp"] } }
`;

/** Model pixel → point on the 1920x1080 display shown at 1429x804. */
const pt = (x: number, y: number) => ({ x: (x * 1920) / 1429, y: (y * 1080) / 804 });

async function harness(script: ScriptEntry[], opts: { config?: Partial<AgentConfig>; env?: NodeJS.ProcessEnv } = {}) {
  const server = await startAnthropicTestServer(script);
  const platform: FakePlatform = createFakePlatform({ displays: [{ id: 0, x: 0, y: 0, width: 1920, height: 1080, scaleFactor: 1, primary: true }], focused: { app: 'fakeapp', pid: 4242, window: 'Fake App' } });
  const { dir, audit, halt, approvals, gate, store, observer } = await buildPolicyStack(platform, POLICY, { dirPrefix: 'deskd-claude-test-' });
  const executor = new Executor({ platform, store, policy: gate, halt, verifyElement: createElementVerifier(platform, null) });
  const config = loadAgentConfig(opts.env ?? { DESKD_MODEL_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'sk-ant-test-local', ANTHROPIC_BASE_URL: server.baseURL, DESKD_MODEL: 'claude-opus-4-5' }, {
    retryBaseDelayMs: 5,
    maxRetryDelayMs: 50,
    timeoutMs: 5000,
    ...opts.config,
  });
  const runner = new TaskRunner({ observer, actions: executor, config, denyApproval: approvalDenier(approvals), pointer: () => platform.mouse.position() });
  const app = await taskRoutesApp(runner);
  const events: TaskEvent[] = [];
  const h = {
    server, platform, runner, app, approvals, halt, audit, dir,
    async start(goal: string, maxSteps?: number): Promise<string> {
      const r = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal, ...(maxSteps ? { maxSteps } : {}) } });
      expect(r.statusCode).toBe(202);
      const id = r.json().taskId as string;
      runner.subscribe(id, (e) => events.push(e));
      return id;
    },
    events,
    close: () => closeTaskHarness({ runner, app, approvals, audit, server, dir }),
  };
  open.push(h);
  return h;
}
let open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const h of open) await h.close();
  open = [];
});


describe('tasks with Claude (local Messages-compatible test server, recorded shapes)', () => {
  it('the computer tool is declared at the scaled size; tool_uses run through the executor at mapped points; the final text is the answer', async () => {
    const h = await harness([
      toolUses([{ action: 'left_click', coordinate: [100, 200] }, { action: 'type', text: '6' }, { action: 'key', text: 'Return' }], 'Clicking 7.'),
      (req) => {
        const results = lastToolResults(req);
        expect(results.map((r) => r.is_error)).toEqual([undefined, undefined, undefined]);
        return finalText('The display shows 42.');
      },
    ]);
    const id = await h.start('compute 7×6');
    const t = await h.runner.wait(id);
    expect(t.status, JSON.stringify(t.error)).toBe('succeeded');
    expect(t.answer).toBe('The display shows 42.');
    expect(t.api).toBe('computer_20251124');
    expect(t.model).toBe('claude-opus-4-5');
    const first = h.server.requests[0]!;
    expect(first.path).toBe('/v1/messages');
    // SDK 1.17 sends the API key as a bearer token.
    expect(first.headers.authorization).toBe('Bearer sk-ant-test-local');
    expect(String(first.headers['anthropic-beta'])).toContain('computer-use-2025-11-24');
    expect(first.body.tools).toEqual([{ type: 'computer_20251124', name: 'computer', display_width_px: 1429, display_height_px: 804, enable_zoom: true }]);
    expect(first.body.messages[0].content[0]).toEqual({ type: 'text', text: 'compute 7×6' });
    const m = await sharp(lastImage(first)).metadata();
    expect([m.width, m.height]).toEqual([1429, 804]);
    // Each tool_use is answered by a tool_result with its id, text and a screenshot.
    const second = h.server.requests[1]!;
    const uses = second.body.messages[1].content.filter((b: { type: string }) => b.type === 'tool_use');
    expect(lastToolResults(second).map((r) => r.tool_use_id)).toEqual(uses.map((u: { id: string }) => u.id));
    expect(lastToolResults(second)[0].content.map((c: { type: string }) => c.type)).toEqual(['text', 'image']);
    const move = h.platform.events.find((e) => e.kind === 'move') as { x: number; y: number };
    expect(move.x).toBeCloseTo(pt(100, 200).x, 6);
    expect(move.y).toBeCloseTo(pt(100, 200).y, 6);
    expect(h.platform.events.filter((e) => e.kind !== 'move').map((e) => e.kind)).toEqual(['down', 'up', 'type', 'keydown', 'keyup']);
    expect(t.usage).toEqual({ inputTokens: 2210 + 3120, outputTokens: 84 + 12, totalTokens: 2210 + 3120 + 84 + 12 });
    expect(t.steps[0]!.operations.map((o) => o.outcome)).toEqual(['done', 'done', 'done']);
    const audit = await readFile(join(h.dir, 'audit.jsonl'), 'utf8');
    expect(audit).toContain(`task:${id}`);
  });

  it('a denied action is answered is_error POLICY_DENIED (with the rule); the rest of the turn is skipped; nothing of it is dispatched', async () => {
    const danger = { x: Math.ceil((1600 * 1429) / 1920), y: 50 };
    const h = await harness([
      toolUses([{ action: 'left_click', coordinate: [danger.x, danger.y] }, { action: 'type', text: 'secret' }]),
      (req) => {
        const [denied, skipped] = lastToolResults(req);
        expect(denied.is_error).toBe(true);
        expect(denied.content[0].text).toMatch(/^POLICY_DENIED: .*deny-danger-zone.*Do not retry/);
        expect(skipped.is_error).toBe(true);
        expect(skipped.content[0].text).toMatch(/^SKIPPED: /);
        return finalText('I could not do it.');
      },
    ]);
    const t = await h.runner.wait(await h.start('do the dangerous thing'));
    expect(t.status).toBe('succeeded');
    expect(h.platform.events).toEqual([]);
    expect(t.denials.map((d) => d.ruleId)).toEqual(['deny-danger-zone']);
    expect(t.steps[0]!.operations.map((o) => o.outcome)).toEqual(['denied', 'skipped']);
    expect(t.steps[0]!.operations[0]!.policy?.ruleId).toBe('deny-danger-zone');
  });

  it('429 and 529 are retried (retry events, SDK retries off), then the task goes on', async () => {
    const h = await harness([rateLimited(), overloaded(), finalText('done')]);
    const t = await h.runner.wait(await h.start('wait'));
    expect(t.status).toBe('succeeded');
    expect(t.steps[0]!.retries).toBe(2);
    expect(h.events.filter((e) => e.type === 'retry')).toHaveLength(2);
    expect(h.server.requests).toHaveLength(3);
  });

  it('retries used up → MODEL_ERROR', async () => {
    const h = await harness([overloaded(), overloaded()], { config: { maxRetries: 1 } });
    const t = await h.runner.wait(await h.start('x'));
    expect(t.status).toBe('failed');
    expect(t.error?.code).toBe('MODEL_ERROR');
    expect(t.error?.message).toMatch(/529/);
  });

  it('a policy ask waits for the operator (approval event; nothing pressed before); approved → pressed', async () => {
    const h = await harness([toolUses([{ action: 'key', text: 'Escape' }]), finalText('ok')]);
    const id = await h.start('close the dialog');
    await until(() => h.approvals.list().length === 1, 'the policy approval');
    await until(() => h.events.some((e) => e.type === 'approval' && e.kind === 'policy'), 'the approval event');
    expect(h.platform.events).toEqual([]);
    h.approvals.decide(h.approvals.list()[0]!.id, { decision: 'approve' }, 'operator');
    const t = await h.runner.wait(id);
    expect(t.status).toBe('succeeded');
    expect(h.platform.events.map((e) => e.kind)).toEqual(['keydown', 'keyup']);
  });

  it('cancelling a task that waits on an ask denies the approval; nothing is pressed', async () => {
    const h = await harness([toolUses([{ action: 'key', text: 'Escape' }])]);
    const id = await h.start('close the dialog');
    await until(() => h.approvals.list().length === 1, 'the policy approval');
    await h.app.inject({ method: 'POST', url: `/v1/tasks/${id}/cancel` });
    const t = await h.runner.wait(id);
    expect(t.status).toBe('cancelled');
    await until(() => h.approvals.list().every((a) => a.status !== 'pending'), 'the approval to be denied');
    expect(h.platform.events).toEqual([]);
  });

  it('halt ends the task with HALTED; nothing is dispatched after it', async () => {
    const h = await harness([
      () => {
        h.halt.halt('test');
        return toolUses([{ action: 'left_click', coordinate: [10, 10] }]);
      },
    ]);
    const t = await h.runner.wait(await h.start('x'));
    expect(t.status).toBe('failed');
    expect(t.error?.code).toBe('HALTED');
    expect(h.platform.events).toEqual([]);
  });

  it('old screenshots are trimmed to DESKD_AGENT_KEEP_IMAGES', async () => {
    const shot = { action: 'screenshot' };
    const h = await harness([toolUses([shot]), toolUses([shot]), toolUses([shot]), (req) => (expect(countImages(req)).toBeLessThanOrEqual(2), finalText('ok'))], { config: { keepImages: 2 } });
    const t = await h.runner.wait(await h.start('look'));
    expect(t.status).toBe('succeeded');
    expect(countImages(h.server.requests[2]!)).toBeLessThanOrEqual(2);
  });

  it('without ANTHROPIC_API_KEY the provider anthropic answers MODEL_NOT_CONFIGURED; a bad provider name is a config error', async () => {
    const h = await harness([], { env: { DESKD_MODEL_PROVIDER: 'anthropic', OPENAI_API_KEY: 'sk-openai-only' } });
    const r = await h.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'x' } });
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('MODEL_NOT_CONFIGURED');
    expect(r.json().error.message).toMatch(/ANTHROPIC_API_KEY/);
    expect(() => loadAgentConfig({ DESKD_MODEL_PROVIDER: 'claude' })).toThrow(/DESKD_MODEL_PROVIDER/);
  });
});
