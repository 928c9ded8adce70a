import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { DeskdError } from '../errors.js';

/**
 * Capacity limits that keep the daemon answering the operator while a client floods it
 * (docs/security.md, "The operator can always act"):
 *
 * - **timeouts** on every connection (Node's `headersTimeout`/`requestTimeout`, checked every
 *   `checkIntervalMs`): a client that sends its headers or body slowly is answered 408 and cut off;
 * - a **connection cap** ({@link ConnectionGovernor}): past `maxConnections` open connections the
 *   oldest connection that has not authenticated is closed, then the oldest agent connection; an operator
 *   connection is never closed to make room, so a flood of connections cannot lock the operator out (a
 *   plain `server.maxConnections` would refuse the operator's new connection with everyone else's);
 * - **concurrent observes per credential** ({@link ConcurrencyLimiter}): screenshots, observes, find,
 *   wait and MCP's perceiving tools in flight at once per credential (agent, operator: each its own
 *   budget); one more is refused with 429 `TOO_MANY_REQUESTS` before any work starts.
 */

/** Server limits; every field has a default in {@link DEFAULT_SERVER_LIMITS}. */
export interface ServerLimits {
  /** Time a client has to send the request line and headers, ms (Node `headersTimeout`). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request (headers and body), ms (Node `requestTimeout`). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open, ms. */
  keepAliveTimeoutMs: number;
  /** How often Node checks the two timeouts above, ms (`connectionsCheckingInterval`; Node's default is 30 s). */
  checkIntervalMs: number;
  /** Open connections at most; past it a non-operator connection is closed (see {@link ConnectionGovernor}). */
  maxConnections: number;
  /** Connections the agent credential may hold (a request on one more is answered 429 `TOO_MANY_REQUESTS`); default a quarter of `maxConnections`. */
  maxAgentConnections: number;
  /** Perceiving requests (screenshot, observe, find, wait, MCP observe/screenshot/find/wait_for) in flight per credential. */
  maxConcurrentObserves: number;
  /**
   * Pending connections the kernel queues for `accept` (`listen` backlog). Below `maxConnections -
   * maxAgentConnections`, so one burst of queued connections cannot push out a fresh operator connection
   * before its request is read; not much smaller, or a burst fills it and new connections (the operator's
   * too) wait for SYN retransmits (1 s, 3 s, 7 s).
   */
  backlog: number;
}

/** The defaults: 10 s for headers, 30 s for a whole request, 1024 connections (256 of them for the agent), backlog 511, 8 observes per credential. */
export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000,
  maxConnections: 1024,
  maxAgentConnections: 256,
  maxConcurrentObserves: 8,
  backlog: 511,
});

/**
 * The limits with defaults filled in.
 * @throws DeskdError `VALIDATION_FAILED` when a value is not a positive integer, or the header timeout
 *   exceeds the request timeout.
 */
export function resolveServerLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const l: ServerLimits = { ...DEFAULT_SERVER_LIMITS, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  // The agent's share follows a given connection cap: a quarter of it unless set.
  if (given.maxAgentConnections === undefined && given.maxConnections !== undefined) l.maxAgentConnections = Math.max(1, Math.floor(l.maxConnections / 4));
  // The backlog stays below the room left to unauthenticated connections unless set.
  if (given.backlog === undefined) l.backlog = Math.max(1, Math.min(DEFAULT_SERVER_LIMITS.backlog, l.maxConnections - l.maxAgentConnections - 1));
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isInteger(v) || v <= 0) throw new DeskdError('VALIDATION_FAILED', `Server limit ${k} must be a positive integer, got ${String(v)}`);
  }
  if (l.maxAgentConnections >= l.maxConnections) throw new DeskdError('VALIDATION_FAILED', `maxAgentConnections (${l.maxAgentConnections}) must be below maxConnections (${l.maxConnections}): the rest is the operator's room`);
  if (l.backlog >= l.maxConnections) throw new DeskdError('VALIDATION_FAILED', `backlog (${l.backlog}) must be below maxConnections (${l.maxConnections})`);
  if (l.headersTimeoutMs > l.requestTimeoutMs) throw new DeskdError('VALIDATION_FAILED', `headersTimeoutMs (${l.headersTimeoutMs}) must not exceed requestTimeoutMs (${l.requestTimeoutMs})`);
  return l;
}

/** The fastify server options that apply {@link ServerLimits}' timeouts (Node `http.createServer` options). */
export function serverTimeoutOptions(l: ServerLimits): { requestTimeout: number; keepAliveTimeout: number; connectionTimeout: number; http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number; keepAliveTimeout: number } } {
  return {
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // No idle-socket timeout: task event streams (SSE) and long polls may be quiet for long.
    connectionTimeout: 0,
    http: { headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs, connectionsCheckingInterval: l.checkIntervalMs, keepAliveTimeout: l.keepAliveTimeoutMs },
  };
}

/** Who a connection's latest request authenticated as; `null` until one did. */
export type ConnectionRole = 'operator' | 'agent' | null;

/**
 * Caps open connections while keeping room for the operator.
 *
 * Every accepted connection is remembered in arrival order. When one more than `max` is open, one is closed
 * (destroyed): the oldest *other* connection that has not authenticated a request yet (slow headers, idle
 * after a 401), else the oldest agent connection, else the newcomer itself (only operator connections are
 * open). The newcomer is never closed while an agent connection is open, so a flood of authenticated agent
 * connections cannot keep a fresh operator connection out either.
 *
 * The agent credential may hold at most `maxAgent` connections ({@link tag} refuses one more): without that
 * cap, slow-body connections with the agent token would fill every place, and each new connection would
 * then push out the previous newcomer — a fresh operator connection would live only until the next
 * arrival. With it, at least `max - maxAgent` places are left to unauthenticated connections, so a fresh
 * operator connection is pushed out only after that many further connections arrive before its request
 * is read.
 * {@link tag} records the credential of a connection's request (app.ts's auth hook calls it). A new
 * connection is the youngest, so a flood has to open `max` more connections before the operator's request
 * is read to push it out; the listen backlog is kept below `max - maxAgent`.
 */
export class ConnectionGovernor {
  private readonly conns = new Map<Socket, ConnectionRole>();
  private agents = 0;
  /** Connections closed to make room, since start. */
  evicted = 0;

  /**
   * @param max open connections at most (≥ 1).
   * @param maxAgent connections the agent credential may hold (default `max`: no own cap).
   */
  constructor(readonly max: number, readonly maxAgent: number = max) {
    if (!Number.isInteger(max) || max < 1) throw new DeskdError('VALIDATION_FAILED', `maxConnections must be a positive integer, got ${max}`);
    if (!Number.isInteger(maxAgent) || maxAgent < 1) throw new DeskdError('VALIDATION_FAILED', `maxAgentConnections must be a positive integer, got ${maxAgent}`);
  }

  /** Watch a server's connections (call once, before `listen`). */
  attach(server: Pick<Server, 'on'>): void {
    server.on('connection', (s: Socket) => this.admit(s));
  }

  /** Open connections now, by role. */
  counts(): { total: number; operator: number; agent: number; unauthenticated: number } {
    const c = { total: this.conns.size, operator: 0, agent: 0, unauthenticated: 0 };
    for (const r of this.conns.values()) {
      if (r === 'operator') c.operator++;
      else if (r === 'agent') c.agent++;
      else c.unauthenticated++;
    }
    return c;
  }

  /** Record a new connection, closing one when over the cap (see the class comment). */
  admit(socket: Socket): void {
    this.conns.set(socket, null);
    socket.once('close', () => this.forget(socket));
    if (this.conns.size <= this.max) return;
    const victim = this.victim(socket) ?? socket;
    this.forget(victim);
    this.evicted++;
    victim.destroy();
  }

  private forget(socket: Socket): void {
    if (this.conns.get(socket) === 'agent') this.agents--;
    this.conns.delete(socket);
  }

  private set(socket: Socket, role: ConnectionRole): void {
    const was = this.conns.get(socket);
    if (was === 'agent') this.agents--;
    if (role === 'agent') this.agents++;
    this.conns.set(socket, role);
  }

  /**
   * Record that `socket`'s current request authenticated as `role` (sockets not admitted here, e.g.
   * `inject()`'s, are ignored and admitted).
   * @returns false when `role` is `agent` and the agent already holds `maxAgent` other connections: the
   *   connection stays unauthenticated (first to be closed) and the caller should refuse the request.
   */
  tag(socket: Socket | null | undefined, role: 'operator' | 'agent'): boolean {
    if (!socket || !this.conns.has(socket)) return true;
    if (role === 'agent' && this.conns.get(socket) !== 'agent' && this.agents >= this.maxAgent) {
      this.set(socket, null);
      return false;
    }
    this.set(socket, role);
    return true;
  }

  /** The connection to close for `newcomer`: the oldest other unauthenticated one, else the oldest agent one. */
  private victim(newcomer: Socket): Socket | null {
    let agent: Socket | null = null;
    for (const [s, r] of this.conns) {
      if (s === newcomer) continue;
      if (r === null) return s;
      if (r === 'agent' && !agent) agent = s;
    }
    return agent;
  }
}

/**
 * Per-key caps on work in flight (a key is a credential: `agent`, `operator`).
 */
export class ConcurrencyLimiter {
  private readonly inFlight = new Map<string, number>();

  /**
   * @param limit how many may be in flight per key (≥ 1).
   * @param what what is counted, for the error message (e.g. "observes").
   */
  constructor(readonly limit: number, private readonly what = 'requests') {
    if (!Number.isInteger(limit) || limit < 1) throw new DeskdError('VALIDATION_FAILED', `The concurrency limit must be a positive integer, got ${limit}`);
  }

  /** In flight for `key` now. */
  count(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }

  /**
   * Take one slot for `key`.
   * @returns the release function (idempotent: only the first call frees the slot).
   * @throws DeskdError `TOO_MANY_REQUESTS` (429) when `key` already has `limit` in flight; nothing is taken.
   */
  acquire(key: string): () => void {
    const n = this.count(key);
    if (n >= this.limit) {
      throw new DeskdError('TOO_MANY_REQUESTS', `The ${key} credential already has ${n} ${this.what} in flight (at most ${this.limit}); retry when one has answered`, { limit: this.limit, inFlight: n, retryAfterMs: 1000 });
    }
    this.inFlight.set(key, n + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = this.count(key) - 1;
      if (left <= 0) this.inFlight.delete(key);
      else this.inFlight.set(key, left);
    };
  }
}

/** MCP tools that perceive (capture, OCR, accessibility) and count as observes for {@link ConcurrencyLimiter}. */
export const MCP_PERCEIVING_TOOLS: ReadonlySet<string> = new Set(['observe', 'screenshot', 'find', 'wait_for', 'read']);
