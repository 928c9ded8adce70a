/**
 * Replay benchmark (issue 18): the 4-step gnome-calculator task (7 × 6 =) replayed without a model,
 * wall-clock, against the recorded model-driven run of the same task.
 *
 * Setup: the daemon (built to a private dist, `BENCH_DIST`, default a temp folder) starts its own Xvfb
 * (1280x800) with gnome-calculator; the model is a local OpenAI-compatible server answering in the
 * recorded Chat Completions shape (`tests/fixtures/openai/chat-tool-calls.json`), functions mode: it clicks
 * the refs of 7, ×, 6, = from the observation it is sent, then answers the entry's value. Its answers are
 * immediate, so the model-driven time here is deskd's own work (observations, acting, recording); a real
 * model adds seconds per step.
 *
 * Each round: clear the entry (Escape), run the task (recorded by itself), clear, replay its recording
 * (POST /v1/replays until the final event). Target: replay ≤ 2000 ms. Prints per-round figures and medians
 * and writes bench/replay/results.json.
 *
 * Usage: npm run bench:replay [-- --rounds N] [--skip-build] [--profile]
 * `--profile` prints a timeline of each replay: observations (settle, capture, accessibility), tree reads
 * (full or incremental, objects whose extents were re-read), window lists, the executor's plan and submit.
 */
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { buildDist, distModules } from '../common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const ROUNDS = Number(opt('rounds') ?? 3);
// A private build: others build the shared dist/ at the same time.
process.env.BENCH_DIST ??= join(tmpdir(), 'deskd-bench-replay-dist');
buildDist(root, 'replay/index.js', args.includes('--skip-build'));
const dist = distModules(root);
const { startDaemon } = await import(dist('main.js'));
const { loadConfig } = await import(dist('config.js'));

// ---- a local OpenAI-compatible server (Chat Completions, recorded shape) ------------------------------
const proto = JSON.parse(readFileSync(join(root, 'tests/fixtures/openai/chat-tool-calls.json'), 'utf8'));
let uid = 0;
const toolCalls = (calls) => {
  const body = structuredClone(proto);
  body.id = `chatcmpl-bench-${++uid}`;
  body.choices[0].message.tool_calls = calls.map((c) => ({ ...proto.choices[0].message.tool_calls[0], id: `call_bench_${++uid}`, function: { name: c.name, arguments: JSON.stringify(c.args) } }));
  return body;
};
/** The last observation text of a request (functions mode sends it as a user message). */
const lastObservation = (body) => {
  const texts = [];
  for (const m of body.messages ?? []) {
    if (typeof m.content === 'string') texts.push(m.content);
    else if (Array.isArray(m.content)) for (const p of m.content) if (p.type === 'text') texts.push(p.text);
  }
  return texts.filter((t) => t.includes('Elements (')).pop() ?? '';
};
const refOf = (obs, role, name) => {
  for (const line of obs.split('\n')) {
    const m = /^(e\d+) (\S+) ("(?:[^"\\]|\\.)*")/.exec(line);
    if (m && m[2] === role && JSON.parse(m[3]) === name) return m[1];
  }
  throw new Error(`no ${role} "${name}" in the observation`);
};
let modelRequests = 0;
const model = createServer(async (req, res) => {
  let raw = '';
  for await (const c of req) raw += c;
  modelRequests += 1;
  const body = JSON.parse(raw);
  const obs = lastObservation(body);
  const toolTurns = (body.messages ?? []).filter((m) => m.role === 'tool').length;
  const reply =
    toolTurns === 0
      ? toolCalls(['7', '×', '6', '='].map((n) => ({ name: 'click_element', args: { ref: refOf(obs, 'button', n) } })))
      : toolCalls([{ name: 'done', args: { answer: /^e\d+ textbox "(?:[^"\\]|\\.)*" value="([^"]*)"/m.exec(obs)?.[1] ?? '?' } }]);
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
});
await new Promise((r) => model.listen(0, '127.0.0.1', r));
Object.assign(process.env, { OPENAI_API_KEY: 'sk-bench-local', OPENAI_BASE_URL: `http://127.0.0.1:${model.address().port}/v1`, DESKD_MODEL_MODE: 'functions', DESKD_MODEL_API: 'chat', DESKD_CORNER_HALT: '0' });

// ---- the daemon and the calculator --------------------------------------------------------------------
const configDir = mkdtempSync(join(tmpdir(), 'deskd-bench-replay-'));
const policyPath = join(configDir, 'policy.yaml');
writeFileSync(policyPath, `version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 200, burst: 400 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-calculator, effect: allow, match: { app: ["gnome-calculator", "org.gnome.Calculator"] } }
`);
const config = loadConfig(['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', '1280x800', '--policy', policyPath], { ...process.env, DESKD_CONFIG_DIR: configDir, DESKD_PLATFORM: 'linux', DESKD_TOKEN: '', DESKD_OPERATOR_TOKEN: '' });
const daemon = await startDaemon(config);

// ---- --profile: a timeline of each replay (observations and their stages, tree reads, window lists, executor) ----
const PROFILE = args.includes('--profile');
let spans = null;
const timed = (obj, name, label, info = () => ({})) => {
  const orig = obj[name].bind(obj);
  obj[name] = async (...a) => {
    const t0 = performance.now();
    try {
      const r = await orig(...a);
      spans?.push({ label, t0, t1: performance.now(), ...info(r, a) });
      return r;
    } catch (e) {
      spans?.push({ label, t0, t1: performance.now(), error: String(e).slice(0, 80) });
      throw e;
    }
  };
};
if (PROFILE) {
  const rt = daemon.runtime;
  timed(rt.observer, 'observe', 'observe', (o) => ({ settle: o.timings.settleMs, capture: o.timings.captureMs, ax: o.timings.accessibilityMs, ocr: o.timings.ocrMs, cached: o.accessibilityCached }));
  const ax = rt.platform.accessibility;
  const st = () => ax.stats ?? {};
  const origSnap = ax.snapshot.bind(ax);
  ax.snapshot = async (o) => {
    const t0 = performance.now();
    const before = { ...st() };
    const r = await origSnap(o);
    const after = st();
    spans?.push({ label: 'ax.snapshot', t0, t1: performance.now(), full: (after.fullReads ?? 0) - (before.fullReads ?? 0), boundsReread: (after.boundsReread ?? 0) - (before.boundsReread ?? 0), reread: (after.reread ?? 0) - (before.reread ?? 0), calls: (after.calls ?? 0) - (before.calls ?? 0) });
    return r;
  };
  timed(rt.platform.windows, 'list', 'windows.list');
  timed(rt.executor, 'submit', 'executor.submit');
  timed(rt.executor, 'plan', 'executor.plan');
  timed(rt.observer, 'currentTree', 'currentTree');
  timed(rt.platform.capture, 'capture', 'capture', (_r, a) => ({ region: a[1] ? 'part' : 'whole' }));
  if (rt.platform.capture.drawnSince) timed(rt.platform.capture, 'drawnSince', 'drawnSince', (r) => ({ drawn: r }));
  timed(rt.platform.windows, 'windowAt', 'windows.windowAt');
  if (ax.elementAt) timed(ax, 'elementAt', 'ax.elementAt');
  const cache = rt.observer.axCache;
  if (cache) timed(cache, 'snapshot', 'axCache.snapshot', () => ({ hits: cache.stats.hits, misses: cache.stats.misses, events: cache.stats.events }));
}
const printSpans = (t0) => {
  if (!spans) return;
  for (const s of spans.sort((a, b) => a.t0 - b.t0)) {
    const { label, t0: a, t1: b, ...info } = s;
    console.log(`  ${String(Math.round(a - t0)).padStart(5)}–${String(Math.round(b - t0)).padStart(5)} ms ${label.padEnd(16)} ${Math.round(b - a)} ms ${JSON.stringify(info)}`);
  }
  spans = null;
};
const env = { ...process.env, GSETTINGS_BACKEND: 'memory' };
delete env.NO_AT_BRIDGE;
delete env.GTK_A11Y;
const calc = spawn('gnome-calculator', [], { env, detached: true, stdio: 'ignore' });

async function api(method, path, body) {
  const r = await fetch(daemon.url + path, { method, headers: { authorization: `Bearer ${daemon.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
const entry = async () => (await api('POST', '/v1/observe', { ocr: false })).elements.find((e) => e.role === 'textbox' && e.value !== undefined)?.value ?? null;
const clear = async () => {
  await api('POST', '/v1/actions', { type: 'keypress', keys: ['ESCAPE'] }).catch(() => undefined);
  await until(async () => (await entry()) !== '42', 5000, 'the entry to clear');
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rounds = [];
let exitCode = 0;
try {
  await until(async () => (await api('POST', '/v1/observe', { ocr: false })).elements.some((e) => e.role === 'button' && e.name === '='), 90_000, 'the calculator on the accessibility bus');
  let retries = 0;
  for (let i = 0; i < ROUNDS; i++) {
    try {
      rounds.push(await round(i));
    } catch (e) {
      // On a saturated machine the X11 worker can miss its deadline (CAPTURE_FAILED); such a round is run
      // again (at most 5 times in all) and the retry is reported; so is a model-driven run whose clicks the
      // calculator lost (seen at load average 25+: it answered "×6"): that is the baseline failing, not the replay.
      if (!/CAPTURE_FAILED|TIMEOUT|TARGET_CHANGED|the task answered/.test(String(e)) || ++retries > 5) throw e;
      console.warn(`round ${i + 1} retried: ${String(e).slice(0, 200)}`);
      i--;
    }
  }
  if (retries) console.log(`${retries} round(s) retried after environment errors`);
  async function round(i) {
    await clear();
    const t0 = performance.now();
    const { taskId } = await api('POST', '/v1/tasks', { goal: 'Compute 7×6 with the calculator and tell me the result.', maxSteps: 4 });
    const task = await until(async () => {
      const t = await api('GET', `/v1/tasks/${taskId}`);
      return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : null;
    }, 120_000, 'the task');
    const modelWallMs = performance.now() - t0;
    if (task.answer !== '42') throw new Error(`the task answered ${JSON.stringify(task.answer)} (${JSON.stringify(task.error)})`);
    const rec = await until(async () => (await api('GET', '/v1/recordings')).recordings.find((r) => r.source.taskId === taskId && r.status === 'stopped'), 10_000, 'the recording');
    await clear();
    const requestsBefore = modelRequests;
    if (PROFILE) spans = [];
    const t1 = performance.now();
    const { replayId } = await api('POST', '/v1/replays', { recordingId: rec.id });
    const res = await fetch(`${daemon.url}/v1/replays/${replayId}/events`, { headers: { authorization: `Bearer ${daemon.token}` } });
    await res.text(); // ends after the final event
    const replayWallMs = performance.now() - t1;
    printSpans(t1);
    const v = await api('GET', `/v1/replays/${replayId}`);
    const shown = await entry();
    if (v.status !== 'succeeded' || shown !== '42') throw new Error(`replay ${v.status} ${JSON.stringify(v.divergence ?? v.error)}; entry ${shown}`);
    if (modelRequests !== requestsBefore) throw new Error('the replay asked the model');
    const round = {
      modelDrivenMs: Math.round(modelWallMs),
      modelDrivenTaskMs: task.finishedAt - task.startedAt,
      replayMs: Math.round(replayWallMs),
      replayRunMs: v.durationMs,
      steps: v.steps.map((s) => ({ observeMs: s.observeMs, actMs: s.actMs, waitMs: s.waitMs })),
    };
    console.log(`round ${i + 1}: model-driven ${round.modelDrivenMs} ms (task ${round.modelDrivenTaskMs} ms), replay ${round.replayMs} ms (run ${round.replayRunMs} ms; per step observe/act/wait ${round.steps.map((s) => `${s.observeMs}/${s.actMs}/${s.waitMs}`).join(', ')})`);
    return round;
  }
  const m = { modelDrivenMs: median(rounds.map((r) => r.modelDrivenMs)), replayMs: median(rounds.map((r) => r.replayMs)) };
  const ratio = m.replayMs / m.modelDrivenMs;
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`median of ${rounds.length}: replay ${m.replayMs} ms vs recorded model-driven run ${m.modelDrivenMs} ms = ${ratio.toFixed(2)}x (target replay ≤ 2000 ms: ${m.replayMs <= 2000 ? 'met' : 'NOT met'}); load average ${load}`);
  // A profiled run (wrapped calls cost time) is not a result.
  if (!PROFILE) writeFileSync(join(here, 'results.json'), JSON.stringify({ at: new Date().toISOString(), screen: '1280x800', load, retries, rounds, median: m, ratio: Math.round(ratio * 1000) / 1000, targetMs: 2000, met: m.replayMs <= 2000 }, null, 2) + '\n');
  if (m.replayMs > 2000) exitCode = 1;
} catch (e) {
  console.error(e);
  exitCode = 2;
} finally {
  try {
    process.kill(-calc.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  await daemon.close();
  model.close();
  rmSync(configDir, { recursive: true, force: true });
}
process.exit(exitCode);
