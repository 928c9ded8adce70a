/**
 * What deskd's MCP tools share: their dependencies, the state kept between calls, the tool names in
 * listing order, and the helpers every tool uses (submit a batch through the executor, resolve refs and
 * locators, observe). The tools themselves are in `src/mcp/tools/`; `src/mcp/server.ts` wires them.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DeskdError } from '../errors.js';
import type { Platform } from '../platform/types.js';
import type { Observation, Observer } from '../perception/observer.js';
import type { Executor } from '../actuation/executor.js';
import type { Action, Target } from '../actuation/schema.js';
import type { ReplayService } from '../replay/index.js';
import { mcpReason } from '../governance/reason.js';
import { describeResult, textResult } from './format.js';

/** What the MCP tools need; the HTTP app's deps satisfy it. */
export interface McpDeps {
  platform: Platform;
  observer: Observer;
  executor: Executor;
  /** Server version reported in `initialize`. */
  version: string;
  /**
   * Actor written to the audit log for actions: the credential that acts (`mcp:agent/<client>` over
   * HTTP, `mcp:stdio` for `deskd mcp`); default `mcp`.
   */
  actor?: string;
  /** Shared between servers built for one daemon (HTTP stateless mode builds one server per request). */
  state?: McpState;
  /** Recordings and replays: adds the tools `list_recordings` and `replay` (`src/replay/mcp.ts`). */
  replay?: ReplayService;
}

/** State shared by the tools: the latest observation made through MCP (what `find` and refs default to). */
export interface McpState {
  latest: Observation | null;
}

/** A fresh {@link McpState}. */
export function createMcpState(): McpState {
  return { latest: null };
}

/** Names of deskd's MCP tools, in listing order. */
export const MCP_TOOL_NAMES = [
  'observe',
  'screenshot',
  'find',
  'click',
  'type',
  'keypress',
  'scroll',
  'drag',
  'press',
  'set_value',
  'focus',
  'wait_for',
  'read',
  'list_apps',
  'list_windows',
  'focus_window',
  'focus_app',
] as const;

/** Annotations of a tool that only looks. */
export const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
/** Annotations of a tool that acts on the desktop. */
export const ACTS = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false } as const;

/** Name of one of deskd's MCP tools. */
export type McpToolName = (typeof MCP_TOOL_NAMES)[number];

/** Options of {@link ToolContext.observe}: the observe tool's arguments (defaults: OCR and accessibility on, scope all, no screenshot). */
export interface McpObserveOptions {
  ocr?: boolean;
  accessibility?: boolean;
  scope?: 'focused' | 'all';
  display?: number;
  screenshot?: boolean;
  fresh?: boolean;
}

/** What one server's tools share (built once per server by {@link createToolContext}). */
export interface ToolContext {
  deps: McpDeps;
  state: McpState;
  /** Actor written to the audit log ({@link McpDeps.actor}, default `mcp`). */
  actor: string;
  /** Submit a batch through the executor (policy gate); wait for the operator when the policy asks. The answer describes the outcome. */
  act(actions: Action[], what: string): Promise<CallToolResult>;
  /** The given observation id, else the latest. @throws DeskdError `OBSERVATION_NOT_FOUND` when there is none yet. */
  latestId(given?: string): string;
  /** `{target}` or `{x, y}` from tool arguments. @throws DeskdError `VALIDATION_FAILED`. */
  where(a: { ref?: string | undefined; observationId?: string | undefined; x?: number | undefined; y?: number | undefined }, tool: string): { target: { ref: string; observationId: string } } | { x: number; y: number };
  /** `{ref, observationId}` or a locator from an element tool's arguments. @throws DeskdError `VALIDATION_FAILED` when neither is given. */
  elementTarget(a: { ref?: string | undefined; observationId?: string | undefined; text?: string | undefined; role?: string | undefined; name?: string | undefined; exact?: boolean | undefined }, tool: string): Target;
  /** Observe through the daemon's observer and remember the observation as the latest. */
  observe(opts: McpObserveOptions): Promise<Observation>;
}

/** Registers one tool on a server. */
export type McpTool = (server: McpServer, ctx: ToolContext) => void;

/** The shared helpers of one server's tools. */
export function createToolContext(deps: McpDeps): ToolContext {
  const state = deps.state ?? createMcpState();
  const actor = deps.actor ?? 'mcp';

  /** Submit a batch through the executor (policy gate); wait for the operator when the policy asks. */
  const act = async (actions: Action[], what: string): Promise<CallToolResult> => {
    const reason = mcpReason.getStore();
    const s = await deps.executor.submit(actions, actor, reason !== undefined ? { reason } : {});
    if (s.status === 'done') return textResult(describeResult(s, what));
    const ids = s.approvals.map((a) => a.id).join(', ');
    const r = await s.outcome;
    return textResult(describeResult(r, what, `approved by the operator (${ids})`));
  };

  const latestId = (given?: string): string => {
    if (given) return given;
    if (!state.latest) throw new DeskdError('OBSERVATION_NOT_FOUND', 'No observation yet: call observe (or find) first, or pass x and y');
    return state.latest.observationId;
  };

  /** `{target}` or `{x, y}` from tool arguments. @throws DeskdError `VALIDATION_FAILED`. */
  const where = (a: { ref?: string | undefined; observationId?: string | undefined; x?: number | undefined; y?: number | undefined }, tool: string): { target: { ref: string; observationId: string } } | { x: number; y: number } => {
    if (a.ref) return { target: { ref: a.ref, observationId: latestId(a.observationId) } };
    if (a.x !== undefined && a.y !== undefined) return { x: a.x, y: a.y };
    throw new DeskdError('VALIDATION_FAILED', `${tool}: give a ref (from observe/find) or both x and y`);
  };

  /**
   * `{ref, observationId}` or a locator `{text?, role?, name?, exact?}` from an element tool's arguments.
   * @throws DeskdError `VALIDATION_FAILED` when neither is given.
   */
  const elementTarget = (a: { ref?: string | undefined; observationId?: string | undefined; text?: string | undefined; role?: string | undefined; name?: string | undefined; exact?: boolean | undefined }, tool: string): Target => {
    if (a.ref) return { ref: a.ref, observationId: latestId(a.observationId) };
    if (a.text === undefined && a.role === undefined && a.name === undefined) throw new DeskdError('VALIDATION_FAILED', `${tool}: give a ref (from observe/find), or text, role or name`);
    return { ...(a.text !== undefined ? { text: a.text } : {}), ...(a.role !== undefined ? { role: a.role } : {}), ...(a.name !== undefined ? { name: a.name } : {}), ...(a.exact ? { exact: true } : {}) };
  };

  const observe = async (opts: McpObserveOptions): Promise<Observation> => {
    const o = await deps.observer.observe({
      ...(opts.fresh ? { fresh: true } : {}),
      ocr: opts.ocr ?? true,
      accessibility: opts.accessibility ?? true,
      scope: opts.scope ?? 'all',
      screenshot: opts.screenshot ? 'png' : 'none',
      ...(opts.display !== undefined ? { display: opts.display } : {}),
    });
    state.latest = o;
    return o;
  };

  return { deps, state, actor, act, latestId, where, elementTarget, observe };
}
