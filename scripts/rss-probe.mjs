#!/usr/bin/env node
/**
 * Where the daemon's memory goes (issue 15: RSS after 200 observes with accessibility ≤ 250 MB).
 *
 * Starts a private 1920x1080 Xvfb desktop with Chromium on bench/accessibility/dashboard.html (as
 * `npm run bench:accessibility` does), then, for each build given, one after the other on the same desktop:
 * the daemon started as `npm start` starts it (MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=131072,
 * --max-semi-space-size=2, unless the environment sets them), plus a small preload (`--import`) that answers
 * SIGUSR2 by writing `process.memoryUsage()`, V8's heap spaces and sharp's cache figures to a file. It reads
 * the daemon's RSS and a split of its mappings (/proc/PID/smaps: V8/malloc anonymous memory, wasm memories,
 * the node binary, shared libraries, thread stacks) at start and after N observes over HTTP with
 * accessibility on (OCR on unless --no-ocr), a dashboard cell changing before every fifth observe.
 *
 * Usage: node scripts/rss-probe.mjs [--observes N] [--no-ocr] [--sharp] [--trim] [--rounds R] [--out FILE] [--dump-every K]
 *          [--smaps-dir DIR] [--env KEY=VALUE ...] [--node-options "..."] DIST [DIST ...]
 *   DIST  a directory holding a built deskd (`<DIST>/src/cli.js`, i.e. tsc's outDir), e.g. /work/main/dist.
 *   --rounds R  run the builds in turn R times (A B A B …), for figures measured side by side.
 *   --sharp  also report sharp's cache and concurrency (loads sharp's CommonJS build beside the daemon's: a little more memory).
 *   --env KEY=VALUE  extra environment for the daemons (repeatable), e.g. DESKD_OCR_WORKERS=1.
 *   --trim  at each report, print glibc's malloc_stats (daemon's stderr) and run malloc_trim(0): what it gives back.
 *   --smaps-dir DIR  write each daemon's full /proc/PID/smaps after the observes to DIR.
 * Reports include the daemon's malloc trimmer counters (src/service/mallocTrim.ts) when it runs one.
 * Run it with Node 26 (PATH=node_modules/.bin:$PATH): the daemon runs on the node that runs the probe.
 * Prints one line per daemon and writes the full figures as JSON to --out (default /tmp/rss-probe.json).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = { observes: 200, ocr: true, rounds: 1, out: '/tmp/rss-probe.json', dumpEvery: 0, env: {}, nodeOptions: null, dists: [] };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--observes') opt.observes = Number(argv[++i]);
  else if (a === '--no-ocr') opt.ocr = false;
  else if (a === '--sharp') opt.env.DESKD_RSS_PROBE_SHARP = '1';
  else if (a === '--trim') opt.env.DESKD_RSS_PROBE_TRIM = '1';
  else if (a === '--smaps-dir') opt.smapsDir = argv[++i];
  else if (a === '--rounds') opt.rounds = Number(argv[++i]);
  else if (a === '--out') opt.out = argv[++i];
  else if (a === '--dump-every') opt.dumpEvery = Number(argv[++i]);
  else if (a === '--node-options') opt.nodeOptions = argv[++i];
  else if (a === '--env') {
    const [k, ...v] = argv[++i].split('=');
    opt.env[k] = v.join('=');
  } else {
    // DIST, or DIST@@NODE_OPTIONS, or DIST@@NODE_OPTIONS@@K=V,K=V: the same build under other flags or environment.
    const [dist, nodeOptions, env] = a.split('@@');
    opt.dists.push({ dist: resolve(dist), nodeOptions: nodeOptions || null, env: Object.fromEntries((env ? env.split(',') : []).map((kv) => [kv.split('=')[0], kv.split('=').slice(1).join('=')])) });
  }
}
if (!opt.dists.length) throw new Error('usage: node scripts/rss-probe.mjs [options] DIST [DIST ...]');
for (const { dist: d } of opt.dists) if (!existsSync(join(d, 'src', 'cli.js'))) throw new Error(`${d}/src/cli.js is missing (build it first)`);

const first = opt.dists[0].dist;
const { startVirtualDesktop, applyDesktopEnv } = await import(pathToFileURL(join(first, 'src/platform/linux/virtualDisplay.js')).href);
const { chromium } = await import('playwright-core');

// The preload: SIGUSR2 → a JSON report in $DESKD_RSS_PROBE_REPORT. Uses only what the daemon loads anyway
// (sharp's figures only when sharp is loaded already).
const preloadDir = mkdtempSync(join(tmpdir(), 'deskd-rss-probe-'));
const preload = join(preloadDir, 'preload.mjs');
writeFileSync(preload, `
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import { Session } from 'node:inspector/promises';
const require = createRequire(import.meta.url);
// DESKD_RSS_PROBE_ALLOC=FILE: a sampling heap profile of everything allocated (garbage included) until the
// second report, written to FILE.
let session = null, reports = 0;
// DESKD_RSS_PROBE_V8FLAGS="--a --b": V8 flags set at run time (v8.setFlagsFromString), as a daemon could set them itself.
for (const f of (process.env.DESKD_RSS_PROBE_V8FLAGS ?? '').split(' ').filter(Boolean)) v8.setFlagsFromString(f);
if (process.env.DESKD_RSS_PROBE_ALLOC) {
  session = new Session();
  session.connect();
}
process.on('SIGUSR2', async () => {
  reports++;
  if (session && reports === 1) await session.post('HeapProfiler.startSampling', { samplingInterval: 65536, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  if (session && reports === 2) writeFileSync(process.env.DESKD_RSS_PROBE_ALLOC, JSON.stringify((await session.post('HeapProfiler.stopSampling')).profile));
  const mu = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_used_size / 1048576 * 10) / 10]));
  const heap = v8.getHeapStatistics();
  let sharp = null;
  if (process.env.DESKD_RSS_PROBE_SHARP) try { const s = createRequire(process.argv[1])('sharp'); sharp = { cache: s.cache(), concurrency: s.concurrency(), counters: s.counters() }; } catch { /* not installed */ }
  const mods = Object.keys(require.cache).length;
  // DESKD_RSS_PROBE_TRIM=1: print glibc's per-arena figures (malloc_stats, to the daemon's stderr), then
  // malloc_trim(0) and report what it gave back (node:ffi, Node >= 26.1): how much of the RSS is freed malloc memory.
  let trim = null;
  if (process.env.DESKD_RSS_PROBE_TRIM) {
    const { dlopen } = await import('node:ffi');
    const { functions: f } = dlopen(null, { malloc_trim: { arguments: ['uint64'], return: 'int32' }, malloc_stats: { arguments: [], return: 'void' } });
    f.malloc_stats();
    const before = process.memoryUsage.rss();
    const t = performance.now();
    f.malloc_trim(0);
    trim = { ms: Math.round((performance.now() - t) * 10) / 10, rssBeforeMB: Math.round(before / 1048576), rssAfterMB: Math.round(process.memoryUsage.rss() / 1048576) };
  }
  // DESKD_RSS_PROBE_HEAPSNAP=PREFIX: a heap snapshot of the daemon's main isolate at each report (PREFIX-N.heapsnapshot).
  if (process.env.DESKD_RSS_PROBE_HEAPSNAP) v8.writeHeapSnapshot(\`\${process.env.DESKD_RSS_PROBE_HEAPSNAP}-\${reports}.heapsnapshot\`);
  const t = globalThis[Symbol.for('deskd.mallocTrimmer')];
  const trimmer = t ? { trims: t.trims, releasedMB: Math.round(t.releasedBytes / 1048576), trimMs: Math.round(t.trimMs * 10) / 10, trimCpuMs: Math.round(t.trimCpuMs * 10) / 10 } : null;
  writeFileSync(process.env.DESKD_RSS_PROBE_REPORT, JSON.stringify({ memoryUsage: mu, trimmer, spacesUsedMB: spaces, mallocedMB: heap.malloced_memory / 1048576, externalMB: mu.external / 1048576, sharp, cjsModules: mods, nativeContexts: heap.number_of_native_contexts, trim }));
});
`);

const mb = (kb) => Math.round(kb / 1024);
/** RSS of a process, MB. */
const rssMB = (pid) => mb(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN));
/** Threads of a process. */
const threads = (pid) => Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
/**
 * RSS split by mapping (MB), from /proc/PID/smaps (layout of Node 26 / V8 on x86-64 Linux, glibc):
 *   nodeBinary    file mappings of the node executable (text, rodata, ICU data; its remapped text too)
 *   libvips, otherLibs  shared libraries
 *   v8Pages       anonymous 256 KiB mappings: V8 heap pages of every isolate (the daemon's and each worker's)
 *   wasmMemories  the readable part of a wasm memory: an anonymous rw mapping followed by its ≥ 1 GiB
 *                 PROT_NONE guard reservation (one per tesseract worker; wasmCount counts them)
 *   mallocMain    glibc's main arena ([heap]); mallocArenas  its other arenas (64 MiB-aligned heaps)
 *   jitCode       anonymous executable mappings (V8 code spaces, wasm code)
 *   anonLarge     other anonymous mappings ≥ 1 MiB (malloc's mmapped chunks: frame buffers, external memory)
 *   anonOther     the rest (thread stacks, small mappings); files  other files
 */
function smapsSplit(pid) {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const out = { nodeBinary: 0, libvips: 0, otherLibs: 0, v8Pages: 0, wasmMemories: 0, wasmCount: 0, mallocMain: 0, mallocArenas: 0, jitCode: 0, anonLarge: 0, anonOther: 0, files: 0 };
  const all = [];
  let cur = null;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perm: head[3], path: head[4].trim(), rss: 0 };
      cur.size = Number(cur.end - cur.start) / 1024;
      all.push(cur);
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m && cur) cur.rss = Number(m[1]);
  }
  const ARENA = 64n * 1024n * 1024n;
  for (const [i, x] of all.entries()) {
    const next = all[i + 1];
    const anon = !x.path;
    if (/\/node$|\/bin\/node/.test(x.path) || (anon && x.perm === 'r-xp' && x.size === 2048 && x.start > 0x7f0000000000n)) out.nodeBinary += x.rss;
    else if (/libvips|sharp/.test(x.path)) out.libvips += x.rss;
    else if (/\.so(\.|$)/.test(x.path)) out.otherLibs += x.rss;
    else if (x.path === '[heap]') out.mallocMain += x.rss;
    else if (x.path && !x.path.startsWith('[')) out.files += x.rss;
    else if (!anon) out.anonOther += x.rss;
    else if (x.perm.includes('x')) out.jitCode += x.rss;
    else if (x.size === 256) out.v8Pages += x.rss;
    else if (x.perm.startsWith('rw') && next && next.start === x.end && next.perm.startsWith('---') && next.size >= 1024 * 1024) {
      out.wasmMemories += x.rss;
      out.wasmCount++;
    } else if (x.perm.startsWith('rw') && x.start % ARENA === 0n && x.size <= 65536 && x.start > 0x7f0000000000n) out.mallocArenas += x.rss;
    else if (x.size >= 1024) out.anonLarge += x.rss;
    else out.anonOther += x.rss;
  }
  const top = [...all].sort((a, b) => b.rss - a.rss).slice(0, 10).map((m) => `${mb(m.rss)}/${mb(m.size)}${m.path ? ` ${m.path.split('/').pop()}` : ''}`);
  return { ...Object.fromEntries(Object.entries(out).map(([k, v]) => [k, k === 'wasmCount' ? v : mb(v)])), top };
}
/** CPU time (user + system) a process has used, ms (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};

const SCREEN = { width: 1920, height: 1080 };
const desktop = await startVirtualDesktop({ width: SCREEN.width, height: SCREEN.height });
applyDesktopEnv(desktop);
const profileDir = mkdtempSync(join(tmpdir(), 'deskd-rss-probe-chromium-'));
const url = pathToFileURL(join(root, 'bench/accessibility/dashboard.html')).href;
const results = { startedAt: new Date().toISOString(), observes: opt.observes, ocr: opt.ocr, env: opt.env, runs: [] };
let ctx;
try {
  ctx = await chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: false,
    viewport: null,
    env: { ...process.env, ACCESSIBILITY_ENABLED: '1' },
    args: ['--force-renderer-accessibility', '--no-sandbox', '--test-type', '--disable-gpu', `--app=${url}`, '--window-position=0,0', `--window-size=${SCREEN.width},${SCREEN.height}`],
  });
  let page = ctx.pages().find((p) => p.url() === url);
  for (let i = 0; !page && i < 50; i++) {
    await sleep(100);
    page = ctx.pages().find((p) => p.url() === url);
  }
  if (!page) throw new Error(`no page for ${url}`);
  await page.waitForLoadState('load');
  await sleep(1500);

  for (let round = 0; round < opt.rounds; round++) {
    for (const variant of opt.dists) {
      const { dist } = variant;
      const cfg = mkdtempSync(join(tmpdir(), 'deskd-rss-probe-cfg-'));
      const report = join(cfg, 'report.json');
      const token = `probe-${Math.random().toString(36).slice(2)}-token`;
      const port = 40000 + Math.floor(Math.random() * 20000);
      const nodeOptions = `${variant.nodeOptions ?? opt.nodeOptions ?? process.env.NODE_OPTIONS ?? '--max-semi-space-size=2'} --import=${preload}`;
      const daemon = spawn(process.execPath, [join(dist, 'src/cli.js'), 'start', '--port', String(port), '--no-virtual-display', '--log-level', 'warn'], {
        env: { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2', MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072', NODE_OPTIONS: nodeOptions, DESKD_TOKEN: token, DESKD_CONFIG_DIR: cfg, DESKD_RSS_PROBE_REPORT: report, ...opt.env, ...variant.env },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const exited = new Promise((r) => daemon.once('exit', r));
      const snap = async () => {
        rmSync(report, { force: true });
        process.kill(daemon.pid, 'SIGUSR2');
        for (let i = 0; i < 400 && !existsSync(report); i++) await sleep(50);
        await sleep(50);
        let js = null;
        try {
          js = JSON.parse(readFileSync(report, 'utf8'));
        } catch {
          /* no report */
        }
        return { rssMB: rssMB(daemon.pid), threads: threads(daemon.pid), smaps: smapsSplit(daemon.pid), js };
      };
      const run = { dist, nodeOptions: variant.nodeOptions, env: variant.env, round };
      try {
        const t0 = performance.now();
        for (;;) {
          if (performance.now() - t0 > 180_000) throw new Error('the daemon did not start');
          const ok = await fetch(`http://127.0.0.1:${port}/v1/health`).then((r) => r.ok).catch(() => false);
          if (ok) break;
          await sleep(200);
        }
        run.readyMs = Math.round(performance.now() - t0);
        run.start = await snap();
        run.cpuStartMs = cpuMs(daemon.pid);
        const ms = [];
        run.series = [];
        for (let i = 0; i < opt.observes; i++) {
          if (i % 5 === 0) await page.evaluate((a) => { document.querySelectorAll('#orders tbody tr')[a % 12].children[5].textContent = String(a); }, 500 + i);
          const t = performance.now();
          let r;
          // A loaded machine can make a start-up step time out (the X11 worker's hello): try again, twice.
          for (let attempt = 0; ; attempt++) {
            r = await fetch(`http://127.0.0.1:${port}/v1/observe`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(opt.ocr ? { accessibility: true } : { accessibility: true, ocr: false }) });
            if (r.ok || attempt >= 2) break;
            console.warn(`[probe] observe ${i} failed (${r.status} ${await r.text()}), again`);
          }
          if (!r.ok) throw new Error(`observe ${i} failed: ${r.status} ${await r.text()}`);
          await r.json();
          ms.push(performance.now() - t);
          if (opt.dumpEvery && (i + 1) % opt.dumpEvery === 0) run.series.push({ i: i + 1, ...(await snap()) });
          else if ((i + 1) % 10 === 0) run.series.push({ i: i + 1, rssMB: rssMB(daemon.pid) });
        }
        run.after = await snap();
        if (opt.smapsDir) writeFileSync(join(opt.smapsDir, `smaps-${round}-${opt.dists.indexOf(variant)}.txt`), readFileSync(`/proc/${daemon.pid}/smaps`, 'utf8'));
        run.observeMs = { p50: Math.round(pct(ms, 50) * 10) / 10, p90: Math.round(pct(ms, 90) * 10) / 10, first: Math.round(ms[0]), n: ms.length, samples: ms.map((v) => Math.round(v * 10) / 10) };
        run.cpuMs = cpuMs(daemon.pid);
        console.log(`[probe] ${dist} ${variant.nodeOptions ?? ''} ${JSON.stringify(variant.env)} round ${round}: start ${run.start.rssMB} MB → after ${run.after.rssMB} MB; observe p50 ${run.observeMs.p50} ms (first ${run.observeMs.first}); daemon CPU over the observes ${run.cpuMs - run.cpuStartMs} ms; start ${JSON.stringify(run.start.smaps)}; after ${JSON.stringify(run.after.smaps)}`);
        console.log(`[probe]   js start ${JSON.stringify(run.start.js)}`);
        console.log(`[probe]   js after ${JSON.stringify(run.after.js)}`);
      } finally {
        daemon.kill('SIGTERM');
        await exited;
        rmSync(cfg, { recursive: true, force: true });
      }
      results.runs.push(run);
      writeFileSync(opt.out, JSON.stringify(results, null, 2) + '\n');
    }
  }
} finally {
  await ctx?.close().catch(() => {});
  rmSync(profileDir, { recursive: true, force: true });
  rmSync(preloadDir, { recursive: true, force: true });
  await desktop.stop();
}
results.loadavg = readFileSync('/proc/loadavg', 'utf8').trim();
writeFileSync(opt.out, JSON.stringify(results, null, 2) + '\n');
console.log(`[probe] load average ${results.loadavg}; wrote ${opt.out}`);
process.exit(0);
