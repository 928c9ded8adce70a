import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger, type FastifyServerOptions } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import type { Logger } from 'pino';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  hasZodFastifySchemaValidationErrors,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { DeskdError, isDeskdError, type ErrorCode } from './errors.js';
import type { Platform } from './platform/types.js';
import type { Observer } from './perception/observer.js';
import type { Executor } from './actuation/executor.js';
import { registerV1Routes } from './http/routes.js';
import { registerPolicyRoutes, type PolicyRouteDeps } from './http/policyRoutes.js';
import { ActionJournal } from './actuation/journal.js';
import { registerConsoleRoutes } from './http/consoleRoutes.js';
import { isConsolePublicPath, sessionFromRequest } from './http/consoleAuth.js';
import { registerMcpRoutes } from './mcp/http.js';
import { registerTaskRoutes } from './http/taskRoutes.js';
import type { TaskRunner } from './agent/loop.js';
import { assertHostAndOrigin, assertNoTokenInUrl, hardenContentTypes, safeRequestSerializer, stripCorsHeaders, type HostCheck } from './http/guards.js';
import { CLIENT_HEADER, ControllerLease, MIN_LEASE_TTL_MS, clientIdentity, isActingRequest } from './http/lease.js';
import { z } from 'zod';
import { ErrorBodySchema } from './http/schemas.js';

/** Everything the HTTP app needs; built by `src/main.ts` (or by tests with the fake platform). */
export interface AppDeps {
  platform: Platform;
  observer: Observer;
  executor: Executor;
  /** The agent's bearer token. */
  token: string;
  /** The operator's bearer token (approvals, resume, audit). Without it, operator routes are unreachable. */
  operatorToken?: string;
  /** Approvals, kill switch and audit log; the routes for them are registered when present. */
  policy?: Omit<PolicyRouteDeps, 'journal'>;
  version: string;
  logger?: Logger | boolean;
  /** Model-driven tasks (`/v1/tasks`); the routes are registered when present. */
  tasks?: TaskRunner;
  /** Max request body, bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Warnings shown by `GET /v1/health` (e.g. OCR unavailable). */
  warnings?: string[];
  /** What `Host` must name (default: a loopback name with the port the connection arrived on); see `src/http/guards.ts`. */
  hostCheck?: HostCheck;
  /** The controller lease (default: a fresh {@link ControllerLease}); see `src/http/lease.ts`. */
  lease?: ControllerLease;
}

/** Routes reachable without a token. */
const PUBLIC_ROUTES = new Set(['/v1/health', '/openapi.json']);

/** Constant-time token comparison (hashes first so lengths never leak). */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Map fastify's own errors to deskd codes. */
function fastifyErrorCode(err: FastifyError): ErrorCode | null {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'INVALID_JSON';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'PAYLOAD_TOO_LARGE';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 'FST_ERR_VALIDATION':
      return 'VALIDATION_FAILED';
    default:
      if (err instanceof SyntaxError || err.statusCode === 400 && /JSON/i.test(err.message)) return 'INVALID_JSON';
      return null;
  }
}

const LeaseSchema = z.object({ holder: z.string(), acquiredAt: z.number().describe('epoch ms'), expiresAt: z.number().describe('epoch ms') });

/** `GET/POST/DELETE /v1/lease`: the controller lease (see `src/http/lease.ts`). */
function registerLeaseRoutes(fastify: FastifyInstance, lease: ControllerLease): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 409: ErrorBodySchema };
  const who = (req: { deskdRole?: string; headers: Record<string, string | string[] | undefined> }) => clientIdentity(req.deskdRole ?? 'agent', req.headers[CLIENT_HEADER]);
  app.get('/v1/lease', { schema: { summary: 'Who holds the controller lease (null when free)', response: { 200: z.object({ lease: LeaseSchema.nullable(), you: z.string() }), ...errors } } }, async (req) => ({
    lease: lease.current(),
    you: who(req),
  }));
  app.post(
    '/v1/lease',
    {
      schema: {
        summary: 'Acquire or renew the controller lease for this client (role + X-Deskd-Client header). Other clients then get 409 LEASE_HELD on actions; observing stays open.',
        body: z.object({ ttlMs: z.number().int().min(MIN_LEASE_TTL_MS).max(lease.maxTtlMs).optional() }).strict().prefault({}),
        response: { 200: LeaseSchema, ...errors },
      },
    },
    async (req) => lease.acquire(who(req), req.body.ttlMs),
  );
  app.delete(
    '/v1/lease',
    { schema: { summary: "Release this client's lease (the operator releases anyone's)", response: { 200: z.object({ released: z.boolean() }), ...errors } } },
    async (req) => ({ released: lease.release(who(req), req.deskdRole === 'operator') }),
  );
}

/**
 * Build the fastify app (no listening): guards, auth, error mapping, OpenAPI document, and the v1 routes.
 * Order on every request (docs/security.md): Host/Origin/Sec-Fetch-Site (403 `ORIGIN_NOT_ALLOWED`) →
 * credentials in the URL (400 `TOKEN_IN_URL`) → auth (401) → JSON-only body and size (415/413) → schema
 * (400) → role (403) → controller lease for acting requests (409 `LEASE_HELD`) → handler.
 * Pattern from fastify's demo app: `buildApp` here, `listen` in `src/main.ts`; tests use `app.inject()`.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // Fastify 5 takes a ready pino instance as `loggerInstance`, options or a boolean as `logger`.
  // The request serializer redacts credential query values: fastify logs each URL before any hook runs.
  const logging: { logger?: boolean } | { loggerInstance: FastifyBaseLogger } =
    deps.logger && typeof deps.logger === 'object'
      ? { loggerInstance: deps.logger.child({}, { serializers: { req: safeRequestSerializer } }) as FastifyBaseLogger }
      : { logger: deps.logger ?? false };
  const app = Fastify({ ...logging, bodyLimit: deps.bodyLimit ?? 1024 * 1024 } as FastifyServerOptions).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  hardenContentTypes(app);
  const lease = deps.lease ?? new ControllerLease();

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'deskd', version: deps.version, description: 'Computer-use automation daemon: observe the screen and act on it.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  // Before anything else, on every route (404s included): DNS rebinding / cross-site, then credentials in URLs.
  app.addHook('onRequest', async (req) => {
    assertHostAndOrigin(req.raw, deps.hostCheck);
    assertNoTokenInUrl(req.url);
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    stripCorsHeaders(reply);
    return payload;
  });
  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0] ?? '';
    if (PUBLIC_ROUTES.has(path) || isConsolePublicPath(req.method, path)) return;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (\S+)$/i.exec(h);
    if (m && deps.operatorToken && tokenMatches(m[1]!, deps.operatorToken)) req.deskdRole = 'operator';
    else if (m && tokenMatches(m[1]!, deps.token)) req.deskdRole = 'agent';
    else if (!h && sessionFromRequest(req)) req.deskdRole = 'operator';
    else throw new DeskdError('UNAUTHORIZED', m ? 'The bearer token is wrong' : 'Missing `Authorization: Bearer <token>` header');
  });
  app.addHook('preHandler', async (req) => {
    const cfg = req.routeOptions.config as { role?: string } | undefined;
    if (cfg?.role === 'operator' && req.deskdRole !== 'operator') {
      throw new DeskdError('FORBIDDEN_FOR_CREDENTIAL', 'This route needs the operator credential; the agent credential can never approve, resume or read the audit log');
    }
    // One controller at a time: acting requests from anyone but the lease holder stop here.
    if (req.deskdRole && isActingRequest(req.method, req.url.split('?')[0] ?? '', req.body)) {
      // The operator (the person at the machine) is never locked out: their action takes the lease over.
      lease.assertMayAct(clientIdentity(req.deskdRole, req.headers[CLIENT_HEADER]), req.deskdRole === 'operator');
    }
  });

  app.setNotFoundHandler((req, reply) => {
    const err = new DeskdError('NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`);
    void reply.code(err.status).send(err.toBody());
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    let e: DeskdError;
    if (isDeskdError(err)) e = err;
    else if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'request';
      const msg = err.validation.slice(0, 5).map((v) => `${where}${v.instancePath === '/' ? '' : v.instancePath.replaceAll('/', '.')}: ${v.message}`);
      e = new DeskdError('VALIDATION_FAILED', msg.join('; '));
    } else {
      const code = fastifyErrorCode(err);
      e = code ? new DeskdError(code, err.message) : new DeskdError('INTERNAL', 'Internal error');
      if (!code) req.log.error({ err }, 'unhandled error');
    }
    if (e.status >= 500) req.log.warn({ code: e.code, msg: e.message }, 'request failed');
    void reply.code(e.status).type('application/json').send(JSON.stringify(e.toBody()));
  });

  const journal = new ActionJournal();
  await registerV1Routes(app, deps, journal);
  if (deps.policy) await registerPolicyRoutes(app, { ...deps.policy, journal });
  await registerConsoleRoutes(app, { operatorToken: deps.operatorToken });
  await registerMcpRoutes(app, { platform: deps.platform, observer: deps.observer, executor: deps.executor, version: deps.version });
  if (deps.tasks) await registerTaskRoutes(app, { tasks: deps.tasks });

  registerLeaseRoutes(app, lease);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}
