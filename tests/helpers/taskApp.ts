/**
 * The task routes (`/v1/tasks`, src/http/taskRoutes.ts) on a bare Fastify app for the model-driven task tests
 * (tests/integration/tasks.test.ts, anthropicTasks.test.ts), driven with `app.inject` (no socket, no auth);
 * polling for a task's progress, and closing a harness.
 */
import { rm } from 'node:fs/promises';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { DeskdError, isDeskdError } from '../../src/errors.js';
import type { TaskRunner } from '../../src/agent/loop.js';
import { registerTaskRoutes } from '../../src/http/taskRoutes.js';

/**
 * A ready Fastify app serving `runner`'s task routes with zod validation; errors answer as the daemon's do: a
 * DeskdError with its status and body, a schema failure as VALIDATION_FAILED, anything else as INTERNAL.
 * The caller closes it.
 */
export async function taskRoutesApp(runner: TaskRunner): Promise<FastifyInstance> {
  const app = Fastify().withTypeProvider();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const e = isDeskdError(err) ? err : hasZodFastifySchemaValidationErrors(err) ? new DeskdError('VALIDATION_FAILED', err.message) : new DeskdError('INTERNAL', err.message);
    void reply.code(e.status).send(e.toBody());
  });
  await registerTaskRoutes(app, { tasks: runner });
  await app.ready();
  return app;
}

/**
 * Wait until `cond()` holds, polling every 5 ms (a condition, not a timing assertion).
 * @throws Error `timed out waiting for <what>` when it does not hold after `ms` (default 5 s)
 */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Close a task harness in order: the task runner, the app, pending approvals (cancelled as `test`), the audit
 * log, the model's test server, and the temp dir.
 */
export async function closeTaskHarness(h: { runner: TaskRunner; app: FastifyInstance; approvals: { cancelAll(reason: string): void }; audit: { close(): Promise<void> }; server: { close(): Promise<void> }; dir: string }): Promise<void> {
  await h.runner.close();
  await h.app.close();
  h.approvals.cancelAll('test');
  await h.audit.close();
  await h.server.close();
  await rm(h.dir, { recursive: true, force: true });
}
