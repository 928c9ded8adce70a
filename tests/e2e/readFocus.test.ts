/**
 * Cheap predicate waits and the second look at pixel-drawn pairs (issue 16), on a real desktop: Xvfb,
 * Chromium with its accessibility tree, AT-SPI, X11 region captures and tesseract, read through the
 * daemon's own read service wiring (`readServiceFor`, as `POST /v1/wait` and `POST /v1/read` use it).
 *
 * The page (served by the test, polled by the page for its state) shows a deploy table and two canvas
 * gauges drawn with their value inside a ring and the label under it. The test changes the page only once
 * the wait has made its first full read (the observe is wrapped to say so), so the path taken is known:
 * - the status cell changes in place: the wait answers from a read of the cell alone (`via: 'region'`, one
 *   full read), with the cell's bounds, and the answer's observation shows the new text;
 * - a row is inserted above the watched one, already "Done", while the watched row still runs: the wait does
 *   not take the inserted row's cell for its own; when the watched row finishes it answers it at its new place;
 * - the region reader hit-tests an accessible cell, refuses an element that is not the spot's, and reads a
 *   canvas value by OCR;
 * - a read pairs each gauge's label with the value inside its ring (the value the full-frame OCR may miss is
 *   looked for again with the ring removed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPlatform } from '../../src/platform/index.js';
import type { Platform } from '../../src/platform/types.js';
import { Observer, ObservationStore, DEFAULT_AX_BUDGET, type Observation } from '../../src/perception/observer.js';
import { OcrEngine } from '../../src/perception/ocr/index.js';
import { ReadService } from '../../src/perception/read/service.js';
import { readServiceFor } from '../../src/http/readRoutes.js';
import { focusOf, regionReader } from '../../src/perception/read/focus.js';
import { cellReader } from '../../src/perception/read/cellOcr.js';
import { inkReader } from '../../src/perception/read/inkOcr.js';
import { readObservation } from '../../src/perception/read/index.js';
import { checkCell } from '../../src/perception/read/predicates.js';
import Tesseract from 'tesseract.js';
import { launchChromium, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Deploys</title>
<style>body{font:15px/1.4 "DejaVu Sans",Arial,sans-serif;margin:20px;background:#fff;color:#222}
th,td{border-bottom:1px solid #ccc;padding:6px 18px;text-align:left}.g{display:flex;gap:40px;margin-top:24px}</style></head><body>
<h1 style="font-size:20px">Deploys</h1>
<table><thead><tr><th>Service</th><th>Region</th><th>State</th></tr></thead><tbody id="b"></tbody></table>
<div class="g" id="g"></div>
<script>
const draw = (label, value, f) => {
  const c = document.createElement('canvas'); c.width = 200; c.height = 185; document.getElementById('g').appendChild(c);
  const g = c.getContext('2d');
  g.lineWidth = 16; g.strokeStyle = "#dde3ea"; g.beginPath(); g.arc(100, 86, 60, 0, Math.PI * 2); g.stroke();
  g.strokeStyle = "#3b82f6"; g.beginPath(); g.arc(100, 86, 60, -Math.PI / 2, -Math.PI / 2 + f * Math.PI * 2); g.stroke();
  g.fillStyle = '#222'; g.textAlign = 'center';
  g.font = 'bold 24px "DejaVu Sans", Arial, sans-serif'; g.fillText(value, 100, 96);
  g.font = '15px "DejaVu Sans", Arial, sans-serif'; g.fillText(label, 100, 172);
};
draw('Throughput', '980rps', 0.8); draw('Saturation', '37%', 0.37);
let shown = '';
const rows = (s) => [...(s.inserted ? [['billing', 'eu-west', 'Done']] : []), ['api', 'us-east', s.api], ['search', 'eu-west', 'Queued'], ['auth', 'ap-south', 'Done']];
setInterval(async () => {
  const s = await (await fetch('/state')).json();
  const html = rows(s).map((r) => '<tr>' + r.map((c) => '<td>' + c + '</td>').join('') + '</tr>').join('');
  if (html !== shown) { document.getElementById('b').innerHTML = html; shown = html; fetch('/changed', { method: 'POST', body: String(Date.now()) }); }
}, 100);
</script></body></html>`;

let desktop: VirtualDesktop;
let platform: Platform;
let observer: Observer;
let ocr: OcrEngine;
let server: Server;
let chromium: AppHandle | null = null;
let state = { api: 'Deploying', inserted: false };

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.url === '/state') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state));
    if (req.url === '/') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
  platform = await createPlatform({ kind: 'linux' });
  ocr = await OcrEngine.create({});
  observer = new Observer(platform, ocr, new ObservationStore(), DEFAULT_AX_BUDGET, null, {});
  await observer.start();
  chromium = launchChromium(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { width: WIDTH, height: HEIGHT });
  await waitFor(async () => {
    const o = await observer.observe({ ocr: false });
    return readObservation(o, { kind: 'table' }).tables.some((t) => t.rows.some((r) => r.cells.some((c) => c.text === 'Deploying')));
  }, 150_000, 'the deploy table on the accessibility bus');
}, 240_000);

afterAll(async () => {
  await chromium?.kill();
  observer?.close();
  await ocr?.close();
  await platform?.close();
  await desktop?.stop();
  await new Promise((r) => server?.close(r));
});

/** The daemon's region reader and single-line readers over this observer (as src/http/readRoutes.ts builds them). */
function daemonReaders() {
  const line = () => OcrEngine.create({ workers: 1, psm: Tesseract.PSM.SINGLE_LINE });
  const capture = async (d: { id: number }, region: { x: number; y: number; width: number; height: number }) => (await observer.agentCapture.capture(d.id, { region })).image;
  const readCells = cellReader(capture, line, 5_000);
  const region = regionReader({ frame: (d, r) => observer.agentCapture.frame(d, r), windowsAndMask: () => observer.windowsAndMask(), elementAt: (p, w) => platform.accessibility.elementAt!(p, w), readCells });
  return { readCells, region, readInk: inkReader(capture, line, 5_000) };
}

/** A read service as the daemon's, whose observe says when the first full read of a wait is done. */
function serviceWithFirstRead(): { service: ReadService; firstRead: Promise<Observation> } {
  let done: (o: Observation) => void = () => {};
  const firstRead = new Promise<Observation>((r) => (done = r));
  const { region, readCells } = daemonReaders();
  const ax = platform.accessibility as unknown as { onChange(l: () => void): Promise<() => void> };
  const service = new ReadService({
    observe: async (o) => {
      const obs = await observer.observe(o);
      done(obs);
      return obs;
    },
    forget: (id) => void observer.store.delete(id),
    windows: () => observer.windowsForAgent(),
    onAccessibilityChange: (l) => ax.onChange(() => l()),
    readCells,
    region,
  });
  return { service, firstRead };
}

const pred = { cell: { row: { column: 'Service', equals: 'api' }, column: 'State', equals: 'Live' } };

describe('focused waits on a real page', () => {
  it('answers a cell changed in place from a read of the cell alone, with its bounds and the new text in the observation', async () => {
    state = { api: 'Deploying', inserted: false };
    const { service, firstRead } = serviceWithFirstRead();
    const waiting = service.waitFor(pred, { timeoutMs: 60_000, ocr: false });
    const first = await firstRead;
    const before = readObservation(first, { kind: 'table' });
    const cell = checkCell(before, pred.cell).evidence!;
    expect(cell.text).toBe('Deploying');
    state = { api: 'Live', inserted: false };
    const w = await waiting;
    console.log(`[e2e readFocus] in place: ${w.polls} full read(s), ${w.regionReads} region read(s), via ${w.evidence.via}`);
    expect(w.evidence).toMatchObject({ kind: 'cell', row: 'api', column: 'State', text: 'Live', via: 'region' });
    expect(w.polls).toBe(1);
    // The same cell: its row and left edge (the column shrank to "Live": the table lays its columns out anew).
    for (const k of ['x', 'y', 'height'] as const) expect(Math.abs(w.evidence.bounds[k] - cell.bounds[k])).toBeLessThanOrEqual(3);
    const ref = w.read.tables[0]!.rows.find((r) => r.key === 'api')!.cells[2]!.ref!;
    expect(w.observation.elements.find((e) => e.ref === ref)!.name).toBe('Live');
    expect(service.get(w.read.readId).tables[0]!.rows.find((r) => r.key === 'api')!.cells[2]!.text).toBe('Live');
  }, 120_000);

  it('does not take the cell of a row inserted above for its own, and answers the row at its new place', async () => {
    state = { api: 'Deploying', inserted: false };
    await waitFor(async () => readObservation(await observer.observe({ ocr: false }), { kind: 'table' }).tables[0]?.rows.length === 3, 30_000, 'three rows');
    const { service, firstRead } = serviceWithFirstRead();
    const waiting = service.waitFor({ cell: { ...pred.cell, equals: 'Done' } }, { timeoutMs: 60_000, ocr: false });
    const first = await firstRead;
    const at = checkCell(readObservation(first, { kind: 'table' }), pred.cell).evidence!.bounds;
    // "billing, Done" now sits where "api" was; api still deploys.
    state = { api: 'Deploying', inserted: true };
    const early = await Promise.race([waiting.then(() => 'answered'), new Promise((r) => setTimeout(() => r('still waiting'), 3000))]);
    expect(early).toBe('still waiting');
    state = { api: 'Done', inserted: true };
    const w = await waiting;
    console.log(`[e2e readFocus] moved row: ${w.polls} full read(s), ${w.regionReads} region read(s), via ${w.evidence.via}`);
    expect(w.evidence).toMatchObject({ row: 'api', text: 'Done' });
    expect(w.evidence.bounds.y).toBeGreaterThan(at.y + at.height / 2);
    expect(w.polls).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('the region reader hit-tests an accessible cell (refusing other bounds) and reads a canvas value by OCR', async () => {
    state = { api: 'Deploying', inserted: false };
    await waitFor(async () => readObservation(await observer.observe({ ocr: false }), { kind: 'table' }).tables[0]?.rows.length === 3, 30_000, 'three rows');
    const { region } = daemonReaders();
    const o = await observer.observe({ ocr: false });
    const c = readObservation(o, { kind: 'table' });
    const ev = checkCell(c, pred.cell).evidence!;
    const w = await region.windowAt({ x: ev.bounds.x + ev.bounds.width / 2, y: ev.bounds.y + ev.bounds.height / 2 });
    expect(w).not.toBeNull();
    const f = focusOf(pred, c, o, ev, w!.id)!;
    expect(f.target.how).toBe('accessibility');
    expect(await region.read(o.display, f.target, w)).toMatchObject({ text: 'Deploying' });
    // A spot as wide as the whole row: the cell hit-tested at its centre shares none of its side edges.
    const row = c.tables[0]!.rows.find((r) => r.key === 'api')!.cells;
    const rowRect = { x: row[0]!.bounds.x, y: ev.bounds.y, width: row[2]!.bounds.x + row[2]!.bounds.width - row[0]!.bounds.x, height: ev.bounds.height };
    expect(await region.read(o.display, { ...f.target, rect: rowRect }, w)).toBeNull();
    // Words of the canvas (pixels only) are OCR spots.
    const full = await observer.observe({});
    const sat = full.words.find((x) => x.text === '37%');
    expect(sat, full.words.map((x) => x.text).join(' ')).toBeDefined();
    const b = sat!.bounds;
    const spot = { rect: b, readRect: { x: b.x - b.height / 2, y: b.y - 2, width: b.width + b.height, height: b.height + 4 }, text: '37%', how: 'ocr' as const };
    expect(await region.read(full.display, spot, w)).toMatchObject({ text: '37%' });
  }, 120_000);
});

describe('pairs drawn in gauges', () => {
  it('pairs each gauge label with the value inside its ring', async () => {
    const service = readServiceFor({ platform, observer });
    const r = await service.read({ kind: 'pairs' });
    const got = Object.fromEntries(r.pairs.map((p) => [p.label, p.value]));
    console.log(`[e2e readFocus] pairs: ${JSON.stringify(got)}`);
    expect(got).toMatchObject({ Throughput: '980rps', Saturation: '37%' });
  }, 120_000);
});
