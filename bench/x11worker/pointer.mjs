/**
 * A real X11 pointer action end to end (issue 15's target: ≤ 10 ms p50): `Executor.run([{type: 'click'}])`
 * on the Linux platform (X11 worker, AT-SPI, X11 windows) with a real PolicyGate over an allow-all policy,
 * so every action is planned, its receivers resolved (window under the point, accessibility hit-test),
 * decided and audited (fsynced record), re-read fresh right before dispatch, clicked through XTest, and
 * followed by click-to-focus — what `POST /v1/actions` does after parsing.
 *
 * Starts its own virtual desktop (Xvfb + session bus + AT-SPI bus, first free display from :90) with an
 * xterm (not on the accessibility bus) and gnome-calculator (GTK 3, on the bus), and clicks inside each and
 * moves the pointer there (the stages of a click and of a move are reported apart). The audit appends
 * (write + fdatasync of the log in the OS temp directory) and the executor's phases are timed too.
 *
 * With `--chromium`, also a Chromium window (accessibility on) showing a test page, where only moves are timed
 * (the action of `npm run bench`'s dispatch stage, over a page); `--page FILE` (relative to this checkout) shows
 * another page than `tests/fixtures/pages/seeing.html` (e.g. `bench/incremental/dashboard.html`, the page of
 * that dispatch stage). `--chromium-actions move,click` clicks there too (only on a page where a click at that
 * point changes nothing, e.g. the dashboard's table cells: `--page bench/incremental/dashboard.html`).
 *
 * Usage: `npm run build && node bench/x11worker/pointer.mjs [--iterations 60] [--rounds 3] [--pause MS] [--chromium [--page FILE]] [--baseline DIR]`.
 * `--pause MS` waits that long before each timed action (default 0: back to back, where an app's reaction
 * to the previous click — xterm's selection and redraw — competes with the next action for the CPU).
 * With `--baseline DIR` (another deskd checkout, built: `DIR/dist/...`), this tree's build and the baseline's
 * are measured side by side on the same desktop, in alternating rounds, each in a fresh child process, and
 * the ratio after/before is printed. Per stage (summed over a click), the time spent in the platform calls
 * the executor makes is reported too (windows, accessibility, mouse), by wrapping them in the child.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};


/** One implementation, in this process: time N clicks at each target (`pause` ms before each). Prints one JSON line. */
async function child(root, targets, n, pause = 0) {
  const imp = (p) => import(pathToFileURL(join(root, 'dist/src', p)).href);
  const [{ createPlatform }, { Executor }, { ObservationStore }, { parsePolicy }, { AuditLog }, { ApprovalManager }, { HaltSwitch }, { TokenBucket }, { PolicyGate }, { parseAction }] = await Promise.all([
    imp('platform/index.js'),
    imp('actuation/executor.js'),
    imp('perception/observer.js'),
    imp('policy/parse.js'),
    imp('policy/audit.js'),
    imp('policy/approvals.js'),
    imp('policy/halt.js'),
    imp('policy/rateLimit.js'),
    imp('policy/gate.js'),
    imp('actuation/parse.js'),
  ]);
  const policy = parsePolicy('version: 1\nlimits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 100000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n', 'allow-all.yaml');
  const dir = mkdtempSync(join(tmpdir(), 'deskd-bench-pointer-'));
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const gate = new PolicyGate({ policy: () => policy, halt: new HaltSwitch(), bucket: new TokenBucket(policy.limits), approvals: new ApprovalManager({ timeoutMs: 60_000 }), audit });
  const platform = await createPlatform({ kind: 'linux' });

  // Time spent in each platform call the action path makes (summed per click).
  const stages = {};
  // When each call first started and last ended, ms from the start of the action (`timeline` in the report).
  const marks = {};
  let tRun = 0;
  const wrap = (obj, name, label) => {
    const fn = obj[name];
    if (typeof fn !== 'function') return;
    obj[name] = async function (...a) {
      const t = performance.now();
      marks[label] ??= [t - tRun, 0];
      try {
        return await fn.apply(this, a);
      } finally {
        stages[label] = (stages[label] ?? 0) + (performance.now() - t);
        marks[label][1] = performance.now() - tRun;
      }
    };
  };
  for (const m of ['windowAt', 'focused', 'list', 'clickToFocus']) wrap(platform.windows, m, `windows.${m}`);
  for (const m of ['elementAt', 'urlOf', 'ownerOf']) wrap(platform.accessibility, m, `accessibility.${m}`);
  for (const m of ['move', 'down', 'up', 'click']) wrap(platform.mouse, m, 'mouse');

  const executor = new Executor({ platform, store: new ObservationStore(), policy: gate });
  // The steps around the platform calls: the audit appends (write + fdatasync), and the executor's phases
  // (plan, decide, the dispatch-time re-check, the dispatch itself with click-to-focus), each including the
  // platform calls above that it makes.
  wrap(audit, 'append', 'audit.append');
  for (const m of ['plan', 'decide', 'recheckAll', 'dispatch']) wrap(executor, m, `executor.${m}`);
  wrap(gate, 'checkEffects', 'gate.checkEffects');
  const out = {};
  for (const t of targets) for (const type of t.actions) {
    // A move alternates between two points 10 px apart (a move to where the pointer already is sends an
    // event all the same; alternating keeps it a real motion, as the dispatch stage of `npm run bench` does).
    const act = (i) => [parseAction({ type, x: t.x + (type === 'move' ? (i % 2) * 10 : 0), y: t.y })];
    // Warm-up (worker start, bus connection). On a loaded machine the X11 worker's start can outlast the
    // first click's 5 s input timeout: such a click is retried, never measured.
    for (let i = 0, failed = 0; i < 5; i++) {
      try {
        await executor.run(act(i));
      } catch (e) {
        if (++failed > 3) throw e;
        i--;
      }
    }
    const total = [];
    const dispatched = [];
    const per = {};
    const line = {};
    for (let i = 0; i < n; i++) {
      // --pause: let the app finish reacting to the previous action (an agent acts seconds apart), so the
      // time measured is deskd's, not the app's redraw competing for the CPU.
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      for (const k of Object.keys(stages)) delete stages[k];
      for (const k of Object.keys(marks)) delete marks[k];
      const t0 = performance.now();
      tRun = t0;
      const r = await executor.run(act(i));
      total.push(performance.now() - t0);
      for (const [k, [a, b]] of Object.entries(marks)) ((line[k] ??= { start: [], end: [] }).start.push(a), line[k].end.push(b));
      dispatched.push(r.results[0].durationMs);
      for (const [k, v] of Object.entries(stages)) (per[k] ??= []).push(v);
      for (const k of Object.keys(per)) if (!(k in stages)) per[k].push(0);
    }
    out[`${t.name}: ${type}`] = { total, dispatched, stages: per, line, hit: (await executor.run(act(0))).results[0].hit ?? null };
  }
  await audit.close();
  rmSync(dir, { recursive: true, force: true });
  await platform.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

function run(root, targets, n) {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', root, '--targets', JSON.stringify(targets), '--iterations', String(n), '--pause', opt('pause', '0')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    c.stdout.on('data', (d) => (text += d));
    c.on('exit', (code) => (code === 0 ? res(JSON.parse(text.trim().split('\n').pop())) : rej(new Error(`child for ${root} exited with ${code}`))));
  });
}

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const r2 = (x) => Math.round(x * 100) / 100;

async function parent() {
  const loadStart = readFileSync('/proc/loadavg', 'utf8').trim();
  const n = Number(opt('iterations', 60));
  const rounds = Number(opt('rounds', 3));
  const baseline = opt('baseline');
  const current = resolve(here, '../..');
  const { startVirtualDesktop, applyDesktopEnv, killProcessGroup } = await import(pathToFileURL(join(current, 'dist/src/platform/linux/virtualDisplay.js')).href);
  const desk = await startVirtualDesktop({ width: 1280, height: 800 });
  applyDesktopEnv(desk);
  const apps = [];
  const launch = (cmd, a, env = {}) => {
    const e = { ...process.env, ...env };
    delete e.NO_AT_BRIDGE;
    delete e.GTK_A11Y;
    const c = spawn(cmd, a, { env: e, detached: true, stdio: 'ignore' });
    apps.push(c);
  };
  const chromium = args.includes('--chromium');
  const profile = chromium ? mkdtempSync(join(tmpdir(), 'deskd-bench-pointer-chromium-')) : null;
  try {
    launch('xterm', ['-geometry', '80x20+700+0', '-title', 'bench xterm']);
    launch('gnome-calculator', [], { GSETTINGS_BACKEND: 'memory' });
    if (chromium) {
      // A test page (not a bench page), accessibility on, below the xterm.
      const page = pathToFileURL(resolve(current, opt('page', 'tests/fixtures/pages/seeing.html'))).href;
      launch('chromium', ['--force-renderer-accessibility', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--password-store=basic', `--user-data-dir=${profile}`, '--window-position=640,380', '--window-size=640,420', page], { ACCESSIBILITY_ENABLED: '1' });
    }
    await new Promise((r) => setTimeout(r, chromium ? 8000 : 4000)); // the apps map their windows and join the bus
    // Inside the xterm (placed at +700+0), on the calculator's display area (at 0,0), and (--chromium) on the
    // page below its buttons; clicks and moves (moves only on the page: a click there could navigate).
    const targets = [
      { name: 'xterm (no accessibility)', x: 900, y: 100, actions: ['click', 'move'] },
      { name: 'gnome-calculator (AT-SPI hit-test)', x: 150, y: 90, actions: ['click', 'move'] },
      ...(chromium ? [{ name: 'chromium page (AT-SPI hit-test)', x: 1000, y: 760, actions: opt('chromium-actions', 'move').split(',') }] : []),
    ];
    const impls = baseline ? [['before', resolve(baseline)], ['after', current]] : [['current', current]];
    const acc = {};
    for (let r = 0; r < rounds; r++) {
      for (const [label, root] of r % 2 === 0 ? impls : [...impls].reverse()) {
        const res = await run(root, targets, n);
        for (const [t, v] of Object.entries(res)) {
          const a = ((acc[label] ??= {})[t] ??= { total: [], dispatched: [], stages: {}, line: {}, hit: v.hit });
          a.total.push(...v.total);
          a.dispatched.push(...v.dispatched);
          for (const [k, xs] of Object.entries(v.stages)) (a.stages[k] ??= []).push(...xs);
          for (const [k, se] of Object.entries(v.line)) ((a.line[k] ??= { start: [], end: [] }).start.push(...se.start), a.line[k].end.push(...se.end));
        }
      }
    }
    const report = {};
    for (const [label, byTarget] of Object.entries(acc)) {
      for (const [t, a] of Object.entries(byTarget)) {
        (report[t] ??= {})[label] = {
          clicks: a.total.length,
          runMs: { p50: r2(q(a.total, 0.5)), p90: r2(q(a.total, 0.9)), p95: r2(q(a.total, 0.95)) },
          dispatchedMs: { p50: r2(q(a.dispatched, 0.5)), p95: r2(q(a.dispatched, 0.95)) },
          stagesMsP50: Object.fromEntries(Object.entries(a.stages).map(([k, xs]) => [k, r2(q(xs, 0.5))])),
          // p50 of when each call first started and last ended, ms from the start of the action.
          timelineP50: Object.fromEntries(Object.entries(a.line).sort((x, y) => q(x[1].start, 0.5) - q(y[1].start, 0.5)).map(([k, se]) => [k, [r2(q(se.start, 0.5)), r2(q(se.end, 0.5))]])),
          hit: a.hit,
        };
      }
      if (baseline) for (const t of Object.keys(report)) {
        const b = report[t].before;
        const f = report[t].after;
        if (b && f) report[t].ratio = { runP50: r2(f.runMs.p50 / b.runMs.p50), runP90: r2(f.runMs.p90 / b.runMs.p90), runP95: r2(f.runMs.p95 / b.runMs.p95) };
      }
    }
    console.log(JSON.stringify({ iterationsPerRound: n, rounds, display: desk.display, baseline: baseline ?? null, loadavg: { start: loadStart, end: readFileSync('/proc/loadavg', 'utf8').trim() }, report }, null, 2));
  } finally {
    for (const c of apps) if (c.pid) await killProcessGroup(c.pid).catch(() => undefined);
    await desk.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  }
}

if (opt('child') !== undefined) await child(resolve(opt('child')), JSON.parse(opt('targets')), Number(opt('iterations', 60)), Number(opt('pause', 0)));
else await parent();
