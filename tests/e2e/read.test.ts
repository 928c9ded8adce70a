/**
 * Reading as data end to end (issue 16), through the HTTP API and MCP only: the daemon starts its own
 * virtual display (Xvfb + session bus + AT-SPI bus), Chromium shows a CI run list served by a local
 * node:http server, real AT-SPI and OCR read it.
 * - The run #2310's status cell changes from "Running" to "Passed" 1.5 s into a wait (the page polls the
 *   test's server for the go, and reports the moment it changed the cell): `POST /v1/wait` on the cell
 *   predicate answers after the change, woken by it (a handful of reads, not a fixed poll), with the
 *   evidence (read id, cell text, bounds inside the cell's DOM rect); the latency is printed, and measured
 *   against the issue's 500 ms by `npm run bench:read` (page ci). The audit log records the predicate and
 *   the evidence, and `since` reports exactly that cell.
 * - MCP `read` prints the table.
 * - The attacker's side: the policy denies input to Chromium, so a `scroll: true` read is refused
 *   (POLICY_DENIED) and the page sees no wheel event; an xterm the policy masks shows a secret that no
 *   read ever contains, and its window cannot be named.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startDaemon, type Daemon } from '../../src/main.js';
import { loadConfig } from '../../src/config.js';
import { launchApp, launchChromium, waitFor, type AppHandle } from '../helpers/desktop.js';

interface Rect { x: number; y: number; width: number; height: number }
const WIDTH = 1280;
const HEIGHT = 800;
const SECRET = 'vault-secret-7731';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>CI runs</title>
<style>body{font:15px/1.4 "DejaVu Sans",Arial,sans-serif;margin:20px;background:#fff;color:#1f2328}
th,td{border-bottom:1px solid #d0d7de;padding:6px 16px;text-align:left}</style></head><body>
<h1 style="font-size:20px">Workflow runs</h1>
<table><thead><tr><th>Run</th><th>Branch</th><th>Status</th><th>Duration</th></tr></thead><tbody>
<tr><td>#2310</td><td>main</td><td id="s">Running</td><td>4m 02s</td></tr>
<tr><td>#2309</td><td>fix/login</td><td>Failed</td><td>2m 41s</td></tr>
<tr><td>#2308</td><td>main</td><td>Passed</td><td>3m 55s</td></tr>
</tbody></table>
<script>
let wheels = 0;
addEventListener('wheel', () => { wheels++; fetch('/wheel', { method: 'POST', body: String(wheels) }); }, { passive: true });
// The run finishes when the test says so (it asks for the change once its wait is under way).
const poll = setInterval(async () => {
  if ((await (await fetch('/go')).text()) !== 'yes') return;
  clearInterval(poll);
  const s = document.getElementById('s');
  s.textContent = 'Passed';
  const at = Date.now();
  requestAnimationFrame(() => { const r = s.getBoundingClientRect(); fetch('/changed', { method: 'POST', body: JSON.stringify({ at, rect: { x: r.x, y: r.y, width: r.width, height: r.height }, screenX, screenY, outer: outerHeight - innerHeight }) }); });
}, 100);
</script></body></html>`;

const POLICY = `version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 100, burst: 200 }
perception:
  mask: ["xterm"]
rules:
  - id: allow-readonly
    effect: allow
    match: { actions: ["@readonly"] }
  - id: deny-chromium-input
    effect: deny
    description: no input into the browser in this test
    match: { actions: ["@input"], app: ["chromium"] }
`;

let daemon: Daemon;
let configDir: string;
let server: Server;
let base: string;
let chromium: AppHandle | null = null;
let xterm: AppHandle | null = null;
let changed: { at: number; rect: Rect; screenX: number; screenY: number; outer: number } | null = null;
let wheels = 0;
let go = false;

async function api<T = any>(method: string, path: string, body?: unknown, token = daemon.token): Promise<{ status: number; json: T; text: string }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text) as T, text };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/changed') changed = JSON.parse(body);
      else if (req.method === 'POST' && req.url === '/wheel') wheels = Number(body);
      else if (req.url === '/go') return void res.writeHead(200, { 'content-type': 'text/plain' }).end(go ? 'yes' : 'no');
      else if (req.url?.startsWith('/ci')) return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  configDir = await mkdtemp(join(tmpdir(), 'deskd-e2e-read-'));
  await writeFile(join(configDir, 'policy.yaml'), POLICY);
  const config = loadConfig(
    ['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', `${WIDTH}x${HEIGHT}`, '--policy', join(configDir, 'policy.yaml')],
    { ...process.env, DESKD_CONFIG_DIR: configDir, DESKD_PLATFORM: 'linux', DESKD_TOKEN: '', DESKD_OPERATOR_TOKEN: '', DESKD_CORNER_HALT: '0' },
  );
  daemon = await startDaemon(config);
  // The masked xterm below the browser, showing a secret in columns.
  xterm = launchApp('xterm', ['-geometry', '70x8+0+620', '-e', 'sh', '-c', `printf 'Name      Token\\nprod      ${SECRET}\\nstaging   ${SECRET}\\n'; sleep 600`]);
  chromium = launchChromium(`${base}/ci`, { width: WIDTH, height: 600 });
  let last = '';
  await waitFor(async () => {
    if (chromium!.exited()) throw new Error(`chromium exited: ${chromium!.output().slice(-2000)}`);
    const r = await api('POST', '/v1/read', { kind: 'table', ocr: false });
    last = r.text.slice(0, 1500);
    return r.status === 200 && r.json.tables.some((t: any) => t.rows.some((x: any) => x.cells.some((c: any) => c.text === 'Running'))) ? r : null;
  }, 150_000, 'the CI table on the accessibility bus').catch((e: Error) => {
    throw new Error(`${e.message}; last read: ${last}`);
  });
}, 240_000);

afterAll(async () => {
  await chromium?.kill();
  await xterm?.kill();
  await daemon?.close();
  await new Promise((r) => server?.close(r));
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

describe('a CI run list in Chromium', () => {
  it('waits on the status cell, answers once it changes with evidence, audited; since reports exactly that cell', async () => {
    const before = await api('POST', '/v1/read', { kind: 'table', ocr: false });
    expect(before.status, before.text).toBe(200);
    const t = before.json.tables.find((x: any) => x.headers.join('|') === 'Run|Branch|Status|Duration');
    expect(t, JSON.stringify(before.json.tables)).toBeDefined();
    expect(t.source).toBe('accessibility');
    expect(t.rows.map((r: any) => r.cells.map((c: any) => c.text))).toEqual([
      ['#2310', 'main', 'Running', '4m 02s'],
      ['#2309', 'fix/login', 'Failed', '2m 41s'],
      ['#2308', 'main', 'Passed', '3m 55s'],
    ]);
    expect(changed).toBeNull(); // the wait starts before the change

    // The page changes the cell 1.5 s into the wait.
    setTimeout(() => (go = true), 1500);
    const w = await api('POST', '/v1/wait', { until: { cell: { row: { column: 'Run', equals: '#2310' }, column: 'Status', equals: 'Passed' } }, timeoutMs: 30_000 });
    const answeredAt = Date.now();
    expect(w.status, w.text).toBe(200);
    expect(changed).not.toBeNull();
    const latency = answeredAt - changed!.at;
    console.log(`[e2e read] wait answered ${latency} ms after the change (${w.json.polls} reads)`);
    // Woken by the change, not by polling: a read before the change, the reads the wake-ups caused, nothing
    // like the 1.5 s / 100 ms of a fixed poll. (The 500 ms latency target is measured by npm run bench:read,
    // page ci: speed targets live in benchmarks.)
    expect(latency).toBeGreaterThanOrEqual(0);
    expect(w.json.polls).toBeLessThanOrEqual(6);
    expect(w.json.evidence).toMatchObject({ kind: 'cell', row: '#2310', column: 'Status', text: 'Passed' });
    // The cell's bounds hold the centre of the DOM rect the page reported (client → screen: window origin + browser UI height).
    const r = changed!.rect;
    const cx = changed!.screenX + r.x + r.width / 2;
    const cy = changed!.screenY + changed!.outer + r.y + r.height / 2;
    const b = w.json.evidence.bounds as Rect;
    expect(cx).toBeGreaterThanOrEqual(b.x - 2);
    expect(cx).toBeLessThanOrEqual(b.x + b.width + 2);
    expect(cy).toBeGreaterThanOrEqual(b.y - 2);
    expect(cy).toBeLessThanOrEqual(b.y + b.height + 2);

    const after = await api('POST', '/v1/read', { kind: 'table', ocr: false, since: before.json.readId });
    expect(after.status, after.text).toBe(200);
    expect(after.json.changes.tables).toEqual([
      expect.objectContaining({ added: [], removed: [], changed: [{ key: '#2310', cells: [expect.objectContaining({ column: 'Status', columnIndex: 2, from: 'Running', to: 'Passed' })] }] }),
    ]);

    const audit = await api('GET', '/v1/audit?limit=200', undefined, daemon.operatorToken!);
    const rec = audit.json.records.find((x: any) => x.kind === 'wait' && x.outcome === 'held');
    expect(rec).toMatchObject({ predicate: { cell: { row: { column: 'Run', equals: '#2310' }, column: 'Status', equals: 'Passed' } }, evidence: { kind: 'cell', row: '#2310', column: 'Status' } });
    expect(rec.readId).toBe(w.json.evidence.readId);
  }, 120_000);

  it('reads over MCP', async () => {
    const r = await fetch(`${daemon.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read', arguments: { kind: 'table', ocr: false } } }),
    });
    const text = await r.text();
    expect(r.status, text).toBe(200);
    const msg = JSON.parse(text.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
    const out = msg.result.content[0].text as string;
    expect(msg.result.isError ?? false, out).toBe(false);
    expect(out).toMatch(/Run\s+Branch\s+Status\s+Duration/);
    expect(out).toMatch(/#2309\s+fix\/login\s+Failed\s+2m 41s/);
  }, 60_000);

  it('refuses a scrolling read where the policy denies input, and nothing scrolls', async () => {
    const r = await api('POST', '/v1/read', { kind: 'table', ocr: false, scroll: true });
    expect(r.status, r.text).toBe(403);
    expect(r.json.error.code).toBe('POLICY_DENIED');
    await new Promise((res) => setTimeout(res, 500));
    expect(wheels).toBe(0);
  }, 60_000);

  it("never shows a masked app's content in a read (OCR on), and its window cannot be named", async () => {
    const r = await api('POST', '/v1/read', {});
    expect(r.status, r.text).toBe(200);
    expect(r.text).not.toContain(SECRET);
    expect(r.text).not.toContain('7731');
    expect(r.json.tables.some((t: any) => t.headers.includes('Run'))).toBe(true);
    const w = await api('POST', '/v1/read', { window: 'xterm' });
    expect(w.json.error.code).toBe('WINDOW_NOT_FOUND');
    const audit = await readFile(join(configDir, 'audit.jsonl'), 'utf8');
    expect(audit).not.toContain(SECRET);
  }, 120_000);
});
