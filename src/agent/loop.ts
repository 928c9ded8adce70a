import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
// Types only: the SDKs (≈ 500 modules, ≈ 5 MB of the daemon's heap) load when the first task needs its client
// (`ensureClient`), not when the daemon starts (issue 15).
import type OpenAI from 'openai';
import type Anthropic from '@anthropic-ai/sdk';
import type { Logger } from 'pino';
import { DeskdError, isDeskdError } from '../errors.js';
import type { AgentConfig } from './config.js';
import { ComputerDriver, type Driver } from './computer.js';
import { FunctionsDriver } from './functions.js';
import { ClaudeDriver } from './anthropic/driver.js';
import { TaskCancelled } from './retry.js';
import { TaskSession } from './session.js';
import {
  TERMINAL_STATUSES,
  type ActionPort,
  type ObserverPort,
  type SafetyApprover,
  type TaskError,
  type TaskEvent,
  type TaskEventInput,
  type TaskStatus,
  type TaskStep,
  type TaskView,
} from './types.js';

/** Dependencies of the {@link TaskRunner}; interfaces, so tests and the daemon inject what they have. */
export interface TaskRunnerDeps {
  /** The daemon's `Observer` (perception, masked by the policy). */
  observer: ObserverPort;
  /** The daemon's `Executor`: every action is validated, decided by the policy (and audited) there. */
  actions: ActionPort;
  config: AgentConfig;
  /**
   * Operator approval of OpenAI `pending_safety_checks`. Default: refuse every check (no person asked →
   * never acknowledged). The daemon uses `approvalManagerApprover` (`src/agent/approvals.ts`).
   */
  approve?: SafetyApprover;
  /** Deny a pending policy approval when its task is cancelled (e.g. `id => approvals.decide(id, {decision: 'deny'}, 'task-cancel')`). */
  denyApproval?: (approvalId: string) => void;
  /** The OpenAI client; default: built from `config` (`apiKey`, `baseURL`, `timeoutMs`, SDK retries off). */
  client?: OpenAI;
  /** Provider `anthropic`: the Anthropic client; default: built from `config` like the OpenAI one. */
  anthropic?: Anthropic;
  /** Provider `anthropic`: the pointer's global position, points (default: the last point a task acted at). */
  pointer?: () => Promise<{ x: number; y: number }>;
  logger?: Logger;
  /** Finished tasks kept for `GET /v1/tasks/:id` (oldest evicted first); default 100. */
  historyLimit?: number;
}

/** Body of `POST /v1/tasks`. */
export interface StartTaskRequest {
  goal: string;
  /** Step budget (1–200); default `config.maxSteps`. */
  maxSteps?: number;
  /** Model name; default `config.model`. */
  model?: string;
}

interface TaskState {
  view: TaskView;
  events: TaskEvent[];
  listeners: Set<(e: TaskEvent) => void>;
  controller: AbortController;
  done: Promise<void>;
  resolveDone: () => void;
}

const refuseAll: SafetyApprover = async () => false;

/**
 * Runs model-driven tasks: observe → model → policy → act, until the model is done (`done(answer)` or a
 * final message without tool calls), the step budget is used (`STEP_LIMIT_REACHED`), an error ends it
 * (`MODEL_ERROR` after retries, `HALTED`, a refused safety check → `POLICY_DENIED`), or it is cancelled.
 *
 * Tasks run one at a time (there is one screen and one pointer), in start order; the others wait as
 * `queued`. Each task has an event log (`status`, `retry`, `approval`, `step`, `final`), replayed to
 * late subscribers. Cancel aborts the task's `AbortController`: in-flight model requests (the signal is
 * passed to the SDK), backoff waits, approval waits (pending policy approvals are denied) and the loop
 * between actions.
 */
export class TaskRunner {
  private readonly tasks = new Map<string, TaskState>();
  private readonly queue: TaskState[] = [];
  private running: TaskState | null = null;
  /** The injected client, else built by {@link ensureClient} when the first task runs. */
  private client: OpenAI | null;
  private anthropic: Anthropic | null;
  private closed = false;

  constructor(private readonly deps: TaskRunnerDeps) {
    this.client = deps.client ?? null;
    this.anthropic = deps.anthropic ?? null;
  }

  /** Whether the configured provider has a client or the key to build one (else tasks are refused). */
  private configured(): boolean {
    const c = this.deps.config;
    return c.provider === 'anthropic' ? Boolean(this.anthropic || c.apiKey) : Boolean(this.client || c.apiKey);
  }

  /**
   * Build the configured provider's client from `config` (`apiKey`, `baseURL`, `timeoutMs`, SDK retries off:
   * deskd retries itself, `retry.ts`) unless one was injected, importing its SDK on first use.
   */
  private async ensureClient(): Promise<void> {
    const c = this.deps.config;
    const opts = { apiKey: c.apiKey, ...(c.baseURL ? { baseURL: c.baseURL } : {}), timeout: c.timeoutMs, maxRetries: 0 };
    if (c.provider === 'anthropic') {
      if (!this.anthropic) this.anthropic = new (await import('@anthropic-ai/sdk')).default(opts);
    } else if (!this.client) {
      this.client = new (await import('openai')).default(opts);
    }
  }

  /** The API shape a task uses, from the configuration. */
  private apiName(): string {
    const c = this.deps.config;
    if (c.provider === 'anthropic') return c.anthropicTool;
    return c.mode === 'computer' ? c.computerTool : c.api;
  }

  /**
   * Queue a task; it starts when the runner is free.
   * @returns the task id (`task_` + UUID).
   * @throws DeskdError `MODEL_NOT_CONFIGURED` (no API key), `VALIDATION_FAILED` (empty goal, bad maxSteps).
   */
  start(req: StartTaskRequest): string {
    if (!this.configured()) {
      throw new DeskdError(
        'MODEL_NOT_CONFIGURED',
        this.deps.config.provider === 'anthropic'
          ? 'No model is configured: set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for a compatible endpoint)'
          : 'No model is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible endpoint)',
      );
    }
    if (this.closed) throw new DeskdError('INTERNAL', 'The task runner is shut down');
    const goal = req.goal.trim();
    if (!goal) throw new DeskdError('VALIDATION_FAILED', 'goal must not be empty');
    const maxSteps = req.maxSteps ?? this.deps.config.maxSteps;
    if (!Number.isInteger(maxSteps) || maxSteps < 1 || maxSteps > 200) throw new DeskdError('VALIDATION_FAILED', 'maxSteps must be an integer from 1 to 200');
    const taskId = `task_${randomUUID()}`;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const st: TaskState = {
      view: {
        taskId,
        goal,
        mode: this.deps.config.mode,
        api: this.apiName(),
        model: req.model ?? this.deps.config.model,
        maxSteps,
        status: 'queued',
        createdAt: Date.now(),
        startedAt: null,
        finishedAt: null,
        steps: [],
        usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 },
        denials: [],
        answer: null,
        error: null,
      },
      events: [],
      listeners: new Set(),
      controller: new AbortController(),
      done,
      resolveDone,
    };
    this.tasks.set(taskId, st);
    this.emit(st, { type: 'status', status: 'queued' });
    this.queue.push(st);
    this.evict();
    queueMicrotask(() => this.pump());
    return taskId;
  }

  /** @throws DeskdError `TASK_NOT_FOUND`. */
  private state(id: string): TaskState {
    const st = this.tasks.get(id);
    if (!st) throw new DeskdError('TASK_NOT_FOUND', `No task with id "${id}"`);
    return st;
  }

  /**
   * A copy of a task's state.
   * @throws DeskdError `TASK_NOT_FOUND`.
   */
  get(id: string): TaskView {
    return structuredClone(this.state(id).view);
  }

  /** All known tasks, newest first (copies, without their steps' details trimmed). */
  list(): TaskView[] {
    return [...this.tasks.values()].map((s) => structuredClone(s.view)).reverse();
  }

  /**
   * Cancel a task: a queued one is cancelled at once; a running one stops at its next await (model
   * request, backoff, approval, between actions). Cancelling a finished task changes nothing.
   * @returns the task's state after the request (a running task may still say `running` for a moment).
   * @throws DeskdError `TASK_NOT_FOUND`.
   */
  cancel(id: string): TaskView {
    const st = this.state(id);
    if (TERMINAL_STATUSES.has(st.view.status)) return this.get(id);
    st.controller.abort(new TaskCancelled());
    if (st.view.status === 'queued') {
      const i = this.queue.indexOf(st);
      if (i >= 0) this.queue.splice(i, 1);
      this.finish(st, 'cancelled', null, null);
    }
    return this.get(id);
  }

  /** Resolve when the task has reached a terminal state. @throws DeskdError `TASK_NOT_FOUND`. */
  async wait(id: string): Promise<TaskView> {
    await this.state(id).done;
    return this.get(id);
  }

  /**
   * Subscribe to a task's events: first every past event with `seq > afterSeq` (replay), then live
   * ones. The listener is removed after the `final` event.
   * @returns an unsubscribe function.
   * @throws DeskdError `TASK_NOT_FOUND`.
   */
  subscribe(id: string, listener: (e: TaskEvent) => void, afterSeq = 0): () => void {
    const st = this.state(id);
    for (const e of st.events) if (e.seq > afterSeq) listener(e);
    if (TERMINAL_STATUSES.has(st.view.status)) return () => undefined;
    st.listeners.add(listener);
    return () => void st.listeners.delete(listener);
  }

  /** Cancel every task and wait for the running one to stop. */
  async close(): Promise<void> {
    this.closed = true;
    for (const st of [...this.queue]) this.cancel(st.view.taskId);
    const r = this.running;
    if (r) {
      r.controller.abort(new TaskCancelled());
      await r.done;
    }
  }

  private emit(st: TaskState, e: TaskEventInput): void {
    const ev = { ...e, seq: st.events.length + 1, taskId: st.view.taskId, at: Date.now() } as TaskEvent;
    st.events.push(ev);
    for (const l of [...st.listeners]) {
      try {
        l(ev);
      } catch (err) {
        this.deps.logger?.warn({ err, taskId: st.view.taskId }, 'task event listener failed');
      }
    }
    if (ev.type === 'final') st.listeners.clear();
  }

  private finish(st: TaskState, status: TaskStatus, answer: string | null, error: TaskError | null): void {
    const v = st.view;
    v.status = status;
    v.answer = answer;
    v.error = error;
    v.finishedAt = Date.now();
    this.deps.logger?.info({ taskId: v.taskId, status, steps: v.steps.length, usage: v.usage, error }, 'task finished');
    this.emit(st, { type: 'final', status, answer, error, steps: v.steps.length, usage: { ...v.usage } });
    st.resolveDone();
  }

  /** Forget the oldest finished tasks beyond the history limit. */
  private evict(): void {
    const limit = this.deps.historyLimit ?? 100;
    const finished = [...this.tasks.values()].filter((s) => TERMINAL_STATUSES.has(s.view.status));
    for (const s of finished.slice(0, Math.max(0, finished.length - limit))) this.tasks.delete(s.view.taskId);
  }

  private pump(): void {
    if (this.running) return;
    const next = this.queue.shift();
    if (!next) return;
    this.running = next;
    void this.run(next).finally(() => {
      this.running = null;
      this.evict();
      this.pump();
    });
  }

  private async run(st: TaskState): Promise<void> {
    const v = st.view;
    const signal = st.controller.signal;
    const log = this.deps.logger?.child({ taskId: v.taskId });
    v.status = 'running';
    v.startedAt = Date.now();
    this.emit(st, { type: 'status', status: 'running' });
    try {
      await this.ensureClient();
    } catch (e) {
      log?.error({ err: e }, 'building the model client failed');
      return this.finish(st, 'failed', null, { code: 'INTERNAL', message: `The model client could not be built: ${(e as Error).message}` });
    }
    const session = new TaskSession(
      v,
      // The OpenAI client is only used by the OpenAI drivers (never built for provider anthropic).
      { client: this.client as OpenAI, observer: this.deps.observer, actions: this.deps.actions, approve: this.deps.approve ?? refuseAll, denyApproval: this.deps.denyApproval, config: this.deps.config, ...(log ? { logger: log } : {}) },
      signal,
      (e) => this.emit(st, e),
    );
    const driver: Driver =
      this.deps.config.provider === 'anthropic'
        ? new ClaudeDriver(session, { client: this.anthropic!, toolVersion: this.deps.config.anthropicTool, ...(this.deps.pointer ? { pointer: this.deps.pointer } : {}) })
        : this.deps.config.mode === 'computer'
          ? new ComputerDriver(session)
          : new FunctionsDriver(session);
    try {
      await driver.init();
      for (let i = 1; i <= v.maxSteps; i++) {
        session.checkCancelled();
        const step: TaskStep = { index: i, startedAt: Date.now(), modelMs: 0, actMs: 0, durationMs: 0, retries: 0, responseId: null, usage: null, text: null, operations: [], safetyChecks: [] };
        const t0 = performance.now();
        v.steps.push(step);
        let result;
        try {
          result = await driver.step(step);
        } finally {
          step.durationMs = round(performance.now() - t0);
          step.modelMs = round(step.modelMs);
          step.actMs = round(step.actMs);
          log?.info({ step: i, modelMs: step.modelMs, actMs: step.actMs, ops: step.operations.length }, 'task step');
          this.emit(st, { type: 'step', step: structuredClone(step) });
        }
        if (result.finished) return this.finish(st, 'succeeded', result.finished.answer, null);
      }
      this.finish(st, 'failed', null, { code: 'STEP_LIMIT_REACHED', message: `The model did not finish within ${v.maxSteps} steps` });
    } catch (e) {
      if (e instanceof TaskCancelled || signal.aborted) return this.finish(st, 'cancelled', null, null);
      if (isDeskdError(e)) return this.finish(st, 'failed', null, { code: e.code, message: e.message });
      log?.error({ err: e }, 'task failed unexpectedly');
      this.finish(st, 'failed', null, { code: 'INTERNAL', message: (e as Error).message });
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
