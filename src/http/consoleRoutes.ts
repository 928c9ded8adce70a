import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeskdError } from '../errors.js';
import {
  CONSOLE_COOKIE,
  CONSOLE_CSRF_HEADER,
  ConsoleSessions,
  SignInThrottle,
  assertLoopbackHostOrigin,
  attachConsoleSessions,
  parseCookies,
  secretMatches,
  sessionCookie,
} from './consoleAuth.js';

/** What the console routes need. */
export interface ConsoleRouteDeps {
  /** The operator token the sign-in checks; without it sign-in always fails (401). */
  operatorToken?: string | undefined;
  /** Session store (default: a new one); also attached to the app for `sessionFromRequest`. */
  sessions?: ConsoleSessions;
  /** Folder holding index.html, console.js, console.css (default: `src/console` of this package). */
  staticDir?: string;
  /** Failed sign-ins answered 401 per minute; later wrong tokens get a delayed 429 `RATE_LIMITED` (default 10). The right token always signs in. */
  maxFailedLoginsPerMinute?: number;
  /** The sign-in throttle (default: one with `maxFailedLoginsPerMinute`); see {@link SignInThrottle}. */
  throttle?: SignInThrottle;
}

/** The static files the console serves, by name → content type. */
const STATIC_FILES: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

/** Security headers on every console answer: same-origin scripts only, no framing, no referrer. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Where the console's files are: `src/console` (running from `src/` or from `dist/src/`). */
export function defaultConsoleDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', 'console'), join(here, '..', '..', '..', 'src', 'console')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? candidates[0]!;
}

/**
 * The operator's web console:
 * - `GET /` the page, `GET /console/static/<file>` its script and style (public, no credential);
 * - `POST /console/login {token}` checks the operator token and sets the session cookie (public; needs
 *   `X-Deskd-Console: 1`; 401 `UNAUTHORIZED` on a wrong token, a delayed 429 `RATE_LIMITED` for wrong tokens
 *   after too many failures; the right token always signs in);
 * - `POST /console/logout` ends the session; `GET /console/session` says who is signed in (operator only).
 * Every console route requires a loopback `Host` and same-origin `Origin` ({@link assertLoopbackHostOrigin}).
 *
 * app.ts must let `isConsolePublicPath` paths through its `onRequest` hook and accept
 * `sessionFromRequest(req)` as the operator (see `src/http/consoleAuth.ts`).
 * @returns the session store.
 */
export async function registerConsoleRoutes(fastify: FastifyInstance, deps: ConsoleRouteDeps): Promise<ConsoleSessions> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const sessions = deps.sessions ?? new ConsoleSessions();
  attachConsoleSessions(fastify, sessions);
  const dir = deps.staticDir ?? defaultConsoleDir();
  const throttle = deps.throttle ?? new SignInThrottle({ maxFailures: deps.maxFailedLoginsPerMinute ?? 10 });
  const guard = { onRequest: async (req: Parameters<typeof assertLoopbackHostOrigin>[0]) => assertLoopbackHostOrigin(req) };

  const send = async (reply: FastifyReply, file: string, type: string) => {
    let body: Buffer;
    try {
      body = await readFile(join(dir, file));
    } catch {
      throw new DeskdError('NOT_FOUND', `Console file ${file} is missing from ${dir}`);
    }
    return reply.headers(PAGE_HEADERS).type(type).send(body);
  };

  app.get('/', { ...guard, schema: { hide: true } }, async (_req, reply) => send(reply, 'index.html', 'text/html; charset=utf-8'));
  app.get('/console', { ...guard, schema: { hide: true } }, async (_req, reply) => reply.redirect('/', 302));
  app.get('/console/static/:file', { ...guard, schema: { hide: true, params: z.object({ file: z.string() }) } }, async (req, reply) => {
    // Own names only: `/console/static/constructor` is no file.
    const type = Object.hasOwn(STATIC_FILES, req.params.file) ? STATIC_FILES[req.params.file] : undefined;
    if (!type) throw new DeskdError('NOT_FOUND', `No console file ${req.params.file}`);
    return send(reply, req.params.file, type);
  });

  app.post(
    '/console/login',
    {
      ...guard,
      schema: {
        summary: 'Console sign-in with the operator token; sets an HttpOnly SameSite=Strict session cookie. Needs `X-Deskd-Console: 1`.',
        security: [],
        body: z.object({ token: z.string().min(1).max(512) }).strict(),
        response: { 200: z.object({ role: z.literal('operator'), expiresAt: z.number().describe('epoch ms') }) },
      },
    },
    async (req, reply) => {
      if (req.headers[CONSOLE_CSRF_HEADER] !== '1') throw new DeskdError('ORIGIN_NOT_ALLOWED', 'Sign-in must carry the header "X-Deskd-Console: 1"');
      // Compare first: the right token signs in however many wrong ones came before (no lockout);
      // only wrong ones are throttled (see SignInThrottle).
      if (!deps.operatorToken || !secretMatches(req.body.token, deps.operatorToken)) {
        const f = throttle.failure();
        if (!f.limited) {
          req.log.warn('console sign-in with a wrong operator token');
          throw new DeskdError('UNAUTHORIZED', 'The operator token is wrong');
        }
        await new Promise((r) => setTimeout(r, f.delayMs));
        throw new DeskdError('RATE_LIMITED', `Too many failed sign-ins; the operator token is wrong (wrong tokens are answered slowly for ${Math.ceil(f.retryAfterMs / 1000)} s more)`, { retryAfterMs: f.retryAfterMs });
      }
      const old = parseCookies(req.headers.cookie)[CONSOLE_COOKIE];
      if (old) sessions.revoke(old);
      const s = sessions.create();
      void reply.header('set-cookie', sessionCookie(s.id, sessions.ttl / 1000)).header('cache-control', 'no-store');
      return { role: 'operator' as const, expiresAt: s.expiresAt };
    },
  );

  app.post(
    '/console/logout',
    { ...guard, schema: { summary: 'End the console session', body: z.object({}).passthrough().prefault({}), response: { 200: z.object({ ok: z.literal(true) }) } } },
    async (req, reply) => {
      const id = parseCookies(req.headers.cookie)[CONSOLE_COOKIE];
      if (id) sessions.revoke(id);
      void reply.header('set-cookie', sessionCookie('', 0));
      return { ok: true as const };
    },
  );

  app.get(
    '/console/session',
    { ...guard, config: { role: 'operator' }, schema: { summary: 'Who is signed in to the console (operator only)', response: { 200: z.object({ role: z.literal('operator'), via: z.enum(['cookie', 'bearer']) }) } } },
    async (req) => {
      if (req.deskdRole !== 'operator') throw new DeskdError('FORBIDDEN_FOR_CREDENTIAL', 'The console needs the operator credential');
      return { role: 'operator' as const, via: req.headers.authorization ? ('bearer' as const) : ('cookie' as const) };
    },
  );

  return sessions;
}
