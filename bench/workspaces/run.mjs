// Workspaces benchmark (issue 22): per-action latency in one workspace while a second one is busy vs idle,
// and memory per idle workspace. Run `npm run bench:workspaces` (builds dist/ first; BENCH_DIST=<dir> for a
// private build, see bench/common.mjs).
//
// A real daemon (startDaemon, its own virtual display, policy allowing gnome-calculator) serves two named
// agents, each with its own workspace and gnome-calculator. Latency: agent A sends N sequential requests
// (`click` on the calculator's "=" button through POST /v1/actions, and POST /v1/observe without OCR) in
// rounds that alternate "B idle" and "B busy" (B loops the same requests in its own workspace as fast as it
// can); the figure is the ratio busy/idle measured side by side in one run (the machine is shared: absolute
// times drift with load, ratios of interleaved rounds much less).
// Memory: the RSS of the daemon's whole process tree (daemon, X11 workers, every desktop process) before and
// after creating K idle workspaces (no app), divided by K; plus each workspace's own processes
// (GET /v1/workspaces/:id usage) idle and with gnome-calculator running.
//
//   node bench/workspaces/run.mjs [--n 40] [--rounds 6] [--idle 3] [--json] [--save bench/workspaces/results.json] [--skip-build]
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { buildDist, distModules } from '../common.mjs';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '40' },
    rounds: { type: 'string', default: '6' },
    idle: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    save: { type: 'string' },
    'skip-build': { type: 'boolean', default: false },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const IDLE = Number(args.idle);
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
buildDist(root, 'main.js', args['skip-build']);
const mod = distModules(root);
const { startDaemon } = await import(mod('main.js'));
const { loadConfig } = await import(mod('config.js'));

const POLICY = `version: 1
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
rules:
  - { id: allow-all, effect: allow, match: {} }
launch:
  - app: gnome-calculator
workspaces: { max: ${IDLE + 3}, perAgent: ${IDLE + 2}, maxApps: 2 }
`;

const dir = await mkdtemp(join(tmpdir(), 'deskd-bench-ws-'));
await writeFile(join(dir, 'policy.yaml'), POLICY);
const config = loadConfig(['--port', '0', '--log-level', 'error', '--virtual-display', '--screen', '1024x768', '--policy', join(dir, 'policy.yaml')], {
  ...process.env,
  DESKD_CONFIG_DIR: join(dir, 'config'),
  DESKD_PLATFORM: 'linux',
  DESKD_TOKEN: '',
  DESKD_OPERATOR_TOKEN: '',
  DESKD_MANAGED_POLICY: join(dir, 'none.yaml'),
  DESKD_CORNER_HALT: '0',
});
const daemon = await startDaemon(config);

async function call(token, method, path, body, headers = {}) {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** RSS and PSS (bytes) of a process and all its descendants, from /proc. */
function treeRss(pid) {
  const children = new Map();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(e));
    } catch {}
  }
  let total = 0;
  let pss = 0;
  const stack = [pid];
  // Desktop processes are started detached but stay children of the daemon (or of its children).
  while (stack.length) {
    const p = stack.pop();
    try {
      const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
      const q = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (q) pss += Number(q[1]) * 1024;
    } catch {}
    stack.push(...(children.get(p) ?? []));
  }
  return { rss: total, pss };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];
const mib = (b) => Math.round((b / 1048576) * 10) / 10;

const out = { when: new Date().toISOString(), n: N, rounds: ROUNDS, idleWorkspaces: IDLE, load: (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).map(Number) };
try {
  const op = daemon.operatorToken;
  const tokens = {};
  for (const id of ['alpha', 'beta']) tokens[id] = (await call(op, 'POST', '/v1/agents', { id, role: 'actor' })).token;

  // Memory per idle workspace: the daemon's process tree before/after K workspaces without apps.
  await sleep(1000);
  const before = treeRss(process.pid);
  const idle = [];
  for (let i = 0; i < IDLE; i++) idle.push(await call(op, 'POST', '/v1/workspaces', { size: '1024x768' }));
  // Touch each backend once (the X11 worker and the AT-SPI connection start on first use).
  for (const w of idle) await call(op, 'POST', '/v1/observe', { ocr: false }, { 'x-deskd-workspace': w.id });
  await sleep(1500);
  const after = treeRss(process.pid);
  const own = [];
  const ownPss = [];
  for (const w of idle) {
    const u = (await call(op, 'GET', `/v1/workspaces/${w.id}`)).usage;
    own.push(u.rssBytes);
    ownPss.push(u.pssBytes);
  }
  out.memory = { perIdleWorkspaceTreeMiB: mib((after.rss - before.rss) / IDLE), perIdleWorkspaceTreePssMiB: mib((after.pss - before.pss) / IDLE), perIdleWorkspaceOwnProcessesMiB: mib(median(own)), perIdleWorkspaceOwnProcessesPssMiB: mib(median(ownPss)), treeBeforeMiB: mib(before.rss), treeAfterMiB: mib(after.rss) };
  for (const w of idle) await call(op, 'DELETE', `/v1/workspaces/${w.id}`);

  // Two workspaces with a calculator each.
  const ws = {};
  for (const id of ['alpha', 'beta']) {
    ws[id] = await call(tokens[id], 'POST', '/v1/workspaces', { size: '1024x768' });
    await call(tokens[id], 'POST', `/v1/workspaces/${ws[id].id}/apps`, { app: 'gnome-calculator' });
  }
  const eq = {};
  for (const id of ['alpha', 'beta']) {
    const t0 = Date.now();
    for (;;) {
      const o = await call(tokens[id], 'POST', '/v1/observe', { ocr: false });
      const b = o.elements.find((e) => e.role === 'button' && e.name === '=');
      if (b) {
        eq[id] = { x: Math.round(b.bounds.x + b.bounds.width / 2), y: Math.round(b.bounds.y + b.bounds.height / 2) };
        break;
      }
      if (Date.now() - t0 > 120_000) throw new Error(`no calculator in ${id}'s workspace`);
      await sleep(300);
    }
  }
  const withCalc = (await call(tokens.alpha, 'GET', `/v1/workspaces/${ws.alpha.id}`)).usage;
  out.memory.perWorkspaceWithCalculatorOwnProcessesMiB = mib(withCalc.rssBytes);
  out.memory.perWorkspaceWithCalculatorOwnProcessesPssMiB = mib(withCalc.pssBytes);
  out.memory.processesWithCalculator = withCalc.processes;

  const click = (id) => call(tokens[id], 'POST', '/v1/actions', { type: 'click', ...eq[id] });
  const observe = (id) => call(tokens[id], 'POST', '/v1/observe', { ocr: false });
  const samples = { click: { idle: [], busy: [] }, observe: { idle: [], busy: [] } };
  for (let r = 0; r < ROUNDS * 2; r++) {
    const busy = r % 2 === 1;
    let stop = false;
    let bOps = 0;
    const bLoop = busy
      ? (async () => {
          while (!stop) {
            await click('beta');
            await observe('beta');
            bOps += 2;
          }
        })()
      : Promise.resolve();
    for (const [kind, fn] of [['click', click], ['observe', observe]]) {
      for (let i = 0; i < N; i++) {
        const t = performance.now();
        await fn('alpha');
        samples[kind][busy ? 'busy' : 'idle'].push(performance.now() - t);
      }
    }
    stop = true;
    await bLoop;
    if (busy) out.bOpsPerBusyRound = [...(out.bOpsPerBusyRound ?? []), bOps];
  }
  out.latencyMs = {};
  for (const kind of ['click', 'observe']) {
    const s = samples[kind];
    out.latencyMs[kind] = {
      oneBusy: { median: Math.round(median(s.idle) * 10) / 10, p90: Math.round(p90(s.idle) * 10) / 10 },
      twoBusy: { median: Math.round(median(s.busy) * 10) / 10, p90: Math.round(p90(s.busy) * 10) / 10 },
      ratioMedian: Math.round((median(s.busy) / median(s.idle)) * 100) / 100,
    };
  }
  for (const id of ['alpha', 'beta']) await call(tokens[id], 'DELETE', `/v1/workspaces/${ws[id].id}`);
} finally {
  await daemon.close();
  await rm(dir, { recursive: true, force: true });
}
out.loadAfter = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).map(Number);

if (args.json) console.log(JSON.stringify(out, null, 2));
else {
  console.log(`memory per idle workspace: RSS ${out.memory.perIdleWorkspaceTreeMiB} MiB, PSS ${out.memory.perIdleWorkspaceTreePssMiB} MiB (daemon process tree delta over ${IDLE}); its own processes RSS ${out.memory.perIdleWorkspaceOwnProcessesMiB} MiB (PSS ${out.memory.perIdleWorkspaceOwnProcessesPssMiB}); with gnome-calculator RSS ${out.memory.perWorkspaceWithCalculatorOwnProcessesMiB} MiB (PSS ${out.memory.perWorkspaceWithCalculatorOwnProcessesPssMiB}) (${out.memory.processesWithCalculator} processes)`);
  for (const [k, v] of Object.entries(out.latencyMs)) console.log(`${k}: one workspace busy median ${v.oneBusy.median} ms (p90 ${v.oneBusy.p90}); two busy median ${v.twoBusy.median} ms (p90 ${v.twoBusy.p90}); ratio ${v.ratioMedian}x`);
  console.log(`load ${out.load.join(' ')} → ${out.loadAfter.join(' ')}`);
}
if (args.save) {
  let prev = [];
  try {
    prev = JSON.parse(await readFile(args.save, 'utf8'));
  } catch {}
  await writeFile(args.save, JSON.stringify([...prev, out], null, 2) + '\n');
}
process.exit(0);
