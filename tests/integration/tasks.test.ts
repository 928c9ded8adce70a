/**
 * Model-driven tasks against a local OpenAI-compatible test server serving recorded response shapes
 * (tests/fixtures/openai), with the real `openai` SDK, the fake platform, the real executor and the
 * real policy engine (gate, approvals, audit log).
 */
import { describe, it, expect, afterEach } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { approvalDenier, approvalManagerApprover } from '../../src/agent/approvals.js';
import { PLACEHOLDER_PNG_DATA_URL } from '../../src/agent/context.js';
import type { SafetyApprover, TaskEvent } from '../../src/agent/types.js';
import { buildPolicyStack } from '../helpers/testApp.js';
import { closeTaskHarness, taskRoutesApp, until } from '../helpers/taskApp.js';
import {
  startOpenAITestServer,
  computerCall,
  previewCall,
  finalMessage,
  chatToolCalls,
  chatFinal,
  responsesFunctionCalls,
  rateLimited,
  serverError,
  requestTexts,
  lastObservation,
  refOf,
  fixture,
  type OpenAITestServer,
  type ScriptEntry,
} from '../helpers/openaiTestServer.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
approvals: { timeoutMs: 10000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-fakeapp, effect: allow, match: { app: ["fakeapp"] } }
  - { id: deny-danger-zone, effect: deny, match: { region: { x: 1000, y: 0, width: 280, height: 100 } } }
  - { id: ask-escape, effect: ask, match: { keys: ["escape"] } }
`;

/** A calculator-like accessibility tree on the fake platform. */
function calcTree() {
  return [
    axNode('application', 'fakeapp', null, {
      children: [
        axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 400 }, {
          children: [
            axNode('label', '0', { x: 10, y: 20, width: 300, height: 40 }, { handle: 'hres' }),
            axNode('button', '7 7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' }),
            axNode('button', '×', { x: 60, y: 100, width: 40, height: 30 }, { handle: 'hx' }),
            axNode('button', '6', { x: 110, y: 100, width: 40, height: 30 }, { handle: 'h6' }),
            axNode('button', '=', { x: 160, y: 100, width: 40, height: 30 }, { handle: 'heq' }),
          ],
        }),
      ],
    }),
  ];
}

interface Harness {
  server: OpenAITestServer;
  platform: FakePlatform;
  runner: TaskRunner;
  app: FastifyInstance;
  approvals: ApprovalManager;
  halt: HaltSwitch;
  events(taskId: string): TaskEvent[];
  close(): Promise<void>;
}

let open: Harness[] = [];
afterEach(async () => {
  for (const h of open) await h.close();
  open = [];
});

async function harness(script: ScriptEntry[], opts: { config?: Partial<AgentConfig>; approve?: SafetyApprover; useManagerApprover?: boolean; apiKey?: string | null } = {}): Promise<Harness> {
  const server = await startOpenAITestServer(script);
  const platform = createFakePlatform({ tree: calcTree(), focused: { app: 'fakeapp', pid: 4242, window: 'Calculator' } });
  const { dir, audit, halt, approvals, gate, store, observer } = await buildPolicyStack(platform, POLICY, { dirPrefix: 'deskd-agent-test-' });
  const executor = new Executor({ platform, store, policy: gate, verifyElement: createElementVerifier(platform, null) });
  const config = loadAgentConfig({}, {
    apiKey: opts.apiKey === undefined ? 'sk-test-local' : opts.apiKey,
    baseURL: server.baseURL,
    retryBaseDelayMs: 5,
    maxRetryDelayMs: 50,
    waitMs: 5,
    timeoutMs: 5000,
    ...opts.config,
  });
  const runner = new TaskRunner({
    observer,
    actions: executor,
    config,
    approve: opts.useManagerApprover ? approvalManagerApprover(approvals, () => halt.signal) : opts.approve,
    denyApproval: approvalDenier(approvals),
  });
  const app = await taskRoutesApp(runner);
  const recorded = new Map<string, TaskEvent[]>();
  const h: Harness = {
    server,
    platform,
    runner,
    app,
    approvals,
    halt,
    events(taskId) {
      if (!recorded.has(taskId)) {
        const list: TaskEvent[] = [];
        recorded.set(taskId, list);
        runner.subscribe(taskId, (e) => list.push(e));
      }
      return recorded.get(taskId)!;
    },
    close: () => closeTaskHarness({ runner, app, approvals, audit, server, dir }),
  };
  open.push(h);
  return h;
}

const clicks = (p: FakePlatform) => p.events.filter((e) => e.kind === 'move').map((e) => e as { x: number; y: number });

describe('computer mode (Responses API computer tool; local OpenAI-compatible test server, recorded shapes)', () => {
  it('runs a scripted batch of computer actions through the executor; the dispatched events match; the answer is the final message', async () => {
    const h = await harness([
      computerCall([
        { type: 'click', button: 'left', x: 30, y: 115 },
        { type: 'click', button: 'left', x: 80, y: 115, keys: null },
        { type: 'type', text: '6' },
        { type: 'keypress', keys: ['ENTER'] },
        { type: 'wait' },
        { type: 'screenshot' },
      ]),
      finalMessage('42'),
    ]);
    const id = h.runner.start({ goal: 'compute 7×6' });
    const t = await h.runner.wait(id);
    expect(t.status).toBe('succeeded');
    expect(t.answer).toBe('42');
    expect(h.platform.events).toEqual([
      { kind: 'move', x: 30, y: 115 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' },
      { kind: 'move', x: 80, y: 115 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' },
      { kind: 'type', text: '6' },
      { kind: 'keydown', key: 'enter' }, { kind: 'keyup', key: 'enter' },
    ]);
    expect(t.steps).toHaveLength(2);
    expect(t.steps[0]!.operations.map((o) => o.outcome)).toEqual(['done', 'done', 'done', 'done', 'done', 'done']);
    // Usage is summed from the recorded responses' `usage`.
    const u1 = fixture('responses-computer-call').usage;
    const u2 = fixture('responses-final-message').usage;
    expect(t.usage).toEqual({ inputTokens: u1.input_tokens + u2.input_tokens, outputTokens: u1.output_tokens + u2.output_tokens, totalTokens: u1.total_tokens + u2.total_tokens });
    expect(t.steps[0]!.responseId).toMatch(/^resp_/);

    const [r1, r2] = h.server.requests;
    expect(r1!.path).toBe('/v1/responses');
    expect(r1!.body.tools).toEqual([{ type: 'computer' }]);
    expect(r1!.body.input[0].content[0]).toEqual({ type: 'input_text', text: 'compute 7×6' });
    expect(r1!.body.input[0].content[1].image_url).toMatch(/^data:image\/png;base64,/);
    const out = r2!.body.input.find((i: { type?: string }) => i.type === 'computer_call_output');
    const sent = r2!.body.input.find((i: { type?: string }) => i.type === 'computer_call');
    expect(out.call_id).toBe(sent.call_id);
    expect(out.output.type).toBe('computer_screenshot');
    expect(out.output.image_url).toMatch(/^data:image\/png;base64,/);
    expect(out.acknowledged_safety_checks).toBeUndefined();
  });

  it('computer_use_preview: sends display_width/height/environment and runs the single action', async () => {
    const h = await harness([previewCall({ type: 'double_click', x: 130, y: 115, keys: null }), finalMessage('done')], { config: { computerTool: 'computer_use_preview', environment: 'linux' } });
    const t = await h.runner.wait(h.runner.start({ goal: 'double click 6' }));
    expect(t.status).toBe('succeeded');
    expect(h.server.requests[0]!.body.tools).toEqual([{ type: 'computer_use_preview', display_width: 1280, display_height: 800, environment: 'linux' }]);
    expect(h.server.requests[0]!.body.model).toBe('computer-use-preview');
    expect(h.platform.events).toEqual([
      { kind: 'move', x: 130, y: 115 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' },
    ]);
  });

  it('retries 429 and 500 with backoff (retry-after-ms honoured), then succeeds; the retries are counted and emitted', async () => {
    const h = await harness([rateLimited(5), serverError(5), computerCall([{ type: 'click', button: 'left', x: 30, y: 115 }]), finalMessage('ok')]);
    const id = h.runner.start({ goal: 'click 7' });
    const ev = h.events(id);
    const t = await h.runner.wait(id);
    expect(t.status).toBe('succeeded');
    expect(t.steps[0]!.retries).toBe(2);
    expect(ev.filter((e) => e.type === 'retry').map((e) => (e as { reason: string }).reason)).toEqual([expect.stringMatching(/^429/), expect.stringMatching(/^500/)]);
    expect(h.server.requests).toHaveLength(4);
    // The retried requests are the same request.
    expect(h.server.requests[1]!.body).toEqual(h.server.requests[0]!.body);
    expect(h.server.requests[2]!.body).toEqual(h.server.requests[0]!.body);
    expect(clicks(h.platform)).toEqual([{ kind: 'move', x: 30, y: 115 }]);
  });

  it('retries a request that times out, then succeeds', async () => {
    const h = await harness([{ ...finalMessage('late'), delayMs: 2000 }, finalMessage('on time')], { config: { timeoutMs: 300 } });
    const t = await h.runner.wait(h.runner.start({ goal: 'answer' }));
    expect(t.status).toBe('succeeded');
    expect(t.answer).toBe('on time');
    expect(t.steps[0]!.retries).toBe(1);
  });

  it('fails with MODEL_ERROR when the retries are used up, and does not retry a 400', async () => {
    const h = await harness([rateLimited(1), rateLimited(1), rateLimited(1)], { config: { maxRetries: 2 } });
    const t = await h.runner.wait(h.runner.start({ goal: 'x' }));
    expect(t.status).toBe('failed');
    expect(t.error).toEqual({ code: 'MODEL_ERROR', message: expect.stringMatching(/after 3 attempts: 429 rate_limit_exceeded/) });
    expect(h.server.requests).toHaveLength(3);

    const h2 = await harness([{ status: 400, body: { error: { message: 'Invalid value for input', type: 'invalid_request_error', param: 'input', code: 'invalid_value' } } }, finalMessage('never')]);
    const t2 = await h2.runner.wait(h2.runner.start({ goal: 'x' }));
    expect(t2.error?.code).toBe('MODEL_ERROR');
    expect(h2.server.requests).toHaveLength(1);
  });

  it('a policy denial reaches the model: the next request carries the computer_call_output and the denial text; later actions of the call are skipped', async () => {
    const h = await harness([
      computerCall([{ type: 'click', button: 'left', x: 1100, y: 50 }, { type: 'type', text: 'secret' }]),
      (req) => {
        const texts = requestTexts(req).join('\n');
        if (!/denied by policy: rule "deny-danger-zone"/.test(texts)) throw new Error(`denial not reported: ${texts}`);
        return finalMessage('I could not click there: it is denied by policy.');
      },
    ]);
    const id = h.runner.start({ goal: 'click the danger zone' });
    const t = await h.runner.wait(id);
    expect(t.status).toBe('succeeded');
    expect(h.platform.events).toEqual([]);
    expect(t.denials).toEqual([expect.objectContaining({ step: 1, ruleId: 'deny-danger-zone', code: 'POLICY_DENIED' })]);
    expect(t.steps[0]!.operations.map((o) => o.outcome)).toEqual(['denied', 'skipped']);
    expect(t.steps[0]!.operations[0]!.policy?.ruleId).toBe('deny-danger-zone');
    const r2 = h.server.requests[1]!;
    const out = r2.body.input.findIndex((i: { type?: string }) => i.type === 'computer_call_output');
    expect(out).toBeGreaterThan(0);
    // The denial note follows the output, as a user message.
    expect(r2.body.input[out + 1]).toEqual({ role: 'user', content: [{ type: 'input_text', text: expect.stringMatching(/Action 1 of 2 \(click at \(1100, 50\)\) was not performed: action denied by policy: rule "deny-danger-zone".*1 remaining action of this call was skipped/) }] });
  });

  it('a pending safety check waits for the operator (ApprovalManager), then is acknowledged in computer_call_output', async () => {
    const check = fixture('responses-computer-safety-check').output[0].pending_safety_checks[0];
    const h = await harness([computerCall([{ type: 'click', button: 'left', x: 80, y: 115 }], { safetyChecks: [check] }), finalMessage('clicked')], { useManagerApprover: true });
    const id = h.runner.start({ goal: 'click ×' });
    const ev = h.events(id);
    await until(() => h.approvals.list().length === 1, 'the safety-check approval');
    // Waiting: nothing dispatched, no second model request.
    expect(h.platform.events).toEqual([]);
    expect(h.server.requests).toHaveLength(1);
    const pending = h.approvals.list()[0]!;
    expect(pending.decision.ruleId).toBe('openai:safety_check:malicious_instructions');
    expect(ev.some((e) => e.type === 'approval' && e.kind === 'safety_check')).toBe(true);
    h.approvals.decide(pending.id, { decision: 'approve' }, 'operator');
    const t = await h.runner.wait(id);
    expect(t.status).toBe('succeeded');
    expect(clicks(h.platform)).toEqual([{ kind: 'move', x: 80, y: 115 }]);
    expect(t.steps[0]!.safetyChecks).toEqual([expect.objectContaining({ id: check.id, code: 'malicious_instructions', approved: true })]);
    const out = h.server.requests[1]!.body.input.find((i: { type?: string }) => i.type === 'computer_call_output');
    expect(out.acknowledged_safety_checks).toEqual([{ id: check.id, code: check.code, message: check.message }]);
  });

  it('a refused safety check fails the task with POLICY_DENIED; nothing is dispatched or acknowledged', async () => {
    const check = fixture('responses-computer-safety-check').output[0].pending_safety_checks[0];
    const h = await harness([computerCall([{ type: 'click', button: 'left', x: 80, y: 115 }], { safetyChecks: [check] }), finalMessage('never')], { approve: async () => false });
    const t = await h.runner.wait(h.runner.start({ goal: 'click ×' }));
    expect(t.status).toBe('failed');
    expect(t.error?.code).toBe('POLICY_DENIED');
    expect(h.platform.events).toEqual([]);
    expect(h.server.requests).toHaveLength(1);
  });

  it('a policy "ask" inside a task waits for the operator, and cancelling the task denies that approval', async () => {
    const h = await harness([computerCall([{ type: 'keypress', keys: ['ESC'] }]), finalMessage('never')]);
    const id = h.runner.start({ goal: 'press escape' });
    await until(() => h.approvals.list().length === 1, 'the policy approval');
    const apr = h.approvals.list()[0]!;
    const r = await h.app.inject({ method: 'POST', url: `/v1/tasks/${id}/cancel` });
    expect(r.statusCode).toBe(200);
    const t = await h.runner.wait(id);
    expect(t.status).toBe('cancelled');
    expect(h.approvals.get(apr.id)?.status).toBe('denied');
    expect(h.platform.events).toEqual([]);
  });

  it('keeps only the last N screenshots in the context', async () => {
    const step = () => computerCall([{ type: 'click', button: 'left', x: 30, y: 115 }]);
    const h = await harness([step(), step(), step(), step(), finalMessage('done')], { config: { keepImages: 2 } });
    const t = await h.runner.wait(h.runner.start({ goal: 'click a lot' }));
    expect(t.status).toBe('succeeded');
    const last = JSON.stringify(h.server.requests[4]!.body.input);
    expect(last.match(/data:image\/png;base64,/g)!.length - last.split(PLACEHOLDER_PNG_DATA_URL).length + 1).toBe(2);
    expect(last).toContain('[older screenshot removed from the context]');
    // Every computer_call still has its output.
    const input = h.server.requests[4]!.body.input as { type?: string; call_id?: string }[];
    const calls = input.filter((i) => i.type === 'computer_call').map((i) => i.call_id);
    const outs = input.filter((i) => i.type === 'computer_call_output').map((i) => i.call_id);
    expect(outs).toEqual(calls);
  });

  it('stops at the step budget with STEP_LIMIT_REACHED', async () => {
    const step = () => computerCall([{ type: 'click', button: 'left', x: 30, y: 115 }]);
    const h = await harness([step(), step(), step()]);
    const t = await h.runner.wait(h.runner.start({ goal: 'loop', maxSteps: 2 }));
    expect(t.status).toBe('failed');
    expect(t.error?.code).toBe('STEP_LIMIT_REACHED');
    expect(t.steps).toHaveLength(2);
  });

  it('a halt during a task fails it with HALTED', async () => {
    const h = await harness([
      (req) => {
        h.halt.halt('operator', 'stop');
        void req;
        return computerCall([{ type: 'click', button: 'left', x: 30, y: 115 }]);
      },
      finalMessage('never'),
    ]);
    const t = await h.runner.wait(h.runner.start({ goal: 'click' }));
    expect(t.status).toBe('failed');
    expect(t.error?.code).toBe('HALTED');
    expect(h.platform.events).toEqual([]);
  });
});

describe('functions mode (Chat Completions and Responses; local OpenAI-compatible test server, recorded shapes)', () => {
  /** A scripted model: reads the refs of 7, ×, 6, = from the observation it was sent and clicks them. */
  const calculatorScript = (reply: (calls: { name: string; args: unknown }[]) => ScriptEntry, final: (answer: string) => ScriptEntry): ScriptEntry[] => [
    (req) => {
      const obs = lastObservation(req);
      const r = reply(['7', '×', '6', '='].map((n) => ({ name: 'click_element', args: { ref: refOf(obs, 'button', n) } })));
      return typeof r === 'function' ? r(req, []) : r;
    },
    (req) => {
      const r = final('42');
      void req;
      return typeof r === 'function' ? r(req, []) : r;
    },
  ];

  it('chat: clicks the elements by ref (centres in points) and finishes with done(answer)', async () => {
    const h = await harness(
      calculatorScript(
        (calls) => chatToolCalls(calls),
        (a) => chatToolCalls([{ name: 'done', args: { answer: a } }]),
      ),
      { config: { mode: 'functions', api: 'chat' } },
    );
    const t = await h.runner.wait(h.runner.start({ goal: 'compute 7×6' }));
    expect(t.status).toBe('succeeded');
    expect(t.answer).toBe('42');
    expect(clicks(h.platform)).toEqual([
      { kind: 'move', x: 30, y: 115 }, { kind: 'move', x: 80, y: 115 }, { kind: 'move', x: 130, y: 115 }, { kind: 'move', x: 180, y: 115 },
    ]);
    const r1 = h.server.requests[0]!;
    expect(r1.path).toBe('/v1/chat/completions');
    expect(r1.body.tools.map((x: { function: { name: string } }) => x.function.name)).toEqual(['observe', 'click_element', 'type_text', 'press_keys', 'scroll', 'wait_for', 'done']);
    expect(r1.body.messages[0].role).toBe('system');
    expect(r1.body.messages[1].content[1].image_url.url).toMatch(/^data:image\/png;base64,/);
    // The second request answers each tool call, then gives a fresh observation.
    const m2 = h.server.requests[1]!.body.messages as { role: string; tool_call_id?: string; content: unknown }[];
    const toolMsgs = m2.filter((m) => m.role === 'tool');
    expect(toolMsgs.map((m) => m.content)).toEqual([expect.stringMatching(/^clicked e\d+ \(button "7"\)/), expect.stringMatching(/"×"/), expect.stringMatching(/"6"/), expect.stringMatching(/"="/)]);
    expect(m2[m2.length - 1]!.role).toBe('user');
    expect(t.steps[0]!.operations.map((o) => o.tool)).toEqual(['click_element', 'click_element', 'click_element', 'click_element']);
    expect(t.usage.totalTokens).toBe(2 * fixture('chat-tool-calls').usage.total_tokens);
  });

  it('chat: a final message without tool calls ends the task with its text', async () => {
    const h = await harness([chatFinal('The result is 42.')], { config: { mode: 'functions', api: 'chat' } });
    const t = await h.runner.wait(h.runner.start({ goal: 'what is 7×6?' }));
    expect(t).toMatchObject({ status: 'succeeded', answer: 'The result is 42.' });
  });

  it('responses: function_call items are answered with function_call_output; a denial is the tool result', async () => {
    const h = await harness(
      [
        (req) => {
          const obs = lastObservation(req);
          return responsesFunctionCalls([
            { name: 'click_element', args: { ref: refOf(obs, 'button', '7') } },
            { name: 'scroll', args: { x: 1100, y: 50, dy: 100 } },
            { name: 'nope', args: {} },
          ]);
        },
        (req) => {
          const outs = (req.body.input as { type?: string; output?: string }[]).filter((i) => i.type === 'function_call_output').map((i) => i.output);
          if (outs.length !== 3 || !/^not done: denied by policy: rule "deny-danger-zone"/.test(outs[1]!) || !/unknown tool "nope"/.test(outs[2]!)) throw new Error(`bad outputs ${JSON.stringify(outs)}`);
          return responsesFunctionCalls([{ name: 'done', args: { answer: 'partly' } }]);
        },
      ],
      { config: { mode: 'functions', api: 'responses' } },
    );
    const t = await h.runner.wait(h.runner.start({ goal: 'try things' }));
    expect(t.status).toBe('succeeded');
    expect(t.answer).toBe('partly');
    expect(h.server.requests[0]!.path).toBe('/v1/responses');
    expect(h.server.requests[0]!.body.tools[0]).toMatchObject({ type: 'function', name: 'observe' });
    expect(t.steps[0]!.operations.map((o) => o.outcome)).toEqual(['done', 'denied', 'failed']);
    expect(clicks(h.platform)).toEqual([{ kind: 'move', x: 30, y: 115 }]);
  });
});

describe('task routes: POST /v1/tasks, GET /v1/tasks/:id, SSE events, cancel (local OpenAI-compatible test server)', () => {
  function parseSse(payload: string): TaskEvent[] {
    return payload
      .split('\n\n')
      .filter((b) => b.includes('data: '))
      .map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as TaskEvent);
  }

  it('the SSE stream carries every step, then the final event; late subscribers get the replay; Last-Event-ID resumes', async () => {
    const h = await harness([
      { ...computerCall([{ type: 'click', button: 'left', x: 30, y: 115 }]), delayMs: 50 },
      computerCall([{ type: 'click', button: 'left', x: 80, y: 115 }]),
      finalMessage('42'),
    ]);
    const post = await h.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'compute', maxSteps: 5 } });
    expect(post.statusCode).toBe(202);
    const { taskId } = post.json();
    // Subscribed while the task runs: the response ends after the final event.
    const live = await h.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}/events` });
    expect(live.statusCode).toBe(200);
    expect(live.headers['content-type']).toMatch(/^text\/event-stream/);
    const evs = parseSse(live.payload);
    const task = (await h.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}` })).json();
    expect(task.status).toBe('succeeded');
    expect(evs.filter((e) => e.type === 'step').map((e) => (e as { step: { index: number } }).step.index)).toEqual([1, 2, 3]);
    expect(evs.filter((e) => e.type === 'step').length).toBe(task.steps.length);
    expect(evs[evs.length - 1]).toMatchObject({ type: 'final', status: 'succeeded', answer: '42', steps: 3 });
    expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));
    expect(live.payload).toMatch(/^id: 1\nevent: status\ndata: /);
    // Late subscriber: the same events, replayed.
    const late = await h.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}/events` });
    expect(parseSse(late.payload)).toEqual(evs);
    // Resume after the second-to-last event: only the final one.
    const resumed = await h.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}/events`, headers: { 'last-event-id': String(evs.length - 1) } });
    expect(parseSse(resumed.payload)).toEqual([evs[evs.length - 1]]);
    // The task view carries steps with actions, timings and usage.
    expect(task.steps[0]).toMatchObject({ index: 1, retries: 0, usage: { totalTokens: expect.any(Number) }, operations: [{ tool: 'computer', outcome: 'done', input: { type: 'click', x: 30, y: 115 } }] });
    expect(task.steps[0].modelMs).toBeGreaterThanOrEqual(0);
  });

  it('cancel stops a task whose model request hangs (the request is aborted)', async () => {
    const h = await harness([{ ...finalMessage('late'), delayMs: 10000 }]);
    const { taskId } = (await h.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'hang' } })).json();
    await until(() => h.server.requests.length === 1, 'the model request');
    const r = await h.app.inject({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` });
    expect(r.statusCode).toBe(200);
    const t = await h.runner.wait(taskId);
    expect(t.status).toBe('cancelled');
    const sse = await h.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}/events` });
    expect(parseSse(sse.payload).pop()).toMatchObject({ type: 'final', status: 'cancelled' });
    // Cancelling again is idempotent.
    expect((await h.app.inject({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` })).json().status).toBe('cancelled');
  });

  it('tasks run one at a time; a queued task can be cancelled before it starts', async () => {
    const h = await harness([{ ...finalMessage('first'), delayMs: 100 }, finalMessage('third')]);
    const a = h.runner.start({ goal: 'first' });
    const b = h.runner.start({ goal: 'second' });
    const c = h.runner.start({ goal: 'third' });
    expect(h.runner.get(b).status).toBe('queued');
    expect(h.runner.cancel(b).status).toBe('cancelled');
    expect((await h.runner.wait(a)).answer).toBe('first');
    expect((await h.runner.wait(c)).answer).toBe('third');
    expect(h.server.requests.map((r) => r.body.input[0].content[0].text)).toEqual(['first', 'third']);
  });

  it('unknown task → 404 TASK_NOT_FOUND on every route; bad body → 400; no API key → 503 MODEL_NOT_CONFIGURED', async () => {
    const h = await harness([]);
    for (const [method, url] of [['GET', '/v1/tasks/task_nope'], ['GET', '/v1/tasks/task_nope/events'], ['POST', '/v1/tasks/task_nope/cancel']] as const) {
      const r = await h.app.inject({ method, url });
      expect(r.statusCode).toBe(404);
      expect(r.json().error.code).toBe('TASK_NOT_FOUND');
    }
    const bad = await h.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: '', maxSteps: 0 } });
    expect(bad.statusCode).toBe(400);
    const h2 = await harness([], { apiKey: null });
    const r = await h2.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'x' } });
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('MODEL_NOT_CONFIGURED');
  });
});
