#!/usr/bin/env node
/**
 * Cold OCR benchmark (issue 15 item 4), on frames captured once (bench/ocr-cold/capture.mjs): deskd's
 * `OcrEngine.recognize` of a whole 1920x1080 frame (what a cold observe of a full-screen window reads, less the
 * capture) beside naive full-frame tesseract.js (PNG encode + `recognize` with default settings, model
 * '4.0.0', one worker: bench/incremental/naive.mjs less the capture), sample by sample in turn so all see
 * the same load; word recall of each against the page's DOM words (bench/incremental/run.mjs `recall`).
 * Several builds can be compared in one run (e.g. a worktree of the commit before a change): each gets its
 * own engine (two workers, the default), created before the first sample and warmed on one frame.
 *
 * Usage:
 *   node bench/ocr-cold/run.mjs [--frames DIR] [--engines name=DIST,name=DIST] [--samples N] [--pages a,b]
 *     DIST: a directory holding the compiled `src/` (default: `current=$BENCH_DIST or dist`).
 *   node bench/ocr-cold/run.mjs --ablate [--frames DIR] [--engines name=DIST]
 *     per page, the first engine with each extra pass turned off in turn (per-call options): time, recall
 *     and the profile (`OcrResult.profile`) of each, to see what each pass costs and buys.
 * Wall-clock ratios are what the targets name; CPU ratios (process CPU time of the call: main thread,
 * tesseract worker threads and libvips, against naive's) are printed beside them because on a loaded shared
 * machine the wall clock of two worker threads depends on how much of the two cores the run gets.
 * `median` is the lower median (a sample count of 3 gives the middle one).
 * Prints a table; with --json FILE writes the figures there.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const argOf = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const framesDir = argOf('frames') ?? join(tmpdir(), 'deskd-ocr-cold-frames');
const pages = argOf('pages')?.split(',') ?? ['dashboard', 'ci', 'board', 'metrics', 'settings', 'terminal'];
const samples = Number(argOf('samples') ?? 3);
const engineSpecs = (argOf('engines') ?? `current=${process.env.BENCH_DIST ?? join(root, 'dist')}`).split(',').map((s) => {
  const [name, dir] = s.split('=');
  return { name, dir };
});

const norm = (s) => s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
/** Word recall as bench/incremental/run.mjs counts it: each truth word matched by at most one read word. */
function recall(truth, words) {
  const have = new Map();
  for (const w of words) {
    const k = norm(w);
    if (k) have.set(k, (have.get(k) ?? 0) + 1);
  }
  let hit = 0, total = 0;
  for (const t of truth) {
    const k = norm(t);
    if (!k) continue;
    total++;
    const c = have.get(k) ?? 0;
    if (c > 0) {
      hit++;
      have.set(k, c - 1);
    }
  }
  return total ? hit / total : NaN;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const r1 = (v) => Math.round(v * 10) / 10;
const r3 = (v) => Math.round(v * 1000) / 1000;

const frames = pages.map((name) => {
  const meta = JSON.parse(readFileSync(join(framesDir, `${name}.json`), 'utf8'));
  return { name, truth: meta.truth, img: { data: readFileSync(join(framesDir, `${name}.raw`)), width: meta.width, height: meta.height, channels: meta.channels, scale: meta.scale, origin: meta.origin } };
});

const { default: Tesseract } = await import('tesseract.js');
const { default: sharp } = await import('sharp');
const engines = [];
for (const spec of engineSpecs) {
  const mod = await import(pathToFileURL(join(spec.dir, 'src/perception/ocr/index.js')).href);
  engines.push({ ...spec, mod, engine: await mod.OcrEngine.create({ jobTimeoutMs: 600_000 }) });
}
const naiveWorker = await Tesseract.createWorker('eng', Tesseract.OEM.LSTM_ONLY, { ...engines[0].mod.tesseractWorkerOptions('4.0.0'), errorHandler: () => {} });
await naiveWorker.setParameters({ debug_file: '/dev/null' });

/** CPU time of the whole process (main thread, tesseract worker threads, libvips) since `c0`, ms. */
const cpuSince = (c0) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
};
async function naive(img) {
  const c0 = process.cpuUsage();
  const t = performance.now();
  const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } }).png().toBuffer();
  const data = (await naiveWorker.recognize(png, {}, { blocks: true, text: false })).data;
  const words = (data.blocks ?? []).flatMap((b) => b.paragraphs.flatMap((p) => p.lines.flatMap((l) => l.words.map((w) => w.text))));
  return { ms: performance.now() - t, cpuMs: cpuSince(c0), words };
}
async function deskd(e, img, opts = {}) {
  const c0 = process.cpuUsage();
  const t = performance.now();
  const r = await e.engine.recognize(img, opts);
  return { ms: performance.now() - t, cpuMs: cpuSince(c0), words: r.words.map((w) => w.text), result: r };
}
const profileRow = (p) => ({
  grayMs: r1(p.grayMs),
  findMs: r1(p.findMs),
  postMs: r1(p.postMs),
  passes: Object.fromEntries(Object.entries(p.passes).map(([k, v]) => [k, { jobs: v.jobs, tesseractMs: r1(v.tesseractMs), megapixels: r3(v.megapixels), prepMs: r1(v.prepMs) }])),
});

// Warm every worker on one frame (a worker's first full frame is slower).
await naive(frames[0].img);
for (const e of engines) await deskd(e, frames[0].img);
const load = [loadavg()[0]];
const out = { startedAt: new Date().toISOString(), samples, engines: engineSpecs, pages: {} };

if (args.includes('--ablate')) {
  const e = engines[0];
  const variants = [
    ['full', {}],
    ['no lightText', { lightTextRegions: false }],
    ['no monospace', { readMonospaceBlocks: false }],
    ['no missed', { repairMissedText: false }],
    ['no vertical', { repairVerticalText: false }],
    ['no largeGlyph', { readLargeGlyphs: false }],
    ['no truncated', { repairTruncated: false }],
    ['no extras', { lightTextRegions: false, readMonospaceBlocks: false, repairMissedText: false, repairVerticalText: false, readLargeGlyphs: false, repairTruncated: false }],
    ['x1 no extras', { upscale: 1, lightTextRegions: false, readMonospaceBlocks: false, repairMissedText: false, repairVerticalText: false, readLargeGlyphs: false, repairTruncated: false }],
    ['x1', { upscale: 1 }],
  ];
  for (const f of frames) {
    const n = await naive(f.img);
    const rows = {};
    console.log(`\n${f.name}: naive ${r1(n.ms)} ms recall ${r3(recall(f.truth, n.words))}`);
    for (const [label, opts] of variants) {
      const r = await deskd(e, f.img, opts);
      rows[label] = { ms: r1(r.ms), recall: r3(recall(f.truth, r.words)), profile: profileRow(r.result.profile), upscale: r.result.upscale };
      const pp = Object.entries(rows[label].profile.passes).map(([k, v]) => `${k} ${v.jobs}j ${v.tesseractMs}ms ${v.megapixels}MP prep ${v.prepMs}`).join('; ');
      console.log(`  ${label.padEnd(14)} ${String(r1(r.ms)).padStart(7)} ms  ${(r.ms / n.ms).toFixed(2)}x  recall ${r3(recall(f.truth, r.words))}  gray ${rows[label].profile.grayMs} find ${rows[label].profile.findMs} post ${rows[label].profile.postMs} | ${pp}`);
    }
    out.pages[f.name] = { naive: { ms: r1(n.ms), recall: r3(recall(f.truth, n.words)) }, variants: rows };
    load.push(loadavg()[0]);
  }
} else {
  for (const f of frames) {
    const ms = { naive: [] };
    const cpu = { naive: [] };
    const rec = {};
    const prof = {};
    for (const e of engines) (ms[e.name] = []), (cpu[e.name] = []);
    for (let i = 0; i < samples; i++) {
      // Rotate the order so no engine always runs right after another's garbage.
      const order = [{ name: 'naive' }, ...engines];
      for (let k = 0; k < (i % order.length); k++) order.push(order.shift());
      for (const e of order) {
        const r = e.name === 'naive' ? await naive(f.img) : await deskd(e, f.img);
        ms[e.name].push(r.ms);
        cpu[e.name].push(r.cpuMs);
        rec[e.name] = recall(f.truth, r.words);
        if (r.result) prof[e.name] = profileRow(r.result.profile);
      }
      load.push(loadavg()[0]);
    }
    const row = { naive: { p50: r1(median(ms.naive)), samples: ms.naive.map(r1), cpuP50: r1(median(cpu.naive)), recall: r3(rec.naive) } };
    for (const e of engines) {
      row[e.name] = {
        p50: r1(median(ms[e.name])),
        samples: ms[e.name].map(r1),
        ratio: Math.round((median(ms[e.name]) / median(ms.naive)) * 100) / 100,
        cpuP50: r1(median(cpu[e.name])),
        cpuRatio: Math.round((median(cpu[e.name]) / median(cpu.naive)) * 100) / 100,
        recall: r3(rec[e.name]),
        profile: prof[e.name],
      };
    }
    out.pages[f.name] = row;
    console.log(`${f.name}: naive ${row.naive.p50} ms (recall ${row.naive.recall}); ` + engines.map((e) => `${e.name} ${row[e.name].ratio}x (${row[e.name].p50} ms, CPU ${row[e.name].cpuRatio}x, recall ${row[e.name].recall})`).join('; '));
  }
  const summary = {};
  for (const e of engines) {
    const ratios = frames.map((f) => out.pages[f.name][e.name].ratio);
    const cpuRatios = frames.map((f) => out.pages[f.name][e.name].cpuRatio);
    summary[e.name] = { median: median(ratios), max: Math.max(...ratios), cpuMedian: median(cpuRatios), cpuMax: Math.max(...cpuRatios), recallOk: frames.every((f) => out.pages[f.name][e.name].recall >= out.pages[f.name].naive.recall) };
    console.log(`${e.name}: median ${summary[e.name].median}x, max ${summary[e.name].max}x (CPU median ${summary[e.name].cpuMedian}x, max ${summary[e.name].cpuMax}x), recall ≥ naive on every page: ${summary[e.name].recallOk}`);
  }
  out.summary = summary;
}
out.loadAverage = { min: r1(Math.min(...load)), max: r1(Math.max(...load)) };
console.log(`load average (1 min) ${out.loadAverage.min}–${out.loadAverage.max}`);
if (argOf('json')) writeFileSync(argOf('json'), JSON.stringify(out, null, 1));
await naiveWorker.terminate();
for (const e of engines) await e.engine.close();
