import type { Action } from '../actuation/schema.js';
import type { ActionsResponse, PendingSubmission } from '../actuation/executor.js';
import type { Observation, ObserveOptions } from '../perception/observer.js';

/**
 * Shapes of deskd's model-driven tasks (`POST /v1/tasks`, issue 6). A task loops
 * observe → model → policy → act until the model is done, the step budget is used, it fails, or it is
 * cancelled. All times are epoch milliseconds (`*At`) or durations in milliseconds (`*Ms`).
 */

/** Lifecycle: `queued` → `running` → one of the terminal states. */
export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Terminal states. */
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/** Token usage, summed from the model's `usage` (Responses: input/output_tokens; Chat: prompt/completion_tokens). */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
}

/** How one requested operation ended. `denied`: the policy refused it (reported back to the model). */
export type OperationOutcome = 'done' | 'denied' | 'failed' | 'skipped';

/**
 * One operation the model asked for: a computer action (computer mode) or a function call
 * (functions mode). Actions of one `computer_call` after a denied or failed one are `skipped`.
 */
export interface StepOperation {
  /** `call_id` of the `computer_call` / function call it belongs to. */
  callId: string | null;
  /** `computer` (computer mode) or the function name (`click_element`, `done`, …). */
  tool: string;
  /** The deskd action run (coordinates in logical global points), or the function's arguments. */
  input: unknown;
  outcome: OperationOutcome;
  /** Short result text given back to the model (functions mode) or a summary. */
  result?: string;
  /** Why it was not done. */
  error?: { code: string; message: string };
  /** The policy rule that denied it (`outcome: denied`). */
  policy?: { ruleId: string; reason: string };
  durationMs: number;
}

/** A `pending_safety_checks` entry of a computer call and what the operator answered. */
export interface SafetyCheckRecord {
  id: string;
  code: string | null;
  message: string | null;
  approved: boolean;
  /** How long the approval took, ms. */
  waitedMs: number;
}

/** One step: one model request (with its retries) and the operations it asked for. */
export interface TaskStep {
  /** 1-based. */
  index: number;
  startedAt: number;
  /** Model request latency including retries and backoff, ms. */
  modelMs: number;
  /** Time spent acting (actions, approvals, fresh screenshot/observation), ms. */
  actMs: number;
  durationMs: number;
  /** Model requests retried in this step (429/5xx/timeouts). */
  retries: number;
  /** The Responses `id` or Chat Completions `id`. */
  responseId: string | null;
  usage: TokenUsage | null;
  /** Text the model wrote in this step (its message), if any. */
  text: string | null;
  operations: StepOperation[];
  safetyChecks: SafetyCheckRecord[];
}

/** A policy denial inside a task (also in its step's operations). */
export interface TaskDenial {
  step: number;
  ruleId: string;
  reason: string;
  code: string;
  input: unknown;
}

/** Why a task failed: a deskd error code (`MODEL_ERROR`, `STEP_LIMIT_REACHED`, `HALTED`, `POLICY_DENIED`, …). */
export interface TaskError {
  code: string;
  message: string;
}

/** The public view of a task (`GET /v1/tasks/:id`). */
export interface TaskView {
  taskId: string;
  goal: string;
  mode: AgentMode;
  /** `computer`, `computer_use_preview`, `responses` or `chat`: which API shape is used. */
  api: string;
  model: string;
  maxSteps: number;
  status: TaskStatus;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  steps: TaskStep[];
  usage: TokenUsage;
  denials: TaskDenial[];
  /** The model's answer (`done(answer)` or its final message). */
  answer: string | null;
  error: TaskError | null;
}

/** Events of a task, in order, numbered from 1 (`seq`); the SSE stream sends them with `id: seq`. */
export type TaskEvent =
  | { seq: number; type: 'status'; taskId: string; at: number; status: TaskStatus }
  | { seq: number; type: 'retry'; taskId: string; at: number; step: number; attempt: number; delayMs: number; reason: string }
  | { seq: number; type: 'approval'; taskId: string; at: number; step: number; kind: 'safety_check' | 'policy'; detail: string }
  | { seq: number; type: 'step'; taskId: string; at: number; step: TaskStep }
  | { seq: number; type: 'final'; taskId: string; at: number; status: TaskStatus; answer: string | null; error: TaskError | null; steps: number; usage: TokenUsage };

/** An event before it is numbered. */
export type TaskEventInput = DistributiveOmit<TaskEvent, 'seq' | 'taskId' | 'at'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** `computer`: the Responses API computer tool; `functions`: function calling on any OpenAI-compatible model. */
export type AgentMode = 'computer' | 'functions';

/** What the loop needs to see the screen (the daemon's `Observer` fits). */
export interface ObserverPort {
  /** @throws DeskdError `DISPLAY_NOT_FOUND`, `CAPTURE_FAILED`, `OCR_FAILED`. */
  observe(opts?: ObserveOptions): Promise<Observation>;
}

/**
 * What the loop needs to act (the daemon's `Executor` fits): validate, gate through the permission
 * policy, and dispatch; a pending submission waits for an operator (policy `ask`).
 * @throws DeskdError `POLICY_DENIED`, `HALTED`, `SCREEN_LOCKED`, `RATE_LIMITED`, `STALE_REF`, … (see executor).
 */
export interface ActionPort {
  submit(actions: Action[], actor?: string, opts?: { reason?: string }): Promise<ActionsResponse | PendingSubmission>;
}

/** A `pending_safety_checks` entry sent to the approval hook. */
export interface SafetyCheckRequest {
  taskId: string;
  step: number;
  callId: string;
  check: { id: string; code: string | null; message: string | null };
  /** The actions of the computer call waiting on the check (logical global points). */
  actions: Action[];
}

/**
 * Operator approval for an OpenAI safety check: resolve true only when a person approved. Must settle
 * (false) when `signal` aborts (task cancelled). See `approvalManagerApprover` in `src/agent/approvals.ts`.
 */
export type SafetyApprover = (req: SafetyCheckRequest, signal: AbortSignal) => Promise<boolean>;
