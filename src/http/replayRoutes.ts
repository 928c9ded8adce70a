import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeskdError } from '../errors.js';
import type { ReplayService } from '../replay/index.js';
import { RecordingSchema, WaitUntilSchema } from '../replay/types.js';
import { ErrorBodySchema } from './schemas.js';
import { CLIENT_HEADER, clientIdentity } from './lease.js';
import { streamEvents } from './sse.js';

/** What the replay routes need: the daemon's replay service (recorder, replayer, recordings folder). */
export interface ReplayRouteDeps {
  replay: ReplayService;
  /** Interval of SSE keep-alive comments, ms (default 15000). */
  heartbeatMs?: number;
}

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 413: ErrorBodySchema };
const IdParams = z.object({ id: z.string().min(1).max(100) });

/** Body of `POST /v1/recordings`. */
export const StartRecordingBodySchema = z
  .object({
    name: z.string().min(1).max(200).optional().describe('A name for the list'),
    goal: z.string().min(1).max(10000).optional().describe('What the recorded task does (handed to a model if a replay diverges with onDivergence "model")'),
    keepText: z.boolean().optional().describe('Store typed text (default false: each typed text becomes a {{textN}} parameter)'),
    params: z.record(z.string().max(40), z.string().max(1000)).optional().describe('With keepText: values turned into {{name}} parameters wherever they are typed, e.g. {"branch": "main"}'),
  })
  .strict()
  .prefault({});

/** Body of `POST /v1/replays`. */
export const StartReplayBodySchema = z
  .object({
    recordingId: z.string().min(1).max(100),
    params: z.record(z.string().max(40), z.string().max(10000)).optional().describe('Values of the recording\'s {{name}} parameters'),
    onDivergence: z.enum(['stop', 'model']).optional().describe('stop (default): end at the diverging step; model: a model-driven task takes over with the remaining goal'),
  })
  .strict();

const SummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  goal: z.string().nullable(),
  status: z.enum(['recording', 'stopped']),
  source: z.object({ kind: z.enum(['session', 'task']), owner: z.string(), taskId: z.string().optional() }),
  steps: z.number().int(),
  createdAt: z.number(),
  stoppedAt: z.number().nullable(),
  recordedMs: z.number().nullable(),
});
const ExportSchema = RecordingSchema.extend({ images: z.record(z.string(), z.string()).describe('Image name → URL (GET) or data URL (?images=inline)') }).meta({ id: 'Recording' });
const RectSchema = z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() });
const ReplaySchema = z
  .object({
    replayId: z.string(),
    recordingId: z.string(),
    status: z.enum(['queued', 'running', 'succeeded', 'failed', 'diverged', 'cancelled', 'handed_over']),
    onDivergence: z.enum(['stop', 'model']),
    createdAt: z.number(),
    startedAt: z.number().nullable(),
    finishedAt: z.number().nullable(),
    durationMs: z.number().nullable(),
    steps: z.array(
      z.object({
        index: z.number().int(),
        kind: z.enum(['action', 'wait']),
        outcome: z.enum(['done', 'diverged', 'failed']),
        grounded: z.object({ ref: z.string(), observationId: z.string(), score: z.number(), margin: z.number(), role: z.string(), name: z.string(), bounds: RectSchema }).optional(),
        action: z.unknown().optional(),
        observeMs: z.number(),
        actMs: z.number(),
        waitMs: z.number(),
        durationMs: z.number(),
        error: z.object({ code: z.string(), message: z.string() }).optional(),
      }),
    ),
    divergence: z
      .object({
        step: z.number().int(),
        reason: z.enum(['no_candidate', 'weak_match', 'ambiguous', 'postcondition', 'window_not_found', 'param_missing']),
        expected: z.unknown(),
        seen: z.unknown(),
        candidates: z.array(z.object({ ref: z.string(), role: z.string(), name: z.string(), app: z.string().nullable(), bounds: RectSchema, score: z.number(), features: z.record(z.string(), z.number()) })),
      })
      .nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    handoverTaskId: z.string().nullable(),
  })
  .meta({ id: 'Replay' });


/**
 * Recording and replay routes (issue 18; docs/replay.md):
 * - `POST /v1/recordings` → 201 the new recording (this client's actions and waits are recorded until
 *   stopped; 409 `RECORDING_ACTIVE`, 413 `RECORDING_LIMIT`); `POST /v1/recordings/:id/stop`;
 *   `GET /v1/recordings`; `GET /v1/recordings/:id[?images=inline]` (the JSON document, images as URLs or
 *   data URLs); `GET /v1/recordings/:id/images/:name` (PNG); `DELETE /v1/recordings/:id`.
 * - `POST /v1/replays` → 202 `{replayId}` (acting: the controller lease applies); `GET /v1/replays`,
 *   `GET /v1/replays/:id`, `GET /v1/replays/:id/events` (SSE like tasks), `POST /v1/replays/:id/cancel`.
 * Images and fingerprint texts of steps whose app the policy masks now are never served.
 * Also records an agent's successful `POST /v1/wait` as a wait step of its recording.
 */
export async function registerReplayRoutes(fastify: FastifyInstance, deps: ReplayRouteDeps): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { replay } = deps;
  // The same identity `POST /v1/actions` gives the executor as its actor: the principal (`operator`, `agent`, or
  // `agent:<id>` for a named agent credential) and the `X-Deskd-Client` header.
  const owner = (req: { deskdRole?: string; headers: Record<string, string | string[] | undefined> }) => {
    const named = (req as { deskdAgent?: { id: string } }).deskdAgent?.id;
    const principal = req.deskdRole === 'operator' ? 'operator' : named && named !== 'default' ? `agent:${named}` : 'agent';
    return clientIdentity(principal, req.headers[CLIENT_HEADER]);
  };

  // A recording client's waits are steps too (replayed as "observe until it holds").
  fastify.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'POST' || req.routeOptions.url !== '/v1/wait' || reply.statusCode !== 200 || !req.deskdRole) return;
    const body = req.body as { until?: unknown; timeoutMs?: unknown } | undefined;
    const until = WaitUntilSchema.safeParse(body?.until);
    if (!until.success) return;
    replay.recorder.recordWait(owner(req), until.data, typeof body?.timeoutMs === 'number' ? body.timeoutMs : 10000);
  });

  app.post(
    '/v1/recordings',
    { schema: { summary: "Start recording this client's actions and waits (credential + X-Deskd-Client), with target fingerprints and masked thumbnails", body: StartRecordingBodySchema, response: { 201: SummarySchema, ...errors } } },
    async (req, reply) => {
      const rec = await replay.recorder.start(owner(req), req.body);
      return reply.code(201).send({ id: rec.id, name: rec.name, goal: rec.goal, status: rec.status, source: rec.source, steps: 0, createdAt: rec.createdAt, stoppedAt: null, recordedMs: null });
    },
  );

  app.post(
    '/v1/recordings/:id/stop',
    { schema: { summary: 'Stop a recording (idempotent)', params: IdParams, response: { 200: SummarySchema, ...errors } } },
    async (req) => {
      const r = await replay.recorder.stop(req.params.id);
      return { id: r.id, name: r.name, goal: r.goal, status: r.status, source: r.source, steps: r.steps.length, createdAt: r.createdAt, stoppedAt: r.stoppedAt, recordedMs: r.recordedMs };
    },
  );

  app.get('/v1/recordings', { schema: { summary: 'Recordings, newest first', response: { 200: z.object({ recordings: z.array(SummarySchema) }), ...errors } } }, async () => ({
    recordings: await replay.store.list(),
  }));

  app.get(
    '/v1/recordings/:id',
    {
      schema: {
        summary: 'Export a recording: one JSON document (steps with fingerprints, postconditions, thumbnails); images as URLs, or data URLs with ?images=inline',
        params: IdParams,
        querystring: z.object({ images: z.enum(['urls', 'inline']).optional() }).strict(),
        response: { 200: ExportSchema, ...errors },
      },
    },
    async (req) => {
      const rec = await replay.view(await replay.store.get(req.params.id));
      const images: Record<string, string> = {};
      for (const s of rec.steps) {
        for (const name of [s.thumbnails.before, s.thumbnails.after]) {
          if (!name) continue;
          if (req.query.images === 'inline') {
            const data = await replay.store.readImage(rec.id, name).catch(() => null);
            if (data) images[name] = `data:image/png;base64,${data.toString('base64')}`;
          } else images[name] = `/v1/recordings/${rec.id}/images/${name}`;
        }
      }
      return { ...rec, images };
    },
  );

  app.get(
    '/v1/recordings/:id/images/:name',
    { schema: { summary: "A step's masked thumbnail (PNG); 404 when its app is masked now", params: z.object({ id: z.string().min(1).max(100), name: z.string().min(1).max(100) }), response: { 200: z.any().describe('image/png'), ...errors } } },
    async (req, reply) => {
      const rec = await replay.store.get(req.params.id);
      if (!(await replay.imageAllowed(rec, req.params.name))) throw new DeskdError('RECORDING_NOT_FOUND', `Recording ${rec.id} has no image "${req.params.name.slice(0, 60)}" to show`);
      const data = await replay.store.readImage(rec.id, req.params.name);
      return reply.type('image/png').header('cache-control', 'no-store').send(data);
    },
  );

  app.delete(
    '/v1/recordings/:id',
    { schema: { summary: 'Delete a recording and its images (a running one stops recording)', params: IdParams, response: { 200: z.object({ deleted: z.literal(true) }), ...errors } } },
    async (req) => {
      await replay.store.delete(req.params.id);
      replay.recorder.forget(req.params.id);
      return { deleted: true as const };
    },
  );

  app.post(
    '/v1/replays',
    {
      config: { acting: true },
      schema: {
        summary: 'Replay a recording without a model: each step re-grounds its target, acts through the policy (actor replay:<recordingId>) and waits for its postconditions; a divergence stops it',
        body: StartReplayBodySchema,
        response: { 202: z.object({ replayId: z.string() }), ...errors },
      },
    },
    async (req, reply) => reply.code(202).send({ replayId: await replay.replayer.start(req.body) }),
  );

  app.get('/v1/replays', { schema: { summary: 'Replays, newest first', response: { 200: z.object({ replays: z.array(ReplaySchema) }), ...errors } } }, async () => ({ replays: replay.replayer.list() }));

  app.get('/v1/replays/:id', { schema: { summary: 'A replay: status, steps, divergence', params: IdParams, response: { 200: ReplaySchema, ...errors } } }, async (req) => replay.replayer.get(req.params.id));

  app.post('/v1/replays/:id/cancel', { schema: { summary: 'Cancel a replay (idempotent)', params: IdParams, response: { 200: ReplaySchema, ...errors } } }, async (req) => replay.replayer.cancel(req.params.id));

  app.get(
    '/v1/replays/:id/events',
    {
      schema: {
        summary: 'Server-sent events of a replay: status, approval, step, divergence, handover, final. Past events are replayed; Last-Event-ID resumes.',
        params: IdParams,
        response: { 200: z.any().describe('text/event-stream'), ...errors },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      replay.replayer.get(id); // 404 before the stream starts
      streamEvents(req, reply, {
        subscribe: (listener, after) => replay.replayer.subscribe(id, listener, after),
        finished: () => replay.replayer.finished(id),
        heartbeatMs: deps.heartbeatMs,
      });
    },
  );
}
