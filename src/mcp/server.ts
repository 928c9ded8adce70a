import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplayService } from '../replay/index.js';
import { registerReplayTools } from '../replay/mcp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { DeskdError, isDeskdError } from '../errors.js';
import type { Platform, WindowInfo } from '../platform/types.js';
import type { Observation, Observer } from '../perception/observer.js';
import type { Executor, ActionsResponse, ActionResult } from '../actuation/executor.js';
import type { Action, Target } from '../actuation/schema.js';
import type { Element } from '../perception/elements.js';
import { encodeImage } from '../perception/image.js';
import { annotateScreenshot } from '../perception/annotate.js';
import { normalizeName } from '../perception/elements.js';
import { readServiceFor, executorScroller } from '../http/readRoutes.js';
import { CellPredicateSchema, PairPredicateSchema } from '../perception/read/predicates.js';
import { formatRead } from '../perception/read/format.js';
import { mcpReason, withReasonArgument } from '../governance/reason.js';
import { MCP_READ_ONLY_TOOLS } from '../http/lease.js';

/**
 * deskd's MCP server: the same perception and actions as the HTTP API, as MCP tools.
 *
 * Every tool that acts builds an OpenAI-shaped action batch and hands it to {@link Executor.submit}, so
 * it is validated, decided by the permission policy (and audited) exactly like `POST /v1/actions`. When
 * the policy asks the operator, the tool call waits for the decision (up to the policy's approval
 * timeout) and answers with the outcome.
 *
 * Errors become MCP tool errors (`isError: true`) whose text starts with the DeskdError code
 * (`POLICY_DENIED: …`), per the MCP spec's "Error Handling" for tools (errors in the result, not as
 * JSON-RPC errors, so the model can see and react to them).
 *
 * Source: MCP TypeScript SDK `McpServer.registerTool` (title, description, inputSchema, annotations).
 */

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

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
const ACTS = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false } as const;

const Point = z.object({ x: z.number().finite(), y: z.number().finite() });
const RefArgs = {
  ref: z.string().regex(/^e\d+$/).optional().describe('Element ref from observe/find, e.g. "e12" (aim at the centre of its bounds)'),
  observationId: z.string().optional().describe("The observation the ref belongs to (default: the latest observation made through MCP)"),
  x: z.number().finite().optional().describe('Logical screen points (use with y, instead of ref)'),
  y: z.number().finite().optional().describe('Logical screen points'),
};
const HeldKeys = z.array(z.string().min(1).max(32)).max(8).optional().describe('Keys held during the action, e.g. ["shift"]');
/** Arguments of the element tools (press, set_value, focus): a ref, or a locator resolved in a fresh observation. */
const ElementArgs = {
  ref: RefArgs.ref,
  observationId: RefArgs.observationId,
  text: z.string().min(1).max(500).optional().describe('Instead of ref: the visible text of the element (name, value or OCR text), best match in a fresh observation'),
  role: z.string().min(1).max(40).optional().describe('Instead of ref: the role (button, textbox, link, checkbox, …), alone or with text/name'),
  name: z.string().min(1).max(500).optional().describe('Instead of ref: the accessible name'),
  exact: z.boolean().optional().describe('With text/name: only exact (normalised, case-insensitive) matches'),
};

/** Compact one-line description of an element: `e12 button "7" (10,100 40x30) [focused]`. */
export function formatElement(e: Pick<Element, 'ref' | 'role' | 'name' | 'bounds' | 'states'> & { value?: string }): string {
  const b = e.bounds;
  const interesting = e.states.filter((s) => ['focused', 'checked', 'selected', 'expanded', 'password', 'editable'].includes(s) || s === 'disabled');
  const value = e.value !== undefined && e.value !== '' ? ` value=${JSON.stringify(e.value)}` : '';
  return `${e.ref} ${e.role} ${JSON.stringify(e.name)}${value} (${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)})${interesting.length ? ` [${interesting.join(',')}]` : ''}`;
}

/** Text of an observation for a model: header line, then one element per line (capped at `max`). */
export function formatObservation(o: Observation, max = 400): string {
  const head = [
    `observation ${o.observationId} display ${o.display.id} (${o.display.width}x${o.display.height} points)`,
    o.focused ? `focused: ${o.focused.app}${o.focused.window ? ` — ${JSON.stringify(o.focused.window)}` : ''}` : 'focused: none',
    `${o.elements.length} elements${o.truncated ? ' (accessibility tree truncated)' : ''}; refs are valid for this observation only`,
    ...o.warnings.map((w) => `warning: ${w}`),
  ];
  const body = o.elements.slice(0, max).map(formatElement);
  if (o.elements.length > max) body.push(`… ${o.elements.length - max} more (use find to narrow)`);
  return [...head, ...body].join('\n');
}

/** Criteria of `find`. */
export interface FindQuery {
  /** Case-insensitive substring of the element's name or value. */
  text?: string;
  /** Exact role (deskd vocabulary). */
  role?: string;
  /** Case-insensitive exact name (after normalisation). */
  name?: string;
}

/**
 * Elements matching every given criterion: `text` (substring of name or value, case-insensitive),
 * `role` (exact), `name` (exact after {@link normalizeName}, case-insensitive). Exact-name matches come first.
 */
export function findElements(elements: Element[], q: FindQuery): Element[] {
  const text = q.text?.toLowerCase();
  const name = q.name !== undefined ? normalizeName(q.name).toLowerCase() : undefined;
  const hits = elements.filter((e) => {
    if (q.role && e.role !== q.role) return false;
    if (name !== undefined && e.name.toLowerCase() !== name) return false;
    if (text !== undefined && !e.name.toLowerCase().includes(text) && !(e.value ?? '').toLowerCase().includes(text)) return false;
    return true;
  });
  if (text === undefined) return hits;
  const exact = (e: Element) => (e.name.toLowerCase() === text ? 0 : 1);
  return hits.sort((a, b) => exact(a) - exact(b));
}

/** Map any thrown value to an MCP tool error result whose text starts with the DeskdError code. */
export function toolError(e: unknown): CallToolResult {
  const code = isDeskdError(e) ? e.code : 'INTERNAL';
  const msg = e instanceof Error ? e.message : String(e);
  return { isError: true, content: [{ type: 'text', text: `${code}: ${msg}` }] };
}

function text(t: string): CallToolResult {
  return { content: [{ type: 'text', text: t }] };
}

/** Wrap a handler so every failure is a tool error (never a JSON-RPC error). */
function safe<A>(fn: (args: A, signal: AbortSignal) => Promise<CallToolResult>): (args: A, extra: { signal: AbortSignal }) => Promise<CallToolResult> {
  return async (args, extra) => {
    try {
      return await fn(args, extra.signal);
    } catch (e) {
      return toolError(e);
    }
  };
}

/**
 * What one action result reports, as the HTTP answer does: the element a target resolved to (`target`),
 * how `press`/`set_value` were delivered (`via`), what was hit right before dispatch (`hit`), what a scroll
 * delivered (`scrolled`) and how many points a drag visited (`dragged`). Empty when there is nothing to say.
 */
export function describeActionResult(x: ActionResult): string {
  const parts: string[] = [];
  if (x.target) parts.push(`target ${x.target.ref} ${x.target.role} ${JSON.stringify(x.target.name)} (observation ${x.target.observationId})`);
  if (x.via) parts.push(`via ${x.via}`);
  if (x.hit) parts.push(`hit ${x.hit.app ?? 'unknown app'}${x.hit.element ? ` ${x.hit.element.role} ${JSON.stringify(x.hit.element.name)}` : ' (no element)'}`);
  if (x.scrolled) parts.push(`scrolled ${JSON.stringify(x.scrolled)}`);
  if (x.dragged) parts.push(`dragged through ${x.dragged.points} points`);
  return parts.join('; ');
}

function describeResult(r: ActionsResponse, what: string, approvedBy?: string): string {
  const pts = r.results.filter((x) => x.point).map((x) => `(${Math.round(x.point!.x)},${Math.round(x.point!.y)})`);
  const head = `${what} done${pts.length ? ` at ${pts.join(' ')}` : ''} in ${Math.round(r.durationMs)} ms (action ${r.actionId}${approvedBy ? `, ${approvedBy}` : ''})`;
  const details = r.results.map((x) => [x.type, describeActionResult(x)] as const).filter(([, d]) => d !== '');
  return [head, ...details.map(([t, d]) => `${t}: ${d}`)].join('\n');
}

/**
 * Build deskd's MCP server with its tools (see {@link MCP_TOOL_NAMES}). Connect it to a transport
 * (`StdioServerTransport`, `StreamableHTTPServerTransport`, or `InMemoryTransport` in tests).
 */
export function createMcpServer(deps: McpDeps): McpServer {
  const state = deps.state ?? createMcpState();
  const actor = deps.actor ?? 'mcp';
  const server: McpServer = new McpServer(
    { name: 'deskd', version: deps.version },
    {
      instructions:
        'deskd drives this computer\'s screen. Call observe (or find) first: it returns elements with refs (e12) valid for that observation. Act with click/type/keypress/scroll/drag by ref or by x,y in logical screen points (the space screenshot returns), with press/set_value/focus on an element (ref, or text/role/name), and with focus_window on a window from list_windows. observe with annotate: true returns a Set-of-Marks image (box N = ref eN). Every action is checked by the operator\'s permission policy: it may be denied (POLICY_DENIED) or wait for the operator\'s approval.',
    },
  );

  // Issue 17: every acting tool takes an optional `reason`, audited with its decisions.
  withReasonArgument(server, MCP_READ_ONLY_TOOLS);

  /** Submit a batch through the executor (policy gate); wait for the operator when the policy asks. */
  const act = async (actions: Action[], what: string): Promise<CallToolResult> => {
    const reason = mcpReason.getStore();
    const s = await deps.executor.submit(actions, actor, reason !== undefined ? { reason } : {});
    if (s.status === 'done') return text(describeResult(s, what));
    const ids = s.approvals.map((a) => a.id).join(', ');
    const r = await s.outcome;
    return text(describeResult(r, what, `approved by the operator (${ids})`));
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

  const observe = async (opts: { ocr?: boolean; accessibility?: boolean; scope?: 'focused' | 'all'; display?: number; screenshot?: boolean; fresh?: boolean }): Promise<Observation> => {
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

  server.registerTool(
    'observe',
    {
      title: 'Observe the screen',
      description:
        'Read the screen: accessibility elements fused with OCR text, each with a ref (e.g. e12) valid for this observation. Bounds are logical screen points (x,y width x height). Use the refs with click/type/scroll.',
      inputSchema: {
        ocr: z.boolean().optional().describe('Run OCR (default true; slower, finds text without accessibility)'),
        accessibility: z.boolean().optional().describe('Read the accessibility tree (default true)'),
        scope: z.enum(['focused', 'all']).optional().describe('Accessibility scope: the focused application or all (default all)'),
        display: z.number().int().optional().describe('Display id (default primary)'),
        screenshot: z.boolean().optional().describe('Also return the screenshot as an image (default false)'),
        fresh: z.boolean().optional().describe('Read everything anew: no reuse of earlier OCR or cached accessibility (default false)'),
        annotate: z
          .boolean()
          .optional()
          .describe('Return a Set-of-Marks image: the screenshot with every element boxed and labelled with its ref number (12 for e12), in logical points (implies screenshot)'),
      },
      annotations: { title: 'Observe the screen', ...READ_ONLY, idempotentHint: false },
    },
    safe(async (a) => {
      const { annotate, ...opts } = a;
      const o = await observe({ ...opts, ...(annotate ? { screenshot: true } : {}) });
      const content: CallToolResult['content'] = [{ type: 'text', text: formatObservation(o) }];
      if (o.screenshot) {
        // The stored observation keeps the plain screenshot; only the answer carries the marks.
        const img = annotate ? await annotateScreenshot(o.screenshot, o.elements) : o.screenshot;
        content.push({ type: 'image', data: img.data.toString('base64'), mimeType: img.mimeType });
        if (annotate) content.push({ type: 'text', text: `Set-of-Marks image ${img.width}x${img.height} points, origin (${img.origin.x},${img.origin.y}): box number N is element eN` });
      }
      return { content };
    }),
  );

  server.registerTool(
    'screenshot',
    {
      title: 'Screenshot',
      description: 'A screenshot of a display, in logical points (image pixel (x, y) = screen point origin + (x, y)). Apps masked by the policy are blacked out.',
      inputSchema: {
        display: z.number().int().optional().describe('Display id (default primary)'),
        format: z.enum(['png', 'jpeg']).optional().describe('Image format (default png)'),
      },
      annotations: { title: 'Screenshot', ...READ_ONLY, idempotentHint: false },
    },
    safe(async (a) => {
      const { display, image } = await deps.observer.capture(a.display);
      const img = await encodeImage(image, a.format ?? 'png');
      return {
        content: [
          { type: 'image', data: img.data.toString('base64'), mimeType: img.mimeType },
          { type: 'text', text: `display ${display.id}: ${img.width}x${img.height} px, origin (${img.origin.x},${img.origin.y}), ${img.scale} px per point` },
        ],
      };
    }),
  );

  server.registerTool(
    'find',
    {
      title: 'Find elements',
      description:
        'Find elements by text (substring of name or value), role (button, textbox, link, checkbox, menuitem, heading, text, …) or exact name, in the latest observation (or a fresh one with refresh: true, or when none exists).',
      inputSchema: {
        text: z.string().min(1).optional().describe('Case-insensitive substring of the name or value'),
        role: z.string().min(1).optional().describe('Role, e.g. button'),
        name: z.string().min(1).optional().describe('Exact name (case-insensitive)'),
        refresh: z.boolean().optional().describe('Observe again first (default: only when there is no observation yet)'),
        limit: z.number().int().min(1).max(200).optional().describe('Most matches returned (default 20)'),
      },
      annotations: { title: 'Find elements', ...READ_ONLY, idempotentHint: false },
    },
    safe(async (a) => {
      if (a.text === undefined && a.role === undefined && a.name === undefined) throw new DeskdError('VALIDATION_FAILED', 'find: give text, role or name');
      const o = a.refresh || !state.latest ? await observe({}) : state.latest;
      const hits = findElements(o.elements, a);
      const limit = a.limit ?? 20;
      const lines = [`${hits.length} match${hits.length === 1 ? '' : 'es'} in observation ${o.observationId}`, ...hits.slice(0, limit).map(formatElement)];
      if (hits.length > limit) lines.push(`… ${hits.length - limit} more`);
      return text(lines.join('\n'));
    }),
  );

  server.registerTool(
    'click',
    {
      title: 'Click',
      description: 'Click an element (by ref) or a point (x, y in logical screen points). Checked by the permission policy; may wait for the operator.',
      inputSchema: {
        ...RefArgs,
        button: z.enum(['left', 'right', 'middle']).optional().describe('Mouse button (default left)'),
        double: z.boolean().optional().describe('Double-click (left button)'),
        keys: HeldKeys,
      },
      annotations: { title: 'Click', ...ACTS },
    },
    safe(async (a) => {
      const w = where(a, 'click');
      const keys = a.keys ? { keys: a.keys } : {};
      const action: Action = a.double ? { type: 'double_click', ...w, ...keys } : { type: 'click', button: a.button ?? 'left', ...w, ...keys };
      return act([action], a.double ? 'double_click' : 'click');
    }),
  );

  server.registerTool(
    'type',
    {
      title: 'Type text',
      description: 'Type literal text into the focused element, or click the element given by ref first. Use keypress for chords (ctrl+c, enter).',
      inputSchema: {
        text: z.string().min(1).max(10000).describe('Text to type'),
        ref: RefArgs.ref.describe('Click this element first (e.g. a text field)'),
        observationId: RefArgs.observationId,
      },
      annotations: { title: 'Type text', ...ACTS },
    },
    safe(async (a) => {
      const actions: Action[] = [];
      if (a.ref) actions.push({ type: 'click', button: 'left', target: { ref: a.ref, observationId: latestId(a.observationId) } });
      actions.push({ type: 'type', text: a.text });
      return act(actions, `type (${a.text.length} characters)`);
    }),
  );

  server.registerTool(
    'keypress',
    {
      title: 'Press keys',
      description: 'Press a key or chord, e.g. ["enter"], ["ctrl", "c"], ["alt", "f4"]. Keys are pressed in order and released in reverse.',
      inputSchema: { keys: z.array(z.string().min(1).max(32)).min(1).max(8).describe('Key names: modifiers ctrl, shift, alt, meta; enter, tab, escape, f1…f12, arrows, single characters') },
      annotations: { title: 'Press keys', ...ACTS },
    },
    safe(async (a) => act([{ type: 'keypress', keys: a.keys }], `keypress ${a.keys.join('+')}`)),
  );

  server.registerTool(
    'scroll',
    {
      title: 'Scroll',
      description: 'Scroll at an element (ref) or point by scroll_x/scroll_y logical points (positive = right/down; about 50 points per wheel step).',
      inputSchema: {
        ...RefArgs,
        scroll_x: z.number().finite().min(-100000).max(100000).optional().describe('Points to scroll right (negative: left)'),
        scroll_y: z.number().finite().min(-100000).max(100000).optional().describe('Points to scroll down (negative: up)'),
        keys: HeldKeys,
      },
      annotations: { title: 'Scroll', ...ACTS },
    },
    safe(async (a) => act([{ type: 'scroll', ...where(a, 'scroll'), scroll_x: a.scroll_x ?? 0, scroll_y: a.scroll_y ?? 0, ...(a.keys ? { keys: a.keys } : {}) }], 'scroll')),
  );

  server.registerTool(
    'drag',
    {
      title: 'Drag',
      description: 'Press the left button at path[0], move through each point, release at the last (logical screen points).',
      inputSchema: { path: z.array(Point).min(2).max(1000).describe('Points of the drag, at least two'), keys: HeldKeys },
      annotations: { title: 'Drag', ...ACTS },
    },
    safe(async (a) => act([{ type: 'drag', path: a.path, ...(a.keys ? { keys: a.keys } : {}) }], 'drag')),
  );

  server.registerTool(
    'press',
    {
      title: 'Press an element',
      description:
        "Run an element's default action (a button's press, a link's activation) through the accessibility API; a pointer click at its centre when it has none. Give ref (from observe/find) or text/role/name. The answer says via accessibility or via pointer, and what was hit.",
      inputSchema: ElementArgs,
      annotations: { title: 'Press an element', ...ACTS },
    },
    safe(async (a) => act([{ type: 'press', target: elementTarget(a, 'press') }], 'press')),
  );

  server.registerTool(
    'set_value',
    {
      title: 'Set the value of a text field',
      description:
        'Replace the whole text of an editable element (accessibility EditableText; otherwise it is focused, its text selected and the value typed). Any Unicode text. Password fields are refused by the policy. Give ref or text/role/name.',
      inputSchema: { ...ElementArgs, value: z.string().max(10000).describe('The new text') },
      annotations: { title: 'Set the value of a text field', ...ACTS },
    },
    safe(async (a) => {
      const { value, ...where } = a;
      return act([{ type: 'set_value', target: elementTarget(where, 'set_value'), value }], `set_value (${value.length} characters)`);
    }),
  );

  server.registerTool(
    'focus',
    {
      title: 'Focus an element',
      description: 'Give an element the keyboard focus (accessibility GrabFocus), e.g. before keypress. Give ref or text/role/name.',
      inputSchema: ElementArgs,
      annotations: { title: 'Focus an element', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    safe(async (a) => act([{ type: 'focus', target: elementTarget(a, 'focus') }], 'focus')),
  );

  server.registerTool(
    'wait_for',
    {
      title: 'Wait for text',
      description:
        'Observe repeatedly until an element whose name or value contains the text appears (or disappears, with gone: true), or the timeout passes (error TIMEOUT). Or, with cell/pair instead of text: wait until a table cell or a KPI value shows a text (woken by accessibility events and screen changes; the answer gives the read id, the text and its bounds).',
      inputSchema: {
        text: z.string().min(1).optional().describe('Case-insensitive substring of an element name or value (or give cell / pair)'),
        cell: CellPredicateSchema.optional().describe('Wait until this table cell shows a text: {table?, row: {column, equals}, column, equals | matches}'),
        pair: PairPredicateSchema.optional().describe('Wait until this label → value pair shows a value: {label, equals | matches}'),
        role: z.string().min(1).optional().describe('Only elements with this role'),
        gone: z.boolean().optional().describe('Wait until no element matches instead'),
        timeoutMs: z.number().int().min(0).max(120000).optional().describe('Give up after this many milliseconds (default 10000)'),
        intervalMs: z.number().int().min(50).max(10000).optional().describe('Pause between observations, ms (default 500)'),
        ocr: z.boolean().optional().describe('Include OCR text (default true)'),
      },
      annotations: { title: 'Wait for text', ...READ_ONLY, idempotentHint: false },
    },
    safe(async (a, signal) => {
      if (a.cell || a.pair) {
        if (a.text !== undefined || a.gone !== undefined) throw new DeskdError('VALIDATION_FAILED', 'wait_for: give text, or cell / pair, not both');
        const w = await readServiceFor(deps).waitFor({ ...(a.cell ? { cell: a.cell } : {}), ...(a.pair ? { pair: a.pair } : {}) }, { timeoutMs: a.timeoutMs ?? 10000, ocr: a.ocr ?? true, signal, actor });
        const e = w.evidence;
        const where = e.kind === 'cell' ? `${e.tableTitle ?? e.table} row ${JSON.stringify(e.row)} column ${JSON.stringify(e.column)}` : `pair ${JSON.stringify(e.label)}`;
        const b = e.bounds;
        return text(`holds after ${w.polls} reads (${w.elapsedMs} ms): ${where} shows ${JSON.stringify(e.text)} at (${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}); read ${w.read.readId}, observation ${w.observation.observationId}`);
      }
      if (a.text === undefined) throw new DeskdError('VALIDATION_FAILED', 'wait_for: give text, cell or pair');
      const deadline = Date.now() + (a.timeoutMs ?? 10000);
      const q: FindQuery = { text: a.text, ...(a.role ? { role: a.role } : {}) };
      let tries = 0;
      for (;;) {
        tries++;
        const o = await observe({ ocr: a.ocr ?? true });
        const hits = findElements(o.elements, q);
        if (a.gone ? hits.length === 0 : hits.length > 0) {
          const head = a.gone ? `"${a.text}" is gone` : `found "${a.text}"`;
          return text([`${head} after ${tries} observation${tries === 1 ? '' : 's'} (observation ${o.observationId})`, ...hits.slice(0, 20).map(formatElement)].join('\n'));
        }
        if (signal.aborted) throw new DeskdError('TIMEOUT', 'wait_for was cancelled by the client');
        const left = deadline - Date.now();
        if (left <= 0) throw new DeskdError('TIMEOUT', `"${a.text}" ${a.gone ? 'still present' : 'not found'} after ${tries} observations (${a.timeoutMs ?? 10000} ms)`);
        await sleep(Math.min(a.intervalMs ?? 500, left), undefined, { signal }).catch(() => undefined);
      }
    }),
  );

  server.registerTool(
    'read',
    {
      title: 'Read tables, boards and KPI values',
      description:
        'Read the screen as data: tables (headers and rows, aligned as text), boards (columns of cards) and label → value pairs (KPI cards, gauges). scroll: true scrolls the table through all its rows and back (scroll actions, checked by the permission policy). since: an earlier read id gives the changed cells. json: true answers the full JSON (bounds, refs).',
      inputSchema: {
        kind: z.enum(['table', 'board', 'pairs', 'all']).optional().describe('Which structures (default all)'),
        window: z.string().min(1).max(300).optional().describe('Only this window: id, or part of its title or app name'),
        region: z.object({ x: z.number().finite(), y: z.number().finite(), width: z.number().positive(), height: z.number().positive() }).optional().describe('Only this rectangle, logical points'),
        near: z.string().min(1).max(500).optional().describe('Keep the table and board nearest the element showing this text'),
        scroll: z.boolean().optional().describe('Scroll the table through all its rows (policy-gated), then back'),
        since: z.string().min(1).max(100).optional().describe('An earlier read id: also give the changes'),
        ocr: z.boolean().optional().describe('Run OCR (default true)'),
        json: z.boolean().optional().describe('Answer the JSON of POST /v1/read instead of text'),
      },
      annotations: { title: 'Read tables, boards and KPI values', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    safe(async (a) => {
      const r = await readServiceFor(deps).read(
        {
          ...(a.kind ? { kind: a.kind } : {}),
          ...(a.window ? { window: a.window } : {}),
          ...(a.region ? { region: a.region } : {}),
          ...(a.near ? { near: a.near } : {}),
          ...(a.since ? { since: a.since } : {}),
          scroll: a.scroll ?? false,
          ocr: a.ocr ?? true,
        },
        a.scroll ? executorScroller(deps.executor, actor) : undefined,
      );
      if (a.json) return text(JSON.stringify(r));
      const changes = r.changes
        ? ['', `changes since ${r.changes.since}:`, ...r.changes.tables.flatMap((t) => [...t.changed.flatMap((c) => c.cells.map((x) => `  ${t.title ?? t.table} ${JSON.stringify(c.key)} ${x.column}: ${JSON.stringify(x.from)} → ${JSON.stringify(x.to)}`)), ...t.added.map((x) => `  ${t.title ?? t.table} added ${JSON.stringify(x.key ?? x.cells.map((c) => c.text).join(' | '))}`), ...t.removed.map((x) => `  ${t.title ?? t.table} removed ${JSON.stringify(x.key ?? x.cells.map((c) => c.text).join(' | '))}`)]), ...r.changes.pairs.map((p) => `  ${p.label}: ${JSON.stringify(p.from)} → ${JSON.stringify(p.to)}`)]
        : [];
      return text([`read ${r.readId} (observation ${r.observationId})`, ...r.warnings.map((w) => `warning: ${w}`), '', formatRead(r), ...changes].join('\n'));
    }),
  );

  server.registerTool(
    'list_apps',
    {
      title: 'List applications and windows',
      description: 'Top-level windows (top-most first) with their app, pid, title and bounds, and the applications on the accessibility bus.',
      inputSchema: {},
      annotations: { title: 'List applications and windows', ...READ_ONLY },
    },
    safe(async () => {
      const apps = await listApps(deps.platform, deps.observer);
      const lines = [`${apps.windows.length} windows (top-most first):`, ...apps.windows.map(formatWindow)];
      lines.push(`${apps.accessible.length} accessible applications:`, ...apps.accessible.map((a) => `${a.name}${a.windows.length ? `: ${a.windows.map((w) => JSON.stringify(w)).join(', ')}` : ''}`));
      if (apps.warning) lines.push(`warning: ${apps.warning}`);
      return text(lines.join('\n'));
    }),
  );

  server.registerTool(
    'list_windows',
    {
      title: 'List windows',
      description: 'Visible top-level windows, top-most first, with the id focus_window takes, app, pid, title, bounds and which one has the keyboard focus (windows the policy masks are left out). Same as GET /v1/windows.',
      inputSchema: {},
      annotations: { title: 'List windows', ...READ_ONLY, idempotentHint: false },
    },
    safe(async () => {
      const [windows, focused] = await Promise.all([deps.observer.windowsForAgent(), deps.platform.windows.focused().catch(() => null)]);
      const lines = [`${windows.length} window${windows.length === 1 ? '' : 's'} (top-most first):`, ...windows.map((w) => `${formatWindow(w)}${w.id === focused?.id ? ' [focused]' : ''}`)];
      return text(lines.join('\n'));
    }),
  );

  server.registerTool(
    'focus_window',
    {
      title: 'Focus a window',
      description:
        'Raise a top-level window and give it the keyboard focus (EWMH _NET_ACTIVE_WINDOW under a window manager, XRaiseWindow + XSetInputFocus without one). window is an id from list_windows. Checked by the permission policy like any action.',
      inputSchema: { window: z.string().regex(/^0x[0-9a-f]+$|^\d+$/i).max(32).describe('Window id from list_windows, e.g. 0x1a00003') },
      annotations: { title: 'Focus a window', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    safe(async (a) => {
      const r = await act([{ type: 'focus_window', window: a.window }], `focus_window ${a.window}`);
      const now = await deps.platform.windows.focused().catch(() => null);
      const first = r.content[0];
      return text(`${first && first.type === 'text' ? first.text : ''}\n${now?.id === a.window ? 'focused' : `focus not confirmed: the focused window is ${now ? formatWindow(now) : 'none'}`}`);
    }),
  );

  server.registerTool(
    'focus_app',
    {
      title: 'Focus an application window',
      description:
        'Bring an application\'s window to the front by clicking its top strip (title bar or header bar), which every click-to-focus window manager honours. The click goes through the policy like any click. Give app (process name, WM_CLASS or accessible name, case-insensitive) or windowId from list_apps.',
      inputSchema: {
        app: z.string().min(1).optional().describe('Application name, e.g. gnome-calculator'),
        windowId: z.string().min(1).optional().describe('Window id from list_apps'),
      },
      annotations: { title: 'Focus an application window', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    safe(async (a) => {
      if (!a.app && !a.windowId) throw new DeskdError('VALIDATION_FAILED', 'focus_app: give app or windowId');
      // Windows the policy masks are not offered (nor named in the error below).
      const wins = await deps.observer.windowsForAgent();
      const want = a.app?.toLowerCase();
      const win = wins.find((w) => (a.windowId ? w.id === a.windowId : [w.app, w.wmClass, w.instance, w.title, w.bundleId].some((v) => v?.toLowerCase() === want)));
      if (!win) throw new DeskdError('REF_NOT_FOUND', `No window for ${a.windowId ? `id ${a.windowId}` : `app "${a.app}"`}; windows: ${wins.map((w) => w.app ?? w.id).join(', ') || 'none'}`);
      const focused = await deps.platform.windows.focused().catch(() => null);
      if (focused?.id === win.id) return text(`${formatWindow(win)} already has focus`);
      const p = focusPoint(win);
      const r = await act([{ type: 'click', button: 'left', x: p.x, y: p.y }], `focus ${win.app ?? win.id} (click on its top strip)`);
      const now = await deps.platform.windows.focused().catch(() => null);
      const ok = now?.id === win.id;
      const first = r.content[0];
      return text(`${first && first.type === 'text' ? first.text : ''}\n${ok ? 'focused' : `focus not confirmed: the focused window is ${now ? formatWindow(now) : 'none'}`}`);
    }),
  );

  if (deps.replay) registerReplayTools(server, deps.replay);

  return server;
}

/** One line per window: `0x1a00003 gnome-calculator (pid 42) "Calculator" at 0,0 600x800`. */
export function formatWindow(w: WindowInfo): string {
  const b = w.bounds;
  return `${w.id} ${w.app ?? w.wmClass ?? '?'}${w.pid !== null ? ` (pid ${w.pid})` : ''} ${JSON.stringify(w.title ?? '')} at ${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`;
}

/**
 * Where focus_app clicks: the middle of the window's top strip, 8 points below its top edge (inside a
 * title bar or a client-side header bar), clamped inside the window.
 */
export function focusPoint(w: WindowInfo): { x: number; y: number } {
  const b = w.bounds;
  return { x: Math.round(b.x + b.width / 2), y: Math.round(b.y + Math.min(8, Math.max(0, b.height / 2))) };
}

/**
 * Windows and accessible applications (with their window names), for `list_apps`. With `observer`, what
 * the policy masks is left out: masked windows, and masked apps and windows on the accessibility bus
 * whether their windows are visible or not (unmapped, minimised, off-workspace).
 */
export async function listApps(
  platform: Platform,
  observer?: Pick<Observer, 'windowsForAgent' | 'accessibleForAgent'>,
): Promise<{ windows: WindowInfo[]; accessible: { name: string; windows: string[] }[]; warning: string | null }> {
  const windows = observer ? await observer.windowsForAgent() : await platform.windows.list();
  try {
    const snap = await platform.accessibility.snapshot({ scope: 'all', budget: { maxDepth: 2, maxNodes: 400, timeMs: 2000 } });
    const roots = observer ? await observer.accessibleForAgent(snap.roots) : snap.roots;
    const accessible = roots.map((r) => ({ name: r.name, windows: r.children.filter((c) => c.role === 'window' || c.role === 'dialog').map((c) => c.name) }));
    return { windows, accessible, warning: null };
  } catch (e) {
    return { windows, accessible: [], warning: `accessibility: ${(e as Error).message}` };
  }
}
