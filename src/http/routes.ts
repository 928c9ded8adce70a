import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Platform } from '../platform/types.js';
import { ActionsBodySchema } from '../actuation/schema.js';
import { parseActionsBody } from '../actuation/parse.js';
import { encodeImage } from '../perception/image.js';
import type { ActionJournal } from '../actuation/journal.js';
import { annotateScreenshot } from '../perception/annotate.js';
import { isCovered } from '../perception/occlusion.js';
import { registerFindRoutes, type FindRouteDeps } from './findRoutes.js';
import { CLIENT_HEADER, clientIdentity } from './lease.js';
import { runtimeInfo } from '../service/nodeRuntime.js';
import { principalOf } from '../governance/agents.js';
import { splitReason } from '../governance/reason.js';
import {
  ActionsResponseSchema,
  ErrorBodySchema,
  HealthSchema,
  ObservationSchema,
  ObserveBodySchema,
  ScreenshotQuerySchema,
  WindowsResponseSchema,
  observationBody,
} from './schemas.js';

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 429: ErrorBodySchema, 500: ErrorBodySchema };

/** What the v1 routes use of the app (a narrow slice of `AppDeps`, so this module never imports `src/app.ts`). */
export interface V1RouteDeps extends FindRouteDeps {
  platform: Platform;
  /** The daemon version, reported by `GET /v1/health`. */
  version: string;
  /** Warnings shown by `GET /v1/health` (e.g. OCR unavailable). */
  warnings?: string[] | undefined;
}

/**
 * HTTP API v1: health, screenshot, observe, actions. Error responses are `{"error": {code, message}}`
 * (see `src/errors.ts` and `docs/errors.md`).
 */
export async function registerV1Routes(fastify: FastifyInstance, deps: V1RouteDeps, journal: ActionJournal): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/v1/health',
    { schema: { summary: 'Daemon status, version, platform and displays (no auth)', security: [], response: { 200: HealthSchema } } },
    async () => {
      const warnings = [...(deps.warnings ?? [])];
      let displays: Awaited<ReturnType<typeof deps.platform.capture.displays>> = [];
      try {
        displays = await deps.platform.capture.displays();
      } catch (e) {
        warnings.push(`displays: ${(e as Error).message}`);
      }
      const ax = deps.platform.accessibility.status?.();
      const degradedReasons = ax?.degraded ? [`accessibility: ${ax.reason ?? 'degraded'}`] : [];
      const { name, version, supported } = runtimeInfo();
      return { status: 'ok' as const, version: deps.version, runtime: { name, version, supported }, platform: deps.platform.name, displays, warnings, degraded: degradedReasons.length > 0, degradedReasons };
    },
  );

  app.get(
    '/v1/screenshot',
    {
      config: { perceive: true },
      schema: {
        summary: 'Screenshot of a display. By default in logical points (image pixel = click point); header X-Deskd-Scale gives pixels per point.',
        querystring: ScreenshotQuerySchema,
        response: { 200: z.any().describe('image/png or image/jpeg'), ...errors },
      },
    },
    async (req, reply) => {
      const { display: d, image } = await deps.observer.capture(req.query.display);
      const img = await encodeImage(image, req.query.format, { toPoints: req.query.scale === 'points' });
      void reply
        .header('content-type', img.mimeType)
        .header('x-deskd-scale', String(img.scale))
        .header('x-deskd-origin', `${img.origin.x},${img.origin.y}`)
        .header('x-deskd-display', String(d.id))
        .header('cache-control', 'no-store');
      return reply.send(img.data);
    },
  );

  app.get(
    '/v1/windows',
    {
      config: { perceive: true },
      schema: {
        summary: 'Visible top-level windows, top-most first (windows the policy masks are left out); ids for the focus_window action',
        response: { 200: WindowsResponseSchema, ...errors },
      },
    },
    async () => {
      const [windows, focused] = await Promise.all([deps.observer.windowsForAgent(), deps.platform.windows.focused().catch(() => null)]);
      return {
        windows: windows.map((w) => ({ id: w.id, app: w.app, pid: w.pid, title: w.title, bounds: w.bounds, focused: w.id === focused?.id, ...(w.wmClass ? { wmClass: w.wmClass } : {}), ...(w.bundleId ? { bundleId: w.bundleId } : {}) })),
      };
    },
  );

  app.post(
    '/v1/observe',
    {
      config: { perceive: true },
      schema: {
        summary:
          'Observe a display: OCR words and lines, accessibility elements fused into one list with refs, optional screenshot (annotate: true boxes each element with its ref number, Set-of-Marks)',
        body: ObserveBodySchema.prefault({}),
        response: { 200: ObservationSchema, ...errors },
      },
    },
    async (req) => {
      const { annotate, includeCovered, ...opts } = req.body;
      if (annotate && opts.screenshot === 'none') opts.screenshot = 'png';
      const stored = await deps.observer.observe(opts);
      // The stored observation keeps every element (refs stay valid); the answer leaves out those other
      // windows cover completely unless asked for (then they carry the state `covered`).
      const o = includeCovered ? stored : { ...stored, elements: stored.elements.filter((e) => !isCovered(e)) };
      if (annotate && o.screenshot) {
        // The stored observation keeps the plain screenshot; only the answer carries the marks.
        return observationBody({ ...o, screenshot: await annotateScreenshot(o.screenshot, o.elements, { includeCovered }) }, true);
      }
      return observationBody(o);
    },
  );

  app.post(
    '/v1/actions',
    {
      // Needs the controller lease (app.ts decides on the routed route, never the raw URL).
      config: { acting: true },
      // The body is validated by parseActionsBody, which gives UNKNOWN_ACTION / VALIDATION_FAILED with the
      // failing action's index; the schema here documents it in the OpenAPI document.
      validatorCompiler: () => (data: unknown) => ({ value: data }),
      schema: {
        summary:
          'Run one action (OpenAI computer-use shape) or {"actions": [...]} in order; all are validated and decided by the policy before any is dispatched. 202 when an action waits for the operator (poll GET /v1/actions/:id).',
        body: ActionsBodySchema,
        response: {
          200: ActionsResponseSchema,
          202: z.object({ actionId: z.string(), status: z.literal('pending_approval'), approvals: z.array(z.object({ id: z.string(), index: z.number(), ruleId: z.string(), reason: z.string() })) }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      // The audit actor is the credential and client that acted (`agent/default`, `agent/planner-1`, `operator/default`).
      // `reason` (issue 17): on the action or the batch, and per action inside a batch; audited with each decision.
      const r = splitReason(req.body);
      const s = await deps.executor.submit(parseActionsBody(r.body), clientIdentity(principalOf(req.deskdRole, req.deskdAgent?.id), req.headers[CLIENT_HEADER]), { ...(r.reason !== undefined ? { reason: r.reason } : {}), ...(r.reasons ? { reasons: r.reasons } : {}) });
      if (s.status === 'done') return s;
      const entry = journal.track(s);
      return reply.code(202).send({ actionId: entry.actionId, status: 'pending_approval' as const, approvals: entry.approvals });
    },
  );

  await registerFindRoutes(fastify, deps);
}
