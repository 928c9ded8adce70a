import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeskdError } from '../errors.js';
import { ErrorBodySchema } from '../http/schemas.js';
import type { ApprovalManager } from '../policy/approvals.js';
import type { AuditLog } from '../policy/audit.js';
import type { ControllerLease } from '../http/lease.js';
import { AddAgentBodySchema, AgentIdSchema, agentOfActor, type AgentIdentity, type AgentRegistry } from './agents.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The named agent that authenticated the request (absent for the default agent token and the operator). */
    deskdAgent?: AgentIdentity;
  }
}

/** What the governance routes need (`buildApp`'s `governance`). */
export interface GovernanceDeps {
  agents: AgentRegistry;
  /**
   * `GET /v1/policy/explain`: each layer's matching rules and the combined decision for one action
   * (see `src/governance/layers.ts` `explain`). Absent → the route answers 404 `NOT_FOUND`.
   */
  explain?: (input: { action: unknown; target?: unknown; agent?: string }) => unknown;
  /** `GET /metrics`: Prometheus text exposition (see `src/telemetry/metrics.ts`). Absent → no route. */
  metrics?: () => Promise<string>;
  /** Checked before a new agent's policy overlay is accepted (the file must parse); throws `POLICY_INVALID`. */
  checkOverlay?: (file: string) => Promise<void>;
  /**
   * Task id → the agent that started it (`POST /v1/tasks`), filled by `buildApp`. The gate decides a task's
   * actions (`task:<id>`) under that agent's layers, and revoking the agent cancels its tasks.
   */
  taskAgents?: Map<string, string>;
  /** Cancel a task (revocation of the agent that started it). */
  cancelTask?: (taskId: string) => void;
}

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema };
const AgentView = z.object({ id: z.string(), role: z.enum(['observer', 'actor']), policy: z.string().optional(), createdAt: z.number().optional() });

/**
 * Operator-only governance routes (issue 17):
 * - `POST /v1/agents {id, role, policy?}` → `{agent, token}` (the token is shown this once);
 * - `GET /v1/agents` → `{agents}` (never tokens or hashes);
 * - `DELETE /v1/agents/:id` → `{revoked}`; the token is refused from then on;
 * - `GET /v1/policy/explain?action=<json>&target=<json>&agent=<id>` → each layer's matches and the decision;
 * - `GET /metrics` → Prometheus text format 0.0.4.
 */
export async function registerGovernanceRoutes(fastify: FastifyInstance, deps: GovernanceDeps, wiring: RevocationWiring = {}): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const tasks = deps.taskAgents;
  const unwire = wireAgentEvents(
    deps.agents,
    { ...(tasks ? { taskAgent: (id: string) => tasks.get(id), ...(deps.cancelTask ? { cancelTasksOf: (agent: string) => { for (const [t, a] of tasks) if (a === agent) deps.cancelTask!(t); } } : {}) } : {}), ...wiring },
    (e) => fastify.log.error({ err: e }, 'audit write failed on an agent change'),
  );
  if (tasks) {
    // Remember which agent started each task (the answer of POST /v1/tasks carries its id).
    fastify.addHook('preSerialization', async (req, _reply, payload) => {
      if (req.method === 'POST' && req.routeOptions.url === '/v1/tasks' && req.deskdAgent && payload && typeof payload === 'object') {
        const id = (payload as { taskId?: unknown }).taskId;
        if (typeof id === 'string') tasks.set(id, req.deskdAgent.id);
      }
      return payload;
    });
  }
  fastify.addHook('onClose', async () => unwire());
  const operator = { role: 'operator' } as const;

  app.post(
    '/v1/agents',
    { config: operator, schema: { summary: 'Register a named agent credential (operator); answers its token once', body: AddAgentBodySchema, response: { 200: z.object({ agent: AgentView, token: z.string() }), ...errors } } },
    async (req) => {
      if (req.body.policy && deps.checkOverlay) await deps.checkOverlay(req.body.policy);
      const r = await deps.agents.add(req.body);
      return { agent: r.agent, token: r.token };
    },
  );

  app.get('/v1/agents', { config: operator, schema: { summary: 'Named agent credentials (operator)', response: { 200: z.object({ agents: z.array(AgentView) }), ...errors } } }, async () => ({
    agents: deps.agents.list(),
  }));

  app.delete(
    '/v1/agents/:id',
    { config: operator, schema: { summary: "Revoke an agent's credential (operator): refused from the next request on", params: z.object({ id: AgentIdSchema }), response: { 200: z.object({ revoked: AgentView }), ...errors } } },
    async (req) => {
      const a = await deps.agents.revoke(req.params.id);
      if (!a) throw new DeskdError('NOT_FOUND', `No agent "${req.params.id}"`);
      return { revoked: a };
    },
  );

  app.get(
    '/v1/policy/explain',
    {
      config: operator,
      schema: {
        summary: "Why an action would be allowed, asked or denied: each policy layer's matching rules and the combined decision (operator)",
        querystring: z.object({ action: z.string().min(2).max(20000).describe('The action as JSON'), target: z.string().max(20000).optional().describe('The target as JSON (app, window, element, url)'), agent: z.string().max(64).optional() }).strict(),
        response: { 200: z.looseObject({ decision: z.looseObject({ effect: z.string() }) }), ...errors },
      },
    },
    async (req) => {
      if (!deps.explain) throw new DeskdError('NOT_FOUND', 'Policy explanation is not available in this daemon');
      const json = (s: string, what: string): unknown => {
        try {
          return JSON.parse(s);
        } catch (e) {
          throw new DeskdError('VALIDATION_FAILED', `${what} is not valid JSON: ${(e as Error).message}`);
        }
      };
      return deps.explain({ action: json(req.query.action, 'action'), ...(req.query.target ? { target: json(req.query.target, 'target') } : {}), ...(req.query.agent ? { agent: req.query.agent } : {}) }) as { decision: { effect: string } };
    },
  );

  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', { config: operator, schema: { summary: 'Metrics in the Prometheus text format (operator)', response: { 200: z.string(), ...errors } } }, async (_req, reply) => {
      const text = await metrics();
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
    });
  }
}

/** What a revocation reaches besides the registry itself. */
export interface RevocationWiring {
  lease?: ControllerLease;
  approvals?: ApprovalManager;
  audit?: AuditLog;
  /** The agent that started a task (`task:<id>` actors), for cancelling a task's approvals. */
  taskAgent?: (taskId: string) => string | undefined;
  /** Cancel every task the agent started. */
  cancelTasksOf?: (agentId: string) => void;
}

/**
 * On `revoked`: deny every pending approval of the agent (over HTTP, MCP or its tasks), free the lease if
 * it holds it, and write an `agent` audit record (`event: 'revoke'`, with how many approvals were denied).
 * On `added`: an `agent` record (`event: 'add'`, id, role, overlay path). Audit failures go to `onError`.
 * @returns a function that removes the listeners.
 */
export function wireAgentEvents(agents: AgentRegistry, w: RevocationWiring, onError: (e: unknown) => void = () => {}): () => void {
  const onRevoked = (a: AgentIdentity) => {
    const cancelled = w.approvals?.cancelWhere((actor) => agentOfActor(actor, w.taskAgent) === a.id, `revoked:${a.id}`) ?? 0;
    w.cancelTasksOf?.(a.id);
    const cur = w.lease?.current();
    const released = !!cur && cur.holder.startsWith(`agent:${a.id}/`) && w.lease!.release(cur.holder, true);
    w.audit?.append('agent', { event: 'revoke', agent: a.id, role: a.role, cancelledApprovals: cancelled, leaseReleased: released }).catch(onError);
  };
  const onAdded = (a: AgentIdentity) => {
    w.audit?.append('agent', { event: 'add', agent: a.id, role: a.role, ...(a.policy ? { policy: a.policy } : {}) }).catch(onError);
  };
  agents.on('revoked', onRevoked);
  agents.on('added', onAdded);
  return () => {
    agents.off('revoked', onRevoked);
    agents.off('added', onAdded);
  };
}
