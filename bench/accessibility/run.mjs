#!/usr/bin/env node
/**
 * Accessibility benchmark (issue 15): deskd's fresh AT-SPI snapshot beside pyatspi's walk of the same
 * application, measured sample by sample in turn in one run, idle and with the other core busy.
 *
 * Apps, one at a time on a private 1920x1080 Xvfb desktop with its own session and accessibility bus:
 *   calculator  gnome-calculator (GTK 4)
 *   dashboard   Chromium (ACCESSIBILITY_ENABLED=1, --force-renderer-accessibility) showing
 *               bench/accessibility/dashboard.html (toolbar, KPI cards, an 80-row table; ≥ 300 objects on screen)
 * Per app and condition (idle; busy = a child process spinning on one core):
 *   deskd       AtspiAccessibility.snapshot({scope: 'all'}) with no cache (a backend without event listeners)
 *   pyatspi     bench/accessibility/pyatspi_walk.py in a new python3 process (Debian python3-pyatspi), timing
 *               only its walk; it reads what deskd reads (role, name, description, states, children, extents,
 *               action names, text/value) and leaves out what deskd leaves out (not on screen), so both read
 *               the same objects (`nodes` says how many each read)
 * Where the time goes: CPU time (/proc/<pid>/task/<tid>/schedstat) of this process (deskd's JS: dbus-next
 * marshalling and the traversal), the accessibility bus daemon, the registry daemon and the application,
 * during the samples of each side; deskd's D-Bus calls per snapshot; and a CPU profile of deskd's snapshots
 * split into dbus-next, deskd and the rest (node internals: sockets, GC).
 * Incremental tree: with events subscribed, one table cell changed, then a snapshot: how many objects were
 * re-read and how long it took, and whether it equals a fresh read.
 * Memory: the daemon (dist/src/cli.js start, as `npm start` starts it) after 200 observes over HTTP with
 * accessibility on (OCR too, the default observe), the dashboard's cell changing every fifth.
 *
 * Baseline (--baseline <dist dir>): the same backend built from other code (e.g. a `git worktree` of the commit
 * before a change, compiled with `tsc --outDir <dir>`, its node_modules symlinked) takes a snapshot in every round
 * too, just before deskd's in even rounds and just after in odd ones: its p50 and ratio to pyatspi are reported beside deskd's, and whether the two
 * snapshots were equal (JSON) in every round.
 *
 * Usage: npm run bench:accessibility [-- --skip-build] [--quick] [--no-rss] [--rss-only] [--rss-no-ocr] [--baseline <dir>]
 * Prints tables; writes bench/accessibility/results.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Session } from 'node:inspector/promises';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const rssOnly = args.includes('--rss-only');
// --rss-no-ocr: the RSS observes read accessibility only (what the tree itself costs, without the OCR workers).
const rssNoOcr = args.includes('--rss-no-ocr');
// A private build: several people edit and build the same tree.
process.env.BENCH_DIST ??= join(tmpdir(), 'deskd-bench-accessibility-dist');
const { buildDist, distModules, distDir } = await import('../common.mjs');
buildDist(root, 'platform/linux/atspi.js', args.includes('--skip-build'));
const dist = distModules(root);
const { startVirtualDesktop, applyDesktopEnv, killProcessGroup } = await import(dist('platform/linux/virtualDisplay.js'));
const { AtspiAccessibility: AtspiBackend } = await import(dist('platform/linux/atspi.js'));
const { X11Windows } = await import(dist('platform/linux/x11Windows.js'));
/**
 * deskd's backend as the daemon builds it: with the X11 window list that places windows whose toolkit
 * answers window-relative extents (GTK 4; one GetExtents(window) per top-level window per snapshot).
 */
class AtspiAccessibility extends AtspiBackend {
  constructor(opts = {}) {
    const windows = new X11Windows();
    super({ ...opts, windows: () => windows.list() });
    this.x11 = windows;
  }
  async close() {
    this.x11.close();
    return super.close();
  }
}
const { chromium } = await import('playwright-core');
const baselineAt = args.indexOf('--baseline');
const baselineDist = baselineAt >= 0 ? args[baselineAt + 1] : null;
/** The baseline's backend class (same wiring as {@link AtspiAccessibility}), or null. */
const BaselineAccessibility = baselineDist
  ? await (async () => {
      const load = (p) => import(pathToFileURL(join(baselineDist, 'src', p)).href);
      const { AtspiAccessibility: Base } = await load('platform/linux/atspi.js');
      const { X11Windows: BaseWindows } = await load('platform/linux/x11Windows.js');
      return class extends Base {
        constructor(opts = {}) {
          const windows = new BaseWindows();
          super({ ...opts, windows: () => windows.list() });
          this.x11 = windows;
        }
        async close() {
          this.x11.close();
          return super.close();
        }
      };
    })()
  : null;

const N = quick ? { samples: 3, rss: 60, changes: 3 } : { samples: 7, rss: 200, changes: 8 };
const SCREEN = { width: 1920, height: 1080 };
const BUDGET = { maxDepth: 40, maxNodes: 5000, timeMs: 60_000 };
const PYTHON = '/usr/bin/python3';

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};
const round = (v) => Math.round(v * 10) / 10;
const stats = (xs) => ({ n: xs.length, p50: round(pct(xs, 50)), min: round(Math.min(...xs)), max: round(Math.max(...xs)), samples: xs.map(round) });

// ---------------------------------------------------------------- processes and CPU time

/** Command line of a process ('' when gone). */
function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}
/** [ppid, pgid] of a process, or null. */
function parents(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(f[1]), Number(f[2])];
  } catch {
    return null;
  }
}
const allPids = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
/** CPU time a process has used, ms: the sum of its threads' run time (/proc/<pid>/task/<tid>/schedstat, ns). */
function cpuMs(pid) {
  let ns = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* thread ended */
      }
    }
  } catch {
    /* process ended */
  }
  return ns / 1e6;
}
const sumCpu = (pids) => pids.reduce((a, p) => a + cpuMs(p), 0);

/** The desktop's accessibility bus daemon and the registry daemon it started. */
function busProcesses(desktop) {
  const bus = allPids().filter((p) => cmdline(p).includes('accessibility.conf') && cmdline(p).includes(desktop.a11yRuntimeDir));
  const registry = allPids().filter((p) => cmdline(p).includes('at-spi2-registryd') && bus.includes(parents(p)?.[0]));
  return { bus, registry };
}
/** Every process of a process group (an app launched detached, with its helpers and renderers). */
const groupPids = (pgid) => allPids().filter((p) => parents(p)?.[1] === pgid);

// ---------------------------------------------------------------- the two clients

function pyatspiWalk(extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [join(here, 'pyatspi_walk.py'), ...extra], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop();
      if (code !== 0 || !line) reject(new Error(`pyatspi walk failed (${code}): ${err.slice(-800)}`));
      else resolve({ ...JSON.parse(line), pid: child.pid });
    });
  });
}

function* walk(nodes) {
  for (const n of nodes) {
    yield n;
    yield* walk(n.children);
  }
}

/** A child process spinning on one core until killed. */
function busyLoop() {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return { stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGKILL'); }) };
}

/**
 * How many items each application's `org.a11y.atspi.Cache.GetItems` answer holds (by application name; -1
 * when it answers none): what a snapshot weighs before asking it (src/platform/linux/atspi/bulkItems.ts).
 */
async function answerSizes(ax) {
  const out = {};
  for (const root of (await ax.snapshot({ scope: 'all', budget: BUDGET })).roots) {
    const busName = root.handle.slice(0, root.handle.indexOf('|'));
    out[root.name] = await ax.bus
      .call([busName, '/org/a11y/atspi/cache'], 'org.a11y.atspi.Cache', 'GetItems')
      .then((r) => (Array.isArray(r[0]) ? r[0].length : -1), () => -1);
  }
  return out;
}

/**
 * `samples` rounds, each a deskd fresh snapshot then a pyatspi walk, with the CPU time of every process
 * involved measured around each side.
 */
async function compare(ax, procs, samples, base = null) {
  const d = { ms: [], nodes: 0, calls: [], cpu: { self: 0, bus: 0, registry: 0, app: 0 } };
  const b = { ms: [], calls: [], cpuSelf: 0, equal: 0 };
  const p = { ms: [], nodes: 0, cpu: { client: 0, bus: 0, registry: 0, app: 0 } };
  for (let i = 0; i < samples; i++) {
    const app = procs.app();
    let baseSnap = null;
    // The baseline goes first in even rounds and right after deskd in odd ones: a snapshot read right after
    // another of the same application is faster (its caches are warm), so neither side always gets that.
    const baseline = async () => {
      const c0 = base.stats?.calls ?? 0, s0 = cpuMs(process.pid), t = performance.now();
      baseSnap = await base.snapshot({ scope: 'all', budget: BUDGET });
      b.ms.push(performance.now() - t);
      b.cpuSelf += cpuMs(process.pid) - s0;
      b.calls.push((base.stats?.calls ?? NaN) - c0);
    };
    if (base && i % 2 === 0) await baseline();
    const before = { self: cpuMs(process.pid), bus: sumCpu(procs.bus), registry: sumCpu(procs.registry), app: sumCpu(app) };
    const calls0 = ax.stats?.calls ?? 0;
    const members0 = { ...(ax.stats?.byMember ?? {}) };
    const t = performance.now();
    const snap = await ax.snapshot({ scope: 'all', budget: BUDGET });
    d.ms.push(performance.now() - t);
    d.calls.push((ax.stats?.calls ?? NaN) - calls0);
    d.nodes = snap.nodeCount;
    d.byMember = Object.fromEntries(Object.entries(ax.stats?.byMember ?? {}).map(([k, v]) => [k, v - (members0[k] ?? 0)]).filter(([, v]) => v > 0));
    if (snap.truncated) throw new Error('the deskd snapshot was truncated');
    d.fastReads = ax.stats?.fastReads;
    d.direct = ax.stats?.direct;
    d.cpu.self += cpuMs(process.pid) - before.self;
    d.cpu.bus += sumCpu(procs.bus) - before.bus;
    d.cpu.registry += sumCpu(procs.registry) - before.registry;
    d.cpu.app += sumCpu(app) - before.app;
    if (base && i % 2 === 1) await baseline();
    if (baseSnap && JSON.stringify(baseSnap) === JSON.stringify(snap)) b.equal++;

    const b2 = { bus: sumCpu(procs.bus), registry: sumCpu(procs.registry), app: sumCpu(app) };
    const r = await pyatspiWalk();
    p.ms.push(r.ms);
    p.nodes = r.nodes;
    p.cpu.client += r.cpuMs;
    p.cpu.bus += sumCpu(procs.bus) - b2.bus;
    p.cpu.registry += sumCpu(procs.registry) - b2.registry;
    p.cpu.app += sumCpu(app) - b2.app;
  }
  const per = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v / samples)]));
  const deskd = { ...stats(d.ms), nodes: d.nodes, callsPerSnapshot: pct(d.calls, 50), cpuMsPerSnapshot: per(d.cpu), callsByMember: d.byMember, fastReadsTotal: d.fastReads, directTotal: d.direct };
  const pyatspi = { ...stats(p.ms), nodes: p.nodes, cpuMsPerWalk: per(p.cpu) };
  const out = { deskd, pyatspi, ratio: Math.round((deskd.p50 / pyatspi.p50) * 100) / 100 };
  if (base) out.baseline = { ...stats(b.ms), callsPerSnapshot: pct(b.calls, 50), selfCpuMsPerSnapshot: round(b.cpuSelf / samples), ratio: Math.round((pct(b.ms, 50) / pyatspi.p50) * 100) / 100, equalSnapshots: `${b.equal}/${samples}` };
  return out;
}

/** A CPU profile of `runs` deskd snapshots: self time split by where the code lives. */
async function profile(ax, runs) {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const t = performance.now();
  for (let i = 0; i < runs; i++) await ax.snapshot({ scope: 'all', budget: BUDGET });
  const wall = performance.now() - t;
  const { profile: prof } = await session.post('Profiler.stop');
  session.disconnect();
  const dt = new Map();
  prof.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const by = { dbusNext: 0, deskd: 0, idle: 0, gc: 0, other: 0 };
  for (const n of prof.nodes) {
    const us = dt.get(n.id) ?? 0;
    const url = n.callFrame.url ?? '';
    const fn = n.callFrame.functionName;
    if (url.includes('dbus-next')) by.dbusNext += us;
    else if (url.includes('/src/')) by.deskd += us;
    else if (fn === '(idle)' || fn === '(program)') by.idle += us;
    else if (fn === '(garbage collector)') by.gc += us;
    else by.other += us;
  }
  return { wallMsPerSnapshot: round(wall / runs), ...Object.fromEntries(Object.entries(by).map(([k, v]) => [`${k}MsPerSnapshot`, round(v / 1000 / runs)])) };
}

// ---------------------------------------------------------------- run

const t0 = performance.now();
const desktop = await startVirtualDesktop({ width: SCREEN.width, height: SCREEN.height });
applyDesktopEnv(desktop);
const results = { startedAt: new Date().toISOString(), quick, samples: N.samples, loadAverageAtStart: (await import('node:os')).loadavg().map((x) => round(x)), baseline: baselineDist, apps: {} };
const bus = busProcesses(desktop);
const cleanup = [];
try {
  const launch = (cmd, argv, env = {}) => {
    const fullEnv = { ...process.env, ...env };
    delete fullEnv.NO_AT_BRIDGE;
    delete fullEnv.GTK_A11Y;
    const child = spawn(cmd, argv, { env: fullEnv, detached: true, stdio: 'ignore' });
    cleanup.push(() => killProcessGroup(child.pid));
    return child;
  };
  const waitFor = async (fn, ms, what) => {
    for (const until = Date.now() + ms; Date.now() < until; await sleep(200)) {
      const v = await fn().catch(() => null);
      if (v) return v;
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  /** Run both conditions for one app. */
  const measure = async (name, procs, ax) => {
    const base = BaselineAccessibility ? new BaselineAccessibility() : null;
    if (base) await base.snapshot({ scope: 'all', budget: BUDGET });
    console.log(`[bench] ${name}: deskd and pyatspi, alternating, idle`);
    const idle = await compare(ax, procs, N.samples, base);
    console.log(`[bench] ${name}: busy`);
    const spin = busyLoop();
    let busy;
    try {
      busy = await compare(ax, procs, N.samples, base);
    } finally {
      await spin.stop();
      await base?.close();
    }
    const prof = await profile(ax, N.samples);
    const cacheItems = await answerSizes(ax);
    console.log(`[bench] ${name}: Cache.GetItems answers (items per application, asked once more after the samples): ${JSON.stringify(cacheItems)}`);
    results.apps[name] = { idle, busy, profile: prof, cacheItems };
  };

  // ---- gnome-calculator
  if (!rssOnly) {
    const calc = launch('gnome-calculator', [], { GSETTINGS_BACKEND: 'memory' });
    const ax = new AtspiAccessibility();
    await waitFor(async () => [...walk((await ax.snapshot({ scope: 'all', budget: BUDGET })).roots)].some((n) => n.role === 'button' && n.name.trim().split(/\s+/)[0] === '='), 100_000, 'the calculator');
    await sleep(500);
    await measure('calculator', { ...bus, app: () => groupPids(calc.pid) }, ax);
    await ax.close();
    await cleanup.pop()();
    await sleep(500);
  }

  // ---- Chromium dashboard
  const profileDir = mkdtempSync(join(tmpdir(), 'deskd-bench-ax-chromium-'));
  cleanup.push(async () => rmSync(profileDir, { recursive: true, force: true }));
  const url = pathToFileURL(join(here, 'dashboard.html')).href;
  const ctx = await chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: false,
    viewport: null,
    env: { ...process.env, ACCESSIBILITY_ENABLED: '1' },
    args: ['--force-renderer-accessibility', '--no-sandbox', '--test-type', '--disable-gpu', `--app=${url}`, '--window-position=0,0', `--window-size=${SCREEN.width},${SCREEN.height}`],
  });
  cleanup.push(() => ctx.close().catch(() => {}));
  let page = ctx.pages().find((p) => p.url() === url);
  for (let i = 0; !page && i < 50; i++) {
    await sleep(100);
    page = ctx.pages().find((p) => p.url() === url);
  }
  if (!page) throw new Error(`no page for ${url}`);
  await page.waitForLoadState('load');
  const browserPid = allPids().find((p) => cmdline(p).includes(profileDir) && !cmdline(p).includes('--type='));
  const chromiumPids = () => allPids().filter((p) => cmdline(p).includes(profileDir) || (browserPid && parents(p)?.[0] === browserPid));
  if (!rssOnly) {
    const ax = new AtspiAccessibility();
    const snap = await waitFor(async () => {
      const s = await ax.snapshot({ scope: 'all', budget: BUDGET });
      return [...walk(s.roots)].some((n) => n.name === 'A-10400') ? s : null;
    }, 90_000, 'the dashboard table on the accessibility bus');
    if (snap.nodeCount < 300) throw new Error(`the dashboard has only ${snap.nodeCount} accessible objects on screen (≥ 300 wanted)`);
    await sleep(500);
    await measure('dashboard', { ...bus, app: chromiumPids }, ax);
    const setCell = (i) => page.evaluate((a) => {
      const td = document.querySelectorAll('#orders tbody tr')[a % 12].children[5];
      td.textContent = (1000 + a * 17.25).toFixed(2);
    }, i);

    // ---- incremental tree: one cell changed
    if (typeof ax.onChange === 'function' && 'incremental' in (ax.stats ?? {})) {
      console.log('[bench] dashboard: one cell changed, incremental tree');
      const off = await ax.onChange(() => {});
      await ax.snapshot({ scope: 'all', budget: BUDGET });
      const inc = { ms: [], reread: [], layout: [], calls: [], equal: 0, samples: N.changes };
      const key = (nodes) => JSON.stringify(nodes);
      for (let i = 0; i < N.changes; i++) {
        await setCell(i);
        await sleep(300); // let Chromium's events arrive (they follow the DOM change by a frame or two)
        // The observer says the screen changed when the frame differs (as it does here): the tree checks layout.
        ax.screenChanged();
        const r0 = ax.stats.reread, l0 = ax.stats.boundsReread, c0 = ax.stats.calls;
        const t = performance.now();
        const s = await ax.snapshot({ scope: 'all', budget: BUDGET });
        inc.ms.push(performance.now() - t);
        inc.reread.push(ax.stats.reread - r0);
        inc.layout.push(ax.stats.boundsReread - l0);
        inc.calls.push(ax.stats.calls - c0);
        const fresh = await new AtspiAccessibility().snapshot({ scope: 'all', budget: BUDGET });
        const want = (1000 + i * 17.25).toFixed(2);
        if ([...walk(s.roots)].some((n) => n.name === want) && key(s.roots) === key(fresh.roots)) inc.equal++;
      }
      off();
      results.apps.dashboard.changedCell = { ...stats(inc.ms), rereadPerChange: stats(inc.reread), layoutCheckedPerChange: stats(inc.layout), callsPerChange: stats(inc.calls), equalToFresh: `${inc.equal}/${N.changes}`, fullReadCalls: results.apps.dashboard.idle.deskd.callsPerSnapshot };
    }
    await ax.close();
  }

  // ---- daemon RSS after N observes with accessibility, the dashboard changing every fifth
  if (!args.includes('--no-rss')) {
    console.log(`[bench] daemon RSS over ${N.rss} observes with accessibility`);
    const cfg = mkdtempSync(join(tmpdir(), 'deskd-bench-ax-daemon-'));
    const token = `bench-${Math.random().toString(36).slice(2)}-token`;
    const port = 40000 + Math.floor(Math.random() * 20000);
    const daemon = spawn(process.execPath, [join(distDir(root), 'src/cli.js'), 'start', '--port', String(port), '--no-virtual-display', '--log-level', 'warn'], {
      env: { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2', MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '--max-semi-space-size=2', DESKD_TOKEN: token, DESKD_CONFIG_DIR: cfg },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise((r) => daemon.once('exit', r));
    const rssMB = (pid) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024);
    try {
      await waitFor(() => fetch(`http://127.0.0.1:${port}/v1/health`).then((r) => r.ok), 120_000, 'the daemon');
      const startMB = rssMB(daemon.pid);
      const ms = [], nodes = [];
      let cached = 0;
      for (let i = 0; i < N.rss; i++) {
        if (i % 5 === 0) await page.evaluate((a) => { document.querySelectorAll('#orders tbody tr')[a % 12].children[5].textContent = String(a); }, 500 + i);
        const t = performance.now();
        const r = await fetch(`http://127.0.0.1:${port}/v1/observe`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(rssNoOcr ? { accessibility: true, ocr: false } : { accessibility: true }) });
        if (!r.ok) throw new Error(`observe ${i} failed: ${r.status} ${await r.text()}`);
        const o = await r.json();
        ms.push(performance.now() - t);
        nodes.push(o.elements.length);
        if (o.accessibilityCached) cached++;
      }
      results.rss = { startMB, afterMB: rssMB(daemon.pid), observes: N.rss, ocr: !rssNoOcr, observeOverHttp: stats(ms), elementsP50: pct(nodes, 50), accessibilityCached: cached };
    } finally {
      daemon.kill('SIGTERM');
      await exited;
      rmSync(cfg, { recursive: true, force: true });
    }
  }
} finally {
  while (cleanup.length) await cleanup.pop()().catch(() => {});
  await desktop.stop();
}
results.totalSeconds = round((performance.now() - t0) / 1000);
results.loadAverageAtEnd = (await import('node:os')).loadavg().map((x) => round(x));

// ---------------------------------------------------------------- report
const rows = [['app', 'condition', 'deskd p50 ms', 'pyatspi p50 ms', 'ratio', 'target', 'met', 'nodes deskd/pyatspi', 'deskd calls', 'CPU ms per read: deskd self/bus/registry/app', 'pyatspi client/bus/registry/app']];
for (const [name, a] of Object.entries(results.apps)) {
  for (const cond of ['idle', 'busy']) {
    const c = a[cond];
    const cd = c.deskd.cpuMsPerSnapshot, cp = c.pyatspi.cpuMsPerWalk;
    rows.push([name, cond, c.deskd.p50, c.pyatspi.p50, `${c.ratio}x`, '≤ 0.33x', c.ratio <= 1 / 3 ? 'yes' : 'NO', `${c.deskd.nodes}/${c.pyatspi.nodes}`, c.deskd.callsPerSnapshot, `${cd.self}/${cd.bus}/${cd.registry}/${cd.app}`, `${cp.client}/${cp.bus}/${cp.registry}/${cp.app}`]);
    if (c.baseline) rows.push([name, `${cond} baseline`, c.baseline.p50, c.pyatspi.p50, `${c.baseline.ratio}x`, '', '', `equal ${c.baseline.equalSnapshots}`, c.baseline.callsPerSnapshot, `${c.baseline.selfCpuMsPerSnapshot}/-/-/-`, '']);
  }
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
for (const [i, r] of rows.entries()) {
  console.log(r.map((v, c) => String(v).padEnd(widths[c])).join(' | '));
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
}
for (const [name, a] of Object.entries(results.apps)) console.log(`[bench] ${name} deskd CPU profile per snapshot: ${JSON.stringify(a.profile)}; calls of one snapshot: ${JSON.stringify(a.idle.deskd.callsByMember)}`);
if (results.apps.dashboard?.changedCell) {
  const c = results.apps.dashboard.changedCell;
  console.log(`[bench] dashboard, one cell changed, incremental: p50 ${c.p50} ms (fresh read p50 ${results.apps.dashboard.idle.deskd.p50} ms); objects re-read p50 ${c.rereadPerChange.p50} (${c.rereadPerChange.samples.join(', ')}), objects whose extents and states were checked p50 ${c.layoutCheckedPerChange.p50}; D-Bus calls p50 ${c.callsPerChange.p50} (a full read: ${c.fullReadCalls}); equal to a fresh read ${c.equalToFresh}`);
}
if (results.rss) console.log(`[bench] daemon RSS after ${results.rss.observes} observes with accessibility: ${results.rss.afterMB} MB (target ≤ 250 MB: ${results.rss.afterMB <= 250 ? 'yes' : 'NO'}; ${results.rss.startMB} MB at start; observe p50 ${results.rss.observeOverHttp.p50} ms; cache answered ${results.rss.accessibilityCached})`);
console.log(`[bench] ${results.totalSeconds} s in all; load average ${results.loadAverageAtStart.join(' ')} at start, ${results.loadAverageAtEnd.join(' ')} at end`);
writeFileSync(join(here, rssOnly ? (rssNoOcr ? 'results-rss-no-ocr.json' : 'results-rss.json') : 'results.json'), JSON.stringify(results, null, 2) + '\n');
console.log('[bench] wrote bench/accessibility/results.json');
process.exit(0);
