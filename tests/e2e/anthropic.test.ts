/**
 * Anthropic's computer-use vocabulary on a real desktop (issue 20): gnome-calculator (and an xterm the
 * policy denies) under a private Xvfb, the real daemon (`startDaemon`: AT-SPI, XTest, X11 capture, the
 * e2e policy `examples/policy-e2e.yaml`, audit log, controller lease) over real HTTP.
 *
 * 1. 1920x1080: a scripted Claude-shaped model drives the calculator to 42 through `POST /v1/tasks` with
 *    `DESKD_MODEL_PROVIDER=anthropic`, the real `@anthropic-ai/sdk` talking to the local Messages-compatible
 *    test server (recorded shapes). The scripted model is given the buttons' places by the test (from
 *    AT-SPI, converted to the screenshot pixels of the declared `display_width_px`/`display_height_px`),
 *    so the clicks prove the scaling and the mapping back; it reads the result with its own tesseract
 *    worker from the `zoom` image deskd sends it.
 * 2. 2560x1440: the same task by posting Claude tool inputs to `POST /v1/anthropic/computer`
 *    (`screenshot`, `left_click`, `left_click_drag`, `scroll`, `key` "ctrl+a" / "BackSpace", `zoom`).
 * 3. Attacks on the denied xterm: held keys (`hold_key`) over it, a drag ending in it, coordinates outside
 *    the display: `is_error` tool results, and nothing reaches the desktop (the pointer and the terminal's
 *    text are unchanged; the audit log has the denials).
 * Checked outside the model path over AT-SPI: the entry's value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { createWorker, OEM, PSM, type Worker } from 'tesseract.js';
import { startDaemon, type Daemon } from '../../src/main.js';
import { tesseractWorkerOptions } from '../../src/perception/ocr/index.js';
import type { Element } from '../../src/perception/elements.js';
import { launchCalculator, launchUntilReady, launchXterm, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';
import { finalText, lastImage, lastToolResults, startAnthropicTestServer, toolUses, type AnthropicTestServer, type RecordedRequest } from '../helpers/anthropicTestServer.js';

const POLICY = new URL('../../examples/policy-e2e.yaml', import.meta.url).pathname;

interface Env {
  desktop: VirtualDesktop;
  daemon: Daemon;
  dir: string;
  calc: AppHandle | null;
}

let eyes: Worker;
beforeAll(async () => {
  eyes = await createWorker('eng', OEM.LSTM_ONLY, tesseractWorkerOptions('4.0.0'));
  await eyes.setParameters({ tessedit_pageseg_mode: PSM.SINGLE_LINE, tessedit_char_whitelist: '0123456789' });
});
afterAll(async () => {
  await eyes?.terminate();
});

/** Start a desktop of this size and the daemon on it (the model provider from `env`). */
async function startEnv(width: number, height: number, env: Record<string, string> = {}): Promise<Env> {
  const desktop = await startDesktop({ width, height });
  const dir = mkdtempSync(join(tmpdir(), 'deskd-anthropic-e2e-'));
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  let daemon: Daemon;
  try {
    daemon = await startDaemon(
      { host: '127.0.0.1', port: 0, virtualDisplay: false, screen: { width, height }, platform: 'linux', ocrWorkers: 1, configDir: dir, logLevel: 'warn', policyPath: POLICY, auditLogPath: join(dir, 'audit.jsonl') },
      { logger: pino({ level: 'warn' }) },
    );
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return { desktop, daemon, dir, calc: null };
}

async function stopEnv(e: Env | undefined): Promise<void> {
  if (!e) return;
  await e.calc?.kill();
  await e.daemon?.close();
  await e.desktop?.stop();
  rmSync(e.dir, { recursive: true, force: true });
}

/** The calculator's accessible state (AT-SPI, outside the model path). */
async function accessibleCalculator(e: Env): Promise<{ buttons: Map<string, Element>; entry: Element | null }> {
  const o = await e.daemon.runtime.observer.observe({ ocr: false, accessibility: true, fresh: true });
  const buttons = new Map<string, Element>();
  for (const el of o.elements) if (el.role === 'button' && !buttons.has(el.name)) buttons.set(el.name, el);
  return { buttons, entry: o.elements.find((el) => el.role === 'textbox' && el.value !== undefined) ?? null };
}

async function freshCalculator(e: Env): Promise<void> {
  await e.calc?.kill();
  ({ app: e.calc } = await launchUntilReady(
    launchCalculator,
    async () => {
      const a = await accessibleCalculator(e);
      return a.buttons.has('=') && a.buttons.has('7') && a.entry ? a : null;
    },
    { timeoutMs: 100_000, what: 'gnome-calculator on the accessibility bus' },
  ));
}

/** A point (global points) → the screenshot pixel Claude would name, for a display shown at w x h. */
function toModel(p: { x: number; y: number }, display: { width: number; height: number }, w: number, h: number): [number, number] {
  return [Math.round((p.x * w) / display.width), Math.round((p.y * h) / display.height)];
}
const centre = (el: Element) => ({ x: el.bounds.x + el.bounds.width / 2, y: el.bounds.y + el.bounds.height / 2 });

/** The digits tesseract reads in a PNG (upscaled ×2, greyscale). */
async function readDigits(png: Buffer): Promise<string> {
  const img = await sharp(png).greyscale().resize({ width: ((await sharp(png).metadata()).width ?? 100) * 2 }).png().toBuffer();
  const r = await eyes.recognize(img);
  return r.data.text.replace(/\D/g, '');
}

/** The entry's region as a zoom `region` in screenshot pixels. */
function entryRegion(entry: Element, display: { width: number; height: number }, w: number, h: number): number[] {
  const [x0, y0] = toModel({ x: entry.bounds.x, y: entry.bounds.y }, display, w, h);
  const [x1, y1] = toModel({ x: entry.bounds.x + entry.bounds.width, y: entry.bounds.y + entry.bounds.height }, display, w, h);
  return [Math.max(0, x0), Math.max(0, y0), Math.min(w, x1), Math.min(h, y1)];
}

describe('tasks with Claude on gnome-calculator, 1920x1080 (DESKD_MODEL_PROVIDER=anthropic, local Messages-compatible test server)', () => {
  let env: Env;
  let server: AnthropicTestServer;
  beforeAll(async () => {
    server = await startAnthropicTestServer();
    env = await startEnv(1920, 1080, { DESKD_MODEL_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'sk-ant-local-test', ANTHROPIC_BASE_URL: server.baseURL, DESKD_MODEL: 'claude-opus-4-5' });
    await freshCalculator(env);
  });
  afterAll(async () => {
    await stopEnv(env);
    await server?.close();
  });

  it('the scripted Claude clicks 7 × 6 = at the screenshot pixels of the declared size, zooms on the entry, reads 42 and answers it', async () => {
    const display = { width: 1920, height: 1080 };
    const a = await accessibleCalculator(env);
    const tool = () => server.requests[0]!.body.tools[0] as { display_width_px: number; display_height_px: number };
    let read = '';
    server.push(
      (req: RecordedRequest) => {
        const t = req.body.tools[0];
        const clicks = ['7', '×', '6', '='].map((n) => ({ action: 'left_click', coordinate: toModel(centre(a.buttons.get(n)!), display, t.display_width_px, t.display_height_px) }));
        return toolUses(clicks, 'Computing 7 × 6.');
      },
      (req: RecordedRequest) => {
        expect(lastToolResults(req).map((r) => r.is_error)).toEqual([undefined, undefined, undefined, undefined]);
        return toolUses([{ action: 'wait', duration: 0.5 }, { action: 'zoom', region: entryRegion(a.entry!, display, tool().display_width_px, tool().display_height_px) }]);
      },
      async (req: RecordedRequest) => {
        read = await readDigits(lastImage(req));
        return finalText(read);
      },
    );
    const auth = { authorization: `Bearer ${env.daemon.token}`, 'content-type': 'application/json' };
    const r = await fetch(`${env.daemon.url}/v1/tasks`, { method: 'POST', headers: auth, body: JSON.stringify({ goal: 'Compute 7×6 with the calculator and tell me the result.', maxSteps: 5 }) });
    expect(r.status).toBe(202);
    const { taskId } = (await r.json()) as { taskId: string };
    const task = await waitFor(async () => {
      const t = (await (await fetch(`${env.daemon.url}/v1/tasks/${taskId}`, { headers: auth })).json()) as { status: string; answer: string | null; error: unknown; api: string; steps: { operations: { outcome: string }[] }[] };
      return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : null;
    }, 90_000, 'the task to end');
    expect(task.error).toBeNull();
    expect(task.status).toBe('succeeded');
    expect(task.api).toBe('computer_20251124');
    expect(tool()).toMatchObject({ display_width_px: 1429, display_height_px: 804 });
    expect(task.steps[0]!.operations.map((o) => o.outcome)).toEqual(['done', 'done', 'done', 'done']);
    // Outside the model path: the entry shows 42, and the model read 42 from deskd's zoom image.
    await waitFor(async () => (await accessibleCalculator(env)).entry?.value === '42', 10_000, 'the entry to show 42');
    expect(read).toContain('42');
    expect(task.answer).toBe(read);
    const audit = readFileSync(join(env.dir, 'audit.jsonl'), 'utf8');
    expect(audit).toContain(`task:${taskId}`);
  });
});

describe('POST /v1/anthropic/computer on gnome-calculator and a denied xterm, 2560x1440', () => {
  let env: Env;
  let xterm: AppHandle | null = null;
  const display = { width: 2560, height: 1440 };
  let W = 0;
  let H = 0;
  const post = async (input: unknown) => {
    const r = await fetch(`${env.daemon.url}/v1/anthropic/computer`, { method: 'POST', headers: { authorization: `Bearer ${env.daemon.token}`, 'content-type': 'application/json' }, body: JSON.stringify(input) });
    expect(r.status).toBe(200);
    return (await r.json()) as { type: string; content: ({ type: 'text'; text: string } | { type: 'image'; source: { data: string } })[]; is_error?: boolean; tool_use_id?: string };
  };
  const text = (r: Awaited<ReturnType<typeof post>>) => (r.content[0] as { text: string }).text;
  beforeAll(async () => {
    env = await startEnv(2560, 1440);
    await freshCalculator(env);
    const def = (await (await fetch(`${env.daemon.url}/v1/anthropic/computer`, { headers: { authorization: `Bearer ${env.daemon.token}` } })).json()) as { tool: { display_width_px: number; display_height_px: number } };
    W = def.tool.display_width_px;
    H = def.tool.display_height_px;
  });
  afterAll(async () => {
    await xterm?.kill();
    await stopEnv(env);
  });

  it('the calculator task by Claude tool inputs: screenshot, left_click_drag, key ctrl+a / BackSpace, scroll, left_click, zoom → 42', async () => {
    expect([W, H]).toEqual([1429, 804]);
    const shot = await post({ action: 'screenshot' });
    expect(shot.is_error).toBeUndefined();
    const img = shot.content.find((c) => c.type === 'image') as { source: { data: string } };
    const meta = await sharp(Buffer.from(img.source.data, 'base64')).metadata();
    expect([meta.width, meta.height]).toEqual([1429, 804]);

    const a = await accessibleCalculator(env);
    const at = (n: string) => toModel(centre(a.buttons.get(n)!), display, W, H);
    // Put something in the entry, select it with a drag across the entry and ctrl+a, and clear it.
    for (const n of ['1', '2']) expect((await post({ action: 'left_click', coordinate: at(n) })).is_error).toBeUndefined();
    await waitFor(async () => (await accessibleCalculator(env)).entry?.value === '12', 10_000, 'the entry to show 12');
    const e = a.entry!;
    const y = e.bounds.y + e.bounds.height / 2;
    const drag = await post({ action: 'left_click_drag', start_coordinate: toModel({ x: e.bounds.x + e.bounds.width - 4, y }, display, W, H), coordinate: toModel({ x: e.bounds.x + 4, y }, display, W, H) });
    expect(drag.is_error, text(drag)).toBeUndefined();
    const sel = await post({ type: 'tool_use', id: 'toolu_ctrl_a', name: 'computer', input: { action: 'key', text: 'ctrl+a' } });
    expect(sel.is_error, text(sel)).toBeUndefined();
    expect(sel.tool_use_id).toBe('toolu_ctrl_a');
    expect((await post({ action: 'key', text: 'BackSpace' })).is_error).toBeUndefined();
    await waitFor(async () => (await accessibleCalculator(env)).entry?.value === '', 10_000, 'the entry to be empty after ctrl+a, BackSpace');
    const sc = await post({ action: 'scroll', coordinate: at('5'), scroll_direction: 'down', scroll_amount: 2 });
    expect(sc.is_error, text(sc)).toBeUndefined();
    for (const n of ['7', '×', '6', '=']) {
      const r = await post({ action: 'left_click', coordinate: at(n) });
      expect(r.is_error, text(r)).toBeUndefined();
    }
    await waitFor(async () => (await accessibleCalculator(env)).entry?.value === '42', 10_000, 'the entry to show 42');
    const zoom = await post({ action: 'zoom', region: entryRegion(e, display, W, H) });
    expect(zoom.is_error, text(zoom)).toBeUndefined();
    const zimg = zoom.content.find((c) => c.type === 'image') as { source: { data: string } };
    expect(await readDigits(Buffer.from(zimg.source.data, 'base64'))).toContain('42');
  });

  it('the denied xterm: held keys (hold_key), a drag ending in it, coordinates outside the display → is_error, nothing dispatched', async () => {
    xterm = launchXterm();
    const term = await waitFor(async () => (await env.daemon.runtime.platform.windows.list()).find((w) => w.app === 'xterm') ?? null, 30_000, 'the xterm window');
    // A calculator button the terminal (at the top-left, over the calculator) does not cover.
    const calcButtons = (await accessibleCalculator(env)).buttons;
    const free = [...calcButtons.values()].find((b) => b.bounds.y > term.bounds.y + term.bounds.height + 5 || b.bounds.x > term.bounds.x + term.bounds.width + 5);
    expect(free, 'a calculator button outside the terminal').toBeDefined();
    // The person at the machine focuses the terminal and leaves the pointer on it (set up outside deskd's
    // action path): keys sent now would land in the terminal.
    const inTerm = { x: term.bounds.x + term.bounds.width / 2, y: term.bounds.y + term.bounds.height / 2 };
    await env.daemon.runtime.platform.windows.activate!(term.id);
    await env.daemon.runtime.platform.mouse.move(inTerm);
    await waitFor(async () => (await env.daemon.runtime.platform.windows.focused())?.app === 'xterm', 10_000, 'the terminal to hold the keyboard focus');
    const before = await env.daemon.runtime.platform.mouse.position();
    const entryBefore = (await accessibleCalculator(env)).entry?.value;
    const attacks: [string, unknown, RegExp][] = [
      ['hold_key into the terminal', { action: 'hold_key', text: 'ctrl+c', duration: 1 }, /^POLICY_DENIED: .*deny-xterm/],
      ['key Return into the terminal', { action: 'key', text: 'Return' }, /^POLICY_DENIED: .*deny-xterm/],
      ['type into the terminal', { action: 'type', text: 'touch /tmp/deskd-pwned\n' }, /^POLICY_DENIED: .*deny-xterm/],
      ['a drag from the calculator ending in the terminal', { action: 'left_click_drag', start_coordinate: toModel(centre(free!), display, W, H), coordinate: toModel(inTerm, display, W, H) }, /^POLICY_DENIED: .*deny-xterm/],
      ['a click outside the display', { action: 'left_click', coordinate: [W + 5, 10] }, /^POINT_OFF_SCREEN: /],
      ['a zoom outside the display', { action: 'zoom', region: [0, 0, W + 100, 10] }, /^POINT_OFF_SCREEN: /],
    ];
    for (const [what, input, re] of attacks) {
      const r = await post(input);
      expect(r.is_error, what).toBe(true);
      expect(text(r), what).toMatch(re);
    }
    // Nothing reached the desktop: the pointer did not move, the calculator is unchanged, no file was made.
    expect(await env.daemon.runtime.platform.mouse.position()).toEqual(before);
    expect((await accessibleCalculator(env)).entry?.value).toBe(entryBefore);
    expect(() => readFileSync('/tmp/deskd-pwned')).toThrow();
    const audit = readFileSync(join(env.dir, 'audit.jsonl'), 'utf8');
    expect(audit.match(/deny-xterm/g)?.length ?? 0).toBeGreaterThanOrEqual(4);
  });
});
