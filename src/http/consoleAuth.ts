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
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    let value = part.slice(i + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!(name in out)) out[name] = value;
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
 * (`GET /console/<file>`) and the sign-in (`POST /console/login`, which checks the operator token itself).
 * app.ts's `onRequest` hook lets these through like `PUBLIC_ROUTES`.
 */
export function isConsolePublicPath(method: string, path: string): boolean {
  const m = method.toUpperCase();
  if ((m === 'GET' || m === 'HEAD') && (path === '/' || path === '/console' || /^\/console\/static\/[A-Za-z0-9_.-]+$/.test(path))) return true;
  return m === 'POST' && path === '/console/login';
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
