import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DeskdError } from '../errors.js';

/**
 * Operator sign-in for the web console, without the token ever sitting in a URL.
 *
 * `POST /console/login {token}` checks the operator token and sets an HttpOnly, SameSite=Strict cookie
 * holding a random session id (32 bytes, base64url); the session lives only in this process's memory
 * ({@link ConsoleSessions}). The console's `fetch` calls send the cookie; app.ts's `onRequest` hook calls
 * {@link sessionFromRequest} when there is no bearer token and treats a valid session as the operator.
 *
 * CSRF: SameSite=Strict already keeps the cookie off cross-site requests; in addition every
 * cookie-authenticated request that changes state (any method but GET/HEAD/OPTIONS) must carry
 * `X-Deskd-Console: 1`, a header a cross-site form cannot send and a cross-site `fetch` cannot send
 * without a CORS preflight deskd never answers (OWASP CSRF cheat sheet, "custom request headers").
 */

/** Name of the session cookie. */
export const CONSOLE_COOKIE = 'deskd_console';
/** Header required on cookie-authenticated state-changing requests (value `1`). */
export const CONSOLE_CSRF_HEADER = 'x-deskd-console';
/** Default session lifetime: 12 hours, ms. */
export const CONSOLE_SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** A signed-in console session. */
export interface ConsoleSession {
  id: string;
  role: 'operator';
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms after which the session is refused. */
  expiresAt: number;
}

/** Server-side console sessions (in memory: a daemon restart signs everybody out). */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly max: number;

  constructor(opts: { ttlMs?: number; now?: () => number; maxSessions?: number } = {}) {
    this.ttlMs = opts.ttlMs ?? CONSOLE_SESSION_TTL_MS;
    this.now = opts.now ?? Date.now;
    this.max = opts.maxSessions ?? 64;
  }

  /** Open a session (evicting expired ones, and the oldest beyond `maxSessions`). */
  create(): ConsoleSession {
    this.sweep();
    const t = this.now();
    const s: ConsoleSession = { id: randomBytes(32).toString('base64url'), role: 'operator', createdAt: t, expiresAt: t + this.ttlMs };
    this.sessions.set(s.id, s);
    while (this.sessions.size > this.max) this.sessions.delete(this.sessions.keys().next().value!);
    return { ...s };
  }

  /** The live session with this id, or null (unknown or expired; expired ones are forgotten). */
  get(id: string): ConsoleSession | null {
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return { ...s };
  }

  /** Forget a session (sign-out). @returns true when it existed. */
  revoke(id: string): boolean {
    return this.sessions.delete(id);
  }

  /** Forget every session. */
  clear(): void {
    this.sessions.clear();
  }

  /** Number of live sessions. */
  get size(): number {
    this.sweep();
    return this.sessions.size;
  }

  /** Session lifetime, ms. */
  get ttl(): number {
    return this.ttlMs;
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= t) this.sessions.delete(id);
  }
}

/** Parse a `Cookie` header into name → value (RFC 6265 §5.4; first occurrence wins). */
export function parseCookies(header: string | undefined): Record<string, string> {
  // No prototype: a cookie named `__proto__` or `constructor` is a cookie like any other.
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    let value = part.slice(i + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!Object.hasOwn(out, name)) out[name] = value;
  }
  return out;
}

/** `Set-Cookie` value for a session (`maxAgeS` 0 clears it). HttpOnly, SameSite=Strict, Path=/; no Secure: the daemon is plain HTTP on loopback. */
export function sessionCookie(id: string, maxAgeS: number): string {
  return `${CONSOLE_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeS))}`;
}

/** Constant-time comparison (hashes first so lengths never leak). */
export function secretMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Console sessions, decorated by `registerConsoleRoutes`. */
    deskdConsoleSessions?: ConsoleSessions;
  }
}

/** Attach the session store to an app (done by `registerConsoleRoutes`); {@link sessionFromRequest} reads it from `req.server`. */
export function attachConsoleSessions(app: FastifyInstance, sessions: ConsoleSessions): void {
  if (!app.hasDecorator('deskdConsoleSessions')) app.decorate('deskdConsoleSessions', sessions);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The console session a request carries, for app.ts's `onRequest` hook (call it when there is no
 * `Authorization` header): `{role: 'operator', sessionId}` for a valid session cookie, else null
 * (no cookie, unknown or expired session, or no console registered on this app).
 * @throws DeskdError `ORIGIN_NOT_ALLOWED` when a valid session cookie comes on a state-changing request
 *   without `X-Deskd-Console: 1` (CSRF protection; nothing must be done for such a request).
 */
export function sessionFromRequest(req: Pick<FastifyRequest, 'method' | 'headers'> & { server?: FastifyInstance }, sessions?: ConsoleSessions): { role: 'operator'; sessionId: string } | null {
  const store = sessions ?? req.server?.deskdConsoleSessions;
  if (!store) return null;
  const id = parseCookies(req.headers.cookie)[CONSOLE_COOKIE];
  if (!id) return null;
  const s = store.get(id);
  if (!s) return null;
  if (!SAFE_METHODS.has(req.method.toUpperCase()) && req.headers[CONSOLE_CSRF_HEADER] !== '1') {
    throw new DeskdError('ORIGIN_NOT_ALLOWED', `A console request that changes state must carry the header "X-Deskd-Console: 1" (CSRF protection)`);
  }
  return { role: 'operator', sessionId: s.id };
}

/**
 * Paths the console serves without any credential: the page itself (`GET /`), its static files
 * (`GET /console/static/<file>`) and the sign-in (`POST /console/login`, which checks the operator token
 * itself). app.ts's `onRequest` hook lets these through like `PUBLIC_ROUTES`, passing the *routed* pattern
 * (`req.routeOptions.url`, e.g. `/console/static/:file`) and the decoded route parameters; a concrete path
 * (`/console/static/console.js`) is accepted too.
 * @param params the route parameters (only `file` is read, for the static-file pattern).
 */
export function isConsolePublicPath(method: string, path: string, params?: unknown): boolean {
  const m = method.toUpperCase();
  if (m === 'GET' || m === 'HEAD') {
    if (path === '/' || path === '/console' || STATIC_PATH.test(path)) return true;
    // The routed pattern: public only for a plain file name (the decoded parameter), so `..%2F..%2Fx` is not.
    if (path === CONSOLE_STATIC_ROUTE) {
      const file = params && typeof params === 'object' ? (params as { file?: unknown }).file : undefined;
      return typeof file === 'string' && STATIC_FILE.test(file);
    }
    return false;
  }
  return m === 'POST' && path === '/console/login';
}

const STATIC_FILE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;
const STATIC_PATH = /^\/console\/static\/[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/** The routed pattern of the console's static files (what app.ts passes to {@link isConsolePublicPath}). */
export const CONSOLE_STATIC_ROUTE = '/console/static/:file';

/** Options of {@link SignInThrottle}. */
export interface SignInThrottleOptions {
  /** Wrong tokens per window answered at once with 401 (default 10). */
  maxFailures?: number;
  /** The window, ms (default 60 000). */
  windowMs?: number;
  /** Delay of the first wrong token past the budget, ms (default 250); it doubles with each further one. */
  baseDelayMs?: number;
  /** The longest delay, ms (default 2 000). */
  maxDelayMs?: number;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** What {@link SignInThrottle.failure} decided for one wrong token. */
export interface SignInFailure {
  /** Past the budget: answer 429 `RATE_LIMITED` instead of 401. */
  limited: boolean;
  /** Wait this long before answering, ms (0 within the budget). */
  delayMs: number;
  /** When the oldest counted failure leaves the window, ms from now. */
  retryAfterMs: number;
}

/**
 * Throttling of *wrong* console sign-ins that cannot be turned into a lockout of the right token.
 *
 * The token is compared first; a correct token signs in whatever the throttle's state (a local attacker
 * who sends wrong tokens all day cannot keep the operator out). Only failures are counted: within
 * `maxFailures` per `windowMs` they are answered 401 at once; past that with 429 `RATE_LIMITED` after a
 * delay growing from `baseDelayMs` to `maxDelayMs`. Every client on loopback has the same address, so
 * failures are counted for the daemon as a whole, not per source. What makes guessing hopeless is the
 * token itself (generated tokens: 32 random bytes; `DESKD_OPERATOR_TOKEN` at least 16 characters); the
 * throttle only slows a guesser down and keeps the log quiet.
 */
export class SignInThrottle {
  private failures: number[] = [];
  private readonly max: number;
  private readonly windowMs: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly now: () => number;

  constructor(opts: SignInThrottleOptions = {}) {
    this.max = opts.maxFailures ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.baseDelayMs = opts.baseDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 2_000;
    this.now = opts.now ?? Date.now;
  }

  /** Record one wrong token and say how to answer it. */
  failure(): SignInFailure {
    const t = this.now();
    this.failures = this.failures.filter((f) => t - f < this.windowMs);
    this.failures.push(t);
    // Bounded memory: only the newest (max + 64) failures matter for the decision.
    if (this.failures.length > this.max + 64) this.failures.splice(0, this.failures.length - (this.max + 64));
    const excess = this.failures.length - this.max;
    const retryAfterMs = Math.max(0, this.windowMs - (t - this.failures[0]!));
    if (excess <= 0) return { limited: false, delayMs: 0, retryAfterMs };
    return { limited: true, delayMs: Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(excess - 1, 16)), retryAfterMs };
  }

  /** Wrong tokens counted in the current window. */
  get recentFailures(): number {
    const t = this.now();
    return this.failures.filter((f) => t - f < this.windowMs).length;
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Host name of a `Host` header value or URL authority, lower-cased, without the port. */
function hostOnly(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) return a.slice(0, a.indexOf(']') + 1);
  const i = a.lastIndexOf(':');
  return i >= 0 ? a.slice(0, i) : a;
}

/**
 * DNS-rebinding and cross-site protection for a loopback daemon (the MCP spec's Streamable HTTP
 * "Security Warning": validate `Origin`, bind to localhost): the `Host` header must name a loopback
 * host (127.0.0.1, localhost, [::1]) and an `Origin` header, when present, must be an `http://` loopback
 * origin equal to `http://<Host>` (same origin; `null`, other sites and other local ports are refused).
 * @throws DeskdError `ORIGIN_NOT_ALLOWED`.
 */
export function assertLoopbackHostOrigin(req: Pick<FastifyRequest, 'headers'>): void {
  const host = req.headers.host;
  if (!host || !LOOPBACK_HOSTS.has(hostOnly(host))) throw new DeskdError('ORIGIN_NOT_ALLOWED', `Host "${host ?? ''}" is not a loopback address of this daemon`);
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let u: URL | null = null;
  try {
    u = new URL(origin);
  } catch {
    u = null;
  }
  // Same origin only: another local port (a dev server on localhost:3000) is same-site for cookies, not same-origin.
  if (!u || u.protocol !== 'http:' || u.host !== host.trim().toLowerCase()) throw new DeskdError('ORIGIN_NOT_ALLOWED', `Origin "${origin}" is not allowed: only pages served by this daemon (http://${host}) may call it`);
}
