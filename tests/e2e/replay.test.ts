/**
 * Record once, replay without a model (issue 18), end to end through the daemon's HTTP API: the daemon
 * starts its own virtual display (Xvfb + session bus + AT-SPI bus); gnome-calculator and Chromium run on
 * it; the real runtime (AT-SPI, XTest, X11 capture, OCR, policy, audit log) records and replays.
 * - gnome-calculator: a model-driven task (functions mode, the local OpenAI-compatible test server with
 *   recorded shapes) computes 7 × 6 =; it is recorded by itself. The window is then resized with xdotool
 *   (every button moves and grows), and the replay still reaches 42 — with no model request.
 * - A CI page in Chromium: an agent records its own session (click "Run build", wait for "succeeded"); the
 *   replay works after the button moved and the page was restyled; with the button renamed it stops at that
 *   step with a divergence naming the candidates, and the page's own click counter shows nothing happened.
 * - Postconditions: a copy of the recording whose step 2 also expects a window that never opens stops
 *   there with REPLAY_POSTCONDITION_FAILED; 6 and = are never pressed.
 * - Attacks: a replay whose app the policy now denies is refused by the policy (nothing dispatched); a
 *   recording's thumbnails and texts of an app masked later are never served.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startDaemon, type Daemon } from '../../src/main.js';
import { loadConfig } from '../../src/config.js';
import { launchCalculator, launchChromium, waitFor, type AppHandle } from '../helpers/desktop.js';
import { startOpenAITestServer, chatToolCalls, lastObservation, refOf, type OpenAITestServer } from '../helpers/openaiTestServer.js';

const execFileP = promisify(execFile);
const WIDTH = 1280;
const HEIGHT = 800;

const policy = (calculator: 'allow' | 'deny' | 'mask') => `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 100, burst: 200 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-chromium, effect: allow, match: { app: ["chromium"] } }
  - { id: ${calculator === 'deny' ? 'deny' : 'allow'}-calculator, effect: ${calculator === 'deny' ? 'deny' : 'allow'}, match: { app: ["gnome-calculator", "org.gnome.Calculator"] } }
${calculator === 'mask' ? 'perception:\n  mask: [{ name: "gnome-calculator" }]\n' : ''}`;

/** The CI page: "Run build" (its label, place and style from the query), a status line, and the page's own click counter. */
const CI_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>deskd CI replay</title>
<style>
  body { font-family: "DejaVu Sans", sans-serif; font-size: 20px; margin: 40px; background: #fff; color: #111; }
  button { font-size: 22px; padding: 10px 24px; margin-right: 24px; }
  #status { font-size: 26px; margin-top: 40px; }
  body.moved #bar { margin-left: 380px; margin-top: 160px; }
  body.dark { background: #1d2330; color: #e8e8e8; }
  body.dark button { background: #2f6fde; color: #fff; border: 0; border-radius: 14px; font-size: 28px; padding: 16px 36px; }
</style></head><body>
<h1>Pipeline</h1>
<p id="bar"><button id="cancel">Cancel</button><button id="run">Run build</button></p>
<p id="status">Idle</p>
<p id="count">Clicked 0 times</p>
<script>
  const q = new URLSearchParams(location.search);
  if (q.has('label')) document.getElementById('run').textContent = q.get('label');
  if (q.has('moved')) document.body.classList.add('moved');
  if (q.has('dark')) document.body.classList.add('dark');
  let n = 0;
  document.getElementById('run').onclick = () => {
    n += 1;
    document.getElementById('count').textContent = 'Clicked ' + n + ' times';
    fetch('/clicked', { method: 'POST' });
    document.getElementById('status').textContent = 'Running';
    setTimeout(() => { document.getElementById('status').textContent = 'Build ' + (40 + n) + ' succeeded'; }, 700);
  };
</script></body></html>`;

interface Rect { x: number; y: number; width: number; height: number }
interface El { ref: string; role: string; name: string; value?: string; bounds: Rect }
interface Obs { observationId: string; elements: El[] }

let daemon: Daemon;
let configDir: string;
let policyPath: string;
let server: Server;
let base: string;
let pageClicks = 0;
let model: OpenAITestServer;
let calc: AppHandle | null = null;
let chromium: AppHandle | null = null;
const saved: Record<string, string | undefined> = {};

async function api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${daemon.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let json: T;
  try {
    json = JSON.parse(text) as T;
  } catch {
    json = text as T;
  }
  return { status: r.status, json };
}
const observe = async (body: object = { ocr: false }) => {
  const r = await api<Obs>('POST', '/v1/observe', body);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json;
};
async function setPolicy(which: 'allow' | 'deny' | 'mask'): Promise<void> {
  await writeFile(policyPath, policy(which));
  await daemon.runtime.policy.reload();
}
/** The calculator's entry (its value, "" when empty). */
const display = (o: Obs) => o.elements.find((e) => e.role === 'textbox' && e.value !== undefined)?.value ?? null;

async function replayToEnd(body: object): Promise<any> {
  const r = await api<{ replayId: string }>('POST', '/v1/replays', body);
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  const t0 = performance.now();
  // The event stream ends with the final event.
  const res = await fetch(`${daemon.url}/v1/replays/${r.json.replayId}/events`, { headers: { authorization: `Bearer ${daemon.token}` } });
  const text = await res.text();
  const wallMs = performance.now() - t0;
  const events = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
  expect(events[events.length - 1]).toBe('final');
  const v = (await api('GET', `/v1/replays/${r.json.replayId}`)).json;
  return { ...v, events, wallMs };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/clicked') {
      pageClicks += 1;
      return void res.writeHead(204).end();
    }
    if (req.url?.startsWith('/ci')) return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(CI_PAGE);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  model = await startOpenAITestServer();
  // The daemon's task runner reads its model from the environment (functions mode, Chat Completions).
  for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'DESKD_MODEL_MODE', 'DESKD_MODEL_API']) saved[k] = process.env[k];
  Object.assign(process.env, { OPENAI_API_KEY: 'sk-local-test', OPENAI_BASE_URL: model.baseURL, DESKD_MODEL_MODE: 'functions', DESKD_MODEL_API: 'chat' });
  configDir = await mkdtemp(join(tmpdir(), 'deskd-e2e-replay-'));
  policyPath = join(configDir, 'policy.yaml');
  await writeFile(policyPath, policy('allow'));
  const config = loadConfig(['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', `${WIDTH}x${HEIGHT}`, '--policy', policyPath], {
    ...process.env,
    DESKD_CONFIG_DIR: configDir,
    DESKD_PLATFORM: 'linux',
    DESKD_TOKEN: '',
    DESKD_OPERATOR_TOKEN: '',
    DESKD_CORNER_HALT: '0',
  });
  daemon = await startDaemon(config);
}, 120_000);

afterAll(async () => {
  await chromium?.kill();
  await calc?.kill();
  await daemon?.close();
  await model?.close();
  await new Promise((r) => server?.close(r));
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

describe('gnome-calculator: a model-driven task recorded once, replayed after the window was resized', () => {
  let recordingId = '';

  it('the task (7 × 6 =, answer 42) is recorded by itself', async () => {
    calc = launchCalculator();
    await waitFor(async () => (await observe()).elements.some((e) => e.role === 'button' && e.name === '='), 90_000, 'the calculator on the accessibility bus');
    model.push(
      (req) => chatToolCalls(['7', '×', '6', '='].map((n) => ({ name: 'click_element', args: { ref: refOf(lastObservation(req), 'button', n) } }))),
      (req) => {
        const m = /^e\d+ textbox "(?:[^"\\]|\\.)*" value="([^"]*)"/m.exec(lastObservation(req));
        return chatToolCalls([{ name: 'done', args: { answer: m?.[1] ?? '?' } }]);
      },
    );
    const start = await api<{ taskId: string }>('POST', '/v1/tasks', { goal: 'Compute 7×6 with the calculator and tell me the result.', maxSteps: 4 });
    expect(start.status, JSON.stringify(start.json)).toBe(202);
    const task = await waitFor(async () => {
      const t = (await api('GET', `/v1/tasks/${start.json.taskId}`)).json;
      return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : null;
    }, 120_000, 'the task to end');
    expect(task.error).toBeNull();
    expect(task.answer).toBe('42');
    const requests = model.requests.length;
    // Its recording: stopped when the task ended, four click steps with the buttons' fingerprints.
    const rec = await waitFor(async () => {
      const list = (await api<{ recordings: { id: string; status: string; source: { taskId?: string } }[] }>('GET', '/v1/recordings')).json.recordings;
      return list.find((r) => r.source.taskId === start.json.taskId && r.status === 'stopped') ?? null;
    }, 10_000, 'the task recording');
    recordingId = rec.id;
    const doc = (await api('GET', `/v1/recordings/${recordingId}`)).json;
    expect(doc.goal).toBe('Compute 7×6 with the calculator and tell me the result.');
    expect(doc.steps.map((s: any) => [s.action.type, s.fingerprint.role, s.fingerprint.name, s.fingerprint.app])).toEqual(['7', '×', '6', '='].map((n) => ['click', 'button', n, 'gnome-calculator']));
    expect(doc.steps[3].postconditions.map((p: { text: string }) => p.text)).toContain('42');
    const thumb = await fetch(`${daemon.url}${doc.images[doc.steps[0].thumbnails.before]}`, { headers: { authorization: `Bearer ${daemon.token}` } });
    expect(thumb.headers.get('content-type')).toBe('image/png');
    console.info(`[replay e2e] recorded task: ${task.steps.length} steps, ${task.finishedAt - task.startedAt} ms; recording ${doc.recordedMs} ms; model requests ${requests}`);
  });

  it('replays to 42 after the window was resized (xdotool), with no model request', async () => {
    expect(recordingId).not.toBe('');
    const rec = (await api('GET', `/v1/recordings/${recordingId}`)).json;
    const wins = (await api<{ windows: { id: string; app: string; bounds: Rect }[] }>('GET', '/v1/windows')).json.windows;
    const w = wins.find((x) => x.app === 'gnome-calculator')!;
    // Resized, every button moves and grows. (Moved, GTK 4 would report its extents relative to the window:
    // GTK 4 has no screen coordinates over AT-SPI, and the Linux backend does not add the window's
    // position yet, so every element of a moved GTK 4 window is observed at its old place — see docs/replay.md.)
    await execFileP('xdotool', ['windowsize', w.id, String(Math.round(w.bounds.width * 1.6)), String(Math.round(w.bounds.height * 1.3))]);
    const was = rec.steps[0].fingerprint.bounds as Rect;
    let last: unknown = null;
    const moved = await waitFor(async () => {
      const o = await observe({ ocr: false, fresh: true });
      const seven = o.elements.find((e) => e.role === 'button' && e.name === '7');
      last = { seven: seven?.bounds, window: (await api('GET', '/v1/windows')).json.windows.find((x: { app: string }) => x.app === 'gnome-calculator')?.bounds };
      return seven && (seven.bounds.x !== was.x || seven.bounds.y !== was.y) && seven.bounds.width > was.width ? o : null;
    }, 15_000, 'the calculator laid out at its new size').catch((e: Error) => {
      throw new Error(`${e.message}: recorded ${JSON.stringify(was)}, now ${JSON.stringify(last)}`);
    });
    void moved;
    // Clear the entry (Escape), so 42 can only come from the replay.
    await api('POST', '/v1/actions', { type: 'keypress', keys: ['ESCAPE'] });
    await waitFor(async () => !['42', null].includes(display(await observe())), 5000, 'the entry to clear');
    const requests = model.requests.length;
    const v = await replayToEnd({ recordingId });
    console.info(`[replay e2e] calculator replay: ${v.durationMs} ms (${v.steps.map((s: any) => `${s.grounded?.name}: observe ${s.observeMs} act ${s.actMs} wait ${s.waitMs}`).join('; ')})`);
    expect(v.error, JSON.stringify(v.divergence)).toBeNull();
    expect(v.status).toBe('succeeded');
    expect(v.steps.map((s: any) => s.grounded.name)).toEqual(['7', '×', '6', '=']);
    // Each click went where the button is now, not where it was recorded.
    v.steps.forEach((s: any, i: number) => expect(s.grounded.bounds.x === rec.steps[i].fingerprint.bounds.x && s.grounded.bounds.y === rec.steps[i].fingerprint.bounds.y).toBe(false));
    expect(model.requests.length).toBe(requests);
    expect(display(await observe())).toBe('42');
    const audit = await fetch(`${daemon.url}/v1/audit?limit=200`, { headers: { authorization: `Bearer ${daemon.operatorToken}` } });
    const records = ((await audit.json()) as { records: { kind: string; actor: string }[] }).records;
    expect(records.filter((r) => r.kind === 'decision' && r.actor === `replay:${recordingId}`).length).toBe(4);
  });

  it('postconditions: a step that does not bring about what it did when recorded stops the replay (REPLAY_POSTCONDITION_FAILED); nothing after it is dispatched', async () => {
    expect(recordingId).not.toBe('');
    const doc = (await api('GET', `/v1/recordings/${recordingId}`)).json;
    // The last step expects at least the entry's 42 (what else depends on how the model batched its clicks).
    expect(doc.steps[3].postconditions).toContainEqual(expect.objectContaining({ kind: 'appears', text: '42' }));
    // A copy whose step 2 (×) also expects a calculator window "Preferences" to open: it never does.
    const copy = structuredClone(doc);
    delete copy.images;
    copy.id = `rec_${randomUUID()}`;
    copy.steps[1].postconditions.push({ kind: 'window', app: 'gnome-calculator', title: 'Preferences', present: true });
    await mkdir(join(configDir, 'recordings', copy.id), { recursive: true, mode: 0o700 });
    await writeFile(join(configDir, 'recordings', copy.id, 'recording.json'), JSON.stringify(copy), { mode: 0o600 });
    await api('POST', '/v1/actions', { type: 'keypress', keys: ['ESCAPE'] });
    await waitFor(async () => !['42', null].includes(display(await observe())), 5000, 'the entry to clear');
    const v = await replayToEnd({ recordingId: copy.id });
    expect(v.status, JSON.stringify(v.error)).toBe('diverged');
    expect(v.error.code).toBe('REPLAY_POSTCONDITION_FAILED');
    expect(v.divergence).toMatchObject({ step: 2, reason: 'postcondition' });
    expect(v.divergence.seen.missing).toEqual([{ postcondition: 'window gnome-calculator "Preferences" shown', seen: expect.stringContaining('gnome-calculator "Calculator"') }]);
    expect(v.steps.map((s: any) => s.outcome)).toEqual(['done', 'diverged']);
    // 7 and × were pressed; 6 and = never were.
    await new Promise((r) => setTimeout(r, 500));
    const shown = display(await observe()) ?? '';
    expect(shown).toContain('7');
    expect(shown).not.toContain('6');
    const audit = await fetch(`${daemon.url}/v1/audit?limit=200`, { headers: { authorization: `Bearer ${daemon.operatorToken}` } });
    const records = ((await audit.json()) as { records: { kind: string; actor: string }[] }).records;
    expect(records.filter((r) => r.kind === 'decision' && r.actor === `replay:${copy.id}`).length).toBe(2);
    // Leave the entry empty for the next test.
    await api('POST', '/v1/actions', { type: 'keypress', keys: ['ESCAPE'] });
    await waitFor(async () => ['', '0'].includes(display(await observe()) ?? '?'), 5000, 'the entry to clear');
  });

  it('attack: once the policy denies the calculator, the replay is refused by the policy and nothing is dispatched', async () => {
    const o = await observe();
    await api('POST', '/v1/actions', { type: 'click', target: { ref: o.elements.find((e) => e.role === 'button' && e.name === '6')!.ref, observationId: o.observationId } });
    await waitFor(async () => display(await observe()) === '6', 5000, 'the entry to show 6');
    await setPolicy('deny');
    try {
      const v = await replayToEnd({ recordingId });
      expect(v.status).toBe('failed');
      expect(v.error.code).toBe('POLICY_DENIED');
      expect(v.steps).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 300));
      expect(display(await observe())).toBe('6');
    } finally {
      await setPolicy('allow');
    }
  });

  it('attack: once the policy masks the calculator, its thumbnails and texts are no longer served', async () => {
    const before = (await api('GET', `/v1/recordings/${recordingId}`)).json;
    const url = before.images[before.steps[0].thumbnails.before] as string;
    expect((await api('GET', url)).status).toBe(200);
    await setPolicy('mask');
    try {
      const now = (await api('GET', `/v1/recordings/${recordingId}?images=inline`)).json;
      expect(now.images).toEqual({});
      expect(now.steps.every((s: any) => s.fingerprint.name === '' && s.thumbnails.before === null && s.postconditions.length === 0)).toBe(true);
      const img = await api('GET', url);
      expect(img.status).toBe(404);
      expect(img.json.error.code).toBe('RECORDING_NOT_FOUND');
    } finally {
      await setPolicy('allow');
    }
  });
});

describe('a CI page in Chromium: an agent records its own session', () => {
  let recordingId = '';
  const show = async (query: string, label: string) => {
    await calc?.kill();
    calc = null;
    await chromium?.kill();
    chromium = launchChromium(`${base}/ci${query}`, { width: WIDTH, height: HEIGHT });
    const c = chromium;
    return waitFor(async () => {
      if (c.exited()) throw new Error(`chromium exited: ${c.output().slice(-2000)}`);
      const o = await observe();
      return o.elements.some((e) => e.role === 'button' && e.name === label) && o.elements.some((e) => e.name === 'Clicked 0 times') ? o : null;
    }, 90_000, `the page with "${label}"`);
  };

  it('records "Run build" and the wait for "succeeded"', async () => {
    await show('', 'Run build');
    const start = await api<{ id: string }>('POST', '/v1/recordings', { name: 'run the build', goal: 'Run the build and wait until it succeeded' });
    expect(start.status).toBe(201);
    recordingId = start.json.id;
    // Under a heavy load an accessibility read can be cut short by its time budget (the locator then finds
    // nothing): a refused click is not recorded, so it is simply sent again.
    let click: { status: number; json: unknown } = { status: 0, json: null };
    let wait: { status: number; json: unknown } = { status: 0, json: null };
    let stop: { status: number; json: any } = { status: 0, json: null };
    try {
      for (let i = 0; i < 5 && click.status !== 200; i++) click = await api('POST', '/v1/actions', { type: 'click', target: { role: 'button', name: 'Run build' } });
      if (click.status === 200) wait = await api('POST', '/v1/wait', { until: { text: 'succeeded' }, timeoutMs: 15_000, ocr: false });
    } finally {
      // Stopped whatever happened, so the later tests replay a finished recording (or report why it is short).
      stop = await api('POST', `/v1/recordings/${recordingId}/stop`);
    }
    expect(click.status, JSON.stringify(click.json)).toBe(200);
    expect(wait.status, JSON.stringify(wait.json)).toBe(200);
    expect(stop.json.steps).toBe(2);
    const doc = (await api('GET', `/v1/recordings/${recordingId}`)).json;
    expect(doc.steps[0]).toMatchObject({ kind: 'action', action: { type: 'click' }, fingerprint: { role: 'button', name: 'Run build', app: 'chromium' } });
    expect(doc.steps[0].fingerprint.labels.length + doc.steps[0].fingerprint.path.length).toBeGreaterThan(0);
    expect(doc.steps[1]).toMatchObject({ kind: 'wait', until: { text: 'succeeded' } });
    expect(pageClicks).toBe(1);
  });

  it('replays after the button moved and the page was restyled', async () => {
    const o = await show('?moved&dark', 'Run build');
    const now = o.elements.find((e) => e.role === 'button' && e.name === 'Run build')!;
    const clicks = pageClicks;
    const v = await replayToEnd({ recordingId });
    console.info(`[replay e2e] CI replay (moved, restyled): ${v.durationMs} ms, score ${v.steps[0]?.grounded?.score}, margin ${v.steps[0]?.grounded?.margin}`);
    expect(v.error, JSON.stringify(v.divergence)).toBeNull();
    expect(v.status).toBe('succeeded');
    expect(v.steps[0].grounded).toMatchObject({ role: 'button', name: 'Run build' });
    expect(Math.abs(v.steps[0].grounded.bounds.x - now.bounds.x)).toBeLessThan(5);
    expect(v.steps.map((s: any) => [s.kind, s.outcome])).toEqual([['action', 'done'], ['wait', 'done']]);
    expect(pageClicks).toBe(clicks + 1);
    expect((await observe()).elements.some((e) => /Build \d+ succeeded/.test(e.name))).toBe(true);
  });

  it('with the button renamed, the replay stops at that step with a divergence naming the candidates; nothing after it happens', async () => {
    await show('?label=Start%20pipeline', 'Start pipeline');
    const clicks = pageClicks;
    const v = await replayToEnd({ recordingId });
    expect(v.status).toBe('diverged');
    expect(v.error.code).toBe('REPLAY_DIVERGED');
    expect(v.divergence.step).toBe(1);
    expect(['weak_match', 'no_candidate']).toContain(v.divergence.reason);
    expect(v.divergence.expected).toMatchObject({ role: 'button', name: 'Run build' });
    expect(v.divergence.candidates.map((c: any) => c.name)).toEqual(expect.arrayContaining(['Start pipeline', 'Cancel']));
    expect(v.events).toContain('divergence');
    // The wait step never ran, and the page's own counter says the button was never clicked.
    expect(v.steps).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1000));
    expect(pageClicks).toBe(clicks);
    expect((await observe()).elements.some((e) => e.name === 'Clicked 0 times')).toBe(true);
  });
});
