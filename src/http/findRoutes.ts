import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeskdError } from '../errors.js';
import type { Platform } from '../platform/types.js';
import { describeQuery, findElements, type FindMatch, type FindQuery } from '../perception/find.js';
import type { Observation, ObserveOptions, Observer } from '../perception/observer.js';
import type { AuditLog } from '../policy/audit.js';
import type { Executor } from '../actuation/executor.js';
import { readServiceFor } from './readRoutes.js';
import { CLIENT_HEADER, clientIdentity } from './lease.js';
import { ErrorBodySchema, FindBodySchema, FindResponseSchema, observationBody, WaitBodySchema, WaitResponseSchema } from './schemas.js';

/** What `POST /v1/find` and `POST /v1/wait` use of the app (a narrow slice of `AppDeps`, so this module never imports `src/app.ts`). */
export interface FindRouteDeps {
  platform: Platform;
  observer: Observer;
  /** Told to observe through `observer` (`useObserver`), so refs in actions resolve against the same observations. */
  executor: Executor;
  /** When present, waits are written to the audit log. */
  policy?: { audit: AuditLog } | undefined;
}

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 429: ErrorBodySchema, 500: ErrorBodySchema, 503: ErrorBodySchema, 504: ErrorBodySchema };

/** A `POST /v1/wait` condition (`until`). Every given field must hold at once. */
export interface WaitCondition {
  /** Some element shows this text (name, value or OCR text; ranking as `POST /v1/find`). */
  text?: string;
  /** No element shows this text. */
  textGone?: string;
  /** Some element has this role / name / text. */
  element?: { role?: string; name?: string; text?: string };
  /** Only exact (normalised) matches count. */
  exact?: boolean;
}

const q = (x: { text?: string | undefined; role?: string | undefined; name?: string | undefined }, exact: boolean | undefined): FindQuery => ({
  ...(x.text !== undefined ? { text: x.text } : {}),
  ...(x.role !== undefined ? { role: x.role } : {}),
  ...(x.name !== undefined ? { name: x.name } : {}),
  ...(exact ? { exact } : {}),
});

/**
 * Test a wait condition against one observation.
 * @returns the matches (of `text` and `element`) when the whole condition holds, else null.
 */
export function checkCondition(o: Observation, until: WaitCondition): FindMatch[] | null {
  const matches: FindMatch[] = [];
  if (until.text !== undefined) {
    const m = findElements(o, q({ text: until.text }, until.exact), 5);
    if (m.length === 0) return null;
    matches.push(...m);
  }
  if (until.textGone !== undefined && findElements(o, q({ text: until.textGone }, until.exact), 1).length > 0) return null;
  if (until.element) {
    const m = findElements(o, q(until.element, until.exact), 5);
    if (m.length === 0) return null;
    matches.push(...m);
  }
  return matches;
}

function describeCondition(u: WaitCondition): string {
  const parts: string[] = [];
  if (u.text !== undefined) parts.push(`text ${JSON.stringify(u.text)} shown`);
  if (u.textGone !== undefined) parts.push(`text ${JSON.stringify(u.textGone)} gone`);
  if (u.element) parts.push(`an element with ${describeQuery(u.element)}`);
  return parts.join(' and ');
}

/**
 * `POST /v1/find` and `POST /v1/wait`, and the observer behind action targets by text/role
 * (`executor.useObserver`). Both routes observe through the daemon's Observer, so the policy's perception
 * masks apply to them as to `POST /v1/observe`.
 */
export async function registerFindRoutes(fastify: FastifyInstance, deps: FindRouteDeps): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  deps.executor.useObserver(() => deps.observer.observe({}));

  app.post(
    '/v1/find',
    {
      config: { perceive: true },
      schema: {
        summary:
          'Find elements by text, role and name in a fresh observation (or a stored one): ranked exact > prefix > contains > fuzzy (OCR confusions), interactive roles first on ties. Empty list when nothing matches.',
        body: FindBodySchema,
        response: { 200: FindResponseSchema, ...errors },
      },
    },
    async (req) => {
      const b = req.body;
      const t0 = performance.now();
      const obs = b.observationId
        ? deps.observer.store.get(b.observationId)
        : await deps.observer.observe({ ocr: b.ocr, accessibility: b.accessibility, scope: b.scope, ...(b.display !== undefined ? { display: b.display } : {}) });
      const t1 = performance.now();
      const matches = findElements(obs, { ...q(b, b.exact), ...(b.includeCovered ? { includeCovered: true } : {}) }, b.limit);
      const t2 = performance.now();
      return { observationId: obs.observationId, matches, timings: { observeMs: round(t1 - t0), findMs: round(t2 - t1) } };
    },
  );

  app.post(
    '/v1/wait',
    {
      config: { perceive: true },
      schema: {
        summary:
          'Observe repeatedly until a condition holds (text shown, text gone, an element present) and return that observation; 504 TIMEOUT after timeoutMs (≤ 60000). intervalMs is the pause between observations.',
        body: WaitBodySchema,
        response: { 200: WaitResponseSchema, ...errors },
      },
    },
    async (req) => {
      const b = req.body;
      if (b.until.cell || b.until.pair) {
        // Structure predicates (docs/reading.md): read the screen as data, woken by accessibility events and
        // screen changes; text/element conditions given with them must hold in the same observation.
        const { cell, pair, ...rest } = b.until;
        const textual = rest.text !== undefined || rest.textGone !== undefined || rest.element !== undefined;
        const audit = deps.policy?.audit;
        const w = await readServiceFor({ platform: deps.platform, observer: deps.observer, ...(audit ? { audit } : {}) }).waitFor(
          { ...(cell ? { cell } : {}), ...(pair ? { pair } : {}) },
          {
            timeoutMs: b.timeoutMs,
            ocr: b.ocr,
            actor: clientIdentity(req.deskdRole ?? 'agent', req.headers[CLIENT_HEADER]),
            ...(b.display !== undefined ? { display: b.display } : {}),
            ...(textual ? { extra: (o: Observation) => checkCondition(o, rest) !== null } : {}),
          },
        );
        const matches = textual ? (checkCondition(w.observation, rest) ?? []) : [];
        return { observation: observationBody(w.observation), matches, polls: w.polls, elapsedMs: w.elapsedMs, evidence: { readId: w.read.readId, ...w.evidence } };
      }
      const t0 = performance.now();
      const deadline = t0 + b.timeoutMs;
      const opts: ObserveOptions = { ocr: b.ocr, accessibility: b.accessibility, scope: b.scope, screenshot: b.screenshot, ...(b.display !== undefined ? { display: b.display } : {}) };
      let polls = 0;
      let previous: string | null = null;
      for (;;) {
        const o = await deps.observer.observe(opts);
        polls++;
        // Only the answer is kept in the store: polls must not evict the observations an agent holds refs to.
        if (previous) deps.observer.store.delete(previous);
        previous = o.observationId;
        const matches = checkCondition(o, b.until);
        if (matches) return { observation: observationBody(o), matches, polls, elapsedMs: round(performance.now() - t0) };
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new DeskdError(
            'TIMEOUT',
            `waited ${round(performance.now() - t0)} ms (${polls} observation${polls === 1 ? '' : 's'}) for ${describeCondition(b.until)}; it did not hold. The last observation is ${o.observationId}.`,
            { polls, lastObservationId: o.observationId },
          );
        }
        await sleep(Math.min(b.intervalMs, left));
      }
    },
  );
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
