/**
 * Issue 13, finding 8: console sign-in throttling that a local attacker cannot turn into a lockout of the
 * right operator token. Wrong tokens are counted and, past the budget, answered late with 429; the right
 * token is compared first and always signs in.
 */
import { describe, it, expect, afterEach } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { SignInThrottle, isConsolePublicPath, CONSOLE_STATIC_ROUTE } from '../../src/http/consoleAuth.js';
import { registerConsoleRoutes } from '../../src/http/consoleRoutes.js';
import { DeskdError } from '../../src/errors.js';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';

describe('SignInThrottle', () => {
  it('10 wrong tokens per minute are answered at once; later ones are limited with a delay doubling up to 2 s', () => {
    let t = 1_000_000;
    const th = new SignInThrottle({ now: () => t });
    for (let i = 0; i < 10; i++) expect(th.failure()).toMatchObject({ limited: false, delayMs: 0 });
    expect(th.failure()).toMatchObject({ limited: true, delayMs: 250 });
    expect(th.failure()).toMatchObject({ limited: true, delayMs: 500 });
    expect(th.failure()).toMatchObject({ limited: true, delayMs: 1000 });
    expect(th.failure()).toMatchObject({ limited: true, delayMs: 2000 });
    expect(th.failure()).toMatchObject({ limited: true, delayMs: 2000 });
    expect(th.recentFailures).toBe(15);
    // A minute later the window is empty again.
    t += 60_001;
    expect(th.recentFailures).toBe(0);
    expect(th.failure()).toMatchObject({ limited: false, delayMs: 0 });
  });

  it('retryAfterMs says when the oldest counted failure leaves the window; memory stays bounded', () => {
    let t = 0;
    const th = new SignInThrottle({ maxFailures: 2, windowMs: 10_000, now: () => t });
    th.failure();
    t = 4000;
    th.failure();
    const f = th.failure();
    expect(f.limited).toBe(true);
    expect(f.retryAfterMs).toBe(6000);
    for (let i = 0; i < 10_000; i++) th.failure();
    expect(th.recentFailures).toBeLessThanOrEqual(2 + 64);
  });
});

describe('console sign-in: no lockout of the right token', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => app?.close());

  const OP = 'operator-token-0123456789abcdef';
  async function build(): Promise<FastifyInstance> {
    const a = Fastify();
    a.setValidatorCompiler(validatorCompiler);
    a.setSerializerCompiler(serializerCompiler);
    a.setErrorHandler((err, _req, reply) => {
      const e = err instanceof DeskdError ? err : new DeskdError('VALIDATION_FAILED', (err as Error).message);
      void reply.code(e.status).send(e.toBody());
    });
    await registerConsoleRoutes(a, { operatorToken: OP, throttle: new SignInThrottle({ maxFailures: 3, baseDelayMs: 100, maxDelayMs: 200 }) });
    await a.ready();
    return a;
  }
  const login = (a: FastifyInstance, token: string) => a.inject({ method: 'POST', url: '/console/login', headers: { host: '127.0.0.1', 'x-deskd-console': '1' }, payload: { token } });

  it('while an attacker keeps sending wrong tokens (401, then delayed 429), the operator signs in at once', async () => {
    app = await build();
    const wrong = await Promise.all(Array.from({ length: 6 }, (_, i) => login(app!, `wrong-token-${i}-0123456789`)));
    const codes = wrong.map((r) => r.statusCode).sort();
    expect(codes).toEqual([401, 401, 401, 429, 429, 429]);
    const t0 = performance.now();
    let attackAnswered = 0;
    const attack = Array.from({ length: 4 }, (_, i) => login(app!, `more-wrong-${i}-0123456789`).finally(() => attackAnswered++));
    const ok = await login(app, OP);
    expect(ok.statusCode).toBe(200);
    expect(String(ok.headers['set-cookie'])).toMatch(/^deskd_console=/);
    // Answered while the attacker's (delayed) wrong tokens are still waiting.
    expect(attackAnswered).toBe(0);
    const late = await Promise.all(attack);
    expect(late.every((r) => r.statusCode === 429 && r.json().error.code === 'RATE_LIMITED')).toBe(true);
    expect(late.every((r) => !r.headers['set-cookie'])).toBe(true);
    // The limited answers are late: each waited at least the base delay.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
  });
});

describe('isConsolePublicPath on the routed pattern', () => {
  it('the static-file route is public only for a plain file name', () => {
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, { file: 'console.js' })).toBe(true);
    expect(isConsolePublicPath('HEAD', CONSOLE_STATIC_ROUTE, { file: 'console.css' })).toBe(true);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, { file: '../../v1/audit' })).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, { file: '..' })).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE, {})).toBe(false);
    expect(isConsolePublicPath('GET', CONSOLE_STATIC_ROUTE)).toBe(false);
    expect(isConsolePublicPath('POST', CONSOLE_STATIC_ROUTE, { file: 'console.js' })).toBe(false);
    expect(isConsolePublicPath('GET', '/console/static/..')).toBe(false);
    expect(isConsolePublicPath('POST', '/console/login')).toBe(true);
    expect(isConsolePublicPath('GET', '/console/login')).toBe(false);
  });
});
