import { describe, it, expect } from 'vitest';
import sharp from 'sharp';
import { APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { trimImages, countImages, PLACEHOLDER_PNG_DATA_URL, TRIMMED_IMAGE_NOTE } from '../../src/agent/context.js';
import { toDeskdAction, describeAction } from '../../src/agent/computer.js';
import { isRetryable, retryAfterMs, withRetry, TaskCancelled } from '../../src/agent/retry.js';
import { describeObservation, observationContains } from '../../src/agent/observation.js';
import { parseFunctionCall, chatTools, responsesTools } from '../../src/agent/tools.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { normalizeUsage } from '../../src/agent/session.js';
import { formatStep } from '../../src/agent/runCli.js';
import type { Observation } from '../../src/perception/observer.js';

const apiError = (status: number, headers: Record<string, string> = {}, code?: string) =>
  APIError.generate(status, { error: { message: 'x', type: 't', code: code ?? null } }, undefined, new Headers(headers));

describe('context trimming', () => {
  it('keeps the last N images of a Responses input, replacing older message images with text and older computer outputs with a 1x1 PNG', () => {
    const img = (n: number) => `data:image/png;base64,IMG${n}`;
    const input: unknown[] = [
      { role: 'user', content: [{ type: 'input_text', text: 'goal' }, { type: 'input_image', image_url: img(0), detail: 'auto' }] },
      { type: 'computer_call', call_id: 'a' },
      { type: 'computer_call_output', call_id: 'a', output: { type: 'computer_screenshot', image_url: img(1) } },
      { type: 'computer_call', call_id: 'b' },
      { type: 'computer_call_output', call_id: 'b', output: { type: 'computer_screenshot', image_url: img(2) } },
    ];
    expect(trimImages(input, 2)).toBe(1);
    expect((input[0] as { content: unknown[] }).content[1]).toEqual({ type: 'input_text', text: TRIMMED_IMAGE_NOTE });
    expect(trimImages(input, 1)).toBe(1);
    expect((input[2] as { output: { image_url: string } }).output.image_url).toBe(PLACEHOLDER_PNG_DATA_URL);
    expect((input[4] as { output: { image_url: string } }).output.image_url).toBe(img(2));
    expect(countImages(input)).toBe(1);
    expect(trimImages(input, 1)).toBe(0);
  });

  it('trims Chat Completions image_url parts', () => {
    const msgs: unknown[] = [
      { role: 'system', content: 's' },
      { role: 'user', content: [{ type: 'text', text: 'o1' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,A' } }] },
      { role: 'user', content: [{ type: 'text', text: 'o2' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,B' } }] },
    ];
    expect(trimImages(msgs, 1)).toBe(1);
    expect((msgs[1] as { content: unknown[] }).content[1]).toEqual({ type: 'text', text: TRIMMED_IMAGE_NOTE });
    expect(countImages(msgs)).toBe(1);
  });

  it('the placeholder is a valid 1x1 PNG', async () => {
    const meta = await sharp(Buffer.from(PLACEHOLDER_PNG_DATA_URL.split(',')[1]!, 'base64')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1, 1]);
  });
});

describe('OpenAI computer actions → deskd actions', () => {
  it('offsets points by the display origin, drops null keys and a double_click button, validates', () => {
    expect(toDeskdAction({ type: 'click', button: 'left', x: 10, y: 20, keys: null }, { x: 1280, y: 0 })).toEqual({ type: 'click', button: 'left', x: 1290, y: 20 });
    expect(toDeskdAction({ type: 'double_click', x: 1, y: 2, keys: null, button: 'left' } as never, { x: 0, y: 0 })).toEqual({ type: 'double_click', x: 1, y: 2 });
    expect(toDeskdAction({ type: 'drag', path: [{ x: 0, y: 0 }, { x: 5, y: 5 }] }, { x: 10, y: 10 })).toMatchObject({ path: [{ x: 10, y: 10 }, { x: 15, y: 15 }] });
    expect(toDeskdAction({ type: 'scroll', x: 5, y: 5, scroll_x: 0, scroll_y: 300 }, { x: 0, y: 0 })).toEqual({ type: 'scroll', x: 5, y: 5, scroll_x: 0, scroll_y: 300 });
    expect(toDeskdAction({ type: 'wait' }, { x: 0, y: 0 })).toEqual({ type: 'wait', ms: 1000 });
    expect(toDeskdAction({ type: 'keypress', keys: ['CTRL', 'C'] }, { x: 0, y: 0 })).toEqual({ type: 'keypress', keys: ['CTRL', 'C'] });
    expect(() => toDeskdAction({ type: 'teleport' } as never, { x: 0, y: 0 })).toThrow(/unknown action type/);
    expect(() => toDeskdAction({ type: 'click', button: 'left' } as never, { x: 0, y: 0 }, 3)).toThrow(/actions\[3\]/);
  });
  it('describes actions without their typed text', () => {
    expect(describeAction({ type: 'type', text: 'hunter2' })).toBe('type of 7 characters');
    expect(describeAction({ type: 'click', button: 'left', x: 1, y: 2 })).toBe('click at (1, 2)');
  });
});

describe('retries', () => {
  it('classifies errors like the OpenAI SDK (408/409/429/5xx/connection), not insufficient_quota or aborts', () => {
    expect([408, 409, 429, 500, 503].map((s) => isRetryable(apiError(s)))).toEqual([true, true, true, true, true]);
    expect([400, 401, 403, 404, 422].map((s) => isRetryable(apiError(s)))).toEqual([false, false, false, false, false]);
    expect(isRetryable(apiError(429, {}, 'insufficient_quota'))).toBe(false);
    expect(isRetryable(apiError(400, { 'x-should-retry': 'true' }))).toBe(true);
    expect(isRetryable(new APIConnectionTimeoutError())).toBe(true);
    expect(isRetryable(new APIUserAbortError())).toBe(false);
  });
  it('reads retry-after-ms, retry-after seconds and dates', () => {
    expect(retryAfterMs(apiError(429, { 'retry-after-ms': '250' }))).toBe(250);
    expect(retryAfterMs(apiError(429, { 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(apiError(429, { 'retry-after': new Date(10_000).toUTCString() }), 7_000)).toBe(3000);
    expect(retryAfterMs(apiError(429))).toBeNull();
  });
  it('backs off exponentially (capped), reports each retry, and gives MODEL_ERROR when used up', async () => {
    const delays: number[] = [];
    let calls = 0;
    const p = withRetry(async () => {
      calls++;
      throw apiError(503);
    }, { maxRetries: 4, baseDelayMs: 4, maxDelayMs: 10, signal: new AbortController().signal, onRetry: (r) => delays.push(r.delayMs) });
    await expect(p).rejects.toMatchObject({ code: 'MODEL_ERROR', message: expect.stringMatching(/after 5 attempts: 503/) });
    expect(calls).toBe(5);
    // base·2^n with up to 25 % jitter removed, capped at 10.
    expect(delays[0]).toBeGreaterThanOrEqual(3);
    expect(delays[0]).toBeLessThanOrEqual(4);
    expect(delays[1]).toBeGreaterThanOrEqual(6);
    expect(delays[1]).toBeLessThanOrEqual(8);
    expect(delays.slice(2).every((d) => d >= 7 && d <= 10)).toBe(true);
  });
  it('a cancel during the backoff wait ends at once with TaskCancelled', async () => {
    const ac = new AbortController();
    const p = withRetry(async () => {
      throw apiError(429, { 'retry-after-ms': '60000' });
    }, { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 1, signal: ac.signal, onRetry: () => ac.abort() });
    await expect(p).rejects.toBeInstanceOf(TaskCancelled);
  });
});

const obs: Observation = {
  observationId: 'obs_1',
  takenAt: 0,
  display: { id: 0, x: 0, y: 0, width: 1280, height: 800, scaleFactor: 1, primary: true },
  focused: { app: 'gnome-calculator', pid: 1, window: 'Calculator' },
  elements: [
    { ref: 'e1', role: 'button', name: '7', bounds: { x: 16, y: 289, width: 55, height: 40 }, states: ['enabled'], actions: ['click'], source: 'accessibility' },
    { ref: 'e2', role: 'textbox', name: 'GtkSourceView', value: '42', bounds: { x: 0, y: 167, width: 343, height: 32 }, states: ['focused'], actions: [], source: 'accessibility' },
  ],
  words: [],
  lines: [{ text: 'Result ready', bounds: { x: 0, y: 0, width: 10, height: 10 } }],
  truncated: false,
  warnings: [],
  timings: { captureMs: 0, ocrMs: 0, accessibilityMs: 0, totalMs: 0 },
};

describe('observation text for the model', () => {
  it('lists elements compactly with refs, roles, names, values, points and notable states', () => {
    const t = describeObservation(obs);
    expect(t.split('\n')).toEqual([
      'Observation obs_1: display 0 at 0,0 size 1280x800 points.',
      'Focused: gnome-calculator — "Calculator"',
      'Elements (2; act on them by ref; refs are valid for this observation only):',
      'e1 button "7" @16,289 55x40',
      'e2 textbox "GtkSourceView" value="42" @0,167 343x32 [focused]',
    ]);
    expect(describeObservation(obs, 1)).toContain('Elements (2, first 1 shown;');
  });
  it('finds text in names, values and OCR lines', () => {
    expect(observationContains(obs, '42')).toBe(true);
    expect(observationContains(obs, 'result')).toBe(true);
    expect(observationContains(obs, 'nope')).toBe(false);
  });
});

describe('function tools', () => {
  it('parses and validates calls', () => {
    expect(parseFunctionCall('click_element', '{"ref":"e3"}')).toEqual({ ok: true, name: 'click_element', args: { ref: 'e3' } });
    expect(parseFunctionCall('observe', '')).toEqual({ ok: true, name: 'observe', args: {} });
    expect(parseFunctionCall('click_element', '{"ref":"3"}')).toMatchObject({ ok: false, error: expect.stringMatching(/bad arguments for click_element: ref/) });
    expect(parseFunctionCall('click_element', '{')).toMatchObject({ ok: false, error: expect.stringMatching(/not valid JSON/) });
    expect(parseFunctionCall('rm_rf', '{}')).toMatchObject({ ok: false, error: expect.stringMatching(/unknown tool "rm_rf"/) });
    // Names of Object.prototype are unknown tools too (a TypeError before: the task failed instead of telling the model).
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(parseFunctionCall(name, '{}')).toMatchObject({ ok: false, error: expect.stringContaining(`unknown tool "${name}"`) });
    }
  });
  it('generates JSON Schema tool definitions for both APIs', () => {
    const chat = chatTools();
    expect(chat.map((t) => (t as { function: { name: string } }).function.name)).toEqual(['observe', 'click_element', 'type_text', 'press_keys', 'scroll', 'wait_for', 'done']);
    const click = chat[1] as unknown as { function: { parameters: { type: string; required: string[]; properties: Record<string, unknown> } } };
    expect(click.function.parameters).toMatchObject({ type: 'object', required: ['ref'] });
    expect(responsesTools()[6]).toMatchObject({ type: 'function', name: 'done', strict: false, parameters: { required: ['answer'] } });
  });
});

describe('config and usage', () => {
  it('reads the environment with defaults and rejects bad values', () => {
    const c = loadAgentConfig({ OPENAI_API_KEY: 'k', DESKD_MODEL_MODE: 'functions' });
    expect(c).toMatchObject({ mode: 'functions', api: 'chat', model: 'gpt-4.1', apiKey: 'k', baseURL: null, maxSteps: 30, keepImages: 3 });
    expect(loadAgentConfig({ DESKD_COMPUTER_TOOL: 'computer_use_preview' }).model).toBe('computer-use-preview');
    expect(loadAgentConfig({ DESKD_MODEL: 'm', OPENAI_BASE_URL: 'http://x/v1', DESKD_MODEL_API: 'responses' })).toMatchObject({ model: 'm', baseURL: 'http://x/v1', api: 'responses', apiKey: null });
    expect(() => loadAgentConfig({ DESKD_MODEL_MODE: 'vision' })).toThrow(/DESKD_MODEL_MODE must be one of computer, functions/);
    expect(() => loadAgentConfig({ DESKD_AGENT_MAX_STEPS: '0' })).toThrow(/DESKD_AGENT_MAX_STEPS/);
  });
  it('normalises Responses and Chat usage', () => {
    expect(normalizeUsage({ input_tokens: 10, output_tokens: 2, total_tokens: 12 })).toEqual({ inputTokens: 10, outputTokens: 2, totalTokens: 12 });
    expect(normalizeUsage({ prompt_tokens: 7, completion_tokens: 3 })).toEqual({ inputTokens: 7, outputTokens: 3, totalTokens: 10 });
    expect(normalizeUsage(undefined)).toBeNull();
  });
  it('formats a step for the CLI with denials marked', () => {
    const lines = formatStep({
      index: 2, startedAt: 0, modelMs: 120.4, actMs: 30, durationMs: 150, retries: 1, responseId: 'r', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, text: 'ok',
      operations: [
        { callId: 'c', tool: 'computer', input: { type: 'click', button: 'left', x: 5, y: 6 }, outcome: 'denied', policy: { ruleId: 'deny-x', reason: 'r' }, durationMs: 1 },
        { callId: 'c', tool: 'click_element', input: { ref: 'e1' }, outcome: 'done', durationMs: 1 },
      ],
      safetyChecks: [],
    });
    expect(lines).toEqual(['step 2: click (5, 6) [DENIED by deny-x], click_element({"ref":"e1"})  model 120 ms, act 30 ms, 1 retries, 2 tokens', '  model says: ok']);
  });
});
