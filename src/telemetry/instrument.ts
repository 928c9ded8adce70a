import { context, trace, type Span } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import type { Observer } from '../perception/observer.js';
import type { Executor } from '../actuation/executor.js';
import type { PolicyGate } from '../policy/gate.js';
import { TaskSession } from '../agent/session.js';
import { agentOfActor, principalOf } from '../governance/agents.js';
import { errorCode, type Telemetry } from './telemetry.js';

/**
 * Where deskd's spans come from (issue 17). Instance methods are wrapped from the outside, so the generic
 * layers (perception, actuation, policy) stay free of telemetry code:
 *
 * - `{METHOD} {route}` per HTTP request (and so per MCP request, `POST /mcp` with `mcp.method` and the tool
 *   names): `http.request.method`, `http.route` (the routed pattern), `http.response.status_code`, `deskd.agent`.
 * - `deskd.observe` with children `deskd.observe.capture`, `.ocr`, `.accessibility`, `.fusion`: their
 *   times are the observation's own `timings` (capture first, OCR and accessibility side by side, the rest
 *   is fusion).
 * - `deskd.action` (one batch) with children `deskd.policy.decide` (one per action), `deskd.approval.wait`
 *   and `deskd.action.dispatch`.
 * - `deskd.task.model` per model call of a task step, with `gen_ai.usage.input_tokens` / `output_tokens`.
 *
 * Attribute values are counts, ids, types and codes only: never text typed, keys pressed, a reason's words,
 * an image or a token.
 */

declare module 'fastify' {
  interface FastifyRequest {
    deskdSpan?: Span;
  }
}

/** HTTP spans and metrics hooks; call in `buildApp` before routes are registered. */
export function instrumentApp(app: FastifyInstance, tel: Telemetry): void {
  if (!tel.tracing) return;
  app.addHook('onRequest', async (req) => {
    const route = req.routeOptions.url;
    req.deskdSpan = tel.tracer.startSpan(`${req.method} ${route ?? '(unrouted)'}`, { attributes: { 'http.request.method': req.method, ...(route ? { 'http.route': route } : {}) } });
  });
  app.addHook('onResponse', async (req, reply) => {
    const span = req.deskdSpan;
    if (!span) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) span.setStatus({ code: 2 });
    span.end();
  });
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function (this: unknown, req, reply) {
      const span = req.deskdSpan;
      if (!span) return (handler as (this: unknown, ...a: unknown[]) => unknown).call(this, req, reply);
      span.setAttribute('deskd.agent', agentOfActor(principalOf(req.deskdRole, req.deskdAgent?.id)) ?? 'none');
      if (route.url === '/mcp' && req.body) {
        const msgs = Array.isArray(req.body) ? req.body : [req.body];
        const methods = msgs.map((m) => (m && typeof m === 'object' && typeof (m as { method?: unknown }).method === 'string' ? (m as { method: string }).method : '?'));
        const tools = msgs.flatMap((m) => { const n = (m as { params?: { name?: unknown } } | null)?.params?.name; return typeof n === 'string' && /^[a-z_]{1,40}$/.test(n) ? [n] : []; });
        span.setAttribute('mcp.method', methods.join(','));
        if (tools.length) span.setAttribute('mcp.tools', tools.join(','));
      }
      return context.with(trace.setSpan(context.active(), span), () => (handler as (this: unknown, ...a: unknown[]) => unknown).call(this, req, reply));
    } as typeof handler;
  });
}

/** Wrap `observer.observe`: a span with child spans from the observation's timings, and the latency histogram. */
export function instrumentObserver(observer: Observer, tel: Telemetry): void {
  const orig = observer.observe.bind(observer);
  observer.observe = (async (opts?: Parameters<Observer['observe']>[0]) => {
    const t0 = Date.now();
    return tel.span('deskd.observe', { 'deskd.observe.ocr': opts?.ocr !== false, 'deskd.observe.accessibility': opts?.accessibility !== false, 'deskd.observe.scope': opts?.scope ?? 'all' }, async (span) => {
      const o = await orig(opts);
      tel.observeMs.record(Date.now() - t0);
      span.setAttribute('deskd.observe.elements', o.elements.length);
      span.setAttribute('deskd.observe.words', o.words.length);
      if (tel.tracing) {
        const tm = o.timings;
        const start = t0 + (tm.settleMs ?? 0);
        const afterCapture = start + tm.captureMs;
        const child = (name: string, from: number, ms: number) => tel.tracer.startSpan(name, { startTime: from }, trace.setSpan(context.active(), span)).end(from + Math.max(0, ms));
        child('deskd.observe.capture', start, tm.captureMs);
        child('deskd.observe.ocr', afterCapture, tm.ocrMs);
        child('deskd.observe.accessibility', afterCapture, tm.accessibilityMs);
        const fusionFrom = afterCapture + Math.max(tm.ocrMs, tm.accessibilityMs);
        child('deskd.observe.fusion', fusionFrom, Math.max(0, t0 + tm.totalMs - fusionFrom));
      }
      return o;
    });
  }) as Observer['observe'];
}

/** Wrap `executor.submit` (batch span, latency histogram) and its dispatch step. */
export function instrumentExecutor(executor: Executor, tel: Telemetry): void {
  const orig = executor.submit.bind(executor);
  executor.submit = (async (actions, actor = 'agent', opts = {}) => {
    const t0 = Date.now();
    const attrs = { 'deskd.actions.count': actions.length, 'deskd.actions.types': [...new Set(actions.map((a) => a.type))].join(','), 'deskd.agent': agentOfActor(actor) ?? 'none', 'deskd.reason.given': opts.reason !== undefined || (opts.reasons?.some((r) => r !== undefined) ?? false) };
    return tel.span('deskd.action', attrs, async (span) => {
      const s = await orig(actions, actor, opts);
      if (s.status === 'done') tel.actionMs.record(Date.now() - t0, { outcome: 'done' });
      else {
        span.setAttribute('deskd.approvals', s.approvals.length);
        s.outcome.then(() => tel.actionMs.record(Date.now() - t0, { outcome: 'done' }), (e: unknown) => tel.actionMs.record(Date.now() - t0, { outcome: errorCode(e) }));
      }
      return s;
    }).catch((e: unknown) => {
      tel.actionMs.record(Date.now() - t0, { outcome: errorCode(e) });
      throw e;
    });
  }) as Executor['submit'];
  const x = executor as unknown as { dispatchAll: (...a: unknown[]) => Promise<unknown> };
  const dispatch = x.dispatchAll.bind(executor);
  x.dispatchAll = (...a: unknown[]) => tel.span('deskd.action.dispatch', {}, () => dispatch(...a));
}

/** Wrap the gate: a `deskd.policy.decide` span and the decisions counter per decision; `deskd.approval.wait` per wait. */
export function instrumentGate(gate: PolicyGate, tel: Telemetry): void {
  const check = gate.checkEffects.bind(gate);
  gate.checkEffects = ((action, effects, actor, opts) =>
    tel.span('deskd.policy.decide', { 'deskd.action.type': action.type, 'deskd.effects': effects.length, 'deskd.agent': agentOfActor(actor) ?? 'none' }, async (span) => {
      try {
        const r = await check(action, effects, actor, opts);
        span.setAttributes({ 'deskd.policy.effect': r.effect, 'deskd.policy.rule': r.decision.ruleId });
        tel.decisions.add(1, { effect: r.effect, rule: r.decision.ruleId });
        return r;
      } catch (e) {
        const rule = ((e as { details?: { ruleId?: unknown } }).details?.ruleId as string | undefined) ?? errorCode(e);
        span.setAttributes({ 'deskd.policy.effect': 'deny', 'deskd.policy.rule': rule });
        tel.decisions.add(1, { effect: 'deny', rule });
        throw e;
      }
    })) as PolicyGate['checkEffects'];
  const wait = gate.awaitApproval.bind(gate);
  gate.awaitApproval = ((r) => tel.span('deskd.approval.wait', { 'deskd.policy.rule': r.decision.ruleId }, async (span) => {
    const o = await wait(r);
    span.setAttributes({ 'deskd.approval.decision': o.decision, 'deskd.approval.via': o.via });
    return o;
  })) as PolicyGate['awaitApproval'];
}

let tasksWrapped: Telemetry | null = null;

/** Wrap task model calls (`TaskSession.callModel`) in `deskd.task.model` spans with token usage; once per process. */
export function instrumentTasks(tel: Telemetry): void {
  if (!tel.tracing || tasksWrapped) return;
  tasksWrapped = tel;
  const proto = TaskSession.prototype as unknown as { callModel: (step: { index: number }, fn: unknown) => Promise<unknown> };
  const orig = proto.callModel;
  proto.callModel = function (this: { task: { taskId: string } }, step, fn) {
    const t = tasksWrapped!;
    return t.span('deskd.task.model', { 'deskd.task.step': step.index }, async (span) => {
      const v = await orig.call(this, step, fn);
      const u = (v as { usage?: { input_tokens?: unknown; output_tokens?: unknown; prompt_tokens?: unknown; completion_tokens?: unknown } } | null)?.usage;
      const input = u?.input_tokens ?? u?.prompt_tokens;
      const output = u?.output_tokens ?? u?.completion_tokens;
      if (typeof input === 'number') span.setAttribute('gen_ai.usage.input_tokens', input);
      if (typeof output === 'number') span.setAttribute('gen_ai.usage.output_tokens', output);
      return v;
    });
  };
}
