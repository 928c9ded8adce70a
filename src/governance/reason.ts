import { AsyncLocalStorage } from 'node:async_hooks';
import { z } from 'zod';
import { DeskdError } from '../errors.js';

/**
 * The "why" of an action (issue 17): an optional `reason` (≤ {@link MAX_REASON_CHARS} characters: what
 * the agent is trying to do) on every action and batch, on every input path:
 * - HTTP `POST /v1/actions`: `{type, …, reason}` for one action, `{actions: [...], reason}` for a batch
 *   (an action inside a batch may carry its own `reason`, which wins for that action) — {@link splitReason};
 * - MCP: every acting tool takes a `reason` argument — {@link withReasonArgument};
 * - the task loop: the model's reasoning summary of the step when the API gives one, else the step's
 *   text, else the task goal — {@link taskReason}.
 * The gate audits it with the decision and refuses a missing one with `REASON_REQUIRED` when a policy layer
 * has `requireReason: true` (`src/policy/gate.ts`).
 */

/** Longest reason, characters (UTF-16 code units). */
export const MAX_REASON_CHARS = 500;

/** The `reason` argument/field. */
export const ReasonSchema = z.string().max(MAX_REASON_CHARS).describe('What you are trying to do with this action (at most 500 characters); recorded in the audit log');

function checkReason(v: unknown, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > MAX_REASON_CHARS) throw new DeskdError('VALIDATION_FAILED', `${where}: reason must be a string of at most ${MAX_REASON_CHARS} characters`);
  return v;
}

/**
 * Take the `reason` fields out of a `POST /v1/actions` body.
 * @returns the body without them (for `parseActionsBody`), the batch's reason and one reason per action.
 * @throws DeskdError `VALIDATION_FAILED` for a reason that is not a string of at most 500 characters.
 */
export function splitReason(body: unknown): { body: unknown; reason?: string; reasons?: Array<string | undefined> } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { body };
  const { reason: r, ...rest } = body as Record<string, unknown>;
  const reason = checkReason(r, 'body');
  if (Array.isArray(rest.actions)) {
    const reasons: Array<string | undefined> = [];
    const actions = rest.actions.map((a, i) => {
      if (!a || typeof a !== 'object' || Array.isArray(a) || !('reason' in a)) {
        reasons.push(undefined);
        return a;
      }
      const { reason: ar, ...act } = a as Record<string, unknown>;
      reasons.push(checkReason(ar, `actions[${i}]`));
      return act;
    });
    return { body: { ...rest, actions }, ...(reason !== undefined ? { reason } : {}), ...(reasons.some((x) => x !== undefined) ? { reasons } : {}) };
  }
  return { body: rest, ...(reason !== undefined ? { reason } : {}) };
}

/** The reason of the MCP tool call being handled (set by {@link withReasonArgument}). */
export const mcpReason = new AsyncLocalStorage<string | undefined>();

/** What {@link withReasonArgument} needs of an `McpServer`. */
interface RegistersTools {
  registerTool: (name: string, config: { inputSchema?: Record<string, z.ZodType> } & Record<string, unknown>, cb: (...a: unknown[]) => unknown) => unknown;
}

/**
 * Give every tool outside `readOnly` an optional `reason` argument: the tool's handler runs with it in
 * {@link mcpReason} (its own arguments without it). Call right after creating the server, before tools
 * are registered. Source: MCP TypeScript SDK `McpServer.registerTool(name, {inputSchema}, cb(args, extra))`.
 */
export function withReasonArgument(server: object, readOnly: ReadonlySet<string>): void {
  const s = server as RegistersTools;
  const orig = s.registerTool.bind(server);
  s.registerTool = (name, config, cb) => {
    if (readOnly.has(name) || !config.inputSchema) return orig(name, config, cb);
    return orig(name, { ...config, inputSchema: { ...config.inputSchema, reason: ReasonSchema.optional() } }, (args: unknown, ...rest: unknown[]) => {
      const { reason, ...own } = (args ?? {}) as { reason?: string };
      return mcpReason.run(reason, () => cb(own, ...rest));
    });
  };
}

/** Reasoning summaries of task steps (filled by the model driver when the API returns one). */
export const stepReasoning = new WeakMap<object, string>();

/**
 * The reasoning summary text of an OpenAI Responses API output (`output[].type === 'reasoning'`,
 * `summary[].text`), or null.
 */
export function reasoningSummary(output: unknown): string | null {
  if (!Array.isArray(output)) return null;
  const parts: string[] = [];
  for (const item of output) {
    const it = item as { type?: unknown; summary?: unknown };
    if (it?.type !== 'reasoning' || !Array.isArray(it.summary)) continue;
    for (const s of it.summary) if (typeof (s as { text?: unknown })?.text === 'string') parts.push((s as { text: string }).text);
  }
  const t = parts.join(' ').trim();
  return t ? t : null;
}

/** The reason a task step's actions carry: the step's reasoning summary, else its text, else the goal; cut to 500 characters. */
export function taskReason(step: object & { text?: string | null }, goal: string): string {
  const r = stepReasoning.get(step) ?? (step.text?.trim() || goal);
  return r.length > MAX_REASON_CHARS ? `${r.slice(0, MAX_REASON_CHARS - 1)}…` : r;
}
