import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeskdError } from '../errors.js';
import type { ApprovalManager } from '../policy/approvals.js';
import type { HaltSwitch } from '../policy/halt.js';
import type { AuditLog } from '../policy/audit.js';
import type { ActionJournal } from '../actuation/journal.js';
import { ErrorBodySchema } from './schemas.js';
import { CLIENT_HEADER, clientIdentity } from './lease.js';

/** What the policy routes need. */
export interface PolicyRouteDeps {
  approvals: ApprovalManager;
  halt: HaltSwitch;
  audit: AuditLog;
  journal: ActionJournal;
}

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema };

const HaltResponse = z.object({
  state: z.object({ halted: z.boolean(), reason: z.string().nullable(), by: z.string().nullable(), since: z.number().describe('epoch ms') }),
});

/** Route option marking a route as operator-only (checked in app.ts's preHandler). */
export const OPERATOR_ONLY = { role: 'operator' } as const;

/**
 * Approvals, kill switch, audit and action outcomes:
 * - `GET /v1/approvals`, `POST /v1/approvals/:id` (operator only);
 * - `POST /v1/halt` (agent or operator), `POST /v1/resume` (operator only);
 * - `GET /v1/audit` (operator only);
 * - `GET /v1/actions/:id?waitMs=` (the outcome of a batch answered 202 `pending_approval`).
 */
export async function registerPolicyRoutes(fastify: FastifyInstance, deps: PolicyRouteDeps): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/v1/approvals', { config: OPERATOR_ONLY, schema: { summary: 'Pending and recent approvals (operator)', response: { 200: z.looseObject({ approvals: z.array(z.looseObject({ id: z.string(), status: z.string() })) }), ...errors } } }, async () => ({
    approvals: deps.approvals.list().map((a) => ({ ...a })),
  }));

  app.post(
    '/v1/approvals/:id',
    {
      config: OPERATOR_ONLY,
      schema: {
        summary: 'Approve or deny a pending action (operator). A second decision → 409 APPROVAL_ALREADY_DECIDED',
        params: z.object({ id: z.string() }),
        body: z.object({ decision: z.enum(['approve', 'deny']), scope: z.enum(['once', 'session']).default('once') }).strict(),
        response: { 200: z.looseObject({ outcome: z.looseObject({ id: z.string(), decision: z.string() }) }), ...errors },
      },
    },
    // The approving credential (issue 17), audited with the outcome: the console's session or the operator token and its client.
    async (req) => ({ outcome: { ...deps.approvals.decide(req.params.id, { decision: req.body.decision, scope: req.body.scope }, req.headers.authorization ? clientIdentity('operator', req.headers[CLIENT_HEADER]) : 'operator/console') } }),
  );

  app.post(
    '/v1/halt',
    {
      schema: {
        summary: 'Kill switch: cancel queued and in-flight actions and refuse new ones with HALTED until an operator resumes',
        body: z.object({ reason: z.string().max(500).optional() }).strict().prefault({}),
        response: { 200: HaltResponse, ...errors },
      },
    },
    async (req) => {
      deps.halt.halt(req.deskdRole ?? 'agent', req.body.reason ?? 'halt requested');
      return { state: deps.halt.state };
    },
  );

  app.post(
    '/v1/resume',
    { config: OPERATOR_ONLY, schema: { summary: 'Resume after a halt (operator)', body: z.object({}).strict().prefault({}), response: { 200: HaltResponse, ...errors } } },
    async () => {
      deps.halt.resume('operator');
      return { state: deps.halt.state };
    },
  );

  app.get('/v1/halt', { schema: { summary: 'Kill-switch state', response: { 200: HaltResponse, ...errors } } }, async () => ({ state: deps.halt.state }));

  app.get(
    '/v1/audit',
    {
      config: OPERATOR_ONLY,
      schema: {
        summary: 'Audit records, oldest first (operator)',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(10000).default(200), sinceSeq: z.coerce.number().int().min(0).optional() }).strict(),
        response: { 200: z.looseObject({ records: z.array(z.looseObject({ seq: z.number(), kind: z.string() })) }), ...errors },
      },
    },
    async (req) => ({ records: await deps.audit.read({ limit: req.query.limit, ...(req.query.sinceSeq !== undefined ? { sinceSeq: req.query.sinceSeq } : {}) }) }),
  );

  app.get(
    '/v1/actions/:id',
    {
      schema: {
        summary: 'The outcome of an action batch; with waitMs, waits up to that long for a pending one to settle',
        params: z.object({ id: z.string() }),
        querystring: z.object({ waitMs: z.coerce.number().int().min(0).max(120000).default(0) }).strict(),
        response: { 200: z.looseObject({ actionId: z.string(), status: z.enum(['pending_approval', 'done', 'failed']) }), ...errors },
      },
    },
    async (req) => {
      const entry = await deps.journal.wait(req.params.id, req.query.waitMs);
      if (!entry) throw new DeskdError('ACTION_NOT_FOUND', `No action batch "${req.params.id}"`);
      return { ...entry };
    },
  );
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Which credential authenticated the request. */
    deskdRole?: 'agent' | 'operator';
  }
}
