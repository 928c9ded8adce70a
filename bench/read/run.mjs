#!/usr/bin/env node
/**
 * Read benchmark (issue 16): how exactly deskd reads tables, boards and label → value pairs off real pages,
 * and what a read costs beside the plain observe it builds on.
 *
 * Each page of bench/read/pages is shown full-screen in Chromium (app mode, ACCESSIBILITY_ENABLED=1
 * --force-renderer-accessibility) on a private 1920x1080 Xvfb desktop; deskd's Observer (X11 capture,
 * OcrEngine, AT-SPI) and ReadService read it. Truth is the page's own data (`window.__truth`).
 *
 * Per page:
 * - cell accuracy: cells (header cells and body cells) whose exact text (whitespace collapsed) is in the right row
 *   (matched by the first column's text) and the right column (by position), over the page's cells; a row the
 *   read lacks counts all its cells wrong, an extra row counts nothing;
 * - pairs: page pairs whose label (case-insensitive) is read with exactly the page's value;
 * - boards: cards read with the exact text under the right column title;
 * - virtualised grid: a `scroll: true` read, `complete`, every row once and in order;
 * - time: median of alternating rounds of a plain `observe()` and a `read()` (which observes itself) of the
 *   same unchanged screen, warm (the first of each is a warm-up); ratio = read / observe.
 *
 * - wait latency (page ci): a `cell` wait through the daemon's read service (readServiceFor: AT-SPI events,
 *   pixel compares, the target re-read alone once found); --wait-delay ms (2500) into the wait the page
 *   changes the cell; latency = answer − change (same clock), median of --wait-runs runs.
 *
 * Usage: npm run bench:read [-- --skip-build] [--pages tracker,ci] [--rounds 5] [--wait-runs 5]
 * Scrolling here goes straight to the mouse (wheel clicks of 120 points, Chromium's), not through a policy:
 * the daemon's path is the executor's (tests/integration/read.test.ts proves the gate).
 * Writes bench/read/results.json.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { buildDist, distModules } from '../common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};

buildDist(root, 'perception/read/service.js', flag('skip-build'));
const dist = distModules(root);
const { startVirtualDesktop, applyDesktopEnv } = await import(dist('platform/linux/virtualDisplay.js'));
const { createPlatform } = await import(dist('platform/index.js'));
// The OCR module is a folder (perception/ocr/index.js); builds from before the split have perception/ocr.js.
const { OcrEngine } = await import(dist('perception/ocr/index.js')).catch(() => import(dist('perception/ocr.js')));
const { Observer, ObservationStore, DEFAULT_AX_BUDGET } = await import(dist('perception/observer.js'));
const { readServiceFor } = await import(dist('http/readRoutes.js'));
const { chromium } = await import('playwright-core');

const SCREEN = { width: 1920, height: 1080 };
const ROUNDS = Number(opt('rounds') ?? 3);
const WAIT_RUNS = Number(opt('wait-runs') ?? 5);
/** How long into a wait the page changes the cell, ms: past the wait's first full read (≈ 1 s at load 17), so the latency is the wake-up's. */
const WAIT_DELAY_MS = Number(opt('wait-delay') ?? 2500);
const pageNames = opt('pages')?.split(',') ?? readdirSync(join(here, 'pages')).filter((f) => f.endsWith('.html')).map((f) => f.replace(/\.html$/, '')).sort();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clean = (s) => String(s ?? '').normalize('NFKC').replace(/\s+/g, ' ').trim();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r3 = (v) => Math.round(v * 1000) / 1000;

/** Cell accuracy of `read` (a ReadTable) against `truth` ({headers, rows}). */
function cellAccuracy(truth, read) {
  const total = truth.headers.length * (truth.rows.length + 1);
  if (!read) return { total, right: 0, accuracy: 0, wrong: ['no table read'] };
  let right = 0;
  const wrong = [];
  truth.headers.forEach((h, j) => (clean(read.headers[j]) === clean(h) ? right++ : wrong.push(`header ${j}: ${JSON.stringify(read.headers[j])} ≠ ${JSON.stringify(h)}`)));
  const byKey = new Map();
  for (const r of read.rows) if (!byKey.has(clean(r.cells[0]?.text))) byKey.set(clean(r.cells[0]?.text), r);
  for (const t of truth.rows) {
    const r = byKey.get(clean(t[0]));
    if (!r) {
      wrong.push(`row ${t[0]} missing`);
      continue;
    }
    t.forEach((c, j) => (clean(r.cells[j]?.text) === clean(c) ? right++ : wrong.push(`${t[0]}/${truth.headers[j]}: ${JSON.stringify(r.cells[j]?.text)} ≠ ${JSON.stringify(c)}`)));
  }
  return { total, right, accuracy: r3(right / total), wrong: wrong.slice(0, 8) };
}

/** The read table that best matches a truth table (most headers equal). */
function bestTable(truth, tables) {
  let best = null;
  let score = -1;
  for (const t of tables) {
    const s = truth.headers.filter((h, j) => clean(t.headers[j]) === clean(h)).length + (t.rows.length > 0 ? 0.5 : 0);
    if (s > score) {
      score = s;
      best = t;
    }
  }
  return best;
}

function pairAccuracy(truth, pairs) {
  let right = 0;
  const wrong = [];
  for (const p of truth) {
    const hit = pairs.find((x) => clean(x.label).toLowerCase() === clean(p.label).toLowerCase());
    if (hit && clean(hit.value) === clean(p.value)) right++;
    else wrong.push(`${p.label}: ${hit ? JSON.stringify(hit.value) : 'missing'} ≠ ${JSON.stringify(p.value)}`);
  }
  return { total: truth.length, right, accuracy: r3(right / truth.length), wrong };
}

function boardAccuracy(truth, boards) {
  let total = 0;
  let right = 0;
  const wrong = [];
  for (const tb of truth) {
    const b = boards.find((x) => tb.columns.every((c) => x.columns.some((y) => clean(y.title) === clean(c.title)))) ?? boards[0];
    for (const c of tb.columns) {
      const col = b?.columns.find((y) => clean(y.title) === clean(c.title));
      for (const k of c.cards) {
        total++;
        if (col?.cards.some((x) => clean(x.text) === clean(k))) right++;
        else wrong.push(`${c.title}/${k}`);
      }
    }
  }
  return { total, right, accuracy: total ? r3(right / total) : 0, wrong };
}

const desktop = await startVirtualDesktop({ width: SCREEN.width, height: SCREEN.height });
applyDesktopEnv(desktop);
const platform = await createPlatform({ kind: 'linux' });
const ocr = await OcrEngine.create({});
const store = new ObservationStore();
const observer = new Observer(platform, ocr, store, DEFAULT_AX_BUDGET, null, {});
await observer.start();
const tapped = observer.tapPlatform(platform);
// The daemon's own read service (src/http/readRoutes.ts): empty OCR cells read again alone, waits woken by
// AT-SPI events and pixel changes and, once they found their target, watching and re-reading it alone.
const service = readServiceFor({ platform, observer });
/** Wheel clicks of 120 points (Chromium on X11, src/actuation/scroll.ts) at the point; returns the points sent. */
const scroller = async (at, dy) => {
  const steps = Math.round(dy / 120);
  await tapped.mouse.move(at);
  if (steps !== 0) await tapped.mouse.wheel(0, steps);
  return steps * 120;
};

const results = [];
try {
  for (const name of pageNames) {
    const profile = mkdtempSync(join(tmpdir(), 'deskd-bench-read-'));
    const url = pathToFileURL(join(here, 'pages', `${name}.html`)).href;
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: false,
      viewport: null,
      env: { ...process.env, ACCESSIBILITY_ENABLED: '1' },
      args: ['--force-renderer-accessibility', '--no-sandbox', '--test-type', '--disable-gpu', `--app=${url}`, '--window-position=0,0', `--window-size=${SCREEN.width},${SCREEN.height}`, '--force-device-scale-factor=1', '--hide-scrollbars'],
    });
    try {
      let page = ctx.pages().find((p) => p.url() === url);
      for (let i = 0; !page && i < 50; i++) {
        await sleep(100);
        page = ctx.pages().find((p) => p.url() === url);
      }
      if (!page) throw new Error(`no page for ${url}`);
      await page.waitForLoadState('load');
      await page.evaluate(() => document.fonts.ready.then(() => true));
      const truth = await page.evaluate(() => window.__truth);
      // Wait until the page's text is on the accessibility bus (Chromium exposes it a moment after load).
      const probe = truth.tables?.[0]?.headers?.[0] ?? truth.boards?.[0]?.columns?.[0]?.title ?? truth.pairs?.[0]?.label;
      for (let i = 0; i < 40; i++) {
        const o = await observer.observe({ ocr: false });
        store.delete(o.observationId);
        if (truth.tables?.[0]?.canvas || o.elements.some((e) => e.name.includes(probe))) break;
        await sleep(250);
      }
      await sleep(300);
      // Warm-up: the first observe reads the whole screen (OCR); later ones reuse what did not change.
      const cold0 = performance.now();
      const first = await service.read({});
      const coldReadMs = performance.now() - cold0;
      const obsMs = [];
      const readMs = [];
      let last = first;
      await observer.observe({});
      for (let i = 0; i < ROUNDS; i++) {
        const a = performance.now();
        store.delete((await observer.observe({})).observationId);
        obsMs.push(performance.now() - a);
        const b = performance.now();
        last = await service.read({});
        readMs.push(performance.now() - b);
      }
      const row = { page: name, observeMs: Math.round(median(obsMs)), readMs: Math.round(median(readMs)), ratio: r3(median(readMs) / median(obsMs)), coldReadMs: Math.round(coldReadMs), readComputeMs: last.timings.readMs };
      if (truth.tables) {
        row.tables = truth.tables.map((t) => {
          const tt = bestTable(t, last.tables);
          const acc = cellAccuracy(t, tt);
          // What was read, when it is not exact (to see why).
          const sample = acc.accuracy < 1 && tt ? [tt.headers, ...tt.rows.slice(0, 4).map((r) => r.cells.map((c) => c.text))] : undefined;
          const words = acc.accuracy < 1 && flag('dump') ? last.tables.length + ' tables; words: ' + store.get(last.observationId).words.map((w) => `${w.text}@${Math.round(w.bounds.x)},${Math.round(w.bounds.y)}`).join(' ') : undefined;
          return { rows: t.rows.length, columns: t.headers.length, source: tt?.source ?? null, ...acc, ...(sample ? { sample } : {}), ...(words ? { words } : {}) };
        });
        const v = truth.tables.find((t) => t.virtualised);
        if (v) {
          const ts = performance.now();
          const s = await service.read({ kind: 'table', scroll: true, ocr: false }, scroller);
          const t = bestTable(v, s.tables);
          const keys = t?.rows.map((r) => clean(r.cells[0]?.text)) ?? [];
          row.scroll = {
            ms: Math.round(performance.now() - ts),
            complete: t?.complete ?? false,
            scrolled: t?.scrolled ?? 0,
            rowsRead: keys.length,
            rowsOnce: new Set(keys).size === keys.length,
            inOrder: keys.join('|') === v.rows.map((r) => r[0]).join('|'),
            extraRows: t ? t.rows.filter((r) => !v.rows.some((x) => clean(x[0]) === clean(r.cells[0]?.text))).map((r) => r.cells.map((c) => c.text).join('|')).slice(0, 5) : [],
            ...cellAccuracy(v, t),
            warnings: s.warnings.filter((w) => !w.startsWith('masked')),
            scrollTopAfter: await page.evaluate(() => document.getElementById('grid').scrollTop),
          };
        }
      }
      if (name === 'ci') {
        // Wait latency: a wait on the Running run's status cell; WAIT_DELAY_MS in, the page shows "Passed". Latency =
        // answer time − the moment the page changed the cell (same clock).
        const lat = [];
        for (let k = 0; k < WAIT_RUNS; k++) {
          const run = truth.tables[0].rows.find((r) => r[3] === 'Running');
          await page.evaluate((key) => { const tr = [...document.querySelectorAll('tbody tr')].find((x) => x.cells[0].textContent === key); tr.cells[3].firstChild.textContent = 'Running'; tr.cells[3].firstChild.className = 'badge Running'; }, run[0]);
          await sleep(1500);
          const waiting = service.waitFor({ cell: { row: { column: 'Run', equals: run[0] }, column: 'Status', equals: 'Passed' } }, { timeoutMs: 30_000 });
          await sleep(WAIT_DELAY_MS);
          const at = await page.evaluate((key) => { const tr = [...document.querySelectorAll('tbody tr')].find((x) => x.cells[0].textContent === key); tr.cells[3].firstChild.textContent = 'Passed'; tr.cells[3].firstChild.className = 'badge Passed'; return Date.now(); }, run[0]);
          const w = await waiting;
          // waitMs: the whole wait (from its start); observeMs: the last full read's observe.
          lat.push({ ms: Date.now() - at, reads: w.polls, regionReads: w.regionReads ?? 0, via: w.evidence.via ?? 'full', waitMs: Math.round(w.elapsedMs), observeMs: Math.round(w.read.timings.observeMs) });
        }
        row.waitLatency = { medianMs: median(lat.map((x) => x.ms)), runs: lat };
      }
      if (truth.pairs) {
        const o = store.get(last.observationId);
        const dump = flag('dump') ? { read: last.pairs.map((p) => `${p.label}=${p.value}`), elements: o.elements.filter((e) => e.bounds.y > 200).map((e) => `${e.role}:${e.name}@${Math.round(e.bounds.x)},${Math.round(e.bounds.y)},${Math.round(e.bounds.width)}x${Math.round(e.bounds.height)}`).slice(0, 40), words: o.words.filter((w) => w.bounds.y > 200).map((w) => `${w.text}@${Math.round(w.bounds.x)},${Math.round(w.bounds.y)},h${Math.round(w.bounds.height)}`) } : {};
        row.pairs = { ...pairAccuracy(truth.pairs, last.pairs), ...dump };
      }
      if (truth.boards) row.boards = boardAccuracy(truth.boards, last.boards);
      results.push(row);
      console.log(`[bench] ${name}: ${JSON.stringify(row)}`);
    } finally {
      await ctx.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    }
  }
} finally {
  observer.close();
  await ocr.close().catch(() => {});
  await platform.close().catch(() => {});
  await desktop.stop();
}

const pad = (s, n) => String(s).padEnd(n);
console.log('');
console.log(`${pad('page', 10)}| ${pad('what', 34)}| ${pad('accuracy', 9)}| observe ms | read ms | read/observe | cold read ms`);
for (const r of results) {
  const what = [];
  for (const t of r.tables ?? []) what.push([`table ${t.rows}x${t.columns} (${t.source})`, t.accuracy]);
  if (r.scroll) what.push([`scroll: ${r.scroll.rowsRead} rows, complete ${r.scroll.complete}, once ${r.scroll.rowsOnce}`, r.scroll.accuracy]);
  if (r.pairs) what.push([`pairs ${r.pairs.total}`, r.pairs.accuracy]);
  if (r.boards) what.push([`board cards ${r.boards.total}`, r.boards.accuracy]);
  what.forEach(([w, a], i) => console.log(`${pad(i === 0 ? r.page : '', 10)}| ${pad(w, 34)}| ${pad(a, 9)}| ${i === 0 ? `${pad(r.observeMs, 11)}| ${pad(r.readMs, 8)}| ${pad(r.ratio, 13)}| ${r.coldReadMs}` : ''}`));
}
const out = {
  generatedAt: new Date().toISOString(),
  machine: { cpus: (await import('node:os')).availableParallelism(), node: process.version, load: (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10) },
  notes: `time = median of ${ROUNDS} alternating warm rounds: plain observe() vs read() (which observes itself) of the same unchanged screen; ratio = read/observe. Accuracy = exact cell text in the right row and column over the page's own data.`,
  results,
};
writeFileSync(join(here, 'results.json'), JSON.stringify(out, null, 2) + '\n');
console.log('\nwrote bench/read/results.json');
