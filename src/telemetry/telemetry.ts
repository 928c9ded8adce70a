import { createRequire } from 'node:module';
import { context, trace, SpanStatusCode, INVALID_SPAN_CONTEXT, type Span, type Tracer, type Attributes, type Histogram, type Counter } from '@opentelemetry/api';
import type { BasicTracerProvider, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { AuditShipStats } from './auditShip.js';

// The tracing half of the SDK (trace SDK, async-hooks context manager, OTLP/HTTP exporter: ≈ 2 MB of heap
// and 150 modules) is loaded only when spans are recorded (an OTLP endpoint or extra processors), with
// `require` so that `Telemetry.create` stays synchronous. These three packages are CommonJS only (no
// `exports` map, `main` is the CommonJS build), so `import` and `require` give the same module instance
// (issue 15).
const requireTracing = createRequire(import.meta.url);
const traceSdk = (): typeof import('@opentelemetry/sdk-trace-base') => requireTracing('@opentelemetry/sdk-trace-base');

/**
 * Fleet observability on OpenTelemetry (issue 17), with `@opentelemetry/api` and the SDK pieces used
 * directly (`sdk-trace-base`'s `BasicTracerProvider`, `sdk-metrics`' `MeterProvider`): the all-in-one
 * `sdk-node` would add auto-instrumentation deskd does not want.
 *
 * - Traces are exported over OTLP/HTTP only when the standard variables name an endpoint
 *   (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SERVICE_NAME`,
 *   `OTEL_EXPORTER_OTLP_HEADERS` are read by the exporter); otherwise no span is recorded at all.
 * - Metrics are always kept in memory and served as Prometheus text by `GET /metrics` (operator).
 *
 * Attributes are chosen so that no screenshot, typed text, key, reason text or token ever lands in a span
 * or metric: routes are routed patterns, actions are named by type only, agents by id, rules by id.
 */

/** Options of {@link Telemetry.create}. */
export interface TelemetryOptions {
  env?: NodeJS.ProcessEnv;
  version?: string;
  /** Extra span processors (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
  /** Pending approvals right now (gauge `deskd_approvals_pending`). */
  pendingApprovals?: () => number;
  /** OCR jobs waiting for a worker (gauge `deskd_ocr_queue_depth`); absent → the gauge is not registered. */
  ocrQueueDepth?: () => number;
  /**
   * Audit shipping counters per sink (`auditShip.ts`): counters `deskd.audit.shipped`, `deskd.audit.dropped`
   * (by `reason`), `deskd.audit.ship_failures` and gauge `deskd.audit.ship_queue`, each by `sink`. Absent →
   * not registered.
   */
  auditShipping?: () => AuditShipStats[];
}

let contextManagerSet = false;

/** Tracing and metrics of one daemon. */
export class Telemetry {
  readonly tracer: Tracer;
  /** True when spans are recorded (an OTLP endpoint or extra processors). */
  readonly tracing: boolean;
  private readonly provider: BasicTracerProvider | null;
  private readonly meters: MeterProvider;
  private readonly reader: PrometheusExporter;
  readonly observeMs: Histogram;
  readonly actionMs: Histogram;
  readonly decisions: Counter;

  private constructor(opts: TelemetryOptions) {
    const env = opts.env ?? process.env;
    const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME || 'deskd', [ATTR_SERVICE_VERSION]: opts.version ?? '0.0.0' });
    const processors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
    // The OTLP/HTTP exporter's URL from the standard variables (OTel spec, "OTLP Exporter Configuration"):
    // the traces endpoint as given, or the base endpoint + `/v1/traces`.
    const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || (env.OTEL_EXPORTER_OTLP_ENDPOINT ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces` : '');
    if (url) {
      const { OTLPTraceExporter } = requireTracing('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
      processors.push(new (traceSdk().BatchSpanProcessor)(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 500 }));
    }
    this.tracing = processors.length > 0;
    if (this.tracing) {
      if (!contextManagerSet) {
        const { AsyncLocalStorageContextManager } = requireTracing('@opentelemetry/context-async-hooks') as typeof import('@opentelemetry/context-async-hooks');
        context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
        contextManagerSet = true;
      }
      this.provider = new (traceSdk().BasicTracerProvider)({ resource, spanProcessors: processors });
      this.tracer = this.provider.getTracer('deskd', opts.version);
    } else {
      this.provider = null;
      this.tracer = trace.getTracer('deskd-noop');
    }
    this.reader = new PrometheusExporter({ preventServerStart: true });
    this.meters = new MeterProvider({ resource, readers: [this.reader] });
    const meter = this.meters.getMeter('deskd', opts.version);
    this.observeMs = meter.createHistogram('deskd.observe.duration', { unit: 'ms', description: 'Observation latency (capture, OCR, accessibility, fusion)' });
    this.actionMs = meter.createHistogram('deskd.action.duration', { unit: 'ms', description: 'Action batch latency from submission to result (approval waits included)' });
    this.decisions = meter.createCounter('deskd.policy.decisions', { description: 'Policy decisions by effect and deciding rule' });
    meter.createObservableGauge('deskd.process.rss', { unit: 'By', description: 'Resident set size of the daemon' }).addCallback((r) => r.observe(process.memoryUsage.rss()));
    const pending = opts.pendingApprovals;
    if (pending) meter.createObservableGauge('deskd.approvals.pending', { description: 'Actions waiting for the operator' }).addCallback((r) => r.observe(pending()));
    const ocr = opts.ocrQueueDepth;
    if (ocr) meter.createObservableGauge('deskd.ocr.queue_depth', { description: 'OCR jobs waiting for a worker' }).addCallback((r) => r.observe(ocr()));
    const ship = opts.auditShipping;
    if (ship) {
      meter.createObservableCounter('deskd.audit.shipped', { description: 'Audit records delivered to a shipping sink (syslog, otlp)' }).addCallback((r) => {
        for (const s of ship()) r.observe(s.shipped, { sink: s.sink });
      });
      meter.createObservableCounter('deskd.audit.dropped', { description: 'Audit records a shipping sink gave up: queue_full (oldest dropped), too_large, rejected' }).addCallback((r) => {
        for (const s of ship()) for (const [reason, n] of Object.entries(s.dropped)) r.observe(n, { sink: s.sink, reason });
      });
      meter.createObservableCounter('deskd.audit.ship_failures', { description: 'Failed (retried) send attempts of a shipping sink' }).addCallback((r) => {
        for (const s of ship()) r.observe(s.failures, { sink: s.sink });
      });
      meter.createObservableGauge('deskd.audit.ship_queue', { description: 'Audit records waiting to be shipped' }).addCallback((r) => {
        for (const s of ship()) r.observe(s.queued, { sink: s.sink });
      });
    }
  }

  /** Build the daemon's telemetry (see the module comment). */
  static create(opts: TelemetryOptions = {}): Telemetry {
    return new Telemetry(opts);
  }

  /** Metrics in the Prometheus text exposition format 0.0.4. */
  async metricsText(): Promise<string> {
    const { resourceMetrics } = await this.reader.collect();
    return new PrometheusSerializer().serialize(resourceMetrics);
  }

  /**
   * Run `fn` inside a new span (a child of the active one); the span ends when `fn` settles, with an error
   * status (the error's `code` only, never its message) when it throws.
   */
  async span<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
    if (!this.tracing) return fn(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
    return this.tracer.startActiveSpan(name, { attributes }, async (span) => {
      try {
        return await fn(span);
      } catch (e) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode(e) });
        span.setAttribute('error.type', errorCode(e));
        throw e;
      } finally {
        span.end();
      }
    });
  }

  /** Export the spans ended so far (the batch processor otherwise sends every 500 ms). */
  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  /** Flush pending spans and stop. */
  async close(): Promise<void> {
    await this.provider?.forceFlush().catch(() => undefined);
    await this.provider?.shutdown().catch(() => undefined);
    await this.meters.shutdown().catch(() => undefined);
  }
}

/**
 * The OCR queue depth of the daemon's recogniser, for the `deskd.ocr.queue_depth` gauge: jobs waiting for a
 * tesseract worker. Follows `engine` (a `RecyclingRecognizer`'s current engine, read again at every
 * collection so a replaced engine is followed) down to an object with a numeric `queued` (`OcrEngine`, whose
 * `queued` is its worker pool's FIFO length). Running jobs are not counted, only waiting ones.
 * @returns null when the recogniser exposes no queue (no OCR, or a recogniser without one): the gauge is
 *   then not registered.
 */
export function ocrQueueDepthOf(ocr: unknown): (() => number) | null {
  const depth = (): number | null => {
    let x = ocr;
    for (let i = 0; i < 4 && x !== null && typeof x === 'object'; i++) {
      const q = (x as { queued?: unknown }).queued;
      if (typeof q === 'number') return q;
      x = (x as { engine?: unknown }).engine;
    }
    return null;
  };
  return depth() === null ? null : () => depth() ?? 0;
}

/** A stable error code for a span status (DeskdError `code`, else the error's name). */
export function errorCode(e: unknown): string {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : e instanceof Error ? e.name : 'error';
}
