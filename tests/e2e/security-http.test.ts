/**
 * Issue 13, findings 8 and 9, against a real daemon (`startDaemon`, its own Xvfb + session bus + AT-SPI
 * bus, real OCR) over real sockets on 127.0.0.1:
 *
 * - finding 9: while client A holds the controller lease, client B's `POST /v1/%61ctions`,
 *   `POST /v1/t%61sks` and `POST /%6dcp` (an acting MCP tool) are refused with 409 `LEASE_HELD` and the
 *   pointer does not move (before: the router decoded the path to the acting route while the lease
 *   checked the raw URL, so they ran);
 * - finding 8: a slow-request flood (half never-finished headers, half agent-token bodies dripped a byte
 *   every 500 ms; a child process, 2,000 connections, reopened 5 s after the daemon closes them)
 *   while this process may open only ~1,400 more files than it had: the operator's `POST /v1/halt`
 *   (from a separate process) answers 200 every time, the median within 2 s (before: the flood took every file descriptor, as 19,990 connections did under
 *   the default limit of 20,000, and halt could not connect);
 * - finding 8: concurrent observes per credential: with 8 of the agent's perceiving requests in flight, the
 *   agent's next observe is 429 `TOO_MANY_REQUESTS` at once while the operator's observe is served; 80
 *   concurrent observes leave the daemon's RSS bounded.
 *
 * Flood sizes are bounded, everything goes to 127.0.0.1, and the flood stops by itself.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startDaemon, type Daemon } from '../../src/main.js';
import { e2eDaemonConfig } from '../helpers/e2eDaemon.js';
import { errorCode } from '../helpers/rawHttp.js';

const execFileP = promisify(execFile);
const FLOOD = fileURLToPath(new URL('../helpers/httpFlood.mjs', import.meta.url));
const HALT_PROBE = fileURLToPath(new URL('../helpers/haltProbe.mjs', import.meta.url));

const ALLOW_ALL = `version: 1
limits: { actionsPerSecond: 100, burst: 200 }
rules:
  - { id: allow-all, effect: allow, match: {} }
`;

let daemon: Daemon;
let dir: string;
let port: number;
const children: ChildProcess[] = [];
let softFdLimit: number | null = null;

interface Answer {
  status: number;
  body: string;
  ms: number;
}

/** One request with the path sent as written (no URL normalisation), on its own connection. */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: unknown, timeoutMs = 10_000): Promise<Answer> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: false, timeout: timeoutMs, headers: { ...headers, ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}) } },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, ms: performance.now() - t0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path} in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

const code = errorCode;
const agentAs = (client: string) => ({ authorization: `Bearer ${daemon.token}`, 'x-deskd-client': client });
const operator = () => ({ authorization: `Bearer ${daemon.operatorToken}` });
/** Open file descriptors of this process (the daemon's); NaN when even that cannot be read (EMFILE). */
const openFiles = (): number => {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return NaN;
  }
};

async function pointer(): Promise<{ x: number; y: number }> {
  const { stdout } = await execFileP('xdotool', ['getmouselocation', '--shell'], { env: { ...process.env, ...(daemon.desktop?.env ?? {}) } });
  return { x: Number(/X=(\d+)/.exec(stdout)![1]), y: Number(/Y=(\d+)/.exec(stdout)![1]) };
}

async function setSoftFdLimit(n: number): Promise<void> {
  await execFileP('prlimit', ['--pid', String(process.pid), `--nofile=${n}:`]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-e2e-sechttp-'));
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, ALLOW_ALL);
  const config = e2eDaemonConfig(policyPath, join(dir, 'config'), '1024x768', { DESKD_OCR_WORKERS: '1', DESKD_CORNER_HALT: '0' });
  daemon = await startDaemon(config);
  port = daemon.port;
  const { stdout } = await execFileP('prlimit', ['--pid', String(process.pid), '--nofile', '--raw', '--noheadings', '-o', 'SOFT']);
  softFdLimit = Number(stdout.trim());
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (softFdLimit) await setSoftFdLimit(softFdLimit).catch(() => undefined);
  await daemon?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('finding 9: an encoded path cannot act while another client holds the lease', () => {
  it('B\'s POST /v1/%61ctions, /v1/t%61sks and /%6dcp are 409 LEASE_HELD and the pointer stays put; A acts', async () => {
    const start = await pointer();
    const lease = await raw('POST', '/v1/lease', agentAs('A'), { ttlMs: 60_000 });
    expect(lease.status, lease.body).toBe(200);
    const target = { x: start.x === 300 ? 310 : 300, y: 300 };

    const act = await raw('POST', '/v1/%61ctions', agentAs('B'), { type: 'move', ...target });
    expect(act.status, act.body).toBe(409);
    expect(code(act)).toBe('LEASE_HELD');
    const task = await raw('POST', '/v1/t%61sks', agentAs('B'), { goal: 'move the pointer' });
    expect(task.status, task.body).toBe(409);
    expect(code(task)).toBe('LEASE_HELD');
    const mcp = await raw('POST', '/%6dcp', { ...agentAs('B'), accept: 'application/json, text/event-stream' }, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'click', arguments: { ...target } } });
    expect(mcp.status, mcp.body).toBe(409);
    expect(code(mcp)).toBe('LEASE_HELD');
    // Other spellings are not routed at all.
    for (const p of ['//v1/actions', '/v1/actions/', '/V1/actions', '/v1/actions;x', '/v1/x/../actions']) {
      const r = await raw('POST', p, agentAs('B'), { type: 'move', ...target });
      expect([404, 409], `${p}: ${r.status} ${r.body}`).toContain(r.status);
    }
    expect(await pointer()).toEqual(start);

    // The holder acts through the same encoded spelling: it is the same route.
    const own = await raw('POST', '/v1/%61ctions', agentAs('A'), { type: 'move', ...target });
    expect(own.status, own.body).toBe(200);
    expect(await pointer()).toEqual(target);
    expect((await raw('DELETE', '/v1/lease', agentAs('A'))).status).toBe(200);
  });
});

describe('finding 8: the operator can always act', () => {
  it('during a 2,000-connection slow-request flood with ~1,400 file descriptors to spare, POST /v1/halt answers 200 every time, the median within 2 s', async () => {
    // The operator's client is its own process, started before the flood: whatever the flood does to this
    // process's file descriptors, the probe's sockets are its own (as a person's curl or browser would be).
    const probe = spawn(process.execPath, [HALT_PROBE, String(port), daemon.operatorToken], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(probe);
    const lines: string[] = [];
    let buf = '';
    probe.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    const base = openFiles();
    // The reported attack used 19,990 connections against the default limit of 20,000; the same shape at
    // a bounded size: this process may open only ~1,400 more files, the flood opens 2,000 connections
    // (and reopens each one the daemon closes 5 s later: a slow-request flood, not a CPU-churn one).
    await setSoftFdLimit(base + 1400);
    const flood = spawn(process.execPath, [FLOOD, String(port), daemon.token, '2000', '40000', '12000', '5000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(flood);
    let out = '';
    flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<void>((r) => flood.once('exit', () => r()));
    // Let the flood build up: until this process's open files stop growing for 2 s (the daemon's cap, or on
    // the old code its file limit), at most 25 s. The flood goes on meanwhile (closed connections reopen).
    let last = openFiles();
    let stableSince = Date.now();
    const rampStart = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    stableSince = Date.now();
    while (Date.now() - rampStart < 25_000 && Date.now() - stableSince < 2000) {
      await new Promise((r) => setTimeout(r, 250));
      const now = openFiles();
      if (!(now <= last + 5)) stableSince = Date.now();
      if (!Number.isNaN(now)) last = Math.max(last, now);
    }
    const rampMs = Date.now() - rampStart;
    const duringFiles = openFiles();

    const results: { halt: number; haltMs: number; resume: number; error?: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const want = results.length + 1;
      probe.stdin!.write('go\n');
      const deadline = Date.now() + 20_000;
      while (lines.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const line = lines[want - 1];
      results.push(line ? JSON.parse(line) : { halt: 0, haltMs: Infinity, resume: 0, error: 'the probe did not report' });
      await new Promise((r) => setTimeout(r, 500));
    }
    probe.stdin!.write('exit\n');
    flood.kill('SIGTERM');
    await done;
    await setSoftFdLimit(softFdLimit!);
    const stats = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { opened: number; peakOpen: number; closedByServer: number };
    const ms = results.map((r) => r.haltMs).sort((a, b) => a - b);
    console.log(`halt under flood: ${JSON.stringify(results)}; latency p50 ${ms[2]} ms, max ${ms[4]} ms; flood ${JSON.stringify(stats)}; ramp ${rampMs} ms; daemon fds ${base} → ${duringFiles}`);
    // Every halt answers (the probe gives each request 8 s, connecting included); the median within 2 s.
    // Measured once the flood has built up: while 2,000 connections are being set up, a busy machine
    // (load average 18-29 from other test runs here) delays everything, the operator's connection too.
    expect(results.map((r) => `${r.halt}/${r.resume}${r.error ? ` ${r.error}` : ''}`)).toEqual(Array(5).fill('200/200'));
    expect(ms[2]).toBeLessThan(2000);
    // The flood was real: far more connections were opened than the daemon kept.
    expect(stats.opened).toBeGreaterThanOrEqual(2000);
    expect(duringFiles - base).toBeLessThan(1400);
  });

  it('with 8 of the agent\'s perceiving requests in flight its next observe is 429 TOO_MANY_REQUESTS at once; the operator observes; 80 concurrent observes keep RSS bounded', async () => {
    const agent = { authorization: `Bearer ${daemon.token}` };
    // Eight waits for a text that never shows: each observes again and again for 4 s.
    let waitsEnded = 0;
    const waits = Array.from({ length: 8 }, () =>
      raw('POST', '/v1/wait', agent, { until: { text: 'zq-never-shown-qz' }, timeoutMs: 4000, intervalMs: 200 }, 30_000).finally(() => waitsEnded++),
    );
    await new Promise((r) => setTimeout(r, 800));
    const extra = await raw('POST', '/v1/observe', agent, { screenshot: 'none' }, 30_000);
    expect(extra.status, extra.body).toBe(429);
    expect(code(extra)).toBe('TOO_MANY_REQUESTS');
    // Refused at once, not queued behind the eight: none of them had ended yet.
    expect(waitsEnded).toBe(0);
    const op = await raw('POST', '/v1/observe', operator(), { screenshot: 'none' }, 30_000);
    expect(op.status, op.body).toBe(200);
    const ended = await Promise.all(waits);
    expect(ended.map((w) => w.status)).toEqual(Array(8).fill(504));
    expect((await raw('POST', '/v1/observe', agent, { screenshot: 'none' }, 30_000)).status).toBe(200);

    // 80 at once (the attack that took RSS to 1.49 GB): each is served or refused with 429, none fails otherwise.
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const many = await Promise.all(Array.from({ length: 80 }, (_, i) => raw('POST', '/v1/observe', agent, { screenshot: i % 2 ? 'png' : 'none' }, 60_000)));
    clearInterval(sampler);
    const by = new Map<number, number>();
    for (const r of many) by.set(r.status, (by.get(r.status) ?? 0) + 1);
    console.log(`80 concurrent observes: ${JSON.stringify(Object.fromEntries(by))}; RSS ${(rss0 / 2 ** 20).toFixed(0)} → peak ${(peak / 2 ** 20).toFixed(0)} MB`);
    expect([...by.keys()].every((s) => s === 200 || s === 429)).toBe(true);
    expect(many.filter((r) => r.status === 429).every((r) => code(r) === 'TOO_MANY_REQUESTS')).toBe(true);
    expect(peak - rss0).toBeLessThan(700 * 2 ** 20);
  });
});
