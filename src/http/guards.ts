import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DeskdError } from '../errors.js';

/**
 * Request guards that run before anything else on every route (app.ts registers them as the first
 * `onRequest` hook, before authentication):
 *
 * - {@link assertHostAndOrigin}: DNS rebinding and cross-site requests (MCP spec, Streamable HTTP
 *   "Security Warning"; OWASP "DNS rebinding"): `Host` must be a loopback name with the daemon's port,
 *   `Origin` (when present) the daemon's own origin, `Sec-Fetch-Site` (when present) `same-origin`/`none`.
 * - {@link assertNoTokenInUrl}: credentials in the query string are refused (RFC 6750 §5.3: "Don't pass
 *   bearer tokens in page URLs").
 * - {@link hardenContentTypes}: only `application/json` bodies are parsed (fastify's default
 *   `text/plain` parser is removed: it is the "simple request" type a cross-site form can send).
 * - {@link stripCorsHeaders}: deskd never answers with `Access-Control-Allow-*` headers, so a browser
 *   never lets another origin read an answer or send a preflighted request.
 */

/** Host names that reach this machine's loopback interface. */
export const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Query parameter names that carry credentials; any of them in a URL → `TOKEN_IN_URL`. */
export const CREDENTIAL_QUERY_PARAMS: ReadonlySet<string> = new Set(['token', 'access_token', 'accesstoken', 'bearer', 'api_key', 'apikey', 'key', 'auth', 'authorization', 'password', 'session']);

/** `host[:port]` split; the host lower-cased, IPv6 kept in brackets; port null when absent. */
export function parseAuthority(authority: string): { host: string; port: number | null } | null {
  const a = authority.trim().toLowerCase();
  if (!a || /[\s/@?#\\]/.test(a)) return null;
  let host: string;
  let rest: string;
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    if (end < 0) return null;
    host = a.slice(0, end + 1);
    rest = a.slice(end + 1);
  } else {
    const i = a.indexOf(':');
    host = i >= 0 ? a.slice(0, i) : a;
    rest = i >= 0 ? a.slice(i) : '';
  }
  if (rest === '') return { host, port: null };
  if (!/^:\d{1,5}$/.test(rest)) return null;
  const port = Number(rest.slice(1));
  return port <= 65535 ? { host, port } : null;
}

/** What {@link assertHostAndOrigin} compares against. */
export interface HostCheck {
  /**
   * The daemon's port. Default: the local port of the request's socket (the port the connection
   * actually arrived on); `null` skips the port comparison (in-process `inject()` without a port).
   */
  port?: number | null;
  /**
   * Extra host names accepted besides the loopback names. Default: the IP literal the connection arrived
   * on when it is not loopback (only possible when the daemon was bound to it with `--allow-remote`; an
   * IP literal cannot be rebound by DNS).
   */
  extraHosts?: readonly string[];
}

function bracket(ip: string): string {
  return isIP(ip) === 6 ? `[${ip.toLowerCase()}]` : ip.toLowerCase();
}

/**
 * DNS-rebinding and cross-site protection for every route.
 * - `Host` must be present, a loopback name (127.0.0.1, localhost, [::1]) or the non-loopback IP the
 *   connection arrived on, with the daemon's port (no port means 80).
 * - `Origin`, when present, must be `http://` + that same `Host` (`null` and every other origin refused).
 * - `Sec-Fetch-Site`, when present, must be `same-origin` or `none` (a browser navigation or the daemon's
 *   own page); `same-site` (another localhost port) and `cross-site` are refused.
 * @throws DeskdError `ORIGIN_NOT_ALLOWED` (403).
 */
export function assertHostAndOrigin(req: Pick<FastifyRequest, 'headers'> & { socket?: { localPort?: number | undefined; localAddress?: string | undefined } }, check: HostCheck = {}): void {
  const raw = req.headers.host;
  const a = raw === undefined ? null : parseAuthority(raw);
  if (!a) throw new DeskdError('ORIGIN_NOT_ALLOWED', `Host "${raw ?? ''}" is not a loopback address of this daemon`);
  const local = req.socket?.localAddress;
  const extra = check.extraHosts ?? (local && isIP(local.replace(/^::ffff:/, '')) && !isLoopbackIp(local) ? [bracket(local.replace(/^::ffff:/, ''))] : []);
  if (!LOOPBACK_NAMES.has(a.host) && !extra.includes(a.host)) {
    throw new DeskdError('ORIGIN_NOT_ALLOWED', `Host "${raw}" is not a loopback address of this daemon (DNS-rebinding protection)`);
  }
  const port = check.port !== undefined ? check.port : (req.socket?.localPort ?? null);
  if (port !== null && (a.port ?? 80) !== port) {
    throw new DeskdError('ORIGIN_NOT_ALLOWED', `Host "${raw}" does not name this daemon's port ${port}`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const want = `http://${raw!.trim().toLowerCase()}`;
    if (origin.toLowerCase() !== want) {
      throw new DeskdError('ORIGIN_NOT_ALLOWED', `Origin "${origin}" is not allowed: only pages served by this daemon (${want}) may call it`);
    }
  }
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') {
    throw new DeskdError('ORIGIN_NOT_ALLOWED', `A ${site} browser request is not allowed (Sec-Fetch-Site)`);
  }
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackIp(ip: string): boolean {
  const v = ip.replace(/^::ffff:/i, '');
  return v === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v);
}

/**
 * Refuse credentials in the URL: any query parameter in {@link CREDENTIAL_QUERY_PARAMS} (case-insensitive).
 * @throws DeskdError `TOKEN_IN_URL` (400), even when the token would be right.
 */
export function assertNoTokenInUrl(url: string): void {
  const q = url.indexOf('?');
  if (q < 0) return;
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(url.slice(q + 1));
  } catch {
    return;
  }
  for (const name of params.keys()) {
    if (CREDENTIAL_QUERY_PARAMS.has(name.toLowerCase())) {
      throw new DeskdError('TOKEN_IN_URL', `Credentials are never accepted in the URL (query parameter "${name}"): send "Authorization: Bearer <token>"`);
    }
  }
}

/**
 * Parse only `application/json` bodies: remove fastify's default `text/plain` parser, so a request with any
 * other content type (text/plain, form encodings, multipart) is answered 415 `UNSUPPORTED_MEDIA_TYPE`
 * before any handler runs. Source: fastify docs, "Content-Type Parser" (`removeContentTypeParser`).
 */
export function hardenContentTypes(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain');
}

/**
 * An `onSend` hook body: drop any `Access-Control-Allow-*` / `-Expose-*` header a route or plugin may have
 * set (deskd serves no other origin), and set `X-Content-Type-Options: nosniff`.
 */
export function stripCorsHeaders(reply: { getHeaders(): Record<string, unknown>; removeHeader(k: string): unknown; header(k: string, v: string): unknown }): void {
  for (const k of Object.keys(reply.getHeaders())) if (/^access-control-(allow|expose)-/i.test(k)) reply.removeHeader(k);
  reply.header('x-content-type-options', 'nosniff');
}

/**
 * pino redaction paths for the daemon's logger (`src/main.ts`): credentials (Authorization, cookies,
 * tokens) and typed text (`type` actions, bodies) never reach the log. Censor: `[redacted]`.
 * Source: pino docs, "Redaction" (paths in the fast-redact syntax).
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
  'req.body',
  'body',
  'token',
  '*.token',
  'password',
  '*.password',
  'text',
  '*.text',
  'action.text',
  'actions[*].text',
  '*.actions[*].text',
  'value',
  '*.value',
];

/**
 * A URL with the values of the query parameters named in `names` (lower case; matched case-insensitively
 * after percent-decoding, so `%74oken` is `token`) replaced by `[redacted]`. A name that does not decode
 * is compared raw. Everything else of the URL is kept to the letter.
 */
export function redactQuery(url: string, names: ReadonlySet<string>): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  return url.slice(0, q + 1) + url.slice(q + 1).replace(/(^|&)([^=&]*)=([^&]*)/g, (all, sep: string, name: string) => {
    let n = name;
    try {
      n = decodeURIComponent(name);
    } catch {
      /* keep raw */
    }
    return names.has(n.toLowerCase()) ? `${sep}${name}=[redacted]` : all;
  });
}

/** A URL with the values of credential query parameters ({@link CREDENTIAL_QUERY_PARAMS}) replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  return redactQuery(url, CREDENTIAL_QUERY_PARAMS);
}

/**
 * fastify's request serializer, with credential query values redacted from `url` (fastify logs the URL of
 * every request before any hook can refuse it).
 */
export function safeRequestSerializer(req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }): Record<string, unknown> {
  return { method: req.method, url: redactUrl(req.url ?? ''), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}
