import { performance } from 'node:perf_hooks';
import type OpenAI from 'openai';
import type { Logger } from 'pino';
import { DeskdError, isDeskdError } from '../errors.js';
import type { Action } from '../actuation/schema.js';
import type { Observation, ObserveOptions } from '../perception/observer.js';
import type { AgentConfig } from './config.js';
import { abortableSleep, TaskCancelled, withRetry } from './retry.js';
import { taskReason } from '../governance/reason.js';
import type {
  ActionPort,
  ObserverPort,
  OperationOutcome,
  SafetyApprover,
  StepOperation,
  TaskEventInput,
  TaskStep,
  TaskView,
  TokenUsage,
} from './types.js';

/** Codes that end a task at once: nobody should keep acting (kill switch, locked screen, audit broken). */
export const FATAL_ACTION_CODES: ReadonlySet<string> = new Set(['HALTED', 'SCREEN_LOCKED', 'AUDIT_WRITE_FAILED']);

/** What one action through the executor came to (fatal errors are thrown instead). */
export type ActOutcome =
  | { outcome: 'done' }
  | { outcome: 'denied'; code: string; message: string; ruleId: string; reason: string }
  | { outcome: 'failed'; code: string; message: string };

/** Everything a mode driver needs from the running task. */
export interface SessionDeps {
  client: OpenAI;
  observer: ObserverPort;
  actions: ActionPort;
  approve: SafetyApprover;
  /** Deny an operator approval the task was waiting on (used when the task is cancelled). */
  denyApproval?: (approvalId: string) => void;
  config: AgentConfig;
  logger?: Logger;
}

/**
 * One running task's services for the mode drivers: model calls with retries and accounting, actions
 * through the policy-gated executor, observations, approvals, events. Not exported over HTTP.
 */
export class TaskSession {
  constructor(
    readonly task: TaskView,
    readonly deps: SessionDeps,
    readonly signal: AbortSignal,
    private readonly emitEvent: (e: TaskEventInput) => void,
  ) {}

  get config(): AgentConfig {
    return this.deps.config;
  }

  /** The actor recorded in the audit log for this task's actions. */
  get actor(): string {
    return `task:${this.task.taskId}`;
  }

  /** @throws {@link TaskCancelled} when the task was cancelled. */
  checkCancelled(): void {
    if (this.signal.aborted) throw new TaskCancelled();
  }

  emit(e: TaskEventInput): void {
    this.emitEvent(e);
  }

  /**
   * Call the model with retries (see `withRetry`); adds the latency to `step.modelMs` and the retries to
   * `step.retries`, emitting a `retry` event before each backoff.
   * @throws DeskdError `MODEL_ERROR`; {@link TaskCancelled}.
   */
  async callModel<T>(step: TaskStep, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const { value, retries } = await withRetry(fn, {
        maxRetries: this.config.maxRetries,
        baseDelayMs: this.config.retryBaseDelayMs,
        maxDelayMs: this.config.maxRetryDelayMs,
        signal: this.signal,
        onRetry: (r) => {
          step.retries++;
          this.deps.logger?.warn({ taskId: this.task.taskId, step: step.index, ...r }, 'model request failed; retrying');
          this.emit({ type: 'retry', step: step.index, attempt: r.attempt, delayMs: r.delayMs, reason: r.reason });
        },
      });
      return value;
    } finally {
      step.modelMs += performance.now() - t0;
    }
  }

  /** Add a response's usage to the step and the task. */
  addUsage(step: TaskStep, u: TokenUsage | null): void {
    if (!u) return;
    step.usage = step.usage ? sumUsage(step.usage, u) : { ...u };
    this.task.usage = sumUsage(this.task.usage, u);
  }

  /**
   * Observe the screen for the model.
   * @throws DeskdError from the observer; {@link TaskCancelled}.
   */
  async observe(opts: ObserveOptions): Promise<Observation> {
    this.checkCancelled();
    const o = await this.deps.observer.observe(opts);
    this.checkCancelled();
    return o;
  }

  /**
   * Run one action through the executor (validation, ref resolution, permission policy, dispatch) as
   * this task's actor. A policy `ask` waits for the operator (an `approval` event is emitted); cancelling
   * the task denies that approval. `RATE_LIMITED` is waited out (up to 3 times, `details.retryAfterMs`).
   * @returns `denied` for `POLICY_DENIED` (with the rule), `failed` for other refusals (the model is told).
   * @throws DeskdError `HALTED`, `SCREEN_LOCKED`, `AUDIT_WRITE_FAILED` (the task must stop); {@link TaskCancelled}.
   */
  async act(step: TaskStep, action: Action): Promise<ActOutcome> {
    for (let attempt = 0; ; attempt++) {
      this.checkCancelled();
      try {
        const s = await this.deps.actions.submit([action], this.actor, { reason: taskReason(step, this.task.goal) });
        if (s.status === 'pending_approval') {
          this.emit({ type: 'approval', step: step.index, kind: 'policy', detail: s.approvals.map((a) => `${a.id} (${a.ruleId}: ${a.reason})`).join('; ') });
          await this.raceCancel(s.outcome, () => s.approvals.forEach((a) => this.deps.denyApproval?.(a.id)));
        }
        return { outcome: 'done' };
      } catch (e) {
        if (e instanceof TaskCancelled) throw e;
        if (!isDeskdError(e)) return { outcome: 'failed', code: 'ACTION_FAILED', message: (e as Error).message };
        if (FATAL_ACTION_CODES.has(e.code)) throw e;
        if (e.code === 'RATE_LIMITED' && attempt < 3) {
          const d = (e.details as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 500;
          await abortableSleep(Math.min(Math.max(d, 50), 5000), this.signal);
          continue;
        }
        if (e.code === 'POLICY_DENIED') {
          const det = (e.details ?? {}) as { ruleId?: string; reason?: string };
          const ruleId = det.ruleId ?? /Denied by (\S+?):/.exec(e.message)?.[1] ?? 'unknown';
          const denial = { outcome: 'denied' as const, code: e.code, message: e.message, ruleId, reason: det.reason ?? e.message };
          this.task.denials.push({ step: step.index, ruleId, reason: denial.reason, code: e.code, input: action });
          return denial;
        }
        return { outcome: 'failed', code: e.code, message: e.message };
      }
    }
  }

  /**
   * Ask the operator about an OpenAI safety check (the injected approver), cancellable.
   * @throws {@link TaskCancelled}.
   */
  async approveSafetyCheck(req: Parameters<SafetyApprover>[0]): Promise<boolean> {
    this.emit({ type: 'approval', step: req.step, kind: 'safety_check', detail: `${req.check.code ?? 'safety_check'}: ${req.check.message ?? ''}`.trim() });
    const ok = await this.raceCancel(this.deps.approve(req, this.signal), () => undefined);
    this.checkCancelled();
    return ok === true;
  }

  /** Wait for `p`, or throw {@link TaskCancelled} (after `onCancel`) when the task is cancelled first. */
  private raceCancel<T>(p: Promise<T>, onCancel: () => void): Promise<T> {
    if (this.signal.aborted) {
      onCancel();
      p.catch(() => undefined);
      return Promise.reject(new TaskCancelled());
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        onCancel();
        p.catch(() => undefined);
        reject(new TaskCancelled());
      };
      this.signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          this.signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e) => {
          this.signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }
}

/** Sum two usages. */
export function sumUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return { inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens, totalTokens: a.totalTokens + b.totalTokens };
}

/** Normalise a Responses (`input_tokens`/`output_tokens`) or Chat (`prompt_tokens`/`completion_tokens`) usage object. */
export function normalizeUsage(u: unknown): TokenUsage | null {
  if (typeof u !== 'object' || u === null) return null;
  const o = u as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const input = num(o.input_tokens ?? o.prompt_tokens);
  const output = num(o.output_tokens ?? o.completion_tokens);
  return { inputTokens: input, outputTokens: output, totalTokens: num(o.total_tokens) || input + output };
}

/** Record an operation on a step. */
export function recordOperation(step: TaskStep, op: Omit<StepOperation, 'durationMs'> & { startedAt: number }): StepOperation {
  const { startedAt, ...rest } = op;
  const rec: StepOperation = { ...rest, durationMs: Math.round((performance.now() - startedAt) * 10) / 10 };
  step.operations.push(rec);
  return rec;
}

/** The outcome of an {@link ActOutcome} as a step operation's fields. */
export function outcomeFields(r: ActOutcome): { outcome: OperationOutcome; error?: { code: string; message: string }; policy?: { ruleId: string; reason: string } } {
  if (r.outcome === 'done') return { outcome: 'done' };
  if (r.outcome === 'denied') return { outcome: 'denied', error: { code: r.code, message: r.message }, policy: { ruleId: r.ruleId, reason: r.reason } };
  return { outcome: 'failed', error: { code: r.code, message: r.message } };
}

/** A DeskdError for a model answer deskd cannot use. */
export function badModelAnswer(msg: string): DeskdError {
  return new DeskdError('MODEL_ERROR', msg);
}
