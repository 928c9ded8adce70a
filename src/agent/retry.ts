// The error classes only (`openai/core/error`, the module the SDK's index re-exports, so `instanceof` is the
// same): the SDK's client and resources (≈ 240 modules) load when a task first builds a client (`loop.ts`),
// not when the daemon starts (issue 15).
import { APIConnectionError, APIError, APIUserAbortError } from 'openai/core/error';
import { DeskdError } from '../errors.js';

/** Thrown inside the loop when the task's signal aborted (cancel). Not a DeskdError: it never reaches HTTP. */
export class TaskCancelled extends Error {
  constructor() {
    super('task cancelled');
    this.name = 'TaskCancelled';
  }
}

/** Backoff options. */
export interface RetryOptions {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First delay, ms; doubled per retry (up to 25 % jitter subtracted), capped at `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  signal: AbortSignal;
  /** Called before each backoff wait. `attempt` is the 1-based retry number. */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

/**
 * Whether a model request error is worth retrying, following the OpenAI SDK's own rule
 * (408, 409, 429, ≥500, connection errors and timeouts; `x-should-retry` wins), except a 429 whose
 * code is `insufficient_quota` (the quota is exhausted: waiting does not help; OpenAI error-codes guide).
 */
export function isRetryable(e: unknown): boolean {
  if (e instanceof APIUserAbortError) return false;
  if (e instanceof APIError && e.status !== undefined) {
    const hint = e.headers?.get('x-should-retry');
    if (hint === 'true') return true;
    if (hint === 'false') return false;
    if (e.status === 429 && e.code === 'insufficient_quota') return false;
    return e.status === 408 || e.status === 409 || e.status === 429 || e.status >= 500;
  }
  return e instanceof APIConnectionError; // includes APIConnectionTimeoutError
}

/** The delay the server asked for (`retry-after-ms`, then `retry-after` in seconds or as a date), ms. */
export function retryAfterMs(e: unknown, now = Date.now()): number | null {
  if (!(e instanceof APIError) || !e.headers) return null;
  const ms = e.headers.get('retry-after-ms');
  if (ms !== null && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = e.headers.get('retry-after');
  if (ra === null) return null;
  if (Number.isFinite(Number(ra))) return Math.max(0, Number(ra) * 1000);
  const at = Date.parse(ra);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** One line describing a model error. */
export function describeModelError(e: unknown): string {
  if (e instanceof APIError) return `${e.status ?? 'no status'}${e.code ? ` ${e.code}` : ''}: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

/** Sleep `ms`, rejecting with {@link TaskCancelled} when `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new TaskCancelled());
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new TaskCancelled());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Run a model request with retries and exponential backoff (delays `base·2^n`, jitter, cap; or the
 * server's `retry-after`). The request gets the task's signal; the waits are cancellable too.
 * @returns the value and how many retries it took.
 * @throws {@link TaskCancelled} when the signal aborts; DeskdError `MODEL_ERROR` when the error is not
 *   retryable or the retries are used up (the message carries the last status and message).
 */
export async function withRetry<T>(fn: (signal: AbortSignal) => Promise<T>, opts: RetryOptions): Promise<{ value: T; retries: number }> {
  for (let attempt = 0; ; attempt++) {
    if (opts.signal.aborted) throw new TaskCancelled();
    try {
      return { value: await fn(opts.signal), retries: attempt };
    } catch (e) {
      if (opts.signal.aborted || e instanceof APIUserAbortError) throw new TaskCancelled();
      if (e instanceof DeskdError || e instanceof TaskCancelled) throw e;
      if (!isRetryable(e) || attempt >= opts.maxRetries) {
        const tries = attempt + 1;
        throw new DeskdError('MODEL_ERROR', `Model request failed${isRetryable(e) ? ` after ${tries} attempts` : ''}: ${describeModelError(e)}`, {
          status: e instanceof APIError ? (e.status ?? null) : null,
          attempts: tries,
        });
      }
      const backoff = Math.min(opts.baseDelayMs * 2 ** attempt, opts.maxDelayMs) * (1 - Math.random() * 0.25);
      const delayMs = Math.round(Math.min(retryAfterMs(e) ?? backoff, 60_000));
      opts.onRetry?.({ attempt: attempt + 1, delayMs, reason: describeModelError(e) });
      await abortableSleep(delayMs, opts.signal);
    }
  }
}
