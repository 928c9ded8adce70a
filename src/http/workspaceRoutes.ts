/**
 * `/v1/workspaces` (issue 22, docs/workspaces.md): create, list, inspect and delete sandboxed workspaces,
 * and launch apps into them under the policy's `launch` list. Requests for a workspace's screen and input
 * are routed by `workspaceRouting.ts`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeskdError } from '../errors.js';
import { AgentIdSchema, principalOf } from '../governance/agents.js';
import { ErrorBodySchema } from './schemas.js';
import type { WorkspaceApp } from '../workspaces/manager.js';

/** One workspace as the manager (`src/workspaces/manager.ts`) holds it, narrowed to what the routes read. */
export interface WorkspaceRecord {
  id: string;
  owner: string;
  display: string;
}

/** An app launched into a workspace (the manager's record). */
export type WorkspaceAppRecord = WorkspaceApp;

/** What these routes use (a narrow slice of the workspace manager, so this module never imports `src/app.ts`). */
export interface WorkspaceRouteDeps<W extends WorkspaceRecord = WorkspaceRecord> {
  workspaces: {
    /** @throws DeskdError `NOT_SUPPORTED`, `FORBIDDEN_FOR_CREDENTIAL`, `WORKSPACE_LIMIT`, `VIRTUAL_DISPLAY_FAILED`. */
    create(opts: { owner: string; by: string; size?: string; name?: string }): Promise<W>;
    list(): W[];
    /** @throws DeskdError `WORKSPACE_NOT_FOUND`, `WORKSPACE_FORBIDDEN`. */
    access(id: string, principal: string): W;
    /** @throws DeskdError `POLICY_DENIED`, `WORKSPACE_LIMIT`, `ACTION_FAILED`. */
    launch(ws: W, app: string, args: readonly string[]): Promise<WorkspaceAppRecord>;
    usage(ws: W): { processes: number; pids: number[]; rssBytes: number; pssBytes: number; cpuSeconds: number };
    delete(id: string): Promise<boolean>;
    summary(ws: W): z.infer<typeof SummarySchema>;
  };
  /** When present, creations, deletions and launches (allowed or denied) are audit records (kind `workspace`). */
  audit?: { append(kind: string, data: Record<string, unknown>): Promise<unknown> };
}

const AppSchema = z.object({ pid: z.number(), app: z.string(), args: z.array(z.string()), startedAt: z.number(), exitCode: z.number().nullable(), exited: z.boolean() });
const SummarySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  owner: z.string().describe('the principal it is bound to: agent:<id>, agent (default agent token) or operator'),
  display: z.string(),
  size: z.string(),
  createdAt: z.number(),
  pids: z.object({ xvfb: z.number(), dbus: z.number(), atspi: z.number() }),
  apps: z.array(AppSchema),
});
const UsageSchema = z.object({
  processes: z.number(),
  pids: z.array(z.number()),
  rssBytes: z.number().describe('sum of VmRSS: shared pages counted once per process'),
  pssBytes: z.number().describe('sum of Pss (smaps_rollup): shared pages split among the processes'),
  cpuSeconds: z.number().describe('user + system CPU time, seconds'),
});
const CreateBodySchema = z
  .object({
    size: z.string().regex(/^\d{2,5}x\d{2,5}$/).optional().describe('WxH pixels, default 1920x1080'),
    name: z.string().min(1).max(100).optional(),
    agent: AgentIdSchema.optional().describe('operator only: bind the workspace to this agent (default: the operator)'),
  })
  .strict()
  .prefault({});
const LaunchBodySchema = z.object({ app: z.string().min(1).max(4096), args: z.array(z.string().max(4096)).max(100).optional() }).strict();
const IdParams = z.object({ id: z.string().min(1).max(100) });

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 429: ErrorBodySchema, 501: ErrorBodySchema, 503: ErrorBodySchema };

const principal = (req: FastifyRequest) => principalOf(req.deskdRole, req.deskdAgent?.id);

/** Register `/v1/workspaces` and `/v1/workspaces/:id/apps`. */
export async function registerWorkspaceRoutes<W extends WorkspaceRecord>(fastify: FastifyInstance, deps: WorkspaceRouteDeps<W>): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const ws = deps.workspaces;
  const audit = (data: Record<string, unknown>) => deps.audit?.append('workspace', data).catch(() => undefined);

  app.post(
    '/v1/workspaces',
    {
      schema: {
        summary: 'Create a sandboxed workspace: a private X display, session bus and AT-SPI bus, bound to the calling agent (or, for the operator, to `agent`)',
        body: CreateBodySchema,
        response: { 200: z.object({ id: z.string(), display: z.string(), size: z.string(), owner: z.string(), name: z.string().nullable() }), ...errors },
      },
    },
    async (req) => {
      const by = principal(req);
      if (req.body.agent !== undefined && by !== 'operator') throw new DeskdError('FORBIDDEN_FOR_CREDENTIAL', 'Only the operator binds a workspace to another agent (`agent`)');
      const owner = req.body.agent !== undefined ? principalOf('agent', req.body.agent) : by;
      const w = await ws.create({ owner, by, ...(req.body.size ? { size: req.body.size } : {}), ...(req.body.name ? { name: req.body.name } : {}) });
      const s = ws.summary(w);
      void audit({ event: 'create', workspace: s.id, owner, by, display: s.display, size: s.size });
      return { id: s.id, display: s.display, size: s.size, owner: s.owner, name: s.name };
    },
  );

  app.get('/v1/workspaces', { schema: { summary: "The workspaces this credential may use (the operator's: all)", response: { 200: z.object({ workspaces: z.array(SummarySchema) }), ...errors } } }, async (req) => {
    const p = principal(req);
    return { workspaces: ws.list().filter((w) => p === 'operator' || w.owner === p).map((w) => ws.summary(w)) };
  });

  app.get(
    '/v1/workspaces/:id',
    { schema: { summary: 'One workspace with the RSS and CPU time of its processes (X server, buses, apps; from /proc)', params: IdParams, response: { 200: SummarySchema.extend({ usage: UsageSchema }), ...errors } } },
    async (req) => {
      const w = ws.access(req.params.id, principal(req));
      return { ...ws.summary(w), usage: ws.usage(w) };
    },
  );

  app.delete(
    '/v1/workspaces/:id',
    { schema: { summary: 'Delete a workspace: end its apps, X server, D-Bus and AT-SPI bus; remove its files', params: IdParams, response: { 200: z.object({ deleted: z.boolean(), pids: z.array(z.number()) }), ...errors } } },
    async (req) => {
      const w = ws.access(req.params.id, principal(req));
      const pids = ws.usage(w).pids;
      const deleted = await ws.delete(w.id);
      void audit({ event: 'delete', workspace: w.id, by: principal(req) });
      return { deleted, pids };
    },
  );

  app.post(
    '/v1/workspaces/:id/apps',
    {
      schema: {
        summary: "Launch an app into a workspace (the policy's `launch` list decides; deny by default), with the workspace's display and buses and an allowlisted environment",
        params: IdParams,
        body: LaunchBodySchema,
        response: { 200: AppSchema, ...errors },
      },
    },
    async (req) => {
      const p = principal(req);
      const w = ws.access(req.params.id, p);
      const args = req.body.args ?? [];
      try {
        const a = await ws.launch(w, req.body.app, args);
        void audit({ event: 'launch', workspace: w.id, by: p, app: a.app, args: a.args, pid: a.pid });
        return a;
      } catch (e) {
        void audit({ event: 'launch', workspace: w.id, by: p, app: req.body.app, args, refused: (e as DeskdError).code ?? 'INTERNAL' });
        throw e;
      }
    },
  );
}
