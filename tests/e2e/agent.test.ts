/**
 * A model-driven task on gnome-calculator under a private Xvfb desktop, with the daemon's real runtime
 * (Linux backend: AT-SPI, XTest input, X11 capture; the e2e policy; audit log) and the real `openai`
 * SDK talking to a local OpenAI-compatible test server that serves recorded response shapes. The
 * scripted "model" reads the element refs of 7, ×, 6, = from the observation it is sent (functions
 * mode), clicks them, then reads the calculator's display from the next observation and answers it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { approvalDenier, approvalManagerApprover } from '../../src/agent/approvals.js';
import type { TaskEvent } from '../../src/agent/types.js';
import { launchCalculator, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';
import { startOpenAITestServer, chatToolCalls, lastObservation, refOf, type OpenAITestServer } from '../helpers/openaiTestServer.js';

const WIDTH = 1280;
const HEIGHT = 800;

let desktop: VirtualDesktop;
let calc: AppHandle;
let runtime: Runtime;
let dir: string;
let server: OpenAITestServer;

/** The calculator's display: the first textbox line (the GtkSourceView entry) and its value. */
function displayValue(observation: string): string | null {
  for (const line of observation.split('\n')) {
    const m = /^e\d+ textbox "(?:[^"\\]|\\.)*" value=("(?:[^"\\]|\\.)*")/.exec(line);
    if (m) return JSON.parse(m[1]!) as string;
  }
  return null;
}

beforeAll(async () => {
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
  calc = launchCalculator();
  dir = mkdtempSync(join(tmpdir(), 'deskd-agent-e2e-'));
  runtime = await createRuntime(
    {
      host: '127.0.0.1', port: 0, virtualDisplay: false, screen: { width: WIDTH, height: HEIGHT }, platform: 'linux', ocrWorkers: 1,
      configDir: dir, logLevel: 'warn', policyPath: new URL('../../examples/policy-e2e.yaml', import.meta.url).pathname, auditLogPath: null,
    },
    pino({ level: 'warn' }),
  );
  await waitFor(async () => (await runtime.observer.observe({ ocr: false, accessibility: true })).elements.some((e) => e.role === 'button' && e.name === '='), 30_000, 'the calculator on the accessibility bus');
  server = await startOpenAITestServer();
});

afterAll(async () => {
  await server?.close();
  await runtime?.close();
  await calc?.kill();
  await desktop?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('agent on gnome-calculator (functions mode, Chat Completions, local OpenAI-compatible test server with recorded shapes)', () => {
  it('the scripted model computes 7×6 and the task answer is 42', async () => {
    let secondObservation = '';
    server.push(
      (req) => {
        const obs = lastObservation(req);
        return chatToolCalls(['7', '×', '6', '='].map((n) => ({ name: 'click_element', args: { ref: refOf(obs, 'button', n) } })));
      },
      (req) => {
        secondObservation = lastObservation(req);
        const shown = displayValue(secondObservation);
        if (shown === null) throw new Error(`no display value in:\n${secondObservation}`);
        return chatToolCalls([{ name: 'done', args: { answer: shown } }]);
      },
    );
    const runner = new TaskRunner({
      observer: runtime.observer,
      actions: runtime.executor,
      config: loadAgentConfig({}, { mode: 'functions', api: 'chat', apiKey: 'sk-local-test', baseURL: server.baseURL, ocr: false, timeoutMs: 30_000 }),
      approve: approvalManagerApprover(runtime.approvals, () => runtime.halt.signal),
      denyApproval: approvalDenier(runtime.approvals),
    });
    const t0 = performance.now();
    const id = runner.start({ goal: 'Compute 7×6 with the calculator and tell me the result.', maxSteps: 5 });
    const events: TaskEvent[] = [];
    runner.subscribe(id, (e) => events.push(e));
    const task = await runner.wait(id);
    const wallMs = Math.round(performance.now() - t0);
    await runner.close();
    console.info(`[agent e2e] status=${task.status} answer=${JSON.stringify(task.answer)} steps=${task.steps.length} wall=${wallMs}ms ` +
      task.steps.map((s) => `step${s.index}: total ${s.durationMs} ms (model ${s.modelMs} ms, act ${s.actMs} ms, ops ${s.operations.map((o) => o.durationMs).join("/")} ms)`).join('; '));
    expect(task.error).toBeNull();
    expect(task.status).toBe('succeeded');
    expect(task.answer).toBe('42');
    expect(task.steps).toHaveLength(2);
    expect(task.steps[0]!.operations.map((o) => [o.tool, o.outcome])).toEqual([
      ['click_element', 'done'], ['click_element', 'done'], ['click_element', 'done'], ['click_element', 'done'],
    ]);
    expect(task.denials).toEqual([]);
    // The SSE-able event log has every step, then the final event.
    expect(events.filter((e) => e.type === 'step')).toHaveLength(2);
    expect(events[events.length - 1]).toMatchObject({ type: 'final', status: 'succeeded', answer: '42' });
    // The actions went through the policy: the audit log has a decision per click, by this task.
    const audit = await runtime.audit.read({ limit: 100 });
    const decisions = audit.filter((r) => r.kind === 'decision' && r.actor === `task:${id}`);
    expect(decisions.length).toBeGreaterThanOrEqual(4);
  });
});
