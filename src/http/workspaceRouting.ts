/**
 * Routing requests to a workspace's backend (issue 22, docs/workspaces.md).
 *
 * A request names a workspace with the `X-Deskd-Workspace` header, a `workspace` query parameter, a
 * `workspace` field of its JSON body, or (`POST /mcp`) a `workspace` argument of its tool calls (each taken
 * out before the route's schema or the MCP server sees it); an agent
 * credential that owns exactly one workspace is bound to it when it names none. The workspace is resolved
 * in a `preValidation` hook (404 `WORKSPACE_NOT_FOUND`, 403 `WORKSPACE_FORBIDDEN` for another agent's) and
 * the route's handler then runs inside an `AsyncLocalStorage` context: the `platform`, `observer`,
 * `executor` and `lease` the routes were given are proxies that resolve, at each use, to the current
 * workspace's objects, or to the daemon's own outside one. The routes themselves stay unaware.
 *
 * The controller lease check of `src/app.ts` runs in a `preHandler` (outside the handler's context), so it
 * asks {@link leaseFor} for the request's lease.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DeskdError } from '../errors.js';
import type { Platform } from '../platform/types.js';
import type { Observer } from '../perception/observer.js';
import type { Executor } from '../actuation/executor.js';
import { principalOf } from '../governance/agents.js';
import type { ControllerLease } from './lease.js';

/** The objects a workspace's requests are routed to. */
export interface RoutedObjects {
  platform: Platform;
  observer: Observer;
  executor: Executor;
  lease: ControllerLease;
}

/** The workspaces as routing needs them (the manager of `src/workspaces/manager.ts`, narrowed). */
export interface WorkspaceLookup {
  /** @throws DeskdError `WORKSPACE_NOT_FOUND`, `WORKSPACE_FORBIDDEN`. */
  access(id: string, principal: string): { id: string; backend: RoutedObjects };
  ownedBy(principal: string): Array<{ id: string; backend: RoutedObjects }>;
}

/** The workspace a request was routed to. */
export interface RequestWorkspace {
  id: string;
  backend: RoutedObjects;
  /** How it was chosen: named by the request, or the credential's only workspace. */
  via: 'request' | 'bound';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The workspace this request is routed to (issue 22), set by the `preValidation` hook of {@link installWorkspaceRouting}. */
    deskdWorkspace?: RequestWorkspace;
  }
}

/** Header naming the workspace. */
export const WORKSPACE_HEADER = 'x-deskd-workspace';

/**
 * Routes that run in a workspace when one is named or bound (`METHOD routed-pattern`): everything that
 * perceives or acts through the platform, observer, executor or lease.
 */
export const WORKSPACE_ROUTES: ReadonlySet<string> = new Set([
  'GET /v1/screenshot', 'POST /v1/observe', 'POST /v1/find', 'POST /v1/wait', 'POST /v1/read', 'GET /v1/windows',
  'POST /v1/actions', 'GET /v1/actions/:id', 'GET /v1/lease', 'POST /v1/lease', 'DELETE /v1/lease', 'POST /mcp',
  'GET /v1/anthropic/computer', 'POST /v1/anthropic/computer',
]);

/**
 * Routes that act on the daemon's own desktop and do not run in workspaces yet: a credential bound to a
 * workspace is refused (`NOT_SUPPORTED`) rather than let through to the user's desktop.
 */
export const NOT_IN_WORKSPACES: ReadonlySet<string> = new Set(['POST /v1/tasks', 'POST /v1/replays', 'POST /v1/recordings']);

const store = new AsyncLocalStorage<{ id: string; backend: RoutedObjects }>();

/** The id of the workspace the current request runs in (inside a routed handler), else undefined. */
export function currentWorkspaceId(): string | undefined {
  return store.getStore()?.id;
}

/**
 * Make every record `audit` appends while a routed handler runs name its workspace (`workspace: <id>`):
 * decisions, results and approvals of actions in a workspace say where they happened. Wraps the instance's
 * `append` (records outside a workspace are unchanged).
 */
export function tagAuditWithWorkspace(audit: { append(kind: string, data?: Record<string, unknown>, opts?: { soon?: boolean }): Promise<unknown> }): void {
  const append = audit.append.bind(audit);
  audit.append = (kind, data = {}, opts) => {
    const id = currentWorkspaceId();
    return append(kind, id !== undefined && data.workspace === undefined ? { ...data, workspace: id } : data, ...(opts ? [opts] : []));
  };
}

/**
 * A proxy of `fallback` that forwards every property read to the current workspace's object (`pick`) inside a
 * routed handler, else to `fallback`; methods are bound to the object they came from.
 */
function routed<T extends object>(fallback: T, pick: (o: RoutedObjects) => object): T {
  const target = () => {
    const s = store.getStore();
    return (s ? pick(s.backend) : fallback) as Record<PropertyKey, unknown>;
  };
  return new Proxy(fallback, {
    get(_t, p) {
      const t = target();
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
    set(_t, p, v) {
      return Reflect.set(target(), p, v);
    },
    has(_t, p) {
      return Reflect.has(target(), p);
    },
  });
}

/** The workspace id a request names, taken out of its query and body; undefined when none. */
function namedWorkspace(req: FastifyRequest): string | undefined {
  const names: string[] = [];
  const h = req.headers[WORKSPACE_HEADER];
  if (typeof h === 'string' && h) names.push(h);
  for (const bag of [req.query, req.body]) {
    if (bag && typeof bag === 'object' && !Array.isArray(bag) && 'workspace' in bag) {
      const v = (bag as Record<string, unknown>).workspace;
      delete (bag as Record<string, unknown>).workspace;
      if (typeof v !== 'string' || !v) throw new DeskdError('VALIDATION_FAILED', 'workspace must be a workspace id (a non-empty string)');
      names.push(v);
    }
  }
  // MCP: a `workspace` argument of any tool call in the JSON-RPC body (single or batched) names it too; it is
  // taken out before the MCP server validates the tool's arguments.
  if (req.routeOptions.url === '/mcp') {
    for (const msg of Array.isArray(req.body) ? req.body : [req.body]) {
      const args = (msg as { method?: unknown; params?: { arguments?: unknown } } | null)?.params?.arguments;
      if ((msg as { method?: unknown } | null)?.method !== 'tools/call' || !args || typeof args !== 'object' || !('workspace' in args)) continue;
      const v = (args as Record<string, unknown>).workspace;
      delete (args as Record<string, unknown>).workspace;
      if (typeof v !== 'string' || !v) throw new DeskdError('VALIDATION_FAILED', 'workspace must be a workspace id (a non-empty string)');
      names.push(v);
    }
  }
  if (new Set(names).size > 1) throw new DeskdError('VALIDATION_FAILED', `The request names two workspaces (${[...new Set(names)].join(', ')})`);
  return names[0];
}

/**
 * Install workspace routing on `app` (before any route is registered: it wraps route handlers as they are
 * added) and return the routed proxies of `own` to give the routes instead of the daemon's own objects.
 */
export function installWorkspaceRouting(app: FastifyInstance, workspaces: WorkspaceLookup, own: RoutedObjects): RoutedObjects {
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.some((m) => WORKSPACE_ROUTES.has(`${m} ${route.url}`))) return;
    const handler = route.handler as (this: unknown, ...a: unknown[]) => unknown;
    route.handler = function (this: unknown, req: FastifyRequest, reply: unknown) {
      const ws = req.deskdWorkspace;
      return ws ? store.run({ id: ws.id, backend: ws.backend }, () => handler.call(this, req, reply)) : handler.call(this, req, reply);
    } as typeof route.handler;
  });
  app.addHook('preValidation', async (req) => {
    const route = `${req.method.toUpperCase()} ${req.routeOptions.url ?? ''}`;
    if (!req.deskdRole) return;
    const aware = WORKSPACE_ROUTES.has(route);
    const named = aware ? namedWorkspace(req) : undefined;
    if (!aware && req.headers[WORKSPACE_HEADER] !== undefined && !route.includes('/workspaces')) {
      throw new DeskdError('VALIDATION_FAILED', `${route} does not run in a workspace; leave out the X-Deskd-Workspace header`);
    }
    const principal = principalOf(req.deskdRole, req.deskdAgent?.id);
    if (named !== undefined) {
      const ws = workspaces.access(named, principal);
      req.deskdWorkspace = { id: ws.id, backend: ws.backend, via: 'request' };
      return;
    }
    if (principal === 'operator') return;
    const mine = workspaces.ownedBy(principal);
    if (mine.length === 0) return;
    if (NOT_IN_WORKSPACES.has(route)) throw new DeskdError('NOT_SUPPORTED', `${route} does not run in workspaces yet, and this credential is bound to its workspace (${mine.map((w) => w.id).join(', ')})`);
    if (!aware) return;
    if (mine.length > 1) throw new DeskdError('VALIDATION_FAILED', `This credential owns ${mine.length} workspaces (${mine.map((w) => w.id).join(', ')}): name one with X-Deskd-Workspace or "workspace"`);
    req.deskdWorkspace = { id: mine[0]!.id, backend: mine[0]!.backend, via: 'bound' };
  });
  return {
    platform: routed(own.platform, (o) => o.platform),
    observer: routed(own.observer, (o) => o.observer),
    executor: routed(own.executor, (o) => o.executor),
    lease: routed(own.lease, (o) => o.lease),
  };
}

/** The controller lease deciding a request: its workspace's, else the daemon's own (`fallback`). */
export function leaseFor(req: FastifyRequest, fallback: ControllerLease): ControllerLease {
  return req.deskdWorkspace?.backend.lease ?? fallback;
}
