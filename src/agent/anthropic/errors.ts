// Both SDKs' error modules only (the modules their index files re-export, so `instanceof` is the same): the
// clients load on a task's first use (`loop.ts`), not when the daemon starts (issue 15).
import * as Anthropic from '@anthropic-ai/sdk/core/error';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai/core/error';

/**
 * deskd's model-request retry rule (`src/agent/retry.ts`: 408, 409, 429, ≥ 500, connection errors and
 * timeouts; `x-should-retry` and `retry-after(-ms)` honoured) is written against the `openai` SDK's error
 * classes. The `@anthropic-ai/sdk` follows the same rule (both SDKs are generated from the same template:
 * `shouldRetry` on 408/409/429/5xx incl. 529 overloaded, `x-should-retry`, `retry-after-ms`/`retry-after`),
 * so its errors are mapped onto the equivalent `openai` classes, keeping status, headers and the error
 * `type` (as `code`). Anything else is returned unchanged.
 */
export function asRetryableModelError(e: unknown): unknown {
  if (e instanceof Anthropic.APIUserAbortError) return new APIUserAbortError({ message: e.message });
  if (e instanceof Anthropic.APIConnectionTimeoutError) return new APIConnectionTimeoutError({ message: e.message });
  if (e instanceof Anthropic.APIConnectionError) return new APIConnectionError({ message: e.message, ...(e.cause instanceof Error ? { cause: e.cause } : {}) });
  if (e instanceof Anthropic.APIError && e.status !== undefined) {
    const message = e.apiMessage ?? e.message;
    return APIError.generate(e.status, { message, type: e.type, code: e.type }, message, e.headers ?? new Headers());
  }
  return e;
}
