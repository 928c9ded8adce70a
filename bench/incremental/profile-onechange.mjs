#!/usr/bin/env node
/**
 * Profile of the one-change observe with the accessibility tree on, per stage (issue 15): the bench's pages in
 * Chromium on a private Xvfb, `window.__benchChange(i)`, then one observe; the OCR engine's `recognize` timed per
 * call (region, words, `OcrResult.profile` passes with PROF_CALLS=1), the backend's `snapshot`/`focused` and
 * `windows.list` timed, AT-SPI counters (objects re-read, extents checked, D-Bus calls), fusion and serialisation
 * re-run on the observation's own inputs. Prints p50 per page and every sample (JSON).
 *
 * Usage: node bench/incremental/profile-onechange.mjs <distDir, e.g. dist> [pages, default settings,ci] [changes, default 8] [label]
 * Environment: OCR_ONLY=1 observes without the accessibility tree (`accessibility: false`, the bench's OCR-only
 * rows), AX_ONLY=1 without OCR (`ocr: false`: the tree update alone, its CPU time on deskd's main thread); CHANGE_BASE=<n> numbers the changes from n (the bench uses 0 OCR-only, 50 with the tree; default 50);
 * FRESH=1 also reads the same screen with `fresh: true` after each observe and prints, when the new text was not
 * seen, the words of both reads on the lines of the re-read rectangles; PROF_EVENTS=1 prints the AT-SPI events
 * each change brought (kind, detail, object path).
 * (build first: `npm run build`, or `npx tsc -p tsconfig.json --outDir <dir>` with package.json and node_modules linked there).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const [distArg = 'dist', pagesArg = 'settings,ci', nArg = '8', label = ''] = process.argv.slice(2);
const distDir = distArg.startsWith('/') ? distArg : join(process.cwd(), distArg);
const dist = (p) => pathToFileURL(join(distDir, 'src', p)).href;
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const { startVirtualDesktop, applyDesktopEnv } = await import(dist('platform/linux/virtualDisplay.js'));
const { createPlatform } = await import(dist('platform/index.js'));
const { OcrEngine } = await import(dist('perception/ocr/index.js'));
const { RecyclingRecognizer } = await import(dist('perception/incrementalOcr.js'));
const { Observer, ObservationStore } = await import(dist('perception/observer.js'));
const { flattenAccessibility, fuseElements } = await import(dist('perception/elements.js'));
const { chromium } = await import('playwright-core');

const pageUrl = (name) => pathToFileURL(name === 'dashboard' ? join(root, 'bench/incremental/dashboard.html') : join(root, 'bench/incremental/pages', `${name}.html`)).href;
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN; };
const r1 = (v) => Math.round(v * 10) / 10;
const SCREEN = { width: 1920, height: 1080 };
const pages = pagesArg.split(',');
const N = Number(nArg);
const OPTS = process.env.OCR_ONLY ? { accessibility: false } : process.env.AX_ONLY ? { ocr: false } : {};
const BASE = Number(process.env.CHANGE_BASE ?? 50);

const desktop = await startVirtualDesktop(SCREEN);
applyDesktopEnv(desktop);
const platform = await createPlatform({ kind: 'linux' });
const profile = mkdtempSync(join(tmpdir(), 'deskd-prof-'));
let ctx, engine;
try {
  const url = pageUrl(pages[0]);
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: false, viewport: null,
    env: { ...process.env, ACCESSIBILITY_ENABLED: '1' },
    args: ['--force-renderer-accessibility', '--no-sandbox', '--test-type', '--disable-gpu', `--app=${url}`, '--window-position=0,0', `--window-size=${SCREEN.width},${SCREEN.height}`],
  });
  let page = ctx.pages().find((p) => p.url() === url);
  for (let i = 0; !page && i < 50; i++) { await sleep(100); page = ctx.pages().find((p) => p.url() === url); }
  await page.waitForLoadState('load');
  await sleep(1000);
  const change = async (fn, arg) => {
    const before = await platform.capture.capture(0);
    await page.evaluate(async ([src, a]) => { new Function('a', src)(a); await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); }, [fn, arg]);
    for (const until = performance.now() + 1000; performance.now() < until; await sleep(10)) if (!(await platform.capture.capture(0)).data.equals(before.data)) return;
  };
  const inner = await OcrEngine.create({ jobTimeoutMs: 600_000 });
  // Instrumented OCR: time and area of every recognize.
  let ocrCalls = [];
  const timed = { recognize: async (img, opts) => { const t = performance.now(); const r = await inner.recognize(img, opts); ocrCalls.push({ ms: performance.now() - t, region: opts?.region, words: r.words.length, profile: r.profile, upscale: r.upscale, mono: r.monospaceBlocks, light: r.lightTextRegions }); return r; }, close: () => inner.close() };
  engine = timed;
  // Instrumented accessibility.
  const ax = platform.accessibility;
  let axCalls = { snapshot: 0, focused: 0 };
  let lastSnap = null;
  const snap0 = ax.snapshot.bind(ax), foc0 = ax.focused.bind(ax);
  ax.snapshot = async (o) => { const t = performance.now(); const r = await snap0(o); axCalls.snapshot += performance.now() - t; lastSnap = r; return r; };
  ax.focused = async () => { const t = performance.now(); const r = await foc0(); axCalls.focused += performance.now() - t; return r; };
  const win0 = platform.windows.list.bind(platform.windows);
  let winMs = 0;
  platform.windows.list = async () => { const t = performance.now(); const r = await win0(); winMs += performance.now() - t; return r; };

  let events = [];
  if (process.env.PROF_EVENTS && typeof ax.onChange === 'function') await ax.onChange((e) => events.push(`${e.kind}${e.detail ? `:${e.detail}` : ''} ${e.path}`));
  const out = {};
  for (const name of pages) {
    if (page.url() !== pageUrl(name)) { await page.goto(pageUrl(name)); await sleep(1000); }
    const o = new Observer(platform, engine, new ObservationStore(), undefined, null);
    await o.start();
    await o.observe(OPTS); await o.observe(OPTS);
    await sleep(2500);
    if (process.env.PROF_CALLS) console.log(JSON.stringify(await page.evaluate(() => [...document.querySelectorAll('#log, .stages, .head, #name, main')].map((e) => { const r = e.getBoundingClientRect(); return [e.id || e.className || e.tagName, Math.round(r.x), Math.round(r.y + outerHeight - innerHeight), Math.round(r.width), Math.round(r.height)]; }))));
    const rows = [];
    for (let i = 0; i < N; i++) {
      events = [];
      await change(`window.__benchExpected = window.__benchChange(a)`, i + BASE);
      const expected = await page.evaluate(() => window.__benchExpected);
      ocrCalls = []; axCalls = { snapshot: 0, focused: 0 }; winMs = 0;
      const st0 = ax.stats ? { ...ax.stats } : {};
      if (process.env.PROF_EVENTS) console.log(JSON.stringify({ events }));
      const cpu0 = process.cpuUsage();
      const obs = await o.observe(OPTS);
      const cpu = process.cpuUsage(cpu0);
      const st = ax.stats ?? {};
      // Fusion cost, re-run on the same inputs.
      const tf = performance.now();
      const el = lastSnap ? fuseElements(flattenAccessibility(lastSnap.roots, obs.display, {}), obs.lines) : [];
      const fuseMs = performance.now() - tf;
      const ts = performance.now();
      JSON.stringify({ ...obs, elements: obs.elements.map(({ handle, ...e }) => e) });
      const serMs = performance.now() - ts;
      const ocrWorker = ocrCalls.reduce((a, c) => a + c.ms, 0);
      const area = ocrCalls.reduce((a, c) => a + (c.region ? c.region.width * c.region.height : SCREEN.width * SCREEN.height), 0);
      rows.push({
        total: obs.timings.totalMs, cpuMs: r1((cpu.user + cpu.system) / 1000), capture: obs.timings.captureMs, ocr: obs.timings.ocrMs, ocrCalls: ocrCalls.length, ocrRecognizeSum: r1(ocrWorker), ocrMaxCall: r1(Math.max(0, ...ocrCalls.map((c) => c.ms))),
        readFraction: obs.ocrStats?.readFraction, area, scrolled: obs.ocrStats?.scrolledRegions, rects: obs.ocrStats?.rereadRects?.map((r) => `${Math.round(r.x)},${Math.round(r.y)} ${Math.round(r.width)}x${Math.round(r.height)}`).join(' | '),
        ax: obs.timings.accessibilityMs, axSnapshot: r1(axCalls.snapshot), axFocused: r1(axCalls.focused), cached: obs.accessibilityCached,
        reread: (st.reread ?? 0) - (st0.reread ?? 0), boundsReread: (st.boundsReread ?? 0) - (st0.boundsReread ?? 0), full: (st.fullReads ?? 0) - (st0.fullReads ?? 0), events: (st.events ?? 0) - (st0.events ?? 0), calls: (st.calls ?? 0) - (st0.calls ?? 0),
        windows: r1(winMs), fuse: r1(fuseMs), serialize: r1(serMs), elements: obs.elements.length, seen: obs.words.some((w) => w.text.includes(expected)),
      });
      if (process.env.FRESH) {
        const fresh = await o.observe({ ...OPTS, fresh: true });
        const seenFresh = fresh.words.some((w) => w.text.includes(expected));
        rows.at(-1).seenFresh = seenFresh;
        if (!rows.at(-1).seen || !seenFresh) {
          const near = (ws) => ws.filter((w) => (obs.ocrStats?.rereadRects ?? []).some((r) => w.bounds.y < r.y + r.height + 20 && w.bounds.y + w.bounds.height > r.y - 20)).map((w) => `${w.text}@${Math.round(w.bounds.x)},${Math.round(w.bounds.y)}`).join(' ');
          console.log(JSON.stringify({ expected, rects: rows.at(-1).rects, incremental: near(obs.words), fresh: near(fresh.words) }));
        }
      }
      if (process.env.PROF_CALLS) console.log(JSON.stringify(ocrCalls.map((c) => ({ ms: Math.round(c.ms), region: c.region && [c.region.x, c.region.y, c.region.width, c.region.height].map(Math.round), words: c.words, upscale: c.upscale, mono: c.mono, light: c.light, passes: Object.fromEntries(Object.entries(c.profile?.passes ?? {}).map(([k, v]) => [k, `${v.jobs}j ${Math.round(v.tesseractMs)}ms ${v.megapixels.toFixed(2)}MP`])) }))));
      await sleep(300);
    }
    o.close();
    const keys = Object.keys(rows[0]).filter((k) => typeof rows[0][k] === 'number');
    out[name] = Object.fromEntries(keys.map((k) => [k, r1(pct(rows.map((r) => r[k]), 50))]));
    out[name].seen = `${rows.filter((r) => r.seen).length}/${rows.length}`;
    out[name].rectsExample = rows.map((r) => r.rects).slice(0, 3);
    console.log(JSON.stringify({ label, page: name, p50: out[name] }, null, 1));
    console.log(JSON.stringify(rows.map(({ rects, ...r }) => r)));
  }
} finally {
  await ctx?.close().catch(() => {});
  await engine?.close().catch(() => {});
  await platform.close().catch(() => {});
  await desktop.stop();
  rmSync(profile, { recursive: true, force: true });
}
