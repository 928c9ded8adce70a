import { performance } from 'node:perf_hooks';
import type { ChatCompletionMessageParam, ChatCompletionMessageToolCall } from 'openai/resources/chat/completions';
import type { ResponseFunctionToolCall, ResponseInputItem } from 'openai/resources/responses/responses';
import { DeskdError, isDeskdError } from '../errors.js';
import type { Action } from '../actuation/schema.js';
import type { Observation } from '../perception/observer.js';
import { describeObservation, observationContains, screenshotDataUrl } from './observation.js';
import { FUNCTIONS_INSTRUCTIONS } from './prompts.js';
import { chatTools, parseFunctionCall, responsesTools, type FunctionToolArgs } from './tools.js';
import { trimImages } from './context.js';
import { abortableSleep } from './retry.js';
import { responseText, type Driver, type StepResult } from './computer.js';
import { badModelAnswer, normalizeUsage, outcomeFields, recordOperation, type TaskSession } from './session.js';
import type { StepOperation, TaskStep } from './types.js';

/** A function call, API-independent. */
interface Call {
  id: string;
  name: string;
  arguments: string;
}

/** What running one tool gave. */
interface ToolRun {
  text: string;
  /** A fresh observation should follow (the screen may have changed, or the model asked). */
  observe: boolean;
  finished?: { answer: string };
}

/**
 * Functions mode: function calling on any OpenAI-compatible model, through Chat Completions
 * (`DESKD_MODEL_API=chat`, the default) or the Responses API (`responses`). Tools: `observe`,
 * `click_element(ref)`, `type_text`, `press_keys`, `scroll`, `wait_for`, `done(answer)`
 * (`src/agent/tools.ts`).
 *
 * The model is given the fused element list as compact text (`describeObservation`) and a plain
 * screenshot of the display (no Set-of-Marks overlay yet: that is another issue). Every action runs
 * through the executor (policy-gated); a denial comes back as the tool result "denied by policy …".
 * After a turn with actions (or `observe`), a fresh observation is appended as a user message, so refs
 * always come from the latest observation. A turn without tool calls ends the task with its text.
 * Sources: OpenAI API reference (Chat Completions `tools`/`tool_calls`, `role: tool` messages;
 * Responses `function_call` / `function_call_output` items).
 */
export class FunctionsDriver implements Driver {
  private readonly messages: ChatCompletionMessageParam[] = [];
  private readonly input: ResponseInputItem[] = [];
  private last: Observation | null = null;
  private ocr: boolean;

  constructor(private readonly s: TaskSession) {
    this.ocr = s.config.ocr;
  }

  private get chat(): boolean {
    return this.s.config.api === 'chat';
  }

  /** Observe for the model (OCR falls back to accessibility only when unavailable). */
  private async observe(): Promise<Observation> {
    try {
      this.last = await this.s.observe({ ocr: this.ocr, accessibility: true, screenshot: 'png' });
    } catch (e) {
      if (!(isDeskdError(e) && e.code === 'OCR_FAILED' && this.ocr)) throw e;
      this.ocr = false;
      this.last = await this.s.observe({ ocr: false, accessibility: true, screenshot: 'png' });
    }
    return this.last;
  }

  /** Add an observation (text + screenshot) as a user message. */
  private pushObservation(o: Observation, lead: string): void {
    const text = `${lead}\n${describeObservation(o, this.s.config.maxElements)}`;
    const url = screenshotDataUrl(o);
    if (this.chat) {
      this.messages.push({ role: 'user', content: [{ type: 'text', text }, ...(url ? [{ type: 'image_url' as const, image_url: { url } }] : [])] });
    } else {
      this.input.push({ role: 'user', content: [{ type: 'input_text', text }, ...(url ? [{ type: 'input_image' as const, image_url: url, detail: 'auto' as const }] : [])] });
    }
  }

  async init(): Promise<void> {
    if (this.chat) this.messages.push({ role: 'system', content: FUNCTIONS_INSTRUCTIONS });
    this.pushObservation(await this.observe(), `Goal: ${this.s.task.goal}\n\nThe screen now (screenshot attached, 1 image pixel = 1 point from the display's top-left):`);
  }

  /** One model request; returns its calls and text. */
  private async request(step: TaskStep): Promise<{ calls: Call[]; text: string | null }> {
    const model = this.s.task.model;
    if (this.chat) {
      trimImages(this.messages, this.s.config.keepImages);
      const resp = await this.s.callModel(step, (signal) =>
        this.s.deps.client.chat.completions.create({ model, messages: this.messages, tools: chatTools(), tool_choice: 'auto' }, { signal }),
      );
      step.responseId = resp.id ?? null;
      this.s.addUsage(step, normalizeUsage(resp.usage));
      const msg = resp.choices?.[0]?.message;
      if (!msg) throw badModelAnswer('The model answer has no choices[0].message');
      const toolCalls = (msg.tool_calls ?? []).filter((c): c is Extract<ChatCompletionMessageToolCall, { type: 'function' }> => c.type === 'function');
      this.messages.push({ role: 'assistant', content: msg.content ?? null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) });
      return { calls: toolCalls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })), text: msg.content ?? null };
    }
    trimImages(this.input, this.s.config.keepImages);
    const resp = await this.s.callModel(step, (signal) =>
      this.s.deps.client.responses.create({ model, instructions: FUNCTIONS_INSTRUCTIONS, input: this.input, tools: responsesTools() }, { signal }),
    );
    step.responseId = resp.id ?? null;
    this.s.addUsage(step, normalizeUsage(resp.usage));
    if (resp.error) throw badModelAnswer(`The model answered an error: ${resp.error.code}: ${resp.error.message}`);
    if (!Array.isArray(resp.output)) throw badModelAnswer('The model answer has no output list');
    this.input.push(...(resp.output as unknown as ResponseInputItem[]));
    const calls = resp.output.filter((i): i is ResponseFunctionToolCall => i.type === 'function_call');
    return { calls: calls.map((c) => ({ id: c.call_id, name: c.name, arguments: c.arguments })), text: responseText(resp) };
  }

  private answer(call: Call, text: string): void {
    if (this.chat) this.messages.push({ role: 'tool', tool_call_id: call.id, content: text });
    else this.input.push({ type: 'function_call_output', call_id: call.id, output: text });
  }

  async step(step: TaskStep): Promise<StepResult> {
    const { calls, text } = await this.request(step);
    step.text = text;
    const t0 = performance.now();
    try {
      if (calls.length === 0) return { finished: { answer: text } };
      let observe = false;
      let finished: { answer: string } | undefined;
      for (const call of calls) {
        const startedAt = performance.now();
        if (finished) {
          this.answer(call, 'not run: done was already called');
          recordOperation(step, { callId: call.id, tool: call.name, input: call.arguments, outcome: 'skipped', startedAt });
          continue;
        }
        const parsed = parseFunctionCall(call.name, call.arguments);
        if (!parsed.ok) {
          this.answer(call, `error: ${parsed.error}`);
          recordOperation(step, { callId: call.id, tool: call.name, input: call.arguments, outcome: 'failed', error: { code: 'VALIDATION_FAILED', message: parsed.error }, startedAt });
          continue;
        }
        const run = await this.runTool(step, call, parsed.name, parsed.args, startedAt);
        this.answer(call, run.text);
        observe ||= run.observe;
        if (run.finished) finished = run.finished;
      }
      if (finished) return { finished };
      if (observe) this.pushObservation(await this.observe(), 'The screen after your actions (screenshot attached):');
      return {};
    } finally {
      step.actMs += performance.now() - t0;
    }
  }

  /** Run one tool; records the operation. */
  private async runTool(step: TaskStep, call: Call, name: keyof FunctionToolArgs, args: unknown, startedAt: number): Promise<ToolRun> {
    const record = (input: unknown, r: ToolRun, extra: Partial<Omit<StepOperation, 'durationMs'>> = {}) => {
      recordOperation(step, { callId: call.id, tool: name, input, outcome: 'done', result: r.text, startedAt, ...extra });
      return r;
    };
    const obsId = this.last?.observationId;
    const act = async (action: Action, okText: string): Promise<ToolRun> => {
      const r = await this.s.act(step, action);
      const f = outcomeFields(r);
      const text =
        r.outcome === 'done'
          ? okText
          : r.outcome === 'denied'
            ? `not done: denied by policy: rule "${r.ruleId}": ${r.reason}`
            : `not done: ${r.code}: ${r.message}`;
      return record(action, { text, observe: true }, f);
    };
    switch (name) {
      case 'observe':
        return record(args, { text: 'A fresh observation follows in the next message.', observe: true });
      case 'click_element': {
        const a = args as FunctionToolArgs['click_element'];
        if (!obsId) return record(args, { text: 'error: no observation yet; call observe', observe: true }, { outcome: 'failed' });
        const el = this.last!.elements.find((e) => e.ref === a.ref);
        return act({ type: 'click', button: 'left', target: { ref: a.ref, observationId: obsId } }, `clicked ${a.ref}${el ? ` (${el.role} ${JSON.stringify(el.name)})` : ''}`);
      }
      case 'type_text': {
        const a = args as FunctionToolArgs['type_text'];
        return act({ type: 'type', text: a.text }, `typed ${[...a.text].length} characters`);
      }
      case 'press_keys': {
        const a = args as FunctionToolArgs['press_keys'];
        return act({ type: 'keypress', keys: a.keys }, `pressed ${a.keys.join('+')}`);
      }
      case 'scroll': {
        const a = args as FunctionToolArgs['scroll'];
        if (a.ref !== undefined) {
          if (!obsId) return record(args, { text: 'error: no observation yet; call observe', observe: true }, { outcome: 'failed' });
          return act({ type: 'scroll', target: { ref: a.ref, observationId: obsId }, scroll_x: 0, scroll_y: a.dy }, `scrolled ${a.dy} points over ${a.ref}`);
        }
        if (a.x === undefined || a.y === undefined) {
          return record(args, { text: 'error: scroll needs ref, or x and y', observe: false }, { outcome: 'failed', error: { code: 'VALIDATION_FAILED', message: 'scroll needs ref, or x and y' } });
        }
        return act({ type: 'scroll', x: a.x, y: a.y, scroll_x: 0, scroll_y: a.dy }, `scrolled ${a.dy} points at (${a.x}, ${a.y})`);
      }
      case 'wait_for': {
        const a = args as FunctionToolArgs['wait_for'];
        const deadline = performance.now() + (a.timeoutMs ?? 5000);
        for (;;) {
          const o = await this.observe();
          if (observationContains(o, a.text)) return record(args, { text: `found ${JSON.stringify(a.text)}`, observe: true });
          if (performance.now() >= deadline) return record(args, { text: `not found within ${a.timeoutMs ?? 5000} ms: ${JSON.stringify(a.text)}`, observe: true }, { outcome: 'failed', error: { code: 'TIMEOUT', message: `"${a.text}" did not appear` } });
          await abortableSleep(300, this.s.signal);
        }
      }
      case 'done': {
        const a = args as FunctionToolArgs['done'];
        return record(args, { text: 'ok', observe: false, finished: { answer: a.answer } });
      }
      default:
        throw new DeskdError('INTERNAL', `unhandled tool ${String(name)}`);
    }
  }
}
