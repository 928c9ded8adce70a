import { performance } from 'node:perf_hooks';
import type Anthropic from '@anthropic-ai/sdk';
import type { BetaContentBlock, BetaMessage, BetaMessageParam, BetaToolResultBlockParam } from '@anthropic-ai/sdk/resources/beta/messages/messages';
import { DeskdError, isDeskdError } from '../../errors.js';
import type { Action } from '../../actuation/schema.js';
import type { Driver, StepResult } from '../computer.js';
import { TRIMMED_IMAGE_NOTE } from '../context.js';
import { TaskCancelled } from '../retry.js';
import { FATAL_ACTION_CODES, badModelAnswer, normalizeUsage, recordOperation, type TaskSession } from '../session.js';
import type { TaskStep } from '../types.js';
import { AnthropicComputer, type ActOutcome, type Frame } from './computer.js';
import { asRetryableModelError } from './errors.js';
import { COMPUTER_TOOL_VERSIONS, parseComputerCall, type ComputerToolVersion } from './input.js';

/** System prompt for Claude driving deskd's computer tool. */
export const CLAUDE_COMPUTER_SYSTEM = [
  "You operate a desktop computer through the computer tool to reach the user's goal.",
  'Coordinates are pixels of the latest screenshot.',
  'Every action passes a permission policy; an action can be denied. When a tool result says POLICY_DENIED,',
  'do not retry the same action: find another way or stop and explain.',
  'When the goal is reached, answer with a short final message giving the result (no more tool calls).',
].join(' ');

/** Options of the Claude driver (from the agent configuration). */
export interface ClaudeDriverOptions {
  /** The Anthropic client (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`; SDK retries off). */
  client: Anthropic;
  /** Tool version (default `computer_20251124`, the newest single computer tool in the SDK). */
  toolVersion?: ComputerToolVersion;
  /** `max_tokens` of each request (default 4096). */
  maxTokens?: number;
  /** The pointer's global position (clicks without a coordinate, `cursor_position`); default: the last point deskd acted at. */
  pointer?: () => Promise<{ x: number; y: number }>;
}

type Part = { type: string; [k: string]: unknown };

/**
 * Replace all but the last `keep` screenshots of an Anthropic `messages` list, in place: an image block
 * (in a user message or inside a `tool_result`'s content) becomes the text {@link TRIMMED_IMAGE_NOTE}.
 * @returns how many were replaced.
 */
export function trimClaudeImages(messages: BetaMessageParam[], keep: number): number {
  const slots: (() => void)[] = [];
  const scan = (content: Part[]) => {
    for (let i = 0; i < content.length; i++) {
      const p = content[i]!;
      if (p.type === 'image') slots.push(() => void (content[i] = { type: 'text', text: TRIMMED_IMAGE_NOTE }));
      else if (p.type === 'tool_result' && Array.isArray(p.content)) scan(p.content as Part[]);
    }
  };
  for (const m of messages) if (m.role === 'user' && Array.isArray(m.content)) scan(m.content as unknown as Part[]);
  const drop = Math.max(0, slots.length - Math.max(0, keep));
  slots.slice(0, drop).forEach((f) => f());
  return drop;
}

/** Text of a response's `text` blocks. */
function messageText(content: BetaContentBlock[]): string | null {
  const t = content.filter((b): b is Extract<BetaContentBlock, { type: 'text' }> => b.type === 'text').map((b) => b.text);
  return t.length ? t.join('\n') : null;
}

/**
 * Model-driven tasks with Claude (`DESKD_MODEL_PROVIDER=anthropic`): the Messages API (beta) with the
 * computer tool (`computer_20251124` by default, `display_width_px`/`display_height_px` = deskd's scaled
 * screenshot size), through `@anthropic-ai/sdk`.
 *
 * The first request carries the goal and a screenshot. Each `tool_use` of a response runs as deskd
 * actions (see `AnthropicComputer`) through the task session: the executor's validation and permission
 * policy, the audit log (actor `task:<id>`), and an `ask` waits for the operator (`approval` event; a
 * cancel denies it) — nothing is confirmed for the operator. A denial or failure is answered as a
 * `tool_result` with `is_error: true` (`POLICY_DENIED: …`), and the remaining `tool_use`s of that
 * response are answered as skipped (`is_error`), so Claude sees every refusal. `HALTED`, `SCREEN_LOCKED`
 * and `AUDIT_WRITE_FAILED` end the task. A response without `tool_use` ends the task with its text.
 * Sources: Anthropic docs "Computer use tool", "Tool use" (tool_result blocks, `is_error`);
 * `@anthropic-ai/sdk` beta Messages types.
 */
export class ClaudeDriver implements Driver {
  private readonly messages: BetaMessageParam[] = [];
  private readonly computer: AnthropicComputer;
  private readonly version: ComputerToolVersion;
  private current: TaskStep | null = null;
  private lastPoint: { x: number; y: number } | null = null;
  private ops: { action: Action; outcome: ActOutcome }[] = [];

  constructor(
    private readonly s: TaskSession,
    private readonly opts: ClaudeDriverOptions,
  ) {
    this.version = opts.toolVersion ?? 'computer_20251124';
    this.computer = new AnthropicComputer(
      { act: (actions) => this.act(actions), capture: () => this.capture(), pointer: () => this.pointer() },
      {
        rethrow: (e) => e instanceof TaskCancelled || (isDeskdError(e) && FATAL_ACTION_CODES.has(e.code)),
        settleMs: 300,
      },
    );
  }

  /** A masked screenshot of the primary display, through the observer (as the OpenAI computer mode). */
  private async capture(): Promise<Frame> {
    const o = await this.s.observe({ ocr: false, accessibility: false, screenshot: 'png' });
    const img = o.screenshot;
    if (!img) throw new DeskdError('CAPTURE_FAILED', 'The observation carried no screenshot');
    return { png: img.data, width: img.width, height: img.height, origin: img.origin, scale: img.scale };
  }

  private async pointer(): Promise<{ x: number; y: number }> {
    if (this.opts.pointer) return this.opts.pointer();
    if (!this.lastPoint) throw new DeskdError('VALIDATION_FAILED', 'The pointer position is not known yet: give a coordinate');
    return this.lastPoint;
  }

  /** Run a translated batch one action at a time through the session (policy, approvals, audit); stop at the first refusal. */
  private async act(actions: Action[]): Promise<ActOutcome> {
    const step = this.current!;
    for (const a of actions) {
      const r = await this.s.act(step, a);
      this.ops.push({ action: a, outcome: r });
      if (r.outcome !== 'done') return r;
      const p = a.type === 'drag' ? a.path[a.path.length - 1] : 'x' in a && typeof a.x === 'number' && typeof a.y === 'number' ? { x: a.x, y: a.y } : undefined;
      if (p) this.lastPoint = { x: p.x, y: p.y };
    }
    return { outcome: 'done' };
  }

  private tool() {
    return {
      type: this.version,
      name: 'computer' as const,
      display_width_px: this.space.width,
      display_height_px: this.space.height,
      ...(this.version === 'computer_20251124' ? { enable_zoom: true } : {}),
    };
  }

  private space = { width: 0, height: 0 };

  async init(): Promise<void> {
    const shot = await this.computer.screenshot();
    const sp = this.computer.currentSpace!;
    this.space = { width: sp.width, height: sp.height };
    this.messages.push({ role: 'user', content: [{ type: 'text', text: this.s.task.goal }, shot] });
  }

  async step(step: TaskStep): Promise<StepResult> {
    this.current = step;
    trimClaudeImages(this.messages, this.s.config.keepImages);
    const resp: BetaMessage = await this.s.callModel(step, async (signal) => {
      try {
        return await this.opts.client.beta.messages.create(
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          { model: this.s.task.model, max_tokens: this.opts.maxTokens ?? 4096, system: CLAUDE_COMPUTER_SYSTEM, tools: [this.tool() as any], messages: this.messages, betas: [COMPUTER_TOOL_VERSIONS[this.version]] },
          { signal },
        );
      } catch (e) {
        throw asRetryableModelError(e);
      }
    });
    const t0 = performance.now();
    try {
      step.responseId = resp.id ?? null;
      this.s.addUsage(step, normalizeUsage(resp.usage));
      if (!Array.isArray(resp.content)) throw badModelAnswer('The model answer has no content list');
      step.text = messageText(resp.content);
      this.messages.push({ role: 'assistant', content: resp.content as unknown as Extract<BetaMessageParam['content'], unknown[]> });
      const uses = resp.content.filter((b): b is Extract<BetaContentBlock, { type: 'tool_use' }> => b.type === 'tool_use');
      if (uses.length === 0) {
        if (resp.stop_reason === 'max_tokens') throw badModelAnswer('The model ran out of output tokens before finishing (stop_reason max_tokens)');
        return { finished: { answer: step.text } };
      }
      const results: BetaToolResultBlockParam[] = [];
      let stopped = false;
      for (const [i, use] of uses.entries()) {
        const startedAt = performance.now();
        if (stopped) {
          recordOperation(step, { callId: use.id, tool: 'computer', input: use.input, outcome: 'skipped', startedAt });
          results.push({ type: 'tool_result', tool_use_id: use.id, is_error: true, content: [{ type: 'text', text: `SKIPPED: not run: tool call ${i} of this turn was refused or failed (see its result).` }] });
          continue;
        }
        let input;
        try {
          input = parseComputerCall({ type: 'tool_use', id: use.id, name: use.name, input: use.input }).input;
        } catch (e) {
          const err = isDeskdError(e) ? { code: e.code, message: e.message } : { code: 'VALIDATION_FAILED', message: (e as Error).message };
          recordOperation(step, { callId: use.id, tool: use.name, input: use.input, outcome: 'failed', error: err, startedAt });
          results.push({ type: 'tool_result', tool_use_id: use.id, is_error: true, content: [{ type: 'text', text: `${err.code}: ${err.message}` }] });
          stopped = true;
          continue;
        }
        this.ops = [];
        const run = await this.computer.run(input);
        const refused = this.ops.find((o) => o.outcome.outcome !== 'done')?.outcome;
        const outcome = !run.isError ? 'done' : run.outcome.outcome === 'denied' ? 'denied' : 'failed';
        const text = run.content.find((c) => c.type === 'text');
        recordOperation(step, {
          callId: use.id,
          tool: 'computer',
          input: { ...input, actions: run.actions },
          outcome,
          ...(text ? { result: text.text.slice(0, 500) } : {}),
          ...(run.isError && run.outcome.outcome !== 'done' ? { error: { code: run.outcome.code, message: run.outcome.message } } : {}),
          ...(refused?.outcome === 'denied' ? { policy: { ruleId: refused.ruleId, reason: refused.reason } } : {}),
          startedAt,
        });
        const content = run.isError && run.outcome.outcome === 'denied' ? [{ type: 'text' as const, text: `${run.outcome.code}: ${run.outcome.message}. Do not retry it; find another way or stop.` }] : run.content;
        results.push({ type: 'tool_result', tool_use_id: use.id, content, ...(run.isError ? { is_error: true } : {}) });
        if (run.isError) stopped = true;
      }
      this.messages.push({ role: 'user', content: results });
      return {};
    } finally {
      step.actMs += performance.now() - t0;
    }
  }
}
