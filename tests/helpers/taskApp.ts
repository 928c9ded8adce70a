/**
 * The task routes (`/v1/tasks`, src/http/taskRoutes.ts) on a bare Fastify app for the model-driven task tests
 * (tests/integration/tasks.test.ts, anthropicTasks.test.ts), driven with `app.inject` (no socket, no auth).
 */
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
