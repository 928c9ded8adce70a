import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeskdError, isDeskdError } from '../errors.js';
import type { ActionPort } from '../agent/types.js';
import type { DisplayInfo } from '../platform/types.js';
import { AnthropicComputer, toolResult, type ActOutcome, type Frame } from '../agent/anthropic/computer.js';
import { COMPUTER_TOOL_VERSIONS, parseComputerCall, type ComputerToolVersion } from '../agent/anthropic/input.js';
import { DEFAULT_LIMITS, ModelSpace, type ScreenshotLimits } from '../agent/anthropic/scaling.js';
import { CLIENT_HEADER, clientIdentity } from './lease.js';
import { ErrorBodySchema } from './schemas.js';

/**
 * Anthropic's computer-use tool over HTTP (issue 20): a Claude agent posts each computer `tool_use` it
 * gets (the `input`, or the whole block) to `POST /v1/anthropic/computer` and sends the answer back to
 * Claude as the `tool_result`. `GET /v1/anthropic/computer` gives the tool definition with deskd's
 * `display_width_px` / `display_height_px` (the scaled screenshot size, see `src/agent/anthropic/scaling.ts`).
 *
 * Every action goes through the executor as the calling client (`agent/<X-Deskd-Client>`): validation,
 * the permission policy (an `ask` waits for the operator, up to the policy's approval timeout), the audit
 * log, and — the route is acting — the controller lease, checked before the handler. A refusal or failure
 * is a `tool_result` with `is_error: true` whose text is `CODE: message` (HTTP 200: the tool ran and
 * answered, as MCP tool errors do); auth, origin, lease and body-size errors keep deskd's error body.
 */

/** What the Anthropic routes need (the app's executor, displays and pointer). */
export interface AnthropicRouteDeps {
  /** The executor: every action and the screenshot go through it (policy, approvals, audit). */
  executor: ActionPort;
  /** The displays (the primary one is Claude's screen). */
  displays: () => Promise<DisplayInfo[]>;
  /** The pointer's global position, logical points (`cursor_position`, clicks without a coordinate). */
  pointer: () => Promise<{ x: number; y: number }>;
  /** Screenshot size limits (default: Anthropic's 1568 px long edge, 1.15 MP). */
  limits?: ScreenshotLimits;
  /** Pause after acting before the answer's screenshot, ms (default 300). */
  settleMs?: number;
}

const ContentSchema = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image'), source: z.object({ type: z.literal('base64'), media_type: z.literal('image/png'), data: z.string() }) }),
]);

/** The answer: a Messages API `tool_result` block (`tool_use_id` when the request carried the tool_use block). */
export const AnthropicToolResultSchema = z
  .object({
    type: z.literal('tool_result'),
    tool_use_id: z.string().optional(),
    content: z.array(ContentSchema),
    is_error: z.literal(true).optional(),
  })
  .meta({ id: 'AnthropicToolResult' });

const ToolDefinitionQuery = z.object({ version: z.enum(Object.keys(COMPUTER_TOOL_VERSIONS) as [ComputerToolVersion, ...ComputerToolVersion[]]).default('computer_20251124') }).strict();

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 409: ErrorBodySchema, 429: ErrorBodySchema, 500: ErrorBodySchema };

/** Clients whose held-button state is kept (oldest forgotten first). */
const MAX_CLIENTS = 64;

async function primaryDisplay(deps: AnthropicRouteDeps): Promise<DisplayInfo> {
  const ds = await deps.displays();
  const d = ds.find((x) => x.primary) ?? ds[0];
  if (!d) throw new DeskdError('DISPLAY_NOT_FOUND', 'No display to work on');
  return d;
}

/** Run a batch through the executor as `actor`, waiting for approvals; refusals become outcomes. */
async function act(executor: ActionPort, actions: Parameters<ActionPort['submit']>[0], actor: string): Promise<ActOutcome> {
  try {
    const s = await executor.submit(actions, actor);
    if (s.status === 'pending_approval') await s.outcome;
    return { outcome: 'done' };
  } catch (e) {
    if (!isDeskdError(e)) return { outcome: 'failed', code: 'ACTION_FAILED', message: (e as Error).message };
    if (e.code === 'POLICY_DENIED') {
      const d = (e.details ?? {}) as { ruleId?: string; reason?: string };
      return { outcome: 'denied', code: e.code, message: e.message, ruleId: d.ruleId ?? 'unknown', reason: d.reason ?? e.message };
    }
    return { outcome: 'failed', code: e.code, message: e.message };
  }
}

/** A masked screenshot of the primary display through the executor's `screenshot` action. */
async function capture(deps: AnthropicRouteDeps, actor: string): Promise<Frame> {
  const s = await deps.executor.submit([{ type: 'screenshot', format: 'png' }], actor);
  const r = s.status === 'done' ? s : await s.outcome;
  const img = r.results[0]?.image;
  if (!img) throw new DeskdError('CAPTURE_FAILED', 'The screenshot action returned no image');
  const d = await primaryDisplay(deps);
  return { png: Buffer.from(img.data, 'base64'), width: img.width, height: img.height, scale: img.scale, origin: { x: d.x, y: d.y } };
}

/** Register `GET/POST /v1/anthropic/computer` (before `app.ready()`). */
export async function registerAnthropicRoutes(fastify: FastifyInstance, deps: AnthropicRouteDeps): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const clients = new Map<string, AnthropicComputer>();
  const computerFor = (actor: string): AnthropicComputer => {
    let c = clients.get(actor);
    if (c) {
      clients.delete(actor);
      clients.set(actor, c);
      return c;
    }
    c = new AnthropicComputer(
      { act: (actions) => act(deps.executor, actions, actor), capture: () => capture(deps, actor), pointer: deps.pointer },
      { limits: deps.limits ?? DEFAULT_LIMITS, ...(deps.settleMs !== undefined ? { settleMs: deps.settleMs } : {}) },
    );
    clients.set(actor, c);
    if (clients.size > MAX_CLIENTS) clients.delete(clients.keys().next().value!);
    return c;
  };

  app.get(
    '/v1/anthropic/computer',
    {
      schema: {
        summary: "The Anthropic computer tool definition for this desktop: put `tool` in the request's `tools` and send the `beta` header",
        querystring: ToolDefinitionQuery,
        response: {
          200: z.object({
            tool: z.object({ type: z.string(), name: z.literal('computer'), display_width_px: z.number().int(), display_height_px: z.number().int(), enable_zoom: z.boolean().optional() }),
            beta: z.string().describe('anthropic-beta header value for this tool version'),
            display: z.object({ id: z.number(), x: z.number(), y: z.number(), width: z.number(), height: z.number() }).describe('The primary display, logical points'),
            pointsPerPixel: z.object({ x: z.number(), y: z.number() }).describe('Logical points per screenshot pixel, per axis'),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const d = await primaryDisplay(deps);
      const space = ModelSpace.forDisplay({ x: d.x, y: d.y }, { width: d.width, height: d.height }, { width: Math.round(d.width * d.scaleFactor), height: Math.round(d.height * d.scaleFactor) }, deps.limits ?? DEFAULT_LIMITS);
      const version = req.query.version;
      return {
        tool: { type: version, name: 'computer' as const, display_width_px: space.width, display_height_px: space.height, ...(version === 'computer_20251124' ? { enable_zoom: true } : {}) },
        beta: COMPUTER_TOOL_VERSIONS[version],
        display: { id: d.id, x: d.x, y: d.y, width: d.width, height: d.height },
        pointsPerPixel: { x: d.width / space.width, y: d.height / space.height },
      };
    },
  );

  app.post(
    '/v1/anthropic/computer',
    {
      config: { acting: true, perceive: true },
      schema: {
        summary: 'Run one Anthropic computer tool call (its `input`, or the whole `tool_use` block); answers the `tool_result` to send back to Claude',
        body: z.record(z.string(), z.unknown()).describe('{"action": "left_click", "coordinate": [x, y]} or {"type": "tool_use", "id", "name", "input"}'),
        response: { 200: AnthropicToolResultSchema, ...errors },
      },
    },
    async (req) => {
      const actor = clientIdentity(req.deskdRole ?? 'agent', req.headers[CLIENT_HEADER]);
      let call;
      try {
        call = parseComputerCall(req.body);
      } catch (e) {
        if (!isDeskdError(e)) throw e;
        const id = (req.body as { type?: unknown; id?: unknown }).type === 'tool_use' && typeof (req.body as { id?: unknown }).id === 'string' ? (req.body as { id: string }).id : undefined;
        return { type: 'tool_result' as const, ...(id ? { tool_use_id: id } : {}), content: [{ type: 'text' as const, text: `${e.code}: ${e.message}` }], is_error: true as const };
      }
      const run = await computerFor(actor).run(call.input);
      const r = toolResult(call.toolUseId ?? '', run);
      if (!call.toolUseId) delete (r as { tool_use_id?: string }).tool_use_id;
      return r;
    },
  );
}
