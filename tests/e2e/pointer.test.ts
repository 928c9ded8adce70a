/**
 * Scroll amounts and drags on a real Chromium page (issue 14, items 10 and 11), through the daemon's HTTP
 * API on its own virtual display (Xvfb, no window manager), with an allow-all policy. playwright-core,
 * connected to the same Chromium over CDP, only reads the page (scroll offsets, what the page recorded);
 * every input event comes from deskd (XTest).
 *
 * - Scroll: `scroll_y` 200, -50, 37 and `scroll_x` 250 at a point of the page. The page's scroll offset
 *   after the smooth-scroll animation settles equals what the result reports (`scrolled.approxPoints`,
 *   tolerance ±1 px for fractional offsets), and that is within half a wheel click of the request (the
 *   best whole clicks can do; Chromium's click is 120 px, so 37 → nothing, and the result says 0).
 * - Drag: an HTML5 draggable dragged along a 4-point path is dropped on a drop zone (the page records the
 *   `drop` with the dragged data); a range slider dragged from its thumb ends at the value under the
 *   release point and passes through intermediate values on the way (`input` events).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium as pw, type Browser, type Page } from 'playwright-core';
import { startDaemon, type Daemon } from '../../src/main.js';
import { loadConfig } from '../../src/config.js';
import { launchApp, waitFor, type AppHandle } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;

const PAGE = `<!doctype html><html><head><title>pointer test</title><style>
  body { margin: 0; width: 6000px; height: 20000px; background: linear-gradient(#fff, #ccd); font: 16px sans-serif; }
  #drag { position: fixed; left: 100px; top: 100px; width: 120px; height: 60px; background: #39f; }
  #drop { position: fixed; left: 560px; top: 80px; width: 220px; height: 160px; background: #fc3; }
  #range { position: fixed; left: 100px; top: 400px; width: 600px; margin: 0; }
</style></head><body>
<div id="drag" draggable="true">drag me</div>
<div id="drop">drop here</div>
<input id="range" type="range" min="0" max="100" step="1" value="0">
<script>
  window.events = [];
  window.values = [];
  window.offset = null;
  addEventListener('mousemove', (e) => { window.offset = { x: e.screenX - e.clientX, y: e.screenY - e.clientY }; });
  const drag = document.getElementById('drag'), drop = document.getElementById('drop'), range = document.getElementById('range');
  drag.addEventListener('dragstart', (e) => { e.dataTransfer.setData('text/plain', 'card-7'); window.events.push('dragstart'); });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); });
  drop.addEventListener('drop', (e) => { e.preventDefault(); window.events.push('drop:' + e.dataTransfer.getData('text/plain')); });
  drag.addEventListener('dragend', () => window.events.push('dragend'));
  range.addEventListener('input', () => window.values.push(Number(range.value)));
</script></body></html>`;

interface Scrolled { requested: { dx: number; dy: number }; steps: { dx: number; dy: number }; approxPoints: { dx: number; dy: number }; pointsPerStep: number; toolkit: string }
interface Result { type: string; point?: { x: number; y: number }; scrolled?: Scrolled; dragged?: { points: number }; durationMs: number }

let daemon: Daemon;
let dir: string;
let server: Server;
let app: AppHandle | null = null;
let browser: Browser | null = null;
let page: Page;

async function act(action: object): Promise<Result> {
  const r = await fetch(`${daemon.url}/v1/actions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(action),
  });
  const json = (await r.json()) as { results: Result[] };
  expect(r.status, JSON.stringify(json)).toBe(200);
  return json.results[0]!;
}

/** Poll `expr` in the page until it has not changed for `quietMs` (Chromium animates wheel scrolls). */
async function settled(expr: string, quietMs = 1200): Promise<number> {
  let last: number | undefined;
  let since = Date.now();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = (await page.evaluate(expr)) as number;
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return v;
    if (Date.now() > deadline) throw new Error(`${expr} did not settle (last ${v})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Maps page (client) points to screen points: the page records screen − client on a deskd pointer move. */
async function toScreen(): Promise<(client: { x: number; y: number }) => { x: number; y: number }> {
  await page.evaluate('window.offset = null');
  await act({ type: 'move', x: 640, y: 600 });
  const off = await waitFor(() => page.evaluate('window.offset') as Promise<{ x: number; y: number } | null>, 10_000, 'the page to see the pointer');
  return (c) => ({ x: Math.round(c.x + off.x), y: Math.round(c.y + off.y) });
}


async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  dir = await mkdtemp(join(tmpdir(), 'deskd-e2e-pointer-'));
  const policy = join(dir, 'policy.yaml');
  await writeFile(policy, 'version: 1\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n');
  daemon = await startDaemon(
    loadConfig(['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', `${WIDTH}x${HEIGHT}`, '--policy', policy], {
      ...process.env,
      DESKD_CONFIG_DIR: join(dir, 'config'),
      DESKD_PLATFORM: 'linux',
      DESKD_TOKEN: '',
      DESKD_OPERATOR_TOKEN: '',
      DESKD_CORNER_HALT: '0',
    }),
  );

  // Debian's Chromium on the daemon's display, with a CDP port for reading the page.
  const profile = join(dir, 'chromium');
  await mkdir(join(profile, 'tmp'), { recursive: true });
  const port = await freePort();
  app = launchApp(
    'chromium',
    [
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--password-store=basic', `--user-data-dir=${profile}`,
      '--window-position=0,0', `--window-size=${WIDTH},${HEIGHT}`, `--remote-debugging-port=${port}`, url,
    ],
    { TMPDIR: join(profile, 'tmp') },
  );
  browser = await waitFor(async () => {
    if (app!.exited()) throw new Error(`chromium exited: ${app!.output().slice(-2000)}`);
    return pw.connectOverCDP(`http://127.0.0.1:${port}`);
  }, 90_000, 'chromium to accept CDP connections', 500);
  page = await waitFor(() => browser!.contexts()[0]?.pages().find((p) => p.url() === url), 60_000, 'the test page');
  await page.waitForFunction('document.readyState === "complete" && !!window.events', undefined, { timeout: 60_000 });
  // The "unsupported flag" info bar appears after the first paint and shifts the page down: let it settle.
  await settled('innerHeight', 1500);
}, 240_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await app?.kill();
  await daemon?.close();
  await new Promise((r) => server?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('scroll amounts in Chromium', () => {
  it.each([
    ['scroll_y', 200],
    ['scroll_y', -50],
    ['scroll_y', 37],
    ['scroll_x', 250],
  ] as const)('%s %d moves the page by what the result reports, within half a wheel click of the request', async (axis, amount) => {
    const at = (await toScreen())({ x: 900, y: 500 });
    await page.evaluate('scrollTo(3000, 3000)');
    const prop = axis === 'scroll_y' ? 'scrollY' : 'scrollX';
    const before = await settled(prop);
    const r = await act({ type: 'scroll', x: at.x, y: at.y, scroll_x: axis === 'scroll_x' ? amount : 0, scroll_y: axis === 'scroll_y' ? amount : 0 });
    const moved = (await settled(prop)) - before;
    const d = axis === 'scroll_y' ? 'dy' : 'dx';
    console.log(`[pointer e2e] ${axis} ${amount}: page moved ${moved} px; reported ${JSON.stringify(r.scrolled)}`);
    expect(r.scrolled, JSON.stringify(r)).toBeDefined();
    expect(r.scrolled!.toolkit).toBe('chromium');
    expect(r.scrolled!.requested[d]).toBe(amount);
    expect(Math.abs(moved - r.scrolled!.approxPoints[d])).toBeLessThanOrEqual(1);
    expect(Math.abs(moved - amount)).toBeLessThanOrEqual(r.scrolled!.pointsPerStep / 2);
    // The other axis did not move.
    const other = axis === 'scroll_y' ? 'dx' : 'dy';
    expect(r.scrolled!.steps[other]).toBe(0);
  }, 60_000);
});

describe('drags in Chromium', () => {
  it('drops an HTML5 draggable on a drop zone along a 4-point path', async () => {
    await page.evaluate('window.events = []');
    const screen = await toScreen();
    const pts = [{ x: 160, y: 130 }, { x: 300, y: 200 }, { x: 480, y: 120 }, { x: 660, y: 160 }].map(screen);
    const r = await act({ type: 'drag', path: pts });
    console.log(`[pointer e2e] HTML5 drag: ${r.dragged?.points} points in ${r.durationMs} ms`);
    const events = await waitFor(async () => {
      const ev = (await page.evaluate('window.events')) as string[];
      return ev.includes('dragend') ? ev : null;
    }, 10_000, 'dragend').catch(async () => (await page.evaluate('window.events')) as string[]);
    expect(events).toContain('dragstart');
    expect(events).toContain('drop:card-7');
    expect(r.dragged!.points).toBeGreaterThan(4);
    expect(r.durationMs).toBeLessThan(3000);
  }, 60_000);

  it('moves a range slider to the value under the release point, through intermediate values', async () => {
    await page.evaluate('(() => { const r = document.getElementById("range"); r.value = "0"; window.values = []; })()');
    const rect = (await page.evaluate('(() => { const b = document.getElementById("range").getBoundingClientRect(); return { x: b.x, y: b.y, width: b.width, height: b.height }; })()')) as { x: number; y: number; width: number; height: number };
    // Chromium's thumb is 16 px wide at the default size: value v sits at x + 8 + v/100 × (width − 16).
    const xOf = (v: number) => rect.x + 8 + (v / 100) * (rect.width - 16);
    const y = rect.y + rect.height / 2;
    const screen = await toScreen();
    const r = await act({ type: 'drag', path: [{ x: xOf(0), y }, { x: xOf(90), y }, { x: xOf(70), y }].map(screen) });
    const value = Number(await page.evaluate('document.getElementById("range").value'));
    const values = (await page.evaluate('window.values')) as number[];
    console.log(`[pointer e2e] slider drag: ${r.dragged?.points} points in ${r.durationMs} ms; value ${value}; input values ${values.join(',')}`);
    expect(Math.abs(value - 70)).toBeLessThanOrEqual(1);
    // Up to ≈90 first, then back (Chromium coalesces input events per frame, so the peak may be missed by a few): the slider saw the way, not one jump.
    expect(Math.max(...values)).toBeGreaterThanOrEqual(80);
    expect(new Set(values).size).toBeGreaterThanOrEqual(6);
  }, 60_000);
});
