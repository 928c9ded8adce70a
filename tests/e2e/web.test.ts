/**
 * End to end on web pages, through the HTTP API only: the daemon starts its own virtual display (Xvfb +
 * session bus + AT-SPI bus), Chromium shows pages served by a local node:http server, real OCR and
 * AT-SPI read them.
 * - A CI page: a button found by `target: {text}` is clicked, and `POST /v1/wait` waits for the text the
 *   page shows afterwards; then press by role + name, and set_value into a text field (Chromium exposes
 *   no EditableText, so this runs the focus-check-and-type fallback).
 * - A dashboard: a pipeline row's status (a table cell) and a gauge value drawn on a canvas (pixels only:
 *   OCR alone sees it) are read from `POST /v1/observe`, with bounds compared to the DOM rects the page
 *   reports to the server.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { startDaemon, type Daemon } from '../../src/main.js';
import { loadConfig } from '../../src/config.js';
import { launchChromium, waitFor, type AppHandle } from '../helpers/desktop.js';

interface Rect { x: number; y: number; width: number; height: number }
interface El { ref: string; role: string; name: string; value?: string; bounds: Rect; source: string }
interface Line { text: string; bounds: Rect }
interface Obs { observationId: string; elements: El[]; words: Line[]; lines: Line[]; timings: Record<string, number> }
interface Match { ref: string; observationId: string; role: string; name: string; bounds: Rect; textBounds: Rect; score: number; match: string }

const WIDTH = 1280;
const HEIGHT = 800;
const pages = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/pages/${name}`, import.meta.url)), 'utf8');

let daemon: Daemon;
let configDir: string;
let server: Server;
let base: string;
let reported: { rects: Record<string, Rect>; devicePixelRatio: number } | null = null;
let chromium: AppHandle | null = null;

async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${daemon.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: (await r.json()) as T };
}
const observe = async (body: object = {}) => {
  const r = await api<Obs>('POST', '/v1/observe', body);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json;
};
const centre = (r: Rect) => ({ x: r.x + r.width / 2, y: r.y + r.height / 2 });
const inside = (p: { x: number; y: number }, r: Rect) => p.x >= r.x && p.y >= r.y && p.x <= r.x + r.width && p.y <= r.y + r.height;
const grow = (r: Rect, d: number): Rect => ({ x: r.x - d, y: r.y - d, width: r.width + 2 * d, height: r.height + 2 * d });
const within = (a: Rect, b: Rect) => a.x >= b.x && a.y >= b.y && a.x + a.width <= b.x + b.width && a.y + a.height <= b.y + b.height;

/** Show a page in a fresh Chromium and wait until the daemon's accessibility view has `ready`. */
async function show(path: string, ready: (o: Obs) => boolean, what: string): Promise<Obs> {
  await chromium?.kill();
  chromium = launchChromium(`${base}${path}`, { width: WIDTH, height: HEIGHT });
  const c = chromium;
  return waitFor(async () => {
    if (c.exited()) throw new Error(`chromium exited: ${c.output().slice(-2000)}`);
    const o = await observe({ ocr: false });
    return ready(o) ? o : null;
  }, 90_000, what);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/rects') {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => {
        reported = JSON.parse(body);
        res.writeHead(204).end();
      });
      return;
    }
    const file = req.url === '/ci' ? 'ci.html' : req.url === '/dashboard' ? 'dashboard.html' : null;
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(pages(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  configDir = await mkdtemp(join(tmpdir(), 'deskd-e2e-web-'));
  const config = loadConfig(
    ['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', `${WIDTH}x${HEIGHT}`, '--policy', fileURLToPath(new URL('../fixtures/policy-e2e-web.yaml', import.meta.url))],
    { ...process.env, DESKD_CONFIG_DIR: configDir, DESKD_PLATFORM: 'linux', DESKD_TOKEN: '', DESKD_OPERATOR_TOKEN: '', DESKD_CORNER_HALT: '0' },
  );
  daemon = await startDaemon(config);
});

afterAll(async () => {
  await chromium?.kill();
  await daemon?.close();
  await new Promise((r) => server?.close(r));
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

describe('a CI page in Chromium', () => {
  it('clicks the button found by target {text} and waits for the text the page shows afterwards', async () => {
    await show('/ci', (o) => o.elements.some((e) => e.role === 'button' && e.name === 'Run build'), 'the "Run build" button in /v1/observe');

    // find: a fresh observation with OCR each time; latency measured here.
    const lat: number[] = [];
    let found: { observationId: string; matches: Match[]; timings: { observeMs: number; findMs: number } } | null = null;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r: { status: number; json: typeof found } = await api<typeof found>('POST', '/v1/find', { text: 'Run build' });
      lat.push(performance.now() - t0);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      found = r.json;
    }
    const best = found!.matches[0]!;
    expect(best).toMatchObject({ role: 'button', name: 'Run build', match: 'exact' });
    const roleOnly = await api<{ matches: Match[]; timings: { observeMs: number; findMs: number } }>('POST', '/v1/find', { role: 'button', name: 'Run build', ocr: false });
    expect(roleOnly.json.matches[0]?.ref).toBeDefined();
    console.log(
      `find "Run build" (1280x800, OCR + AT-SPI): round trips ${lat.map((x) => x.toFixed(0)).join(', ')} ms; last observe ${found!.timings.observeMs} ms + match ${found!.timings.findMs} ms; ` +
        `accessibility-only find: observe ${roleOnly.json.timings.observeMs} ms + match ${roleOnly.json.timings.findMs} ms`,
    );

    const click = await api<{ status: string; results: { point: { x: number; y: number } }[] }>('POST', '/v1/actions', { type: 'click', target: { text: 'Run build' } });
    expect(click.status, JSON.stringify(click.json)).toBe(200);
    expect(inside(click.json.results[0]!.point, best.bounds)).toBe(true);

    const t0 = performance.now();
    const w = await api<{ observation: Obs; matches: Match[]; polls: number; elapsedMs: number }>('POST', '/v1/wait', { until: { text: 'Build 7 passed on main' }, timeoutMs: 30_000, intervalMs: 250 });
    expect(w.status, JSON.stringify(w.json)).toBe(200);
    console.log(`wait "Build 7 passed on main": ${w.json.polls} polls, ${w.json.elapsedMs} ms (round trip ${(performance.now() - t0).toFixed(0)} ms), interval 250 ms + one observation (${JSON.stringify(w.json.observation.timings)}) per poll`);
    expect(w.json.matches[0]!.name).toMatch(/Build 7 passed on main/);
    expect(w.json.observation.observationId).toBe(w.json.matches[0]!.observationId);

    // A condition that never holds times out with TIMEOUT.
    const never = await api<{ error: { code: string } }>('POST', '/v1/wait', { until: { text: 'Build 99 passed' }, timeoutMs: 1500, ocr: false });
    expect(never.status).toBe(504);
    expect(never.json.error.code).toBe('TIMEOUT');
  });

  it("press by role + name runs the AT-SPI action; set_value replaces a text field's value", async () => {
    const press = await api<{ results: { via: string }[] }>('POST', '/v1/actions', { type: 'press', target: { role: 'button', name: 'Reset' } });
    expect(press.status, JSON.stringify(press.json)).toBe(200);
    expect(press.json.results[0]!.via).toBe('accessibility');
    const idle = await api('POST', '/v1/wait', { until: { textGone: 'Build 7 passed', element: { name: 'Idle' } }, timeoutMs: 20_000, ocr: false });
    expect(idle.status, JSON.stringify(idle.json)).toBe(200);

    const set = await api<{ results: { via: string }[] }>('POST', '/v1/actions', { type: 'set_value', target: { role: 'textbox', name: 'Branch' }, value: 'release' });
    expect(set.status, JSON.stringify(set.json)).toBe(200);
    // Chromium's web fields have no AT-SPI EditableText: deskd focuses the field (checked) and types.
    expect(['accessibility', 'keyboard']).toContain(set.json.results[0]!.via);
    console.log(`set_value in Chromium went through: ${set.json.results[0]!.via}`);
    const field = await waitFor(async () => {
      const o = await observe({ ocr: false });
      return o.elements.find((e) => e.role === 'textbox' && e.name === 'Branch' && e.value === 'release');
    }, 10_000, 'the Branch field to read "release"');
    expect(field.value).toBe('release');

    // The page sees the new value: the next build reports it.
    const run = await api('POST', '/v1/actions', { type: 'press', target: { text: 'Run build' } });
    expect(run.status, JSON.stringify(run.json)).toBe(200);
    const w = await api<{ matches: Match[] }>('POST', '/v1/wait', { until: { text: 'Build 8 passed on release' }, timeoutMs: 30_000 });
    expect(w.status, JSON.stringify(w.json)).toBe(200);
  });

  it('an action whose target is not on the page is refused with TARGET_NOT_FOUND', async () => {
    const r = await api<{ error: { code: string } }>('POST', '/v1/actions', { actions: [{ type: 'press', target: { role: 'button', name: 'Reset' } }, { type: 'press', target: { text: 'Launch the rockets' } }] });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('TARGET_NOT_FOUND');
  });
});

describe('a dashboard in Chromium', () => {
  it("reads a pipeline row's status and a canvas gauge's value from observe alone, with bounds on them", async () => {
    reported = null;
    await show('/dashboard', (o) => o.elements.some((e) => e.name === 'billing-service'), 'the dashboard table in /v1/observe');
    const rects = await waitFor(() => reported, 10_000, 'the page to report its rects');
    expect(rects.devicePixelRatio).toBe(1);

    const o = await observe();
    console.log(`observe dashboard: ${JSON.stringify(o.timings)}, ${o.elements.length} elements, ${o.words.length} words`);
    // The page's viewport on screen: the accessible document's bounds.
    const doc = o.elements.find((e) => e.role === 'document' && e.name === 'deskd dashboard');
    expect(doc, `document in ${o.elements.map((e) => `${e.role}:${e.name}`).join(' | ')}`).toBeDefined();
    const screen = (r: Rect): Rect => ({ x: doc!.bounds.x + r.x, y: doc!.bounds.y + r.y, width: r.width, height: r.height });

    // Row status: the element right of "billing-service" on the same row.
    const name = o.elements.find((e) => e.name === 'billing-service')!;
    const row = centre(name.bounds).y;
    const status = o.elements
      .filter((e) => e !== name && e.bounds.x >= name.bounds.x + name.bounds.width - 2 && Math.abs(centre(e.bounds).y - row) < name.bounds.height / 2 && e.role !== 'row' && e.role !== 'table')
      .sort((a, b) => a.bounds.x - b.bounds.x)[0];
    expect(status?.name).toBe('Failed');
    const statusDom = screen(rects.rects['status-billing']!);
    expect(inside(centre(status!.bounds), statusDom)).toBe(true);
    expect(within(status!.bounds, grow(statusDom, 4))).toBe(true);
    expect(within(name.bounds, grow(screen(rects.rects['name-billing']!), 4))).toBe(true);

    // Canvas gauge: named by its accessible label; its value is pixels on the canvas, read by OCR only.
    const gauge = o.elements.find((e) => e.name === 'CPU load gauge');
    expect(gauge, `elements: ${o.elements.map((e) => `${e.role}:${e.name}`).join(' | ')}`).toBeDefined();
    expect(within(gauge!.bounds, grow(screen(rects.rects.gauge!), 2))).toBe(true);
    // The value is one OCR word; the gauge's arc can add stray marks to its line (e.g. "/ 73%").
    const value = o.words.find((w) => inside(centre(w.bounds), gauge!.bounds) && /^\d+%$/.test(w.text));
    expect(value?.text, `words in the gauge: ${o.words.filter((w) => inside(centre(w.bounds), gauge!.bounds)).map((w) => w.text).join(' | ')}`).toBe('73%');
    const valueDom = screen(rects.rects['gauge-value']!);
    expect(inside(centre(value!.bounds), valueDom)).toBe(true);
    expect(within(value!.bounds, grow(valueDom, 6))).toBe(true);
    // The value is findable by text too (OCR-only text), with the same place.
    const f = await api<{ matches: Match[] }>('POST', '/v1/find', { text: '73%', observationId: o.observationId });
    expect(f.json.matches[0]).toBeDefined();
    expect(inside(centre(f.json.matches[0]!.textBounds), valueDom)).toBe(true);
    // And no accessible element carries it: canvas text is pixels.
    expect(o.elements.some((e) => e.source === 'accessibility' && e.name.includes('73%'))).toBe(false);
  });
});
