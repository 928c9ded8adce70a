#!/usr/bin/env node
/**
 * Perception benchmark: how well deskd reads real pages, beside a naive OCR baseline measured in the same run.
 *
 * For each page in bench/perception/pages at device scale factor 1 and 2, full-screen in Chromium (app mode,
 * no browser UI) on a private 1920x1080 Xvfb desktop:
 *   1. ground truth: every visible word of the DOM and its box (Range.getClientRects per word of a text-node
 *      walk) plus the words the page drew on canvases (`window.__canvasWords`), converted to screen points;
 *   2. capture the screen with deskd's X11 capture, snapshot the AT-SPI tree (Chromium with
 *      ACCESSIBILITY_ENABLED=1 --force-renderer-accessibility);
 *   3. OCR the frame with (a) the naive baseline: tesseract.js `createWorker` + `recognize` on the PNG, default
 *      settings, and (b) deskd's OcrEngine; fuse (b) with the accessibility elements (src/perception/elements.ts).
 * Metrics (definitions in docs/perception.md): OCR word recall and precision, fused coverage, latency.
 *
 * Usage: npm run bench:perception [-- --skip-build] [--pages tracker,dark] [--scales 1,2] [--compare]
 *   --compare also runs the psm / traineddata / preprocessing variants on the same frames.
 *   --save-frames DIR writes each captured frame (raw RGBA) and its truth / accessibility snapshot to DIR;
 *   --frames DIR evaluates those saved frames instead of capturing (no Xvfb, no Chromium: for iterating).
 *   --no-naive skips the naive baseline (its columns then read 0).
 *   --options JSON sets deskd's OcrEngine options for the main run (e.g. '{"psm":"6"}').
 * Writes bench/perception/results.json.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildDist, distModules } from '../common.mjs';
import { performance } from 'node:perf_hooks';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};

buildDist(root, 'perception/ocr/index.js', flag('skip-build'));

const dist = distModules(root);
const { startVirtualDesktop, applyDesktopEnv } = await import(dist('platform/linux/virtualDisplay.js'));
const { createPlatform } = await import(dist('platform/index.js'));
const { OcrEngine, tesseractWorkerOptions } = await import(dist('perception/ocr/index.js'));
const { flattenAccessibility, fuseElements } = await import(dist('perception/elements.js'));
const { chromium } = await import('playwright-core');
const { default: Tesseract } = await import('tesseract.js');
const { default: sharp } = await import('sharp');

const pageNames = (opt('pages')?.split(',') ?? readdirSync(join(here, 'pages')).filter((f) => f.endsWith('.html')).map((f) => f.replace(/\.html$/, '')).sort());
const scales = (opt('scales') ?? '1,2').split(',').map(Number);
const SCREEN = { width: 1920, height: 1080 };

/** Text as compared: lower case, letters and digits only ("93%," → "93"). Punctuation-only tokens compare as ''. */
export const norm = (s) => s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
const centre = (r) => ({ x: r.x + r.width / 2, y: r.y + r.height / 2 });
const inside = (r, p, pad = 0) => p.x >= r.x - pad && p.y >= r.y - pad && p.x < r.x + r.width + pad && p.y < r.y + r.height + pad;
const unionRect = (rs) => {
  const x = Math.min(...rs.map((r) => r.x)), y = Math.min(...rs.map((r) => r.y));
  return { x, y, width: Math.max(...rs.map((r) => r.x + r.width)) - x, height: Math.max(...rs.map((r) => r.y + r.height)) - y };
};

/** Runs in the page: every visible word with its client rect (CSS px), plus the canvas words. */
function readTruth() {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('script,style')) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility !== 'visible' || cs.display === 'none' || Number(cs.opacity) === 0) continue;
    // What the ancestors' overflow clipping (and the viewport) leaves visible of this element's text.
    let clip = { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
    for (let a = el; a && a !== document.documentElement; a = a.parentElement) {
      const st = getComputedStyle(a);
      if (st.overflowX === 'visible' && st.overflowY === 'visible') continue;
      const b = a.getBoundingClientRect();
      const left = b.left + a.clientLeft, top = b.top + a.clientTop;
      clip = { left: Math.max(clip.left, left), top: Math.max(clip.top, top), right: Math.min(clip.right, left + a.clientWidth), bottom: Math.min(clip.bottom, top + a.clientHeight) };
    }
    for (const m of n.data.matchAll(/\S+/g)) {
      const range = document.createRange();
      range.setStart(n, m.index);
      range.setEnd(n, m.index + m[0].length);
      const r = [...range.getClientRects()].find((x) => x.width > 0 && x.height > 0);
      if (!r) continue;
      const vis = { left: Math.max(r.left, clip.left), top: Math.max(r.top, clip.top), right: Math.min(r.right, clip.right), bottom: Math.min(r.bottom, clip.bottom) };
      if (vis.right - vis.left <= 0 || vis.bottom - vis.top <= 0) continue;
      // Hidden behind something else: the element at the visible part's centre must be its own.
      const hit = document.elementFromPoint((vis.left + vis.right) / 2, (vis.top + vis.bottom) / 2);
      if (!hit || !(hit === el || el.contains(hit) || hit.contains(el))) continue;
      // Cut by a scroll container's or the viewport's edge (a long line in a terminal pane): no reading of the
      // visible part can equal the word, so it is a don't-care area (see `score`), not a word to read.
      const partial = vis.right - vis.left < r.width - 1 || vis.bottom - vis.top < r.height * 0.75;
      out.push({ text: m[0], x: vis.left, y: vis.top, width: vis.right - vis.left, height: vis.bottom - vis.top, source: 'dom', ...(partial ? { partial: true } : {}) });
    }
  }
  for (const w of window.__canvasWords ?? []) {
    if (w.x + w.width <= 0 || w.y + w.height <= 0 || w.x >= innerWidth || w.y >= innerHeight) continue;
    out.push({ ...w, source: 'canvas' });
  }
  return { words: out, viewport: { top: outerHeight - innerHeight, left: outerWidth - innerWidth, width: innerWidth, height: innerHeight } };
}

/**
 * Match OCR words to ground-truth words one to one: same normalised text and the OCR box's centre inside the
 * truth box (padded by a quarter of its height). An OCR word equal to 2–3 adjacent truth words run together
 * ("1m04s") matches all of them. Returns matched counts.
 */
function matchWords(truth, ocr) {
  const used = new Set();
  let matchedOcr = 0;
  const unmatched = [];
  for (const w of ocr) {
    const before = matchedOcr;
    const c = centre(w.bounds);
    const t = norm(w.text);
    let hit = -1;
    for (let i = 0; i < truth.length; i++) {
      const g = truth[i];
      if (used.has(i) || g.norm !== t) continue;
      if (inside(g.box, c, Math.max(2, g.box.height / 4))) { hit = i; break; }
    }
    if (hit >= 0) {
      used.add(hit);
      matchedOcr++;
      continue;
    }
    // Merged words: consecutive truth words on the same line whose texts concatenate to the OCR text.
    outer: for (let i = 0; i < truth.length; i++) {
      if (used.has(i) || !t.startsWith(truth[i].norm) || truth[i].norm === '') continue;
      let acc = truth[i].norm;
      const group = [i];
      for (let j = i + 1; j < truth.length && group.length < 3; j++) {
        if (used.has(j) || Math.abs(truth[j].box.y - truth[i].box.y) > truth[i].box.height / 2) break;
        acc += truth[j].norm;
        group.push(j);
        if (acc === t) {
          if (inside(unionRect(group.map((k) => truth[k].box)), c, 2)) {
            for (const k of group) used.add(k);
            matchedOcr++;
            break outer;
          }
          break;
        }
        if (!t.startsWith(acc)) break;
      }
    }
    if (matchedOcr === before) unmatched.push(w);
  }
  return { matchedTruth: used.size, matchedOcr, unmatched };
}

/** Ground-truth words covered by a fused element holding the word in its name/value, with bounds on it. */
function coverage(truth, elements, maxArea) {
  const toks = elements.map((e) => ({ e, t: new Set(`${e.name} ${e.value ?? ''}`.split(/\s+/).map(norm).filter(Boolean)), j: norm(`${e.name}${e.value ?? ''}`) }));
  let covered = 0;
  const missed = [];
  for (const g of truth) {
    const c = centre(g.box);
    const ok = toks.some(({ e, t, j }) => e.bounds.width * e.bounds.height <= maxArea && inside(e.bounds, c, 2) && (t.has(g.norm) || (g.norm.length >= 3 && j.includes(g.norm))));
    if (ok) covered++;
    else missed.push(g.text);
  }
  return { covered, missed };
}

/**
 * Recall and precision of `words` against `truth`. OCR words whose centre lies in the visible part of a word cut
 * by a container's edge (`partial`) are left out of precision: whatever is read there (`aut` of `auth.log`) is
 * neither right nor wrong (an ICDAR-style don't-care area).
 */
function score(truth, words, viewport, partial = []) {
  const dontCare = (c) => partial.some((g) => inside(g.box, c, 2));
  const considered = words.filter((w) => norm(w.text) !== '' && inside(viewport, centre(w.bounds)) && !dontCare(centre(w.bounds)));
  const { matchedTruth, matchedOcr, unmatched } = matchWords(truth, considered);
  return {
    unmatched,
    recall: truth.length ? matchedTruth / truth.length : 1,
    precision: considered.length ? matchedOcr / considered.length : 1,
    truthWords: truth.length,
    ocrWords: considered.length,
  };
}

function naiveWords(page) {
  const out = [];
  for (const b of page.blocks ?? []) for (const p of b.paragraphs) for (const l of p.lines) for (const w of l.words) {
    if (w.text.trim() === '') continue;
    out.push({ text: w.text.trim(), bounds: { x: w.bbox.x0, y: w.bbox.y0, width: w.bbox.x1 - w.bbox.x0, height: w.bbox.y1 - w.bbox.y0 }, confidence: w.confidence / 100 });
  }
  return out;
}

const round3 = (v) => Math.round(v * 1000) / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- capture phase
const t0 = performance.now();
const frames = [];
const framesDir = opt('frames');
if (framesDir) {
  for (const dsf of scales) {
    for (const name of pageNames) {
      const meta = JSON.parse(readFileSync(join(framesDir, `${name}@${dsf}.json`), 'utf8'));
      const data = readFileSync(join(framesDir, `${name}@${dsf}.rgba`));
      frames.push({ partial: [], ...meta, image: { ...meta.image, data } });
    }
  }
} else {
const desktop = await startVirtualDesktop({ width: SCREEN.width, height: SCREEN.height });
applyDesktopEnv(desktop);
const platform = await createPlatform({ kind: 'linux' });
try {
  for (const dsf of scales) {
    for (const name of pageNames) {
      const profile = mkdtempSync(join(tmpdir(), 'deskd-bench-'));
      const url = pathToFileURL(join(here, 'pages', `${name}.html`)).href;
      const ctx = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        headless: false,
        viewport: null,
        env: { ...process.env, ACCESSIBILITY_ENABLED: '1' },
        args: ['--force-renderer-accessibility', '--no-sandbox', '--test-type', '--disable-gpu', `--app=${url}`, '--window-position=0,0',
          `--window-size=${SCREEN.width / dsf},${SCREEN.height / dsf}`, `--force-device-scale-factor=${dsf}`, '--hide-scrollbars'],
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
        await sleep(700);
        const gt = await page.evaluate(readTruth);
        const vp = gt.viewport;
        const toScreen = (r) => ({ x: (r.x + vp.left) * dsf, y: (r.y + vp.top) * dsf, width: r.width * dsf, height: r.height * dsf });
        const all = gt.words.map((w) => ({ text: w.text, norm: norm(w.text), source: w.source, box: toScreen(w), ...(w.partial ? { partial: true } : {}) })).filter((w) => w.norm !== '');
        const truth = all.filter((w) => !w.partial);
        const partial = all.filter((w) => w.partial);
        const viewport = toScreen({ x: 0, y: 0, width: vp.width, height: vp.height });
        // Wait for the page's text to reach the accessibility bus.
        const probe = truth.filter((w) => w.source === 'dom').sort((a, b) => b.norm.length - a.norm.length)[0]?.text ?? '';
        let snap = { roots: [], truncated: false };
        let axMs = 0;
        for (let i = 0; i < 30; i++) {
          const ta = performance.now();
          snap = await platform.accessibility.snapshot({ scope: 'all', budget: { maxDepth: 40, maxNodes: 3000, timeMs: 5000 } });
          axMs = performance.now() - ta;
          if (JSON.stringify(snap.roots).includes(probe)) break;
          await sleep(300);
        }
        const image = await platform.capture.capture(0);
        frames.push({ name, dsf, truth, partial, viewport, image, snap, axMs });
        console.log(`[bench] captured ${name} @${dsf}x: ${truth.length} words (${truth.filter((w) => w.source === 'canvas').length} on canvas)`);
        const saveDir = opt('save-frames');
        if (saveDir) {
          mkdirSync(saveDir, { recursive: true });
          const { data, ...imageMeta } = image;
          writeFileSync(join(saveDir, `${name}@${dsf}.rgba`), data);
          writeFileSync(join(saveDir, `${name}@${dsf}.json`), JSON.stringify({ name, dsf, truth, partial, viewport, snap, axMs, image: imageMeta }));
        }
        if (process.env.BENCH_SAVE_FRAMES) {
          await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 4 } }).png().toFile(join(process.env.BENCH_SAVE_FRAMES, `${name}@${dsf}.png`));
        }
      } finally {
        await ctx.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
      }
    }
  }
} finally {
  await platform.close().catch(() => {});
  await desktop.stop();
}
}
const captureSeconds = (performance.now() - t0) / 1000;

// ---------------------------------------------------------------- evaluation phase
const display = { x: 0, y: 0, width: SCREEN.width, height: SCREEN.height };
const maxArea = (SCREEN.width * SCREEN.height) / 4;

async function runNaive() {
  if (flag('no-naive')) return frames.map(() => ({ words: [], ms: 0 }));
  const worker = await Tesseract.createWorker('eng', Tesseract.OEM.LSTM_ONLY, { ...tesseractWorkerOptions('4.0.0'), errorHandler: () => {} });
  await worker.setParameters({ debug_file: '/dev/null' });
  const out = [];
  try {
    for (const f of frames) {
      const tn = performance.now();
      const png = await sharp(f.image.data, { raw: { width: f.image.width, height: f.image.height, channels: 4 } }).png().toBuffer();
      const page = (await worker.recognize(png, {}, { blocks: true, text: false })).data;
      out.push({ words: naiveWords(page), ms: performance.now() - tn });
    }
  } finally {
    await worker.terminate();
  }
  return out;
}

async function runEngine(options, recognizeOpts = {}) {
  const engine = await OcrEngine.create(options);
  const out = [];
  try {
    for (const f of frames) {
      const r = await engine.recognize(f.image, recognizeOpts);
      out.push(r);
    }
  } finally {
    await engine.close();
  }
  return out;
}

const naive = await runNaive();
const deskd = await runEngine(opt('options') ? JSON.parse(opt('options')) : {});

const rows = frames.map((f, i) => {
  const n = score(f.truth, naive[i].words, f.viewport, f.partial);
  const d = score(f.truth, deskd[i].words, f.viewport, f.partial);
  const axEls = flattenAccessibility(f.snap.roots, display);
  const fused = fuseElements(axEls, deskd[i].lines);
  const axOnly = fuseElements(axEls, []);
  const cov = coverage(f.truth, fused, maxArea);
  const covAx = coverage(f.truth, axOnly, maxArea);
  const naiveFused = fuseElements(axEls, naiveLines(naive[i].words));
  const covNaive = coverage(f.truth, naiveFused, maxArea);
  return {
    page: f.name,
    scale: f.dsf,
    truthWords: f.truth.length,
    partialWords: f.partial.length,
    canvasWords: f.truth.filter((w) => w.source === 'canvas').length,
    naive: { recall: round3(n.recall), precision: round3(n.precision), ms: Math.round(naive[i].ms), fusedCoverage: round3(covNaive.covered / f.truth.length) },
    deskd: { recall: round3(d.recall), precision: round3(d.precision), ms: Math.round(deskd[i].ms), fusedCoverage: round3(cov.covered / f.truth.length) },
    accessibilityOnlyCoverage: round3(covAx.covered / f.truth.length),
    accessibilityMs: Math.round(f.axMs),
    elements: fused.length,
    missedByFusion: cov.missed.slice(0, 20),
    missedByOcr: missedWords(f, deskd[i].words).slice(0, 20),
    // OCR words matching no truth word (what lowers precision), with their confidence.
    extraByOcr: d.unmatched.slice(0, 20).map((w) => `${w.text}(${w.confidence})`),
    junkDropped: deskd[i].junk ?? {},
    largeGlyphs: deskd[i].largeGlyphs ?? null,
  };
});

/** Lines for the naive baseline's fusion: consecutive words on one tesseract row, as the engine would give them. */
function naiveLines(words) {
  return words.map((w) => ({ text: w.text, bounds: w.bounds, words: [w] }));
}

function missedWords(f, words) {
  const out = [];
  for (const g of f.truth) {
    const { matchedTruth } = matchWords([g], words.filter((w) => inside(f.viewport, centre(w.bounds))));
    if (matchedTruth === 0) out.push(g.text);
  }
  return out;
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
console.log('');
console.log(`${pad('page', 14)}${lpad('words', 6)} | ${pad('recall naive→deskd', 20)}| ${pad('precision naive→deskd', 23)}| ${pad('fused cov naive→deskd (AX only)', 33)}| ocr ms naive→deskd`);
for (const r of rows) {
  console.log(
    `${pad(`${r.page}@${r.scale}x`, 14)}${lpad(r.truthWords, 6)} | ${pad(`${r.naive.recall.toFixed(3)} → ${r.deskd.recall.toFixed(3)}`, 20)}| ${pad(`${r.naive.precision.toFixed(3)} → ${r.deskd.precision.toFixed(3)}`, 23)}| ${pad(`${r.naive.fusedCoverage.toFixed(3)} → ${r.deskd.fusedCoverage.toFixed(3)} (${r.accessibilityOnlyCoverage.toFixed(3)})`, 33)}| ${r.naive.ms} → ${r.deskd.ms}`,
  );
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const summary = {
  naive: { minRecall: Math.min(...rows.map((r) => r.naive.recall)), minPrecision: Math.min(...rows.map((r) => r.naive.precision)), meanMs: Math.round(mean(rows.map((r) => r.naive.ms))) },
  deskd: { minRecall: Math.min(...rows.map((r) => r.deskd.recall)), minPrecision: Math.min(...rows.map((r) => r.deskd.precision)), minFusedCoverage: Math.min(...rows.map((r) => r.deskd.fusedCoverage)), meanMs: Math.round(mean(rows.map((r) => r.deskd.ms))) },
};
console.log(`\nmin recall ${summary.naive.minRecall} → ${summary.deskd.minRecall}; min precision ${summary.naive.minPrecision} → ${summary.deskd.minPrecision}; min fused coverage ${summary.deskd.minFusedCoverage}; mean OCR ms ${summary.naive.meanMs} → ${summary.deskd.meanMs}`);
for (const r of rows) {
  if (r.missedByOcr.length || r.missedByFusion.length) console.log(`  ${r.page}@${r.scale}x missed by OCR: ${r.missedByOcr.join(' ')} | by fusion: ${r.missedByFusion.join(' ')}`);
  if (r.extraByOcr.length) console.log(`  ${r.page}@${r.scale}x read by OCR, not on the page: ${r.extraByOcr.join(' ')}`);
}

// ---------------------------------------------------------------- variant comparison (--compare)
let comparison;
if (flag('compare')) {
  const variants = [
    { name: 'deskd default', options: {} },
    { name: 'psm 11 (sparse text)', options: { psm: '11' } },
    { name: 'psm 6 (one block)', options: { psm: '6' } },
    { name: 'traineddata 4.0.0', options: { variant: '4.0.0' } },
    ...(process.env.BENCH_EXTRA_VARIANTS ? JSON.parse(process.env.BENCH_EXTRA_VARIANTS) : []),
  ];
  comparison = [];
  console.log('\nvariant comparison (same frames): min/mean recall, min/mean precision, mean ms');
  for (const v of variants) {
    const res = v.name === 'deskd default' ? deskd : await runEngine(v.options, v.recognize ?? {});
    const s = frames.map((f, i) => score(f.truth, res[i].words, f.viewport, f.partial));
    const entry = {
      name: v.name,
      options: v.options,
      minRecall: round3(Math.min(...s.map((x) => x.recall))),
      meanRecall: round3(mean(s.map((x) => x.recall))),
      minPrecision: round3(Math.min(...s.map((x) => x.precision))),
      meanPrecision: round3(mean(s.map((x) => x.precision))),
      meanMs: Math.round(mean(res.map((r) => r.ms))),
      perPage: frames.map((f, i) => ({ page: `${f.name}@${f.dsf}x`, recall: round3(s[i].recall), precision: round3(s[i].precision), ms: Math.round(res[i].ms) })),
    };
    comparison.push(entry);
    console.log(`${pad(v.name, 34)} recall ${entry.minRecall}/${entry.meanRecall}  precision ${entry.minPrecision}/${entry.meanPrecision}  ${entry.meanMs} ms`);
  }
}

const results = {
  generatedAt: new Date().toISOString(),
  machine: { cpus: (await import('node:os')).availableParallelism(), node: process.version },
  screen: SCREEN,
  notes: 'naive = tesseract.js createWorker("eng") + recognize(PNG of the full frame), default settings, one worker; deskd = OcrEngine defaults. ms = wall time of one frame (naive includes PNG encoding). Fused coverage = share of visible words inside a fused element (area ≤ 1/4 screen) whose name/value holds the word.',
  captureSeconds: Math.round(captureSeconds),
  totalSeconds: Math.round((performance.now() - t0) / 1000),
  summary,
  rows,
  ...(comparison ? { comparison } : {}),
};
writeFileSync(join(here, 'results.json'), JSON.stringify(results, null, 2) + '\n');
console.log(`\nwrote bench/perception/results.json (${results.totalSeconds} s)`);
