import { DeskdError } from '../errors.js';

/**
 * One controller at a time: the controller lease.
 *
 * A *client* is the credential's role plus the `X-Deskd-Client` header (`agent/planner-1`; without the
 * header, `agent/default`). At most one client holds the lease. Requests that act on the desktop
 * ({@link isActingRequest}) from any other client are refused with 409 `LEASE_HELD` before anything is
 * validated by the policy or dispatched; observing (observe, screenshot, find, wait, health) stays open to
 * everyone, and so do the kill switch and the operator's routes.
 *
 * - `POST /v1/lease {ttlMs?}` acquires the lease or renews the caller's own (default 30 s, at most 10 min).
 * - `DELETE /v1/lease` releases the caller's lease; the operator's `DELETE` releases anyone's (the person at
 *   the machine can always break a stuck lease), and an acting request by the operator takes the lease over.
 * - An acting request from a client while nobody holds the lease takes it implicitly for
 *   {@link LeaseOptions.implicitTtlMs}, and each action by the holder extends it to at least that long, so
 *   clients that never call `/v1/lease` still cannot interleave within that window.
 *
 * The lease is coordination between clients that hold a valid token, not authentication: anyone with the
 * agent token may claim any client id. Serialisation of the input events themselves is the executor's (one
 * batch at a time).
 */

/** The lease as the API shows it. */
export interface LeaseState {
  /** `role/clientId`. */
  holder: string;
  /** Epoch ms. */
  acquiredAt: number;
  /** Epoch ms after which the lease is free. */
  expiresAt: number;
}

/** Options of {@link ControllerLease}. */
export interface LeaseOptions {
  /** TTL of `POST /v1/lease` without `ttlMs`, ms (default 30 000). */
  defaultTtlMs?: number;
  /** Longest TTL a client may ask for, ms (default 600 000). */
  maxTtlMs?: number;
  /** TTL taken (or guaranteed) by an acting request, ms (default 30 000). */
  implicitTtlMs?: number;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** Shortest TTL accepted, ms. */
export const MIN_LEASE_TTL_MS = 1000;

/** The controller lease (in memory; a daemon restart frees it). */
export class ControllerLease {
  private held: LeaseState | null = null;
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
  readonly implicitTtlMs: number;
  private readonly now: () => number;

  constructor(opts: LeaseOptions = {}) {
    this.defaultTtlMs = opts.defaultTtlMs ?? 30_000;
    this.maxTtlMs = opts.maxTtlMs ?? 600_000;
    this.implicitTtlMs = opts.implicitTtlMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  /** The live lease, or null (never held, released or expired). */
  current(): LeaseState | null {
    if (this.held && this.held.expiresAt <= this.now()) this.held = null;
    return this.held ? { ...this.held } : null;
  }

  /**
   * Acquire the lease for `holder`, or renew it when `holder` already has it; `ttlMs` clamped to
   * [{@link MIN_LEASE_TTL_MS}, maxTtlMs].
   * @throws DeskdError `LEASE_HELD` when another client holds it.
   */
  acquire(holder: string, ttlMs: number = this.defaultTtlMs): LeaseState {
    const cur = this.current();
    if (cur && cur.holder !== holder) throw this.heldError(cur);
    const t = this.now();
    const ttl = Math.min(this.maxTtlMs, Math.max(MIN_LEASE_TTL_MS, Math.floor(ttlMs)));
    this.held = { holder, acquiredAt: cur?.acquiredAt ?? t, expiresAt: t + ttl };
    return { ...this.held };
  }

  /**
   * Release the lease if `holder` has it (or anyone's with `force`).
   * @returns true when a live lease was released.
   */
  release(holder: string, force = false): boolean {
    const cur = this.current();
    if (!cur || (!force && cur.holder !== holder)) return false;
    this.held = null;
    return true;
  }

  /**
   * Gate for an acting request: free → taken implicitly; held by `holder` → extended to at least
   * `implicitTtlMs` from now; held by another → refused, unless `preempt` (the operator), which takes it over.
   * @throws DeskdError `LEASE_HELD`.
   */
  assertMayAct(holder: string, preempt = false): void {
    let cur = this.current();
    if (cur && cur.holder !== holder) {
      if (!preempt) throw this.heldError(cur);
      this.held = null;
      cur = null;
    }
    const t = this.now();
    if (!cur) this.held = { holder, acquiredAt: t, expiresAt: t + this.implicitTtlMs };
    else if (this.held && this.held.expiresAt < t + this.implicitTtlMs) this.held.expiresAt = t + this.implicitTtlMs;
  }

  private heldError(cur: LeaseState): DeskdError {
    const inMs = Math.max(0, cur.expiresAt - this.now());
    return new DeskdError('LEASE_HELD', `Another client (${cur.holder}) controls the desktop for up to ${Math.ceil(inMs / 1000)} s more; observing is allowed, acting is not`, {
      holder: cur.holder,
      expiresAt: cur.expiresAt,
      retryAfterMs: inMs,
    });
  }
}

/** Header naming the client within a credential. */
export const CLIENT_HEADER = 'x-deskd-client';

const CLIENT_ID = /^[A-Za-z0-9._:@-]{1,64}$/;

/**
 * The lease holder name of a request: `<role>/<X-Deskd-Client or "default">`.
 * @throws DeskdError `VALIDATION_FAILED` when the header is not 1–64 of `A-Z a-z 0-9 . _ : @ -`.
 */
export function clientIdentity(role: string, header: string | string[] | undefined): string {
  if (header === undefined) return `${role}/default`;
  const v = Array.isArray(header) ? header.join(',') : header;
  if (!CLIENT_ID.test(v)) throw new DeskdError('VALIDATION_FAILED', 'X-Deskd-Client must be 1-64 characters of A-Z a-z 0-9 . _ : @ -');
  return `${role}/${v}`;
}

/** MCP tools that only look (everything else counts as acting, so a new tool is gated until listed here). */
export const MCP_READ_ONLY_TOOLS: ReadonlySet<string> = new Set(['observe', 'screenshot', 'find', 'wait_for', 'list_apps', 'list_windows', 'list_recordings']);

/**
 * Whether one MCP `tools/call` acts on the desktop: any tool outside {@link MCP_READ_ONLY_TOOLS}, except
 * `read` without `scroll: true` (a read only looks; with `scroll` it scrolls the table's container, as
 * `POST /v1/read` does). Anything but a literal `scroll: false`/absent counts as scrolling (fail closed).
 * @param name the tool name.
 * @param args the call's `arguments` (unchecked JSON).
 */
export function mcpToolActs(name: string, args: unknown): boolean {
  if (MCP_READ_ONLY_TOOLS.has(name)) return false;
  if (name === 'read') {
    const scroll = args && typeof args === 'object' ? (args as { scroll?: unknown }).scroll : undefined;
    return !(scroll === undefined || scroll === false);
  }
  return true;
}

/**
 * `METHOD route` of the HTTP routes that act on the desktop, by their *routed* pattern (fastify's
 * `req.routeOptions.url`). A route may also say so itself with `config: { acting: true }`.
 */
export const ACTING_ROUTES: ReadonlySet<string> = new Set(['POST /v1/actions', 'POST /v1/tasks']);

/** The routed pattern of the MCP endpoint (`src/mcp/http.ts` `MCP_PATH`). */
const MCP_ROUTE = '/mcp';

/**
 * Whether a request acts on the desktop (and so needs the lease): its route has `config.acting`, is in
 * {@link ACTING_ROUTES}, or is `POST /mcp` whose JSON-RPC body (single or batch) calls a tool outside
 * {@link MCP_READ_ONLY_TOOLS}.
 *
 * `route` must be the pattern fastify *routed* the request to (`req.routeOptions.url`), never the raw
 * `req.url`: the router decodes percent-escapes (`/v1/%61ctions` reaches `/v1/actions`) and resolves
 * `.`/`..` segments, so a decision made on the raw URL can be walked around. `undefined` (no route
 * matched: the request ends in 404) is not acting.
 * @param method the request method (any case).
 * @param route the routed pattern, e.g. `/v1/actions` or `/v1/tasks/:id`; undefined for 404s.
 * @param body the parsed body (only read for `/mcp`).
 * @param config the route's `config` (`req.routeOptions.config`); `acting: true` marks an acting route.
 */
export function isActingRequest(method: string, route: string | undefined, body: unknown, config?: { acting?: unknown }): boolean {
  if (route === undefined) return false;
  if (config?.acting === true) return true;
  const m = method.toUpperCase();
  if (ACTING_ROUTES.has(`${m} ${route}`)) return true;
  if (m === 'POST' && route === MCP_ROUTE) return mcpCallsAny(body, mcpToolActs);
  return false;
}

/**
 * True when a JSON-RPC body (one message or a batch) has a `tools/call` for which `pick(name, arguments)` is true;
 * a call without a string tool name counts as picked (fail closed).
 */
export function mcpCallsAny(body: unknown, pick: (name: string, args: unknown) => boolean): boolean {
  const msgs = Array.isArray(body) ? body : [body];
  return msgs.some((msg) => {
    if (!msg || typeof msg !== 'object') return false;
    const r = msg as { method?: unknown; params?: { name?: unknown; arguments?: unknown } };
    if (r.method !== 'tools/call') return false;
    const params = r.params && typeof r.params === 'object' ? r.params : undefined;
    const name = params?.name;
    return typeof name !== 'string' || pick(name, params?.arguments);
  });
}
