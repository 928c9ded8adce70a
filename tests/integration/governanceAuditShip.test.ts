/**
 * Issue 17, "The audit stream can be shipped as OTLP logs or to syslog": real receivers in the test (a UDP
 * socket, a TCP server, a unix stream socket, an OTLP/HTTP server), RFC 5424 framing, retries, the bounded
 * queue dropping the oldest records and counting them, the shipping metrics on /metrics, and an attacker
 * who tries to get a token into a shipped record through every field it controls.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditRecord } from '../../src/policy/audit.js';
import { AuditShipping, auditShippingFromEnv, redactRecord, startAuditShipping } from '../../src/telemetry/auditShip.js';
import { formatSyslog, OtlpLogSink, SyslogSink } from '../../src/telemetry/auditSinks.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { buildGovernanceApp, AGENT, OPERATOR } from '../helpers/governanceApp.js';
import { createFakePlatform, axNode } from '../../src/platform/fake/fakePlatform.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-ship-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

const openLog = () => AuditLog.open({ path: join(dir, 'audit.jsonl'), key: 'a'.repeat(64) });
const localRecords = async () => (await readFile(join(dir, 'audit.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);

/** An RFC 5424 message as deskd writes it: `<PRI>1 TS HOST APP PROCID MSGID SD MSG`. */
const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) (.*)$/s;
function parseSyslog(m: string) {
  const x = RFC5424.exec(m);
  if (!x) throw new Error(`not RFC 5424: ${m.slice(0, 80)}`);
  return { pri: Number(x[1]), ts: x[2]!, host: x[3]!, app: x[4]!, procid: x[5]!, msgid: x[6]!, sd: x[7]!, msg: x[8]!, record: JSON.parse(x[8]!) as AuditRecord };
}

/** Octet-counting frames (RFC 6587 §3.4.1) out of a byte stream. */
function octetFrames(onMsg: (m: string) => void) {
  let buf = Buffer.alloc(0);
  return (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const sp = buf.indexOf(0x20);
      if (sp < 0) return;
      const len = Number(buf.subarray(0, sp).toString());
      if (buf.length < sp + 1 + len) return;
      onMsg(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
      buf = buf.subarray(sp + 1 + len);
    }
  };
}

async function udpReceiver(): Promise<{ sock: UdpSocket; port: number; msgs: string[] }> {
  const sock = createSocket('udp4');
  const msgs: string[] = [];
  sock.on('message', (m) => msgs.push(m.toString('utf8')));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { sock, port: sock.address().port, msgs };
}

async function tcpReceiver(listen: number | string): Promise<{ server: TcpServer; msgs: string[]; sockets: Socket[] }> {
  const msgs: string[] = [];
  const sockets: Socket[] = [];
  const server = createTcpServer((s) => {
    sockets.push(s);
    s.on('data', octetFrames((m) => msgs.push(m)));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => (typeof listen === 'string' ? server.listen(listen, () => r()) : server.listen(listen, '127.0.0.1', () => r())));
  return { server, msgs, sockets };
}

async function closeTcp(t: { server: TcpServer; sockets: Socket[] }) {
  for (const s of t.sockets) s.destroy();
  await new Promise((r) => t.server.close(r));
}

describe('configuration from the environment', () => {
  it('nothing configured: no shipping', () => {
    expect(auditShippingFromEnv({})).toBeNull();
    expect(auditShippingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', DESKD_AUDIT_OTLP: '0' })).toBeNull();
  });

  it('syslog targets, facilities, OTLP from the standard variables, the queue cap', () => {
    expect(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: 'udp://10.0.0.5' })).toMatchObject({ syslog: { target: { transport: 'udp', host: '10.0.0.5', port: 514 }, facility: 10 } });
    expect(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: 'tcp://[::1]:6514', DESKD_AUDIT_SYSLOG_FACILITY: 'local3' })).toMatchObject({ syslog: { target: { transport: 'tcp', host: '::1', port: 6514 }, facility: 19 } });
    expect(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: 'tcp://siem.example' })!.syslog!.target).toEqual({ transport: 'tcp', host: 'siem.example', port: 601 });
    expect(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: 'tls://siem.example' })!.syslog!.target).toEqual({ transport: 'tls', host: 'siem.example', port: 6514 });
    expect(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: 'unix:///run/syslog.sock', DESKD_AUDIT_SYSLOG_FACILITY: '13' })).toMatchObject({ syslog: { target: { transport: 'unix', path: '/run/syslog.sock' }, facility: 13 } });
    expect(auditShippingFromEnv({ DESKD_AUDIT_OTLP: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/', OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=abc%3D1,tenant=t1', OTEL_SERVICE_NAME: 'desk-7' })).toMatchObject({
      otlp: { url: 'http://c:4318/v1/logs', headers: { 'x-api-key': 'abc=1', tenant: 't1' }, serviceName: 'desk-7' },
      maxQueue: 10000,
    });
    expect(auditShippingFromEnv({ DESKD_AUDIT_OTLP: '1', OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'https://logs.example/v1/logs', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://other' })!.otlp!.url).toBe('https://logs.example/v1/logs');
    expect(auditShippingFromEnv({ DESKD_AUDIT_OTLP: 'http://127.0.0.1:9/custom', DESKD_AUDIT_SHIP_QUEUE: '50' })).toMatchObject({ otlp: { url: 'http://127.0.0.1:9/custom' }, maxQueue: 50 });
  });

  it.each([
    [{ DESKD_AUDIT_SYSLOG: 'syslog.example:514' }, /DESKD_AUDIT_SYSLOG/],
    [{ DESKD_AUDIT_SYSLOG: 'http://x:514' }, /unknown scheme/],
    [{ DESKD_AUDIT_SYSLOG: 'unix://relative/sock' }, /absolute/],
    [{ DESKD_AUDIT_SYSLOG: 'udp://x', DESKD_AUDIT_SYSLOG_FACILITY: 'mailroom' }, /DESKD_AUDIT_SYSLOG_FACILITY/],
    [{ DESKD_AUDIT_SYSLOG: 'udp://x', DESKD_AUDIT_SYSLOG_FACILITY: '24' }, /DESKD_AUDIT_SYSLOG_FACILITY/],
    [{ DESKD_AUDIT_OTLP: '1' }, /OTEL_EXPORTER_OTLP_ENDPOINT/],
    [{ DESKD_AUDIT_OTLP: 'ftp://x/v1/logs' }, /http\(s\) URL/],
    [{ DESKD_AUDIT_SYSLOG: 'udp://x', DESKD_AUDIT_SHIP_QUEUE: '0' }, /DESKD_AUDIT_SHIP_QUEUE/],
    [{ DESKD_AUDIT_SYSLOG: 'tcp://x', DESKD_AUDIT_SYSLOG_CA: '/etc/hosts' }, /only used with a tls/],
    [{ DESKD_AUDIT_SYSLOG: 'tls://x', DESKD_AUDIT_SYSLOG_CA: '/nonexistent/ca.pem' }, /cannot read/],
  ])('%j is refused with VALIDATION_FAILED', (env, msg) => {
    expect(() => auditShippingFromEnv(env)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringMatching(msg) }));
  });
});

describe('syslog (RFC 5424)', () => {
  it('UDP: one datagram per record, in order; PRI from facility and severity; MSG is the record as ASCII JSON', async () => {
    const rx = await udpReceiver();
    const log = await openLog();
    const ship = new AuditShipping([new SyslogSink({ target: { transport: 'udp', host: '127.0.0.1', port: rx.port }, facility: 13 })]);
    log.onRecord((r) => ship.ship(r));
    try {
      await log.append('daemon', { event: 'start' });
      await log.append('decision', { actor: 'agent/default', reason: 'Überweisung prüfen — 日本', decision: { effect: 'deny', ruleId: 'no-calc' } });
      await log.append('policy', { event: 'reload', ok: false });
      await log.append('halt', { by: 'operator' });
      await until(() => rx.msgs.length === 4, 'four datagrams');
      const got = rx.msgs.map(parseSyslog);
      const local = await localRecords();
      expect(got.map((g) => g.record)).toEqual(local);
      // facility 13 (audit): info 6, notice 5 (deny), err 3 (failed reload), warning 4 (halt).
      expect(got.map((g) => g.pri)).toEqual([13 * 8 + 6, 13 * 8 + 5, 13 * 8 + 3, 13 * 8 + 4]);
      expect(got.map((g) => g.msgid)).toEqual(['daemon', 'decision', 'policy', 'halt']);
      expect(got[0]).toMatchObject({ app: 'deskd', procid: String(process.pid), sd: '-', ts: local[0]!.ts });
      // ASCII only (no BOM needed): non-ASCII is escaped and parses back to the same text.
      expect(rx.msgs[1]).toMatch(/^[\x20-\x7e]*$/);
      expect(got[1]!.record.reason).toBe('Überweisung prüfen — 日本');
      expect(ship.stats()).toEqual([{ sink: 'syslog', shipped: 4, queued: 0, dropped: { queue_full: 0, too_large: 0, rejected: 0 }, failures: 0 }]);
    } finally {
      await ship.close();
      await log.close();
      rx.sock.close();
    }
  });

  it('UDP: a record over the datagram limit is dropped and counted, the next one still goes', async () => {
    const rx = await udpReceiver();
    const log = await openLog();
    const ship = new AuditShipping([new SyslogSink({ target: { transport: 'udp', host: '127.0.0.1', port: rx.port }, maxDatagram: 1000 })]);
    log.onRecord((r) => ship.ship(r));
    try {
      await log.append('decision', { reason: 'r'.repeat(2000) });
      await log.append('daemon', { event: 'small' });
      await until(() => rx.msgs.length === 1 && ship.stats()[0]!.queued === 0, 'the small record');
      expect(parseSyslog(rx.msgs[0]!).record.seq).toBe(2);
      expect(ship.stats()[0]).toMatchObject({ shipped: 1, dropped: { too_large: 1 } });
    } finally {
      await ship.close();
      await log.close();
      rx.sock.close();
    }
  });

  it('TCP: while the receiver is down records queue up to the cap (oldest dropped and counted), then the newest arrive in order', async () => {
    // A port with nothing listening on it yet.
    const probe = await tcpReceiver(0);
    const port = (probe.server.address() as { port: number }).port;
    await closeTcp(probe);

    const log = await openLog();
    const errors: string[] = [];
    const ship = new AuditShipping([new SyslogSink({ target: { transport: 'tcp', host: '127.0.0.1', port } })], { maxQueue: 3, retryMinMs: 20, retryMaxMs: 100, onError: (_s, e) => errors.push(e.message) });
    log.onRecord((r) => ship.ship(r));
    let rx: Awaited<ReturnType<typeof tcpReceiver>> | null = null;
    try {
      for (let i = 0; i < 10; i++) await log.append('decision', { i });
      await until(() => ship.stats()[0]!.failures > 0, 'a failed send');
      expect(ship.stats()[0]).toMatchObject({ shipped: 0, queued: 3, dropped: { queue_full: 7 } });
      expect(errors[0]).toMatch(/ECONNREFUSED/);

      rx = await tcpReceiver(port);
      await until(() => rx!.msgs.length === 3, 'the three newest records');
      expect(rx.msgs.map((m) => parseSyslog(m).record.seq)).toEqual([8, 9, 10]);
      expect(ship.stats()[0]).toMatchObject({ shipped: 3, queued: 0, dropped: { queue_full: 7 } });

      // The connection is reused; records keep coming in order.
      await log.append('daemon', { event: 'after' });
      await until(() => rx!.msgs.length === 4, 'the next record');
      expect(parseSyslog(rx.msgs[3]!).record).toMatchObject({ seq: 11, event: 'after' });
    } finally {
      await ship.close();
      await log.close();
      if (rx) await closeTcp(rx);
    }
  });

  it('TCP: the receiver restarting is survived (reconnect on the next send)', async () => {
    let rx = await tcpReceiver(0);
    const port = (rx.server.address() as { port: number }).port;
    const log = await openLog();
    const ship = new AuditShipping([new SyslogSink({ target: { transport: 'tcp', host: '127.0.0.1', port } })], { retryMinMs: 20, retryMaxMs: 100 });
    log.onRecord((r) => ship.ship(r));
    try {
      await log.append('daemon', { n: 1 });
      await until(() => rx.msgs.length === 1, 'the first record');
      await closeTcp(rx);
      const rx2 = await tcpReceiver(port);
      rx = rx2;
      // The first write after the restart may still go into the dead socket's buffer; records keep being
      // sent until one arrives on the new connection, and the later ones arrive in order.
      for (let n = 2; n < 40 && rx2.msgs.length === 0; n++) {
        await log.append('daemon', { n });
        await new Promise((r) => setTimeout(r, 50));
      }
      const last = (await log.read({ limit: 1 }))[0]!.seq;
      await until(() => rx2.msgs.length > 0 && parseSyslog(rx2.msgs.at(-1)!).record.seq === last, 'delivery on the new connection');
      const seqs = rx2.msgs.map((m) => parseSyslog(m).record.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    } finally {
      await ship.close();
      await log.close();
      await closeTcp(rx);
    }
  });

  it('TCP backpressure: a receiver that stops reading fills the socket, the queue keeps the newest and counts the oldest it drops; once it reads, everything not counted arrives, in order', async () => {
    let reading = false;
    const msgs: string[] = [];
    const sockets: Socket[] = [];
    const server = createTcpServer((s) => {
      sockets.push(s);
      s.on('data', octetFrames((m) => msgs.push(m)));
      s.on('error', () => undefined);
      if (!reading) s.pause();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const ship = new AuditShipping([new SyslogSink({ target: { transport: 'tcp', host: '127.0.0.1', port } })], { maxQueue: 20, retryMinMs: 20, retryMaxMs: 100 });
    const big = 'b'.repeat(50_000);
    const N = 400; // 20 MB: more than loopback socket buffers hold
    try {
      for (let seq = 1; seq <= N; seq++) {
        ship.ship({ seq, ts: new Date().toISOString(), kind: 'decision', reason: big, prev: '0', mac: '0' });
        if (seq % 50 === 0) await new Promise((r) => setTimeout(r, 10));
      }
      await until(() => ship.stats()[0]!.dropped.queue_full > 0, 'drops');
      // Bounded: the cap plus the batch waiting on the socket.
      expect(ship.stats()[0]!.queued).toBeLessThanOrEqual(20 + 50);
      expect(msgs.length).toBeLessThan(N);
      reading = true;
      for (const s of sockets) s.resume();
      await until(() => msgs.some((m) => parseSyslog(m).record.seq === N) && ship.stats()[0]!.queued === 0, 'the newest record delivered');
      const st = ship.stats()[0]!;
      expect(st.dropped.queue_full).toBeGreaterThan(0);
      // Every record was either delivered or counted as dropped; nothing lost silently, nothing repeated.
      const seqs = msgs.map((m) => parseSyslog(m).record.seq);
      expect(seqs.length + st.dropped.queue_full).toBe(N);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(st).toMatchObject({ shipped: seqs.length, failures: 0 });
    } finally {
      await ship.close(0);
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('TLS (RFC 5425): delivered to a receiver whose certificate the configured CA signs; an untrusted receiver gets nothing', async () => {
    // A self-signed certificate for 127.0.0.1 / localhost (openssl, as on any Debian machine).
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const key = await readFile(join(dir, 'key.pem'));
    const cert = await readFile(join(dir, 'cert.pem'));
    const msgs: string[] = [];
    const sockets: Socket[] = [];
    const server = createTlsServer({ key, cert }, (s) => {
      sockets.push(s);
      s.on('data', octetFrames((m) => msgs.push(m)));
      s.on('error', () => undefined);
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const log = await openLog();
    // Without the CA: the certificate does not verify, nothing is sent, the failure is counted and retried.
    const errors: string[] = [];
    const untrusted = AuditShipping.fromConfig(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: `tls://127.0.0.1:${port}` }), { retryMinMs: 10_000, onError: (_s, e) => errors.push(e.message) })!;
    const trusted = AuditShipping.fromConfig(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: `tls://localhost:${port}`, DESKD_AUDIT_SYSLOG_CA: join(dir, 'cert.pem') }))!;
    log.onRecord((r) => untrusted.ship(r));
    log.onRecord((r) => trusted.ship(r));
    try {
      await log.append('daemon', { event: 'start' });
      await log.append('decision', { reason: 'over TLS' });
      await until(() => msgs.length === 2 && untrusted.stats()[0]!.failures > 0, 'delivery over TLS and the refused certificate');
      expect(msgs.map((m) => parseSyslog(m).record)).toEqual(await localRecords());
      expect(errors[0]).toMatch(/self[- ]signed|certificate/i);
      expect(untrusted.stats()[0]).toMatchObject({ shipped: 0, queued: 2 });
      expect(trusted.stats()[0]).toMatchObject({ shipped: 2, failures: 0 });
    } finally {
      await untrusted.close(0);
      await trusted.close();
      await log.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('unix stream socket: octet-counted frames', async () => {
    const sockPath = join(dir, 'syslog.sock');
    const rx = await tcpReceiver(sockPath);
    const log = await openLog();
    const ship = AuditShipping.fromConfig(auditShippingFromEnv({ DESKD_AUDIT_SYSLOG: `unix://${sockPath}`, DESKD_AUDIT_SYSLOG_FACILITY: 'local0' }))!;
    log.onRecord((r) => ship.ship(r));
    try {
      await log.append('daemon', { event: 'start' });
      await log.append('agent', { event: 'revoke', agent: 'reader' });
      await until(() => rx.msgs.length === 2, 'two frames');
      expect(rx.msgs.map((m) => parseSyslog(m).pri)).toEqual([16 * 8 + 6, 16 * 8 + 5]);
      expect(rx.msgs.map((m) => parseSyslog(m).record)).toEqual(await localRecords());
    } finally {
      await ship.close();
      await log.close();
      await closeTcp(rx);
    }
  });

  it('formatSyslog strips what RFC 5424 forbids in header fields', () => {
    const m = formatSyslog({ seq: 1, ts: '2026-12-07T04:00:00.000Z', kind: 'odd kind\n', prev: '0', mac: '1' }, 10, 'my host', 7);
    expect(parseSyslog(m)).toMatchObject({ pri: 86, host: 'myhost', msgid: 'oddkind', procid: '7' });
  });
});

describe('OTLP/HTTP JSON logs', () => {
  let server: HttpServer;
  let url: string;
  const bodies: unknown[] = [];
  const headers: IncomingMessage['headers'][] = [];
  let replies: number[] = [];
  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        const status = replies.shift() ?? 200;
        if (status === 200 && req.url === '/v1/logs') {
          bodies.push(JSON.parse(b));
          headers.push(req.headers);
        }
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => new Promise((r) => server.close(r)));
  beforeEach(() => {
    bodies.length = 0;
    headers.length = 0;
    replies = [];
  });

  it('records arrive as an ExportLogsServiceRequest; a 503 is retried; the collector headers are sent but never shipped', async () => {
    replies = [503];
    const log = await openLog();
    const cfg = auditShippingFromEnv({ DESKD_AUDIT_OTLP: '1', OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-secret-0123456789', OTEL_SERVICE_NAME: 'desk-7' })!;
    const ship = AuditShipping.fromConfig(cfg, { retryMinMs: 20 })!;
    log.onRecord((r) => ship.ship(r));
    try {
      await log.append('decision', { agent: 'reader', decision: { effect: 'deny' } });
      await log.append('daemon', { event: 'start' });
      await until(() => ship.stats()[0]!.shipped === 2, 'both records delivered');
      expect(ship.stats()[0]!.failures).toBe(1);
      const all = bodies.flatMap((b) => (b as { resourceLogs: Array<{ resource: unknown; scopeLogs: Array<{ scope: unknown; logRecords: unknown[] }> }> }).resourceLogs);
      expect(all[0]!.resource).toEqual({ attributes: expect.arrayContaining([{ key: 'service.name', value: { stringValue: 'desk-7' } }]) });
      expect(all[0]!.scopeLogs[0]!.scope).toEqual({ name: 'deskd.audit' });
      const recs = all.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords)) as Array<{ timeUnixNano: string; severityNumber: number; body: { stringValue: string }; attributes: unknown[] }>;
      const local = await localRecords();
      expect(recs.map((r) => JSON.parse(r.body.stringValue))).toEqual(local);
      expect(recs[0]!.timeUnixNano).toBe(String(BigInt(Date.parse(local[0]!.ts)) * 1_000_000n));
      expect(recs[0]!.severityNumber).toBe(10);
      expect(recs[0]!.attributes).toEqual(expect.arrayContaining([{ key: 'deskd.audit.seq', value: { intValue: '1' } }, { key: 'deskd.audit.kind', value: { stringValue: 'decision' } }, { key: 'deskd.agent', value: { stringValue: 'reader' } }]));
      expect(headers[0]!.authorization).toBe('Bearer collector-secret-0123456789');
      expect(JSON.stringify(bodies)).not.toContain('collector-secret');
    } finally {
      await ship.close();
      await log.close();
    }
  });

  it('a 400 rejects the batch for good (counted, not retried); later records still go', async () => {
    replies = [400];
    const log = await openLog();
    const ship = new AuditShipping([new OtlpLogSink({ url: `${url}/v1/logs` })], { retryMinMs: 20 });
    log.onRecord((r) => ship.ship(r));
    try {
      await log.append('daemon', { n: 1 });
      await until(() => ship.stats()[0]!.dropped.rejected === 1, 'the rejected batch');
      await log.append('daemon', { n: 2 });
      await until(() => ship.stats()[0]!.shipped === 1, 'the next record');
      expect(ship.stats()[0]).toMatchObject({ failures: 0, queued: 0 });
    } finally {
      await ship.close();
      await log.close();
    }
  });

  it('shipping counters are on /metrics in Prometheus text', async () => {
    const ship = new AuditShipping([new OtlpLogSink({ url: 'http://127.0.0.1:9/v1/logs' })], { maxQueue: 2, retryMinMs: 10_000 });
    const tel = Telemetry.create({ auditShipping: () => ship.stats() });
    try {
      for (let i = 1; i <= 5; i++) ship.ship({ seq: i, ts: new Date().toISOString(), kind: 'daemon', prev: '0', mac: '0' });
      await until(() => ship.stats()[0]!.failures === 1, 'the refused connection');
      const text = await tel.metricsText();
      expect(text).toMatch(/^deskd_audit_dropped_total\{sink="otlp",reason="queue_full"[^}]*\} 3$/m);
      expect(text).toMatch(/^deskd_audit_ship_queue\{sink="otlp"[^}]*\} 2$/m);
      expect(text).toMatch(/^deskd_audit_shipped_total\{sink="otlp"[^}]*\} 0$/m);
      expect(text).toMatch(/^deskd_audit_ship_failures_total\{sink="otlp"[^}]*\} 1$/m);
    } finally {
      await ship.close(0);
      await tel.close();
    }
  });
});

describe('no secret in a shipped record', () => {
  it('redactRecord: exact secrets, dska_ tokens, Bearer credentials, in values and member names', () => {
    const secret = 'S3cr3t-token-value-0123456789';
    const rec = { seq: 1, ts: 't', kind: 'decision', prev: '0', mac: '0', reason: `x${secret}y`, nested: [{ [secret]: 'dska_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }], note: 'Bearer abcdefghijklmnopqrstuvwxyz0123' };
    const { record, redacted } = redactRecord(rec, [secret]);
    expect(redacted).toBe(true);
    expect(JSON.stringify(record)).not.toMatch(/S3cr3t|dska_A|abcdefghij/);
    expect(record).toMatchObject({ seq: 1, mac: '0', redacted: true, reason: 'x[redacted]y', note: 'Bearer [redacted]' });
    expect(redactRecord({ seq: 1, ts: 't', kind: 'k', prev: '0', mac: '0', reason: 'Bearer of good news' }, [secret])).toEqual({ record: expect.not.objectContaining({ redacted: true }), redacted: false });
  });

  it('an agent that puts tokens in every field it controls gets none of them into a shipped record', async () => {
    const rx = await udpReceiver();
    await writeFile(join(dir, 'user.yaml'), 'version: 1\nlimits: { actionsPerSecond: 1000, burst: 10000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n');
    // A window whose title shows the agent's own token (e.g. a page that echoes it).
    const platform = createFakePlatform({
      tree: [axNode('application', 'calc', null, { children: [axNode('window', `Token ${AGENT}`, { x: 0, y: 0, width: 600, height: 400 }, { children: [axNode('button', '7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' })] })] })],
      windows: [{ id: '0xa', app: 'calc', pid: 42, wmClass: 'Calc', title: `Token ${AGENT}`, bounds: { x: 0, y: 0, width: 600, height: 400 } }],
      focused: { app: 'calc', pid: 42, window: `Token ${AGENT}` },
    });
    const h = await buildGovernanceApp({ userPath: join(dir, 'user.yaml'), platform });
    const env = { DESKD_TOKEN: AGENT, DESKD_OPERATOR_TOKEN: OPERATOR, DESKD_AUDIT_SYSLOG: `udp://127.0.0.1:${rx.port}`, OPENAI_API_KEY: 'sk-test-openai-key-0123456789abcdef' };
    const ship = (await startAuditShipping(h.audit, { configDir: join(dir, 'cfg'), env }))!;
    try {
      const op = { authorization: `Bearer ${OPERATOR}` };
      const created = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: op, payload: { id: 'builder', role: 'actor' } });
      expect(created.statusCode, created.body).toBe(200);
      const dska = created.json().token as string;
      expect(dska).toMatch(/^dska_/);
      const secrets = [AGENT, OPERATOR, dska, env.OPENAI_API_KEY];
      const all = secrets.join(' ');

      const attempts: Array<{ token: string; client?: string; payload: object }> = [
        // The reason (free text up to 500 characters) carrying every secret, bare and as a bearer header.
        { token: AGENT, payload: { type: 'click', x: 20, y: 110, reason: `${all} Bearer ${OPERATOR}` } },
        // The client header names the lease holder and the audit actor: the token itself as the client id.
        { token: AGENT, client: AGENT, payload: { type: 'move', x: 5, y: 5, reason: 'client' } },
        { token: dska, client: dska, payload: { type: 'move', x: 6, y: 6, reason: dska } },
        // Typed text and a batch whose reasons carry the tokens.
        { token: AGENT, payload: { actions: [{ type: 'type', text: all }, { type: 'move', x: 7, y: 7, reason: OPERATOR }], reason: dska } },
        // A key name and an unknown member named by a token (refused, maybe audited).
        { token: AGENT, payload: { type: 'keypress', keys: [OPERATOR], reason: 'keys' } },
        { token: AGENT, payload: { type: 'click', x: 20, y: 110, [OPERATOR]: dska, reason: 'extra member' } },
      ];
      for (const a of attempts) {
        const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: { authorization: `Bearer ${a.token}`, ...(a.client ? { 'x-deskd-client': a.client } : {}) }, payload: a.payload });
        expect(r.statusCode, r.body).toBeLessThan(500);
        await h.app.inject({ method: 'DELETE', url: '/v1/lease', headers: op });
      }
      await h.app.inject({ method: 'DELETE', url: '/v1/agents/builder', headers: op });
      await h.audit.append('daemon', { event: 'stop' });

      const lastSeq = h.audit.lastSeq;
      await until(() => rx.msgs.some((m) => parseSyslog(m).record.seq === lastSeq), 'every record shipped');
      // The attacks did reach the local log (so the check below is not vacuous)…
      const local = await readFile(join(h.dir, 'audit.jsonl'), 'utf8');
      expect(local).toContain(AGENT);
      expect(local).toContain(dska);
      // …and no shipped record holds any secret, raw or JSON-escaped.
      const shipped = rx.msgs.join('\n');
      for (const s of secrets) {
        expect(shipped).not.toContain(s);
        expect(shipped).not.toContain(JSON.stringify(s).slice(1, -1));
      }
      const recs = rx.msgs.map((m) => parseSyslog(m).record);
      expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
      expect(recs.filter((r) => r.redacted === true).length).toBeGreaterThan(0);
      expect(recs.find((r) => r.kind === 'decision' && String(r.reason).includes('[redacted]'))).toBeDefined();
    } finally {
      await ship.close();
      await h.close();
      rx.sock.close();
    }
  });
});

describe('the daemon', () => {
  it('ships from start to stop when DESKD_AUDIT_SYSLOG is set, counts it on /metrics; a managed policy edit is audited (trigger watch) and shipped', async () => {
    const { startDaemon } = await import('../../src/main.js');
    const { loadConfig } = await import('../../src/config.js');
    const rx = await udpReceiver();
    const saved = { ...process.env };
    process.env.DESKD_AUDIT_SYSLOG = `udp://127.0.0.1:${rx.port}`;
    process.env.DESKD_OCR_WORKERS = '1';
    process.env.DESKD_TOKEN = AGENT;
    process.env.DESKD_OPERATOR_TOKEN = OPERATOR;
    const managed = join(dir, 'managed-policy.yaml');
    await writeFile(managed, 'version: 1\n');
    process.env.DESKD_MANAGED_POLICY = managed;
    let daemon: Awaited<ReturnType<typeof startDaemon>> | null = null;
    try {
      const config = loadConfig(['--port', '0', '--log-level', 'warn'], { ...process.env, DESKD_CONFIG_DIR: join(dir, 'cfg'), DESKD_PLATFORM: 'fake' });
      daemon = await startDaemon(config);
      await until(() => rx.msgs.some((m) => parseSyslog(m).record.event === 'start'), 'the start record');
      const metrics = await fetch(`${daemon.url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR}` } });
      const metricsText = await metrics.text();
      expect(metricsText).toMatch(/^deskd_audit_shipped_total\{sink="syslog"[^}]*\} [1-9]/m);
      // The daemon's OCR engine (RecyclingRecognizer over OcrEngine) exposes its queue: the gauge is there.
      expect(metricsText).toMatch(/^deskd_ocr_queue_depth\{[^}]*\} \d+$/m);
      // An edit of the managed policy that does not validate: refused by the watch, audited, shipped.
      await writeFile(`${managed}.tmp`, 'version: 1\nrules: [{ id: x, effect: maybe, match: {} }]\n');
      await rename(`${managed}.tmp`, managed);
      await until(() => rx.msgs.some((m) => parseSyslog(m).record.kind === 'policy'), 'the shipped policy record');
      const pol = rx.msgs.map(parseSyslog).find((m) => m.record.kind === 'policy')!;
      expect(pol.record).toMatchObject({ event: 'reload', layer: 'managed', trigger: 'watch', ok: false, error: { code: 'POLICY_INVALID' } });
      expect(pol.pri).toBe(10 * 8 + 3);
      await daemon.close();
      daemon = null;
      // The shutdown checkpoint and the stop record were shipped before the sockets closed.
      const kinds = rx.msgs.map((m) => parseSyslog(m).record).map((r) => (r.kind === 'daemon' ? `daemon:${String(r.event)}` : r.kind));
      expect(kinds.slice(-2)).toEqual(['checkpoint', 'daemon:stop']);
      expect(kinds[0]).toBe('daemon:start');
    } finally {
      await daemon?.close();
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      rx.sock.close();
    }
  });
});
