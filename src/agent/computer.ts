import { performance } from 'node:perf_hooks';
import type {
  ComputerAction,
  Response,
  ResponseComputerToolCall,
  ResponseInputItem,
  Tool,
} from 'openai/resources/responses/responses';
import { DeskdError, isDeskdError } from '../errors.js';
import { parseAction } from '../actuation/parse.js';
import type { Action } from '../actuation/schema.js';
import type { DisplayInfo } from '../platform/types.js';
import { screenshotDataUrl } from './observation.js';
import { COMPUTER_INSTRUCTIONS } from './prompts.js';
import { trimImages } from './context.js';
import { abortableSleep } from './retry.js';
import { badModelAnswer, normalizeUsage, outcomeFields, recordOperation, type TaskSession } from './session.js';
import type { TaskStep } from './types.js';
import { reasoningSummary, stepReasoning } from '../governance/reason.js';

/** What a driver's step returns: `finished` ends the task successfully with the answer. */
export interface StepResult {
  finished?: { answer: string | null };
}

/** A mode driver: builds the first context, then runs one step (one model request and its operations) at a time. */
export interface Driver {
  init(): Promise<void>;
  step(step: TaskStep): Promise<StepResult>;
}

/** A model action (OpenAI computer-use shape) as loose JSON. */
type ModelAction = ComputerAction | NonNullable<ResponseComputerToolCall['action']>;

/**
 * Convert an OpenAI computer action to a deskd action. Screenshot pixel (x, y) is global point
 * `origin + (x, y)` (screenshots are sent in logical points, so no scaling). `keys: null` is dropped.
 * @throws DeskdError `UNKNOWN_ACTION`, `VALIDATION_FAILED` (via `parseAction`).
 */
export function toDeskdAction(a: ModelAction, origin: { x: number; y: number }, index = 0): Action {
  const raw: Record<string, unknown> = { ...(a as unknown as Record<string, unknown>) };
  for (const k of Object.keys(raw)) if (raw[k] === null) delete raw[k];
  if (typeof raw.x === 'number') raw.x = raw.x + origin.x;
  if (typeof raw.y === 'number') raw.y = raw.y + origin.y;
  if (Array.isArray(raw.path)) raw.path = (raw.path as { x: number; y: number }[]).map((p) => ({ x: p.x + origin.x, y: p.y + origin.y }));
  if (raw.type === 'double_click') delete raw.button;
  if (raw.type === 'wait') for (const k of Object.keys(raw)) if (k !== 'type') delete raw[k];
  return parseAction(raw, index);
}

/** One-line description of an action for notes to the model. */
export function describeAction(a: Action): string {
  switch (a.type) {
    case 'click':
    case 'double_click':
    case 'move':
    case 'scroll':
      return a.target ? `${a.type} on ${'ref' in a.target ? a.target.ref : JSON.stringify(a.target)}` : `${a.type} at (${a.x}, ${a.y})`;
    case 'type':
      return `type of ${[...a.text].length} characters`;
    case 'keypress':
      return `keypress ${a.keys.join('+')}`;
    case 'drag':
      return `drag through ${a.path.length} points`;
    default:
      return a.type;
  }
}

/** Text of the `message` items of a response. */
export function responseText(r: Response): string | null {
  const parts: string[] = [];
  for (const item of r.output ?? []) {
    if (item.type !== 'message') continue;
    for (const c of item.content ?? []) {
      if (c.type === 'output_text') parts.push(c.text);
      else if (c.type === 'refusal') parts.push(c.refusal);
    }
  }
  return parts.length ? parts.join('\n') : null;
}

/**
 * Computer mode: the Responses API `computer` tool (batched `actions` per `computer_call`) or the older
 * `computer_use_preview` tool (one `action`, with `display_width`/`display_height`/`environment`).
 *
 * Each `computer_call`: its `pending_safety_checks` go to the operator first (acknowledged only when
 * approved; a refusal fails the task with `POLICY_DENIED`); then its actions run one by one through the
 * executor (policy-gated); a denied or failed action stops the call, and the model gets the
 * `computer_call_output` (a fresh screenshot in the display's logical points) followed by a user
 * message saying what was not done and why ("denied by policy rule …"). A response without a
 * `computer_call` ends the task with its text as the answer.
 * Source: OpenAI API reference (Responses, computer tool), OpenAI computer-use guide.
 */
export class ComputerDriver implements Driver {
  private readonly input: ResponseInputItem[] = [];
  private display: DisplayInfo | null = null;

  constructor(private readonly s: TaskSession) {}

  /** Screenshot of the primary display (masked by the perception policy), as a data URL. */
  private async screenshot(): Promise<string> {
    const o = await this.s.observe({ ocr: false, accessibility: false, screenshot: 'png', ...(this.display ? { display: this.display.id } : {}) });
    this.display ??= o.display;
    const url = screenshotDataUrl(o);
    if (!url) throw new DeskdError('CAPTURE_FAILED', 'The observation carried no screenshot');
    return url;
  }

  private tool(): Tool {
    if (this.s.config.computerTool === 'computer_use_preview') {
      const d = this.display!;
      return { type: 'computer_use_preview', display_width: d.width, display_height: d.height, environment: this.s.config.environment };
    }
    return { type: 'computer' };
  }

  async init(): Promise<void> {
    const url = await this.screenshot();
    this.input.push({
      role: 'user',
      content: [
        { type: 'input_text', text: this.s.task.goal },
        { type: 'input_image', image_url: url, detail: 'auto' },
      ],
    });
  }

  async step(step: TaskStep): Promise<StepResult> {
    trimImages(this.input, this.s.config.keepImages);
    const resp = await this.s.callModel(step, (signal) =>
      this.s.deps.client.responses.create(
        { model: this.s.task.model, instructions: COMPUTER_INSTRUCTIONS, input: this.input, tools: [this.tool()], truncation: 'auto' },
        { signal },
      ),
    );
    const t0 = performance.now();
    step.responseId = resp.id ?? null;
    this.s.addUsage(step, normalizeUsage(resp.usage));
    if (resp.error) throw badModelAnswer(`The model answered an error: ${resp.error.code}: ${resp.error.message}`);
    if (!Array.isArray(resp.output)) throw badModelAnswer('The model answer has no output list');
    step.text = responseText(resp);
    const summary = reasoningSummary((resp as { output?: unknown }).output);
    if (summary) stepReasoning.set(step, summary);
    // The whole output goes back into the context (reasoning items, messages, calls), as the API expects.
    this.input.push(...(resp.output as unknown as ResponseInputItem[]));
    const calls = resp.output.filter((i): i is ResponseComputerToolCall => i.type === 'computer_call');
    try {
      if (calls.length === 0) return { finished: { answer: step.text } };
      for (const call of calls) await this.runCall(step, call);
      return {};
    } finally {
      step.actMs += performance.now() - t0;
    }
  }

  private async runCall(step: TaskStep, call: ResponseComputerToolCall): Promise<void> {
    const origin = { x: this.display?.x ?? 0, y: this.display?.y ?? 0 };
    const modelActions: ModelAction[] = call.actions ?? (call.action ? [call.action] : []);
    const converted: (Action | DeskdError)[] = modelActions.map((a, i) => {
      try {
        return toDeskdAction(a, origin, i);
      } catch (e) {
        return isDeskdError(e) ? e : new DeskdError('VALIDATION_FAILED', (e as Error).message);
      }
    });

    const acknowledged: { id: string; code?: string | null; message?: string | null }[] = [];
    for (const check of call.pending_safety_checks ?? []) {
      const t = performance.now();
      const ok = await this.s.approveSafetyCheck({
        taskId: this.s.task.taskId,
        step: step.index,
        callId: call.call_id,
        check: { id: check.id, code: check.code ?? null, message: check.message ?? null },
        actions: converted.filter((a): a is Action => !(a instanceof DeskdError)),
      });
      step.safetyChecks.push({ id: check.id, code: check.code ?? null, message: check.message ?? null, approved: ok, waitedMs: Math.round(performance.now() - t) });
      if (!ok) {
        throw new DeskdError('POLICY_DENIED', `Safety check ${check.code ?? check.id} was not approved by the operator: ${check.message ?? ''}`.trim(), {
          ruleId: 'openai:safety_check',
          checkId: check.id,
        });
      }
      acknowledged.push({ id: check.id, code: check.code ?? null, message: check.message ?? null });
    }

    const notes: string[] = [];
    let stopped = false;
    for (const [i, a] of converted.entries()) {
      const startedAt = performance.now();
      const input = a instanceof DeskdError ? modelActions[i] : a;
      if (stopped) {
        recordOperation(step, { callId: call.call_id, tool: 'computer', input, outcome: 'skipped', startedAt });
        continue;
      }
      if (a instanceof DeskdError) {
        recordOperation(step, { callId: call.call_id, tool: 'computer', input, outcome: 'failed', error: { code: a.code, message: a.message }, startedAt });
        notes.push(`[deskd] Action ${i + 1} of ${converted.length} was not performed: invalid action (${a.code}): ${a.message}.`);
        stopped = true;
        continue;
      }
      if (a.type === 'wait') {
        await abortableSleep(this.s.config.waitMs, this.s.signal);
        recordOperation(step, { callId: call.call_id, tool: 'computer', input: a, outcome: 'done', startedAt });
        continue;
      }
      if (a.type === 'screenshot') {
        // The computer_call_output below carries a fresh screenshot anyway.
        recordOperation(step, { callId: call.call_id, tool: 'computer', input: a, outcome: 'done', startedAt });
        continue;
      }
      const r = await this.s.act(step, a);
      recordOperation(step, { callId: call.call_id, tool: 'computer', input: a, ...outcomeFields(r), startedAt });
      if (r.outcome === 'done') continue;
      stopped = true;
      const what = `Action ${i + 1} of ${converted.length} (${describeAction(a)})`;
      const rest = converted.length - i - 1;
      const skipped = rest > 0 ? ` The ${rest} remaining action${rest > 1 ? 's' : ''} of this call ${rest > 1 ? 'were' : 'was'} skipped.` : '';
      notes.push(
        r.outcome === 'denied'
          ? `[deskd] ${what} was not performed: action denied by policy: rule "${r.ruleId}": ${r.reason}.${skipped} Do not retry it; find another way or stop.`
          : `[deskd] ${what} failed (${r.code}): ${r.message}.${skipped}`,
      );
    }

    const url = await this.screenshot();
    this.input.push({
      type: 'computer_call_output',
      call_id: call.call_id,
      output: { type: 'computer_screenshot', image_url: url },
      ...(acknowledged.length ? { acknowledged_safety_checks: acknowledged } : {}),
    });
    if (notes.length) this.input.push({ role: 'user', content: [{ type: 'input_text', text: notes.join('\n') }] });
  }
}
