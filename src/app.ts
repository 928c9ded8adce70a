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
import { registerReadRoutes } from './http/readRoutes.js';
import { registerTaskRoutes } from './http/taskRoutes.js';
import { registerAnthropicRoutes } from './http/anthropicRoutes.js';
import { registerReplayRoutes } from './http/replayRoutes.js';
import type { ReplayService } from './replay/index.js';
import type { TaskRunner } from './agent/loop.js';
import { assertHostAndOrigin, assertNoTokenInUrl, hardenContentTypes, redactUrl, safeRequestSerializer, stripCorsHeaders, type HostCheck } from './http/guards.js';
import { redactExplainQuery } from './governance/explain.js';
import { CLIENT_HEADER, ControllerLease, MIN_LEASE_TTL_MS, clientIdentity, isActingRequest, mcpCallsAny } from './http/lease.js';
import { ConcurrencyLimiter, ConnectionGovernor, MCP_PERCEIVING_TOOLS, resolveServerLimits, serverTimeoutOptions, type ServerLimits } from './http/limits.js';
import { z } from 'zod';
import { ErrorBodySchema } from './http/schemas.js';
import { AgentRegistry, observerMayCall, principalOf } from './governance/agents.js';
import { registerGovernanceRoutes, type GovernanceDeps } from './governance/routes.js';
import { Telemetry } from './telemetry/telemetry.js';
import { registerWorkspaceRoutes, type WorkspaceRecord, type WorkspaceRouteDeps } from './http/workspaceRoutes.js';
import { installWorkspaceRouting, leaseFor, type RoutedObjects, type WorkspaceLookup } from './http/workspaceRouting.js';
import { instrumentApp } from './telemetry/instrument.js';

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
  /** Recordings and replays (`/v1/recordings`, `/v1/replays`, issue 18); when present, actions of recording clients are recorded. */
  replay?: ReplayService;
  /** Max request body, bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Warnings shown by `GET /v1/health` (e.g. OCR unavailable). */
  warnings?: string[];
  /** What `Host` must name (default: a loopback name with the port the connection arrived on); see `src/http/guards.ts`. */
  hostCheck?: HostCheck;
  /** The controller lease (default: a fresh {@link ControllerLease}); see `src/http/lease.ts`. */
  lease?: ControllerLease;
  /** Timeouts, the connection cap and concurrent observes per credential (defaults: `DEFAULT_SERVER_LIMITS` in `src/http/limits.ts`). */
  limits?: Partial<ServerLimits>;
  /** Named agent credentials, policy explain and metrics (issue 17; `src/governance/routes.ts`). */
  governance?: GovernanceDeps;
  /** Traces and metrics (issue 17, `src/telemetry/`); default: metrics only, kept in memory for `GET /metrics`. */
  telemetry?: Telemetry;
  /** Sandboxed workspaces (issue 22, `src/http/workspaceRoutes.ts`): the routes and per-workspace routing are registered when present. */
  workspaces?: WorkspaceRouteDeps<WorkspaceRecord & { backend: RoutedObjects }>['workspaces'] & WorkspaceLookup;
}

/** What a route may say about itself in its `config` (read through `req.routeOptions.config`, i.e. the route the request was routed to). */
export interface DeskdRouteConfig {
  /** Only the operator credential may call it (403 `FORBIDDEN_FOR_CREDENTIAL` otherwise). */
  role?: 'operator';
  /** It acts on the desktop: it needs the controller lease (409 `LEASE_HELD`). */
  acting?: boolean;
  /** It perceives (capture, OCR, accessibility): it counts against the credential's concurrent observes (429 `TOO_MANY_REQUESTS`). */
  perceive?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The connection cap and the per-credential observe limiter of this app (`buildApp`). */
    deskdLimits?: { limits: ServerLimits; connections: ConnectionGovernor; observes: ConcurrencyLimiter };
  }
}

/**
 * Routes reachable without a token, as `METHOD routed-pattern`. Matched against the route fastify routed the
 * request to (`req.routeOptions.url`), never the raw URL: `/v1/healt%68` reaches health (harmless), and no
 * spelling of a protected path can be mistaken for a public one.
 */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['GET /v1/health', 'HEAD /v1/health', 'GET /openapi.json', 'HEAD /openapi.json']);

/** Constant-time token comparison (hashes first so lengths never leak). */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The routed pattern of the MCP endpoint (`src/mcp/http.ts`). */
const MCP_ROUTE = '/mcp';

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
  const who = (req: { deskdRole?: 'agent' | 'operator'; deskdAgent?: { id: string }; headers: Record<string, string | string[] | undefined> }) => clientIdentity(principalOf(req.deskdRole, req.deskdAgent?.id), req.headers[CLIENT_HEADER]);
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
      ? { loggerInstance: deps.logger.child({}, { serializers: { req: (r: Parameters<typeof safeRequestSerializer>[0]) => ({ ...safeRequestSerializer(r), url: redactExplainQuery(redactUrl(r.url ?? '')) }) } }) as FastifyBaseLogger }
      : { logger: deps.logger ?? false };
  const limits = resolveServerLimits(deps.limits);
  const app = Fastify({ ...logging, bodyLimit: deps.bodyLimit ?? 1024 * 1024, ...serverTimeoutOptions(limits) } as FastifyServerOptions).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  hardenContentTypes(app);
  let lease = deps.lease ?? new ControllerLease();
  // Named agents live in memory when the daemon gave no registry (tests, embedding): the routes always exist.
  const telemetry = deps.telemetry ?? Telemetry.create({ version: deps.version, ...(deps.policy ? { pendingApprovals: () => deps.policy!.approvals.list().length } : {}) });
  const governance = {
    metrics: () => telemetry.metricsText(),
    taskAgents: new Map<string, string>(),
    ...(deps.tasks ? { cancelTask: (id: string) => void deps.tasks!.cancel(id) } : {}),
    ...(deps.governance ?? { agents: await AgentRegistry.open(null) }),
  };
  // A span per request (when tracing is on), hooked before any route is registered.
  instrumentApp(app, telemetry);
  // The operator can always act: slow or many connections are cut (timeouts above, cap here), and
  // perceiving work in flight is capped per credential (each credential has its own budget).
  const connections = new ConnectionGovernor(limits.maxConnections, limits.maxAgentConnections);
  connections.attach(app.server);
  const observes = new ConcurrencyLimiter(limits.maxConcurrentObserves, 'observes');
  app.decorate('deskdLimits', { limits, connections, observes });
  app.addHook('onRoute', (route) => {
    const cfg = route.config as DeskdRouteConfig | undefined;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const mcp = route.url === MCP_ROUTE && methods.includes('POST');
    if (!cfg?.perceive && !mcp) return;
    const handler = route.handler;
    // Released when the handler has finished its work (not when the client goes away).
    route.handler = async function (this: unknown, req, reply) {
      const counts = cfg?.perceive === true || mcpCallsAny(req.body, (name) => MCP_PERCEIVING_TOOLS.has(name));
      const release = counts ? observes.acquire(principalOf(req.deskdRole, req.deskdAgent?.id)) : () => undefined;
      try {
        return await (handler as (this: unknown, ...a: unknown[]) => unknown).call(this, req, reply);
      } finally {
        release();
      }
    } as typeof handler;
  });

  // Workspaces (issue 22): requests naming (or bound to) a workspace run against its backend and lease.
  if (deps.workspaces) {
    const r = installWorkspaceRouting(app, deps.workspaces, { platform: deps.platform, observer: deps.observer, executor: deps.executor, lease });
    deps = { ...deps, platform: r.platform, observer: r.observer, executor: r.executor };
    lease = r.lease;
  }

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
    // The route the router chose (percent-escapes decoded, dot segments resolved), not the raw URL;
    // undefined when nothing matched (then a credential is needed like anywhere else, and the answer is 401).
    const route = req.routeOptions.url;
    if (route !== undefined && (PUBLIC_ROUTES.has(`${req.method.toUpperCase()} ${route}`) || isConsolePublicPath(req.method, route, req.params))) return;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (\S+)$/i.exec(h);
    if (m && deps.operatorToken && tokenMatches(m[1]!, deps.operatorToken)) req.deskdRole = 'operator';
    else if (m && tokenMatches(m[1]!, deps.token)) req.deskdRole = 'agent';
    else if (m && (req.deskdAgent = governance.agents.authenticate(m[1]!) ?? undefined)) req.deskdRole = 'agent';
    else if (!h && sessionFromRequest(req)) req.deskdRole = 'operator';
    else throw new DeskdError('UNAUTHORIZED', m ? 'The bearer token is wrong' : 'Missing `Authorization: Bearer <token>` header');
    if (!connections.tag(req.raw.socket, req.deskdRole)) {
      throw new DeskdError('TOO_MANY_REQUESTS', `The agent credential already holds ${limits.maxAgentConnections} connections (at most); reuse one (keep-alive) or close some`, { limit: limits.maxAgentConnections, retryAfterMs: 1000 });
    }
  });
  app.addHook('preHandler', async (req) => {
    const cfg = req.routeOptions.config as DeskdRouteConfig | undefined;
    if (cfg?.role === 'operator' && req.deskdRole !== 'operator') {
      throw new DeskdError('FORBIDDEN_FOR_CREDENTIAL', 'This route needs the operator credential; the agent credential can never approve, resume or read the audit log');
    }
    const acting = !!req.deskdRole && isActingRequest(req.method, req.routeOptions.url, req.body, cfg);
    // An observer credential (issue 17) only looks: decided on the routed pattern, fail closed for new routes.
    if (req.deskdAgent?.role === 'observer' && !observerMayCall(req.method, req.routeOptions.url, acting, req.body)) {
      throw new DeskdError('FORBIDDEN_FOR_CREDENTIAL', `Agent "${req.deskdAgent.id}" has the observer role: it may screenshot, observe, find, read and wait, never act`);
    }
    // One controller at a time: acting requests from anyone but the lease holder stop here.
    // Decided on the routed pattern and the route's own config: `/v1/%61ctions` is `/v1/actions` here.
    if (acting) {
      // The operator (the person at the machine) is never locked out: their action takes the lease over.
      leaseFor(req, lease).assertMayAct(clientIdentity(principalOf(req.deskdRole, req.deskdAgent?.id), req.headers[CLIENT_HEADER]), req.deskdRole === 'operator');
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
      // A client that went away mid-body (a closed or evicted connection) is no daemon error.
      const clientGone = (err as { code?: string }).code === 'ECONNRESET' && err.message === 'aborted';
      if (clientGone) req.log.debug({ err }, 'client went away');
      else if (!code) req.log.error({ err }, 'unhandled error');
      if (clientGone) e = new DeskdError('INVALID_JSON', 'The client closed the connection before the body was complete');
    }
    if (e.status >= 500) req.log.warn({ code: e.code, msg: e.message }, 'request failed');
    // A client without a credential, or over its connection or observe cap, keeps no connection open (it
    // could hold it as a slow-body flood).
    if (e.code === 'UNAUTHORIZED' || e.code === 'TOO_MANY_REQUESTS') void reply.header('connection', 'close');
    void reply.code(e.status).type('application/json').send(JSON.stringify(e.toBody()));
  });

  const journal = new ActionJournal();
  // A recording client's actions (HTTP and MCP) are recorded by the replay service's tap around the executor.
  const executor = deps.replay ? deps.replay.recorder.tap(deps.executor) : deps.executor;
  await registerV1Routes(app, { ...deps, executor }, journal);
  if (deps.policy) await registerPolicyRoutes(app, { ...deps.policy, journal });
  await registerConsoleRoutes(app, { operatorToken: deps.operatorToken });
  await registerMcpRoutes(app, { platform: deps.platform, observer: deps.observer, executor, version: deps.version, ...(deps.replay ? { replay: deps.replay } : {}) });
  await registerReadRoutes(app, { platform: deps.platform, observer: deps.observer, executor: deps.executor, lease, ...(deps.policy ? { audit: deps.policy.audit } : {}) });
  if (deps.tasks) await registerTaskRoutes(app, { tasks: deps.tasks });
  // Anthropic's computer-use tool (issue 20): every action through the same executor, policy and lease.
  await registerAnthropicRoutes(app, { executor: deps.executor, displays: () => deps.platform.capture.displays(), pointer: () => deps.platform.mouse.position() });
  if (deps.replay) await registerReplayRoutes(app, { replay: deps.replay });
  if (deps.workspaces) await registerWorkspaceRoutes(app, { workspaces: deps.workspaces, ...(deps.policy ? { audit: deps.policy.audit } : {}) });

  registerLeaseRoutes(app, lease);
  await registerGovernanceRoutes(app, governance, { lease, ...(deps.policy ? { approvals: deps.policy.approvals, audit: deps.policy.audit } : {}) });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}
