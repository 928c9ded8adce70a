import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { TaskRunner } from '../agent/loop.js';
import { ErrorBodySchema } from './schemas.js';
import { streamEvents } from './sse.js';

/** What the task routes need: the daemon's task runner. */
export interface TaskRouteDeps {
  tasks: TaskRunner;
  /** Interval of SSE keep-alive comments, ms (default 15000). */
  heartbeatMs?: number;
}

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 502: ErrorBodySchema, 503: ErrorBodySchema };

const UsageSchema = z.object({ inputTokens: z.number(), outputTokens: z.number(), totalTokens: z.number() });

/** A task as served by `GET /v1/tasks/:id` (see `TaskView` in `src/agent/types.ts`). */
export const TaskSchema = z
  .object({
    taskId: z.string(),
    goal: z.string(),
    mode: z.enum(['computer', 'functions']),
    api: z.string(),
    model: z.string(),
    maxSteps: z.number().int(),
    status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
    createdAt: z.number().describe('epoch ms'),
    startedAt: z.number().nullable(),
    finishedAt: z.number().nullable(),
    steps: z.array(
      z.object({
        index: z.number().int(),
        startedAt: z.number(),
        modelMs: z.number().describe('model latency incl. retries, ms'),
        actMs: z.number().describe('acting, approvals and fresh screenshot/observation, ms'),
        durationMs: z.number(),
        retries: z.number().int(),
        responseId: z.string().nullable(),
        usage: UsageSchema.nullable(),
        text: z.string().nullable(),
        operations: z.array(
          z.object({
            callId: z.string().nullable(),
            tool: z.string(),
            input: z.unknown(),
            outcome: z.enum(['done', 'denied', 'failed', 'skipped']),
            result: z.string().optional(),
            error: z.object({ code: z.string(), message: z.string() }).optional(),
            policy: z.object({ ruleId: z.string(), reason: z.string() }).optional(),
            durationMs: z.number(),
          }),
        ),
        safetyChecks: z.array(z.object({ id: z.string(), code: z.string().nullable(), message: z.string().nullable(), approved: z.boolean(), waitedMs: z.number() })),
      }),
    ),
    usage: UsageSchema,
    denials: z.array(z.object({ step: z.number().int(), ruleId: z.string(), reason: z.string(), code: z.string(), input: z.unknown() })),
    answer: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  })
  .meta({ id: 'Task' });

/** Body of `POST /v1/tasks`. */
export const StartTaskBodySchema = z
  .object({
    goal: z.string().min(1).max(10000).describe('What the model should do, in plain words'),
    maxSteps: z.number().int().min(1).max(200).optional().describe('Step budget (one step = one model request and its actions)'),
    model: z.string().min(1).max(200).optional().describe('Model name (default: DESKD_MODEL)'),
  })
  .strict();

const IdParams = z.object({ id: z.string().min(1).max(100) });


/**
 * Task routes (issue 6):
 * - `POST /v1/tasks` `{goal, maxSteps?, model?}` → 202 `{taskId}` (503 `MODEL_NOT_CONFIGURED` without a key);
 * - `GET /v1/tasks` (newest first), `GET /v1/tasks/:id` → the task (404 `TASK_NOT_FOUND`);
 * - `GET /v1/tasks/:id/events` → `text/event-stream`: every past event is replayed (after
 *   `Last-Event-ID` when given), then live ones; the stream ends after the `final` event;
 * - `POST /v1/tasks/:id/cancel` → the task (idempotent; a finished task is unchanged).
 * Authentication is the app's (agent or operator token).
 */
export async function registerTaskRoutes(fastify: FastifyInstance, deps: TaskRouteDeps): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const tasks = deps.tasks;

  app.post(
    '/v1/tasks',
    {
      schema: {
        summary: 'Start a model-driven task (observe → model → policy → act until done); runs after earlier tasks finish',
        body: StartTaskBodySchema,
        response: { 202: z.object({ taskId: z.string() }), ...errors },
      },
    },
    async (req, reply) => {
      const taskId = tasks.start(req.body);
      return reply.code(202).send({ taskId });
    },
  );

  app.get('/v1/tasks', { schema: { summary: 'Known tasks, newest first', response: { 200: z.object({ tasks: z.array(TaskSchema) }), ...errors } } }, async () => ({
    tasks: tasks.list(),
  }));

  app.get(
    '/v1/tasks/:id',
    { schema: { summary: 'A task: status, steps with their actions, policy decisions, timings, token usage, answer', params: IdParams, response: { 200: TaskSchema, ...errors } } },
    async (req) => tasks.get(req.params.id),
  );

  app.post(
    '/v1/tasks/:id/cancel',
    { schema: { summary: 'Cancel a task (idempotent); the body, if any, is ignored', params: IdParams, response: { 200: TaskSchema, ...errors } } },
    async (req) => tasks.cancel(req.params.id),
  );

  app.get(
    '/v1/tasks/:id/events',
    {
      schema: {
        summary: 'Server-sent events of a task: status, retry, approval, step (one per step), final. Past events are replayed; Last-Event-ID resumes.',
        params: IdParams,
        response: { 200: z.any().describe('text/event-stream'), ...errors },
      },
    },
    async (req, reply) => {
      tasks.get(req.params.id); // 404 TASK_NOT_FOUND before the stream starts
      const id = req.params.id;
      streamEvents(req, reply, {
        subscribe: (listener, after) => tasks.subscribe(id, listener, after),
        // A task already finished before `after` has no final to send again: end now.
        finished: () => ['succeeded', 'failed', 'cancelled'].includes(tasks.get(id).status),
        heartbeatMs: deps.heartbeatMs,
      });
    },
  );
}
