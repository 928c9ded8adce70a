import { readFileSync } from 'node:fs';
import { DeskdError } from '../errors.js';
import { resolveOperatorToken, resolveToken } from '../config.js';
import type { AuditLog, AuditRecord } from '../policy/audit.js';
import { OtlpLogSink, SendError, SyslogSink, SYSLOG_FACILITIES, type AuditSink, type SyslogTarget } from './auditSinks.js';

/**
 * Shipping the audit stream (issue 17): every record, once written and synced to the local log, is queued
 * for syslog and/or OTLP logs, so a SIEM keeps the copy that makes truncation of the local file visible
 * (with the `checkpoint` records, `deskd audit verify --against COPY`).
 *
 * - Never in the way: the audit append only queues (`AuditLog.onRecord`); sending happens after, one batch
 *   in flight per sink. A failed send is retried with exponential backoff (0.5 s doubling to 30 s) while
 *   new records queue behind it.
 * - Bounded: each sink queues at most `maxQueue` records (default 10000). Beyond it the *oldest* queued
 *   records are dropped (the newest, and the latest checkpoint, are what a SIEM needs to see where the
 *   log reached) and counted: `deskd_audit_dropped{sink, reason="queue_full"}`; a record over the UDP
 *   datagram limit is `too_large`, one the OTLP receiver refuses for good `rejected`. Delivered records
 *   count in `deskd_audit_shipped{sink}`, failed attempts in `deskd_audit_ship_failures{sink}`, the backlog
 *   is `deskd_audit_ship_queue{sink}`. A gap is visible at the receiver too: `seq` is consecutive.
 * - No secrets: before sending, every string of the record (and every member name) is scrubbed of the
 *   daemon's tokens (the agent and operator tokens, the values of `*TOKEN*`, `*KEY*`, `*SECRET*`,
 *   `*PASSWORD*` environment variables of 16 characters or more), of named-agent tokens (`dska_…`, stored
 *   only as hashes, found by their shape) and of `Bearer …` credentials; a scrubbed record says
 *   `redacted: true`. Typed text is already masked in the record itself (`AuditLog`). The local log keeps
 *   the record as written, so a scrubbed copy differs from it there (its seq and mac are unchanged).
 */

/** Counters of one sink (the shipping metrics). */
export interface AuditShipStats {
  /** `syslog` or `otlp`. */
  sink: string;
  /** Records delivered. */
  shipped: number;
  /** Records waiting (the in-flight batch included). */
  queued: number;
  /** Records given up, by reason. */
  dropped: { queue_full: number; too_large: number; rejected: number };
  /** Send attempts that failed and were retried. */
  failures: number;
}

/** Shipping configuration; see {@link auditShippingFromEnv}. */
export interface AuditShippingConfig {
  syslog?: { target: SyslogTarget; facility: number };
  otlp?: { url: string; headers: Record<string, string>; serviceName: string };
  /** Records queued per sink at most (default 10000). */
  maxQueue: number;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);

/**
 * Shipping configuration from the environment; null when nothing is to be shipped.
 *
 * - `DESKD_AUDIT_SYSLOG`: `udp://HOST[:PORT]` (default port 514), `tcp://HOST[:PORT]` (default 601),
 *   `tls://HOST[:PORT]` (default 6514; `DESKD_AUDIT_SYSLOG_CA`: a PEM file of the CAs to trust instead of
 *   Node's bundled roots) or `unix:///PATH` (a stream socket). `DESKD_AUDIT_SYSLOG_FACILITY`: a name (`authpriv`, `audit`, `local0`…)
 *   or 0-23 (default `authpriv`, 10).
 * - `DESKD_AUDIT_OTLP`: `1`/`true` → the standard OTLP variables name the endpoint
 *   (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/logs`; headers from
 *   `OTEL_EXPORTER_OTLP_LOGS_HEADERS` or `OTEL_EXPORTER_OTLP_HEADERS`, `k=v,k2=v2` URL-encoded;
 *   `OTEL_SERVICE_NAME`), or an `http(s)://` URL of the logs endpoint itself. The audit is never shipped
 *   just because traces are configured: it says more than spans do (targets, reasons).
 * - `DESKD_AUDIT_SHIP_QUEUE`: records queued per sink at most (1-1000000, default 10000).
 * @throws DeskdError `VALIDATION_FAILED` naming the variable when a value is malformed.
 */
export function auditShippingFromEnv(env: NodeJS.ProcessEnv = process.env): AuditShippingConfig | null {
  const cfg: AuditShippingConfig = { maxQueue: 10000 };
  if (env.DESKD_AUDIT_SHIP_QUEUE) {
    const n = Number(env.DESKD_AUDIT_SHIP_QUEUE);
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new DeskdError('VALIDATION_FAILED', `DESKD_AUDIT_SHIP_QUEUE must be an integer from 1 to 1000000, got "${env.DESKD_AUDIT_SHIP_QUEUE}"`);
    cfg.maxQueue = n;
  }
  if (env.DESKD_AUDIT_SYSLOG) {
    const target = parseSyslogTarget(env.DESKD_AUDIT_SYSLOG);
    if (env.DESKD_AUDIT_SYSLOG_CA) {
      if (target.transport !== 'tls') throw new DeskdError('VALIDATION_FAILED', 'DESKD_AUDIT_SYSLOG_CA is only used with a tls:// DESKD_AUDIT_SYSLOG');
      try {
        target.ca = readFileSync(env.DESKD_AUDIT_SYSLOG_CA, 'utf8');
      } catch (e) {
        throw new DeskdError('VALIDATION_FAILED', `DESKD_AUDIT_SYSLOG_CA: cannot read ${env.DESKD_AUDIT_SYSLOG_CA}: ${(e as Error).message}`);
      }
    }
    cfg.syslog = { target, facility: parseFacility(env.DESKD_AUDIT_SYSLOG_FACILITY) };
  }
  const otlp = env.DESKD_AUDIT_OTLP?.trim();
  if (otlp && !['0', 'false', 'no', 'off'].includes(otlp.toLowerCase())) {
    let url: string;
    if (TRUE.has(otlp.toLowerCase())) {
      url = env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT || (env.OTEL_EXPORTER_OTLP_ENDPOINT ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/logs` : '');
      if (!url) throw new DeskdError('VALIDATION_FAILED', 'DESKD_AUDIT_OTLP is on but neither OTEL_EXPORTER_OTLP_LOGS_ENDPOINT nor OTEL_EXPORTER_OTLP_ENDPOINT is set');
    } else url = otlp;
    if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) throw new DeskdError('VALIDATION_FAILED', `DESKD_AUDIT_OTLP: the logs endpoint must be an http(s) URL, got "${url}"`);
    cfg.otlp = { url, headers: parseHeaders(env.OTEL_EXPORTER_OTLP_LOGS_HEADERS || env.OTEL_EXPORTER_OTLP_HEADERS || ''), serviceName: env.OTEL_SERVICE_NAME || 'deskd' };
  }
  return cfg.syslog || cfg.otlp ? cfg : null;
}

function parseSyslogTarget(v: string): SyslogTarget {
  const bad = (why: string) => new DeskdError('VALIDATION_FAILED', `DESKD_AUDIT_SYSLOG must be udp://HOST[:PORT], tcp://HOST[:PORT], tls://HOST[:PORT] or unix:///PATH (${why}), got "${v}"`);
  if (!URL.canParse(v)) throw bad('not a URL');
  const u = new URL(v);
  if (u.protocol === 'unix:') {
    const p = decodeURIComponent(u.pathname);
    if (!p.startsWith('/') || u.host) throw bad('the socket path must be absolute');
    return { transport: 'unix', path: p };
  }
  if (u.protocol !== 'udp:' && u.protocol !== 'tcp:' && u.protocol !== 'tls:') throw bad(`unknown scheme ${u.protocol}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw bad('no host');
  const transport = u.protocol === 'udp:' ? 'udp' : u.protocol === 'tls:' ? 'tls' : 'tcp';
  // Default ports: 514 (RFC 5426), 601 (RFC 6587 / 3195), 6514 (RFC 5425).
  return { transport, host, port: u.port ? Number(u.port) : { udp: 514, tcp: 601, tls: 6514 }[transport] };
}

function parseFacility(v: string | undefined): number {
  if (v === undefined || v === '') return SYSLOG_FACILITIES.authpriv!;
  const byName = Object.hasOwn(SYSLOG_FACILITIES, v.toLowerCase()) ? SYSLOG_FACILITIES[v.toLowerCase()] : undefined;
  if (byName !== undefined) return byName;
  const n = Number(v);
  if (Number.isInteger(n) && n >= 0 && n <= 23) return n;
  throw new DeskdError('VALIDATION_FAILED', `DESKD_AUDIT_SYSLOG_FACILITY must be a facility name (${Object.keys(SYSLOG_FACILITIES).join(', ')}) or 0-23, got "${v}"`);
}

/** `k=v,k2=v2` (URL-encoded), the OTLP exporter's header syntax. */
function parseHeaders(v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of v.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

/** The values of environment variables that look like secrets (`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`), 16 characters or more. */
export function envSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(env).flatMap(([k, v]) => (/TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL/i.test(k) && v && v.length >= 16 ? [v] : []));
}

const AGENT_TOKEN_RE = /dska_[A-Za-z0-9_-]{16,}/g;
const BEARER_RE = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]{16,}/gi;

/**
 * A copy of `record` with every occurrence of a secret in any string (member names too) replaced by
 * `[redacted]`: each of `secrets` (16 characters or more), named-agent tokens by their shape (`dska_…`),
 * and `Bearer …` credentials (16 characters or more). `redacted` says whether anything was replaced.
 */
export function redactRecord(record: AuditRecord, secrets: readonly string[]): { record: AuditRecord; redacted: boolean } {
  const list = [...new Set(secrets.filter((s) => s.length >= 16))].sort((a, b) => b.length - a.length);
  let redacted = false;
  const scrub = (s: string): string => {
    let out = s;
    for (const sec of list) if (out.includes(sec)) out = out.split(sec).join('[redacted]');
    out = out.replace(AGENT_TOKEN_RE, 'dska_[redacted]').replace(BEARER_RE, '$1 [redacted]');
    if (out !== s) redacted = true;
    return out;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return scrub(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) Object.defineProperty(o, scrub(k), { value: walk(x), enumerable: true, writable: true, configurable: true });
      return o;
    }
    return v;
  };
  const out = walk(record) as AuditRecord;
  return { record: redacted ? { ...out, redacted: true } : record, redacted };
}

/** Options of {@link AuditShipping}. */
export interface AuditShippingOptions {
  /** Secrets to scrub from shipped records (see {@link redactRecord}); more with {@link AuditShipping.addSecrets}. */
  secrets?: readonly string[];
  /** Records queued per sink at most (default 10000). */
  maxQueue?: number;
  /** First retry delay after a failed send, ms (default 500); doubles up to `retryMaxMs` (default 30000). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Told about failed sends (the daemon logs them at `warn`, at most one per sink per backoff step). */
  onError?: (sink: string, err: Error) => void;
}

/** One sink's queue and pump. */
class SinkQueue {
  readonly queue: AuditRecord[] = [];
  readonly stats: AuditShipStats;
  private running = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private delay: number;
  stopped = false;

  constructor(
    readonly sink: AuditSink,
    private readonly owner: AuditShipping,
    private readonly opts: { maxQueue: number; retryMinMs: number; retryMaxMs: number; onError?: (sink: string, err: Error) => void },
  ) {
    this.stats = { sink: sink.name, shipped: 0, queued: 0, dropped: { queue_full: 0, too_large: 0, rejected: 0 }, failures: 0 };
    this.delay = opts.retryMinMs;
  }

  push(r: AuditRecord): void {
    this.queue.push(r);
    this.trim();
    this.kick();
  }

  /** Drop the oldest records beyond the cap. */
  private trim(): void {
    const over = this.queue.length - this.opts.maxQueue;
    if (over > 0) {
      this.queue.splice(0, over);
      this.stats.dropped.queue_full += over;
    }
    this.stats.queued = this.queue.length + this.inFlight;
  }

  private inFlight = 0;

  kick(): void {
    if (this.running || this.retryTimer || this.stopped || this.queue.length === 0) return;
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
      this.kick();
    });
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped && !this.retryTimer) {
      const batch = this.queue.splice(0, this.sink.batchSize);
      this.inFlight = batch.length;
      const secrets = this.owner.secrets;
      const out = batch.map((r) => redactRecord(r, secrets).record);
      try {
        const res = await this.sink.send(out);
        this.stats.shipped += res.sent;
        this.stats.dropped.too_large += res.tooLarge ?? 0;
        this.stats.dropped.rejected += res.rejected ?? 0;
        this.delay = this.opts.retryMinMs;
        this.inFlight = 0;
        this.stats.queued = this.queue.length;
      } catch (e) {
        const sent = e instanceof SendError ? e.sent : 0;
        this.stats.shipped += sent;
        this.stats.failures++;
        this.inFlight = 0;
        // The unsent rest goes back to the head, in order; the cap applies again (oldest dropped).
        this.queue.unshift(...batch.slice(sent));
        this.trim();
        this.opts.onError?.(this.sink.name, e as Error);
        const wait = this.delay;
        this.delay = Math.min(this.opts.retryMaxMs, this.delay * 2);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.kick();
        }, wait);
        this.retryTimer.unref();
      }
    }
  }

  get idle(): boolean {
    return this.queue.length === 0 && !this.running;
  }

  /** Retry now (at shutdown, instead of waiting out the backoff). */
  retryNow(): void {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.kick();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}

/**
 * The daemon's audit shipping: one queue per configured sink (see the module comment). Feed it with
 * `audit.onRecord((r) => shipping.ship(r))`.
 */
export class AuditShipping {
  private readonly queues: SinkQueue[];
  private readonly secretSet = new Set<string>();
  private closed = false;

  constructor(sinks: readonly AuditSink[], opts: AuditShippingOptions = {}) {
    const o = { maxQueue: opts.maxQueue ?? 10000, retryMinMs: opts.retryMinMs ?? 500, retryMaxMs: opts.retryMaxMs ?? 30_000, ...(opts.onError ? { onError: opts.onError } : {}) };
    this.queues = sinks.map((s) => new SinkQueue(s, this, o));
    this.addSecrets(opts.secrets ?? []);
  }

  /**
   * The sinks of a configuration (see {@link auditShippingFromEnv}); null when `config` is null.
   */
  static fromConfig(config: AuditShippingConfig | null, opts: Omit<AuditShippingOptions, 'maxQueue'> = {}): AuditShipping | null {
    if (!config) return null;
    const sinks: AuditSink[] = [];
    if (config.syslog) sinks.push(new SyslogSink({ target: config.syslog.target, facility: config.syslog.facility }));
    if (config.otlp) sinks.push(new OtlpLogSink({ url: config.otlp.url, headers: config.otlp.headers, serviceName: config.otlp.serviceName }));
    return new AuditShipping(sinks, { ...opts, maxQueue: config.maxQueue });
  }

  /** The secrets scrubbed from every record shipped from now on. */
  get secrets(): readonly string[] {
    return [...this.secretSet];
  }

  /** Add secrets to scrub (strings under 16 characters are ignored: too likely to be ordinary words). */
  addSecrets(secrets: Iterable<string>): void {
    for (const s of secrets) if (typeof s === 'string' && s.length >= 16) this.secretSet.add(s);
  }

  /** Queue a record for every sink. Never throws, never waits. */
  ship(record: AuditRecord): void {
    if (this.closed) return;
    for (const q of this.queues) q.push(record);
  }

  /** Counters of each sink. */
  stats(): AuditShipStats[] {
    return this.queues.map((q) => ({ ...q.stats, dropped: { ...q.stats.dropped } }));
  }

  /** Resolve once every queue is empty, or after `timeoutMs` (default 5000). Failed sinks are retried at once. */
  async flush(timeoutMs = 5000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (const q of this.queues) q.retryNow();
    while (this.queues.some((q) => !q.idle) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return this.queues.every((q) => q.idle);
  }

  /** Stop taking records, try to deliver what is queued (up to `timeoutMs`, default 2000), close the sinks. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush(timeoutMs);
    for (const q of this.queues) q.stop();
    await Promise.all(this.queues.map((q) => q.sink.close().catch(() => undefined)));
  }
}

/**
 * The daemon's wiring (`src/runtime.ts`): shipping from the environment ({@link auditShippingFromEnv}), fed
 * with every record of `audit`, scrubbing the agent and operator tokens of `configDir` and the secret-looking
 * environment values. Failed sends are logged at `warn` (at most one line per failure streak per sink).
 * @returns null when nothing is configured.
 * @throws DeskdError `VALIDATION_FAILED` on a malformed variable (the daemon does not start).
 */
export async function startAuditShipping(audit: AuditLog, opts: { configDir: string; env?: NodeJS.ProcessEnv; logger?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void } }): Promise<AuditShipping | null> {
  const env = opts.env ?? process.env;
  const config = auditShippingFromEnv(env);
  if (!config) return null;
  const [tok, op] = await Promise.all([resolveToken(opts.configDir, env), resolveOperatorToken(opts.configDir, env)]);
  const failing = new Set<string>();
  const shipping = AuditShipping.fromConfig(config, {
    secrets: [tok.token, op.token, ...envSecrets(env)],
    onError: (sink, err) => {
      if (failing.has(sink)) return;
      failing.add(sink);
      opts.logger?.warn({ sink, err: err.message }, 'audit shipping failed; retrying with backoff (records queue, the oldest are dropped past the cap)');
    },
  })!;
  // A failure streak ends with the next delivery: log the next failure again.
  const timer = setInterval(() => {
    for (const s of shipping.stats()) if (s.queued === 0) failing.delete(s.sink);
  }, 5000);
  timer.unref();
  audit.onRecord((r) => shipping.ship(r));
  const close = shipping.close.bind(shipping);
  shipping.close = async (t?: number) => {
    clearInterval(timer);
    await close(t);
  };
  opts.logger?.info({ sinks: shipping.stats().map((s) => s.sink), maxQueue: config.maxQueue }, 'audit shipping on');
  return shipping;
}
