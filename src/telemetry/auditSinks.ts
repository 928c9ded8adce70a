import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIP, isIPv6, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostname } from 'node:os';
import type { AuditRecord } from '../policy/audit.js';

/**
 * Where shipped audit records go (issue 17): syslog (RFC 5424 over UDP, TCP or a unix stream socket) and
 * OTLP/HTTP JSON logs (OpenTelemetry protocol, `POST /v1/logs`, built with plain `fetch`). The queue,
 * retries, drop counting and secret redaction live in `auditShip.ts`; a sink only encodes and sends.
 */

/** What one {@link AuditSink.send} did. A retryable failure is thrown instead (a {@link SendError}). */
export interface SendResult {
  /** Records delivered (to the socket or accepted by the receiver). */
  sent: number;
  /** Records dropped because their encoding is over the sink's size limit. */
  tooLarge?: number;
  /** Records the receiver refused for good (OTLP: a 4xx other than 408/429); they are not retried. */
  rejected?: number;
}

/** A retryable send failure; `sent` records of the batch (from its start) were delivered before it. */
export class SendError extends Error {
  constructor(
    message: string,
    readonly sent = 0,
  ) {
    super(message);
    this.name = 'SendError';
  }
}

/** One destination of shipped records. */
export interface AuditSink {
  /** `syslog` or `otlp`: the `sink` label of the shipping metrics. */
  readonly name: string;
  /** Most records per {@link send} call. */
  readonly batchSize: number;
  /** Send `records` in order. @throws SendError when it should be retried (connection down, 5xx, timeout). */
  send(records: readonly AuditRecord[]): Promise<SendResult>;
  /** Close sockets. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// syslog (RFC 5424)

/** Syslog facility codes by name (RFC 5424 §6.2.1; `audit` is 13, "log audit"). */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11, ntp: 12, audit: 13, alert: 14, clock: 15,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** Where syslog messages go. */
export type SyslogTarget =
  | { transport: 'udp' | 'tcp'; host: string; port: number }
  /** RFC 5425: syslog over TLS (octet-counting framing); `ca`: PEM of the trusted CAs (default: Node's bundled roots). */
  | { transport: 'tls'; host: string; port: number; ca?: string }
  | { transport: 'unix'; path: string };

/**
 * The syslog severity of a record (RFC 5424 §6.2.1): `err` (3) for a refused policy reload, `warning` (4)
 * for a halt, `notice` (5) for a denied decision or an agent revoked, `info` (6) otherwise.
 */
export function severityOf(r: AuditRecord): number {
  if (r.kind === 'policy' && r.ok === false) return 3;
  if (r.kind === 'halt') return 4;
  if (r.kind === 'decision' && (r.decision as { effect?: unknown } | undefined)?.effect === 'deny') return 5;
  if (r.kind === 'agent' && r.event === 'revoke') return 5;
  return 6;
}

/** Printable US-ASCII (33-126) only, at most `max` characters, `-` (NILVALUE) when empty (RFC 5424 §6.2). */
function header(v: string, max: number): string {
  const s = v.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return s === '' ? '-' : s;
}

/** JSON of a value with every non-ASCII character written as a `\uXXXX` escape: it parses to the same value. */
export function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME deskd PROCID MSGID - MSG` with PRI = facility × 8 +
 * {@link severityOf}, TIMESTAMP the record's `ts`, MSGID its `kind`, no structured data, and MSG the record as
 * JSON in ASCII only (non-ASCII escaped as `\uXXXX`, so the MSG needs no BOM and parses to the record).
 */
export function formatSyslog(r: AuditRecord, facility: number, host = hostname(), pid = process.pid): string {
  return `<${facility * 8 + severityOf(r)}>1 ${header(r.ts, 64)} ${header(host, 255)} deskd ${pid} ${header(String(r.kind), 32)} - ${asciiJson(r)}`;
}

/** Options of {@link SyslogSink}. */
export interface SyslogSinkOptions {
  target: SyslogTarget;
  /** Facility code (default 10, `authpriv`). */
  facility?: number;
  /** Largest UDP datagram sent, bytes (default 65000; RFC 5426 §3.2); bigger records are dropped and counted. */
  maxDatagram?: number;
  /** Connect timeout for TCP / unix, ms (default 5000). */
  connectTimeoutMs?: number;
}

/**
 * Syslog over UDP (one message per datagram, RFC 5426), TCP (octet-counting framing `LEN SP MSG`, RFC 6587
 * §3.4.1), TLS (RFC 5425: the same framing inside a TLS connection whose certificate is verified) or a unix
 * *stream* socket (same framing; Node has no unix datagram sockets, so `/dev/log` in its
 * usual datagram form cannot be used — point a local rsyslog/syslog-ng UDP or TCP input at deskd instead).
 * TCP and unix reconnect on the next send after an error; a write that does not fit the socket's buffer
 * waits for `drain` however long the receiver takes (backpressure reaches the queue, which meanwhile drops
 * its oldest records and counts them). The connection is never aborted for being slow: an abort (RST) would
 * lose what the kernel buffers already hold, while waiting loses only counted records.
 */
export class SyslogSink implements AuditSink {
  readonly name = 'syslog';
  readonly batchSize = 50;
  private udp: UdpSocket | null = null;
  private stream: Socket | null = null;
  private readonly facility: number;
  private closed = false;

  constructor(private readonly opts: SyslogSinkOptions) {
    this.facility = opts.facility ?? 10;
  }

  async send(records: readonly AuditRecord[]): Promise<SendResult> {
    return this.opts.target.transport === 'udp' ? this.sendUdp(records, this.opts.target) : this.sendStream(records);
  }

  private async sendUdp(records: readonly AuditRecord[], t: { host: string; port: number }): Promise<SendResult> {
    if (!this.udp) {
      const s = createSocket(isIPv6(t.host) ? 'udp6' : 'udp4');
      s.on('error', () => {
        s.close();
        if (this.udp === s) this.udp = null;
      });
      s.unref();
      this.udp = s;
    }
    const sock = this.udp;
    const max = this.opts.maxDatagram ?? 65000;
    let sent = 0;
    let tooLarge = 0;
    for (const r of records) {
      const buf = Buffer.from(formatSyslog(r, this.facility), 'utf8');
      if (buf.length > max) {
        tooLarge++;
        continue;
      }
      try {
        await new Promise<void>((resolve, reject) => sock.send(buf, t.port, t.host, (err) => (err ? reject(err) : resolve())));
      } catch (e) {
        throw new SendError(`syslog udp ${t.host}:${t.port}: ${(e as Error).message}`, sent + tooLarge);
      }
      sent++;
    }
    return { sent, tooLarge };
  }

  private connectStream(): Promise<Socket> {
    const t = this.opts.target;
    return new Promise((resolve, reject) => {
      // TLS verifies the receiver's certificate against `ca` (or Node's roots) and its name against `host`.
      const s: Socket =
        t.transport === 'unix'
          ? connect({ path: t.path })
          : t.transport === 'tls'
            ? tlsConnect({ host: t.host, port: t.port, ...(t.ca ? { ca: t.ca } : {}), ...(isIP(t.host) === 0 ? { servername: t.host } : {}) })
            : connect({ host: t.host, port: t.port });
      const timer = setTimeout(() => s.destroy(new Error('connect timed out')), this.opts.connectTimeoutMs ?? 5000);
      s.once(t.transport === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeListener('error', reject);
        s.on('error', () => undefined); // surfaced by the pending or next write
        // A receiver that is gone without a word (host down) is found by keepalive probes or, with data
        // unacknowledged, by the kernel's retransmission limit; the batch is then retried on a new connection.
        s.setKeepAlive(true, 60_000);
        s.on('close', () => {
          if (this.stream === s) this.stream = null;
        });
        s.unref();
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  private async sendStream(records: readonly AuditRecord[]): Promise<SendResult> {
    const t = this.opts.target;
    const where = t.transport === 'unix' ? `unix:${t.path}` : `${t.transport} ${t.host}:${t.port}`;
    try {
      if (!this.stream || this.stream.destroyed) {
        const fresh = await this.connectStream();
        if (this.closed) {
          fresh.destroy();
          throw new Error('the sink is closed');
        }
        this.stream = fresh;
      }
      const s = this.stream;
      const frames = records.map((r) => {
        const msg = Buffer.from(formatSyslog(r, this.facility), 'utf8');
        return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
      });
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          s.removeListener('close', onClose);
          s.removeListener('drain', onDrain);
          if (err) reject(err);
          else resolve();
        };
        const onClose = () => done(new Error('connection closed'));
        const onDrain = () => done();
        s.once('close', onClose);
        const ok = s.write(Buffer.concat(frames), (err) => {
          if (err) done(err);
          else if (ok) done();
        });
        // Over the socket's high-water mark: wait for the kernel to take it (backpressure).
        if (!ok) s.once('drain', onDrain);
      });
      return { sent: records.length };
    } catch (e) {
      this.stream?.destroy();
      this.stream = null;
      throw new SendError(`syslog ${where}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.udp?.close();
    this.udp = null;
    const s = this.stream;
    this.stream = null;
    if (s && !s.destroyed) await new Promise<void>((resolve) => s.end(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------------------
// OTLP/HTTP JSON logs

/** OTLP severity numbers (OpenTelemetry logs data model): INFO 9, INFO2 10, WARN 13, ERROR 17. */
function otlpSeverity(r: AuditRecord): { severityNumber: number; severityText: string } {
  const s = severityOf(r);
  if (s <= 3) return { severityNumber: 17, severityText: 'ERROR' };
  if (s === 4) return { severityNumber: 13, severityText: 'WARN' };
  if (s === 5) return { severityNumber: 10, severityText: 'INFO2' };
  return { severityNumber: 9, severityText: 'INFO' };
}

/**
 * The OTLP/HTTP JSON body (`ExportLogsServiceRequest`, opentelemetry-proto `logs/v1`) of a batch: one
 * resource (`service.name`, `host.name`), one scope `deskd.audit`, one log record per audit record with the
 * record's JSON as the string body, `timeUnixNano` from its `ts`, and attributes `deskd.audit.seq`,
 * `deskd.audit.kind`, `deskd.agent` (when the record names one).
 */
export function otlpLogsBody(records: readonly AuditRecord[], serviceName: string, host = hostname()): unknown {
  const now = String(BigInt(Date.now()) * 1_000_000n);
  return {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: serviceName } }, { key: 'host.name', value: { stringValue: host } }] },
        scopeLogs: [
          {
            scope: { name: 'deskd.audit' },
            logRecords: records.map((r) => {
              const ms = Date.parse(r.ts);
              return {
                timeUnixNano: Number.isFinite(ms) ? String(BigInt(ms) * 1_000_000n) : now,
                observedTimeUnixNano: now,
                ...otlpSeverity(r),
                body: { stringValue: JSON.stringify(r) },
                attributes: [
                  { key: 'deskd.audit.seq', value: { intValue: String(r.seq) } },
                  { key: 'deskd.audit.kind', value: { stringValue: String(r.kind) } },
                  ...(typeof r.agent === 'string' ? [{ key: 'deskd.agent', value: { stringValue: r.agent } }] : []),
                ],
              };
            }),
          },
        ],
      },
    ],
  };
}

/** Options of {@link OtlpLogSink}. */
export interface OtlpLogSinkOptions {
  /** The logs endpoint, e.g. `http://collector:4318/v1/logs`. */
  url: string;
  /** Extra request headers (a collector's API key); never shipped in a record. */
  headers?: Record<string, string>;
  /** `service.name` (default `deskd`). */
  serviceName?: string;
  /** Request timeout, ms (default 10000). */
  timeoutMs?: number;
}

/**
 * OTLP/HTTP with the JSON encoding, sent with `fetch` (the OTel logs exporter packages are not among deskd's
 * dependencies). 2xx delivers the batch; 408, 429, 502, 503, 504 and network errors are retried; any other
 * status rejects the batch for good (counted as `rejected`), as the OTLP specification's "Failures" says.
 */
export class OtlpLogSink implements AuditSink {
  readonly name = 'otlp';
  readonly batchSize = 100;

  constructor(private readonly opts: OtlpLogSinkOptions) {}

  async send(records: readonly AuditRecord[]): Promise<SendResult> {
    let res: Response;
    try {
      res = await fetch(this.opts.url, {
        method: 'POST',
        headers: { ...(this.opts.headers ?? {}), 'content-type': 'application/json' },
        body: JSON.stringify(otlpLogsBody(records, this.opts.serviceName ?? 'deskd')),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
    } catch (e) {
      throw new SendError(`otlp ${this.opts.url}: ${(e as Error).message}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) return { sent: records.length };
    if ([408, 429, 502, 503, 504].includes(res.status)) throw new SendError(`otlp ${this.opts.url}: HTTP ${res.status}`);
    return { sent: 0, rejected: records.length };
  }

  async close(): Promise<void> {}
}
