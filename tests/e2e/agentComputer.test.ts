/**
 * Computer mode end to end: a model-driven task on gnome-calculator under a private Xvfb desktop, with
 * the daemon's real runtime (Linux backend: X11 capture, XTest input, AT-SPI; a policy allowing the
 * calculator; audit log) and the real `openai` SDK talking to a local OpenAI-compatible test server that
 * serves recorded computer-use response shapes (`tests/fixtures/openai/`).
 *
 * The scripted "model" sees only what a computer-use model sees: the screenshots deskd sends it (the
 * first request's `input_image`, then each `computer_call_output`'s `computer_screenshot` data URL).
 * From their pixels it finds the calculator's keypad (uniform rounded rectangles), reads the button
 * labels with tesseract.js (its own worker, offline model from `@tesseract.js-data/eng`), answers
 * `computer_call`s with `click` actions at the centres it found — batched `actions` for the `computer`
 * tool, one `action` per call for `computer_use_preview` — and after `=` reads the result from the
 * calculator's entry in the next screenshot (OCR) and answers it in a final message. The accessibility
 * tree (AT-SPI, outside the model path) is the independent check that the calculator shows 42 and that
 * each click landed on the button it meant.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { createWorker, OEM, PSM, type Worker } from 'tesseract.js';
import { pino } from 'pino';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { approvalDenier, approvalManagerApprover } from '../../src/agent/approvals.js';
import type { TaskEvent, TaskView } from '../../src/agent/types.js';
import type { Element } from '../../src/perception/elements.js';
import { tesseractWorkerOptions } from '../../src/perception/ocr/index.js';
import { launchCalculator, launchUntilReady, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';
import {
  computerCall,
  fixture,
  finalMessage,
  previewCall,
  startOpenAITestServer,
  type OpenAITestServer,
  type RecordedRequest,
  type Reply,
} from '../helpers/openaiTestServer.js';

const WIDTH = 1280;
const HEIGHT = 800;

// ---------------------------------------------------------------------------------------------------
// The scripted model's eyes: the screenshot it was sent, decoded with sharp and read with tesseract.js.
// ---------------------------------------------------------------------------------------------------

/** An RGB image (3 bytes per pixel, rows top to bottom). */
interface Rgb {
  data: Buffer;
  width: number;
  height: number;
}

/** An axis-aligned box in screenshot pixels. */
interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A keypad button found in the pixels: its box, its fill colour and what OCR read on it. */
interface SeenButton extends Box {
  fill: [number, number, number];
  read: string;
}

/** The latest screenshot in a Responses request: the last `computer_call_output` image, else the last `input_image`. */
function latestScreenshot(req: RecordedRequest): string {
  const input = req.body.input as Record<string, unknown>[];
  for (let i = input.length - 1; i >= 0; i--) {
    const item = input[i]!;
    if (item.type === 'computer_call_output') {
      const out = item.output as { type: string; image_url: string };
      if (out.type === 'computer_screenshot' && out.image_url.startsWith('data:image/png;base64,')) return out.image_url;
    }
    if (Array.isArray(item.content)) {
      for (const c of [...(item.content as Record<string, unknown>[])].reverse()) {
        if (c.type === 'input_image' && typeof c.image_url === 'string' && c.image_url.startsWith('data:image/png;base64,')) return c.image_url;
      }
    }
  }
  throw new Error('the request carries no screenshot');
}

async function decode(dataUrl: string): Promise<Rgb> {
  const png = Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Largest channel difference between pixel (x, y) and a colour. */
function distance(img: Rgb, x: number, y: number, c: readonly number[]): number {
  const i = (y * img.width + x) * 3;
  return Math.max(Math.abs(img.data[i]! - c[0]!), Math.abs(img.data[i + 1]! - c[1]!), Math.abs(img.data[i + 2]! - c[2]!));
}

function colourAt(img: Rgb, x: number, y: number): [number, number, number] {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
}

/** Regions of near-uniform colour (4-connected flood fill, every pixel within `tol` of the seed): bounding box, pixel count, colour. */
function uniformRegions(img: Rgb, tol = 4): (Box & { n: number; fill: [number, number, number] })[] {
  const { width: W, height: H } = img;
  const seen = new Uint8Array(W * H);
  const stack = new Int32Array(W * H);
  const out: (Box & { n: number; fill: [number, number, number] })[] = [];
  for (let p0 = 0; p0 < W * H; p0++) {
    if (seen[p0]) continue;
    const fill = colourAt(img, p0 % W, Math.floor(p0 / W));
    let top = 0;
    stack[top++] = p0;
    seen[p0] = 1;
    let n = 0;
    let x1 = W;
    let y1 = H;
    let x2 = -1;
    let y2 = -1;
    while (top > 0) {
      const p = stack[--top]!;
      const x = p % W;
      const y = (p - x) / W;
      n++;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      if (y > y2) y2 = y;
      const visit = (q: number, qx: number, qy: number) => {
        if (seen[q] || distance(img, qx, qy, fill) > tol) return;
        seen[q] = 1;
        stack[top++] = q;
      };
      if (x + 1 < W) visit(p + 1, x + 1, y);
      if (x > 0) visit(p - 1, x - 1, y);
      if (y + 1 < H) visit(p + W, x, y + 1);
      if (y > 0) visit(p - W, x, y - 1);
    }
    out.push({ x: x1, y: y1, w: x2 - x1 + 1, h: y2 - y1 + 1, n, fill });
  }
  return out;
}

/**
 * Grey image of the "ink" of a box: pixels far from `bg` drawn dark on white, so light-on-colour labels
 * (white "=" on orange) read like dark-on-white text, cropped to the ink with a margin and upscaled
 * (tesseract misses small isolated glyphs), padded with white. Null when the box has no ink.
 */
async function inkCrop(img: Rgb, box: Box, bg: readonly number[], inset: number, scale: number, dropCursor = false): Promise<Buffer | null> {
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -1;
  let y2 = -1;
  const ink = (x: number, y: number) => distance(img, x, y, bg) > 40;
  const cols: number[] = [];
  for (let x = box.x + inset; x < box.x + box.w - inset; x++) {
    let count = 0;
    for (let y = box.y + inset; y < box.y + box.h - inset; y++) {
      if (!ink(x, y)) continue;
      count++;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      if (y > y2) y2 = y;
    }
    cols.push(count);
  }
  if (x2 < 0) return null;
  // The entry's text cursor is a 1-2 px wide vertical bar standing alone: blank it (OCR reads it as "1" or "l").
  const blank = new Set<number>();
  if (dropCursor) {
    let run = 0;
    for (let i = 0; i <= cols.length; i++) {
      if (i < cols.length && cols[i]! > 0) run++;
      else {
        if (run > 0 && run <= 2 && Math.max(...cols.slice(i - run, i)) >= 0.8 * (y2 - y1 + 1)) for (let k = i - run; k < i; k++) blank.add(box.x + inset + k);
        run = 0;
      }
    }
  }
  const m = 3;
  const cx = Math.max(0, x1 - m);
  const cy = Math.max(0, y1 - m);
  const cw = Math.min(img.width, x2 + m + 1) - cx;
  const ch = Math.min(img.height, y2 + m + 1) - cy;
  const grey = Buffer.alloc(cw * ch, 255);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      if (blank.has(cx + x)) continue;
      grey[y * cw + x] = Math.max(0, 255 - 2 * distance(img, cx + x, cy + y, bg));
    }
  }
  return sharp(grey, { raw: { width: cw, height: ch, channels: 1 } })
    .resize(cw * scale, ch * scale, { kernel: 'lanczos3' })
    .extend({ top: 24, bottom: 24, left: 24, right: 24, background: '#ffffff' })
    .png()
    .toBuffer();
}

/** The calculator as the scripted model sees it in one screenshot. */
interface CalculatorView {
  buttons: SeenButton[];
  /** The entry line (the white band above the keypad). */
  entry: Box & { fill: [number, number, number] };
}

/**
 * Find the keypad in a screenshot: buttons are regions of one fill colour, 30–200 px on a side, mostly
 * filled (the label's glyphs are the holes), on at least 4 rows; each is read by OCR as a single
 * character/word. The entry is the widest near-white band above the keypad.
 */
async function look(worker: Worker, dataUrl: string, opts: { readLabels?: boolean } = {}): Promise<CalculatorView & { img: Rgb }> {
  const img = await decode(dataUrl);
  const regions = uniformRegions(img);
  const found = regions.filter((r) => r.w >= 30 && r.h >= 30 && r.w <= 200 && r.h <= 200 && r.n / (r.w * r.h) > 0.6);
  const rows = new Set(found.map((b) => b.y));
  if (found.length < 16 || rows.size < 4) throw new Error(`no keypad in the screenshot (${found.length} button-like regions on ${rows.size} rows)`);
  const top = Math.min(...found.map((b) => b.y));
  const left = Math.min(...found.map((b) => b.x));
  const right = Math.max(...found.map((b) => b.x + b.w));
  const entry = regions
    .filter((r) => r.y + r.h <= top && r.fill.every((c) => c >= 250) && r.w >= 0.8 * (right - left) && r.h >= 20)
    .sort((a, b) => b.y - a.y)[0];
  if (!entry) throw new Error('no entry line above the keypad');
  // The crops carry no resolution; a fixed dpi keeps tesseract from warning on each one.
  await worker.setParameters({ tessedit_pageseg_mode: PSM.SINGLE_CHAR, user_defined_dpi: '300' });
  const buttons: SeenButton[] = [];
  for (const b of found) {
    const crop = opts.readLabels === false ? null : await inkCrop(img, b, b.fill, 3, 4);
    const read = crop ? (await worker.recognize(crop)).data.text.trim() : '';
    buttons.push({ x: b.x, y: b.y, w: b.w, h: b.h, fill: b.fill, read });
  }
  return { buttons, entry, img };
}

/**
 * The button a label names. Digits by their OCR reading (exactly one button must read so); `×` and `=`
 * by their place, because tesseract does not read them reliably alone (× comes out as x/X, like x²'s
 * base; = as a dash): `×` is the button right of `6` in its row and must read as an x, `=` is the
 * one button in a saturated accent colour (the calculator's "suggested action").
 */
function locate(view: CalculatorView, label: string): SeenButton {
  const one = (list: SeenButton[], what: string): SeenButton => {
    if (list.length !== 1) throw new Error(`${what}: ${list.length} candidates; read ${JSON.stringify(view.buttons.map((b) => b.read))}`);
    return list[0]!;
  };
  if (/^\d$/.test(label)) return one(view.buttons.filter((b) => b.read === label), `digit ${label}`);
  if (label === '×') {
    const six = locate(view, '6');
    const right = view.buttons.filter((b) => Math.abs(b.y - six.y) <= 2 && b.x > six.x).sort((a, b) => a.x - b.x)[0];
    return one(right && /^[x×X]$/.test(right.read) ? [right] : [], '× (right of 6, reading as an x)');
  }
  if (label === '=') return one(view.buttons.filter((b) => Math.max(...b.fill) - Math.min(...b.fill) > 100), '= (the accent-coloured button)');
  throw new Error(`the scripted model has no way to find ${label}`);
}

/** A left click on a button's centre, in screenshot pixels (OpenAI computer action). */
function clickOn(b: Box): { type: 'click'; button: 'left'; x: number; y: number } {
  return { type: 'click', button: 'left', x: Math.round(b.x + b.w / 2), y: Math.round(b.y + b.h / 2) };
}

/** The calculator's entry text: OCR of the entry line (text cursor blanked), whitespace removed. */
async function readEntry(worker: Worker, dataUrl: string): Promise<string> {
  const v = await look(worker, dataUrl, { readLabels: false });
  const crop = await inkCrop(v.img, v.entry, v.entry.fill, 2, 3, true);
  if (!crop) return '';
  await worker.setParameters({ tessedit_pageseg_mode: PSM.SINGLE_LINE, user_defined_dpi: '300' });
  const text = (await worker.recognize(crop)).data.text;
  return text.replace(/\s+/g, '');
}

// ---------------------------------------------------------------------------------------------------
// The desktop, the runtime and the test server.
// ---------------------------------------------------------------------------------------------------

let desktop: VirtualDesktop;
let runtime: Runtime;
let dir: string;
let server: OpenAITestServer;
let eyes: Worker;
let calc: AppHandle | null = null;

/** The calculator's accessible state (AT-SPI, outside the model path): buttons by name and the entry's value. */
async function accessibleCalculator(): Promise<{ buttons: Map<string, Element>; display: string | null }> {
  const o = await runtime.observer.observe({ ocr: false, accessibility: true, fresh: true });
  const buttons = new Map<string, Element>();
  for (const e of o.elements) if (e.role === 'button' && !buttons.has(e.name)) buttons.set(e.name, e);
  const entry = o.elements.find((e) => e.role === 'textbox' && e.value !== undefined);
  return { buttons, display: entry?.value ?? null };
}

/** A fresh gnome-calculator (empty entry), ready on the accessibility bus. */
async function freshCalculator(): Promise<void> {
  const old = calc;
  await old?.kill();
  // The old calculator must be gone before the new one is looked for: under load it outlived kill()'s 500 ms
  // grace, its accessible buttons made the new launch look ready, and the task clicked a window about to vanish.
  if (old) await waitFor(() => old.exited(), 15_000, 'the previous gnome-calculator to exit');
  ({ app: calc } = await launchUntilReady(
    launchCalculator,
    async () => {
      const a = await accessibleCalculator();
      return a.buttons.has('=') && a.buttons.has('7') ? a : null;
    },
    { timeoutMs: 100_000, what: 'gnome-calculator on the accessibility bus' },
  ));
}

beforeAll(async () => {
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
  dir = mkdtempSync(join(tmpdir(), 'deskd-agent-computer-e2e-'));
  runtime = await createRuntime(
    {
      host: '127.0.0.1', port: 0, virtualDisplay: false, screen: { width: WIDTH, height: HEIGHT }, platform: 'linux', ocrWorkers: 1,
      configDir: dir, logLevel: 'warn', policyPath: new URL('../fixtures/policy-e2e-apps.yaml', import.meta.url).pathname, auditLogPath: null,
    },
    pino({ level: 'warn' }),
  );
  eyes = await createWorker('eng', OEM.LSTM_ONLY, tesseractWorkerOptions('4.0.0'));
  server = await startOpenAITestServer();
});

afterEach(async () => {
  await calc?.kill();
  calc = null;
});

afterAll(async () => {
  await server?.close();
  await eyes?.terminate();
  await runtime?.close();
  await desktop?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Run one task with the given computer tool; returns the task, its events and the wall time. */
async function runTask(computerTool: AgentConfig['computerTool']): Promise<{ task: TaskView; events: TaskEvent[]; wallMs: number }> {
  const runner = new TaskRunner({
    observer: runtime.observer,
    actions: runtime.executor,
    config: loadAgentConfig({}, { mode: 'computer', computerTool, apiKey: 'sk-local-test', baseURL: server.baseURL, timeoutMs: 60_000, maxRetries: 0 }),
    approve: approvalManagerApprover(runtime.approvals, () => runtime.halt.signal),
    denyApproval: approvalDenier(runtime.approvals),
  });
  const t0 = performance.now();
  const id = runner.start({ goal: 'Compute 7×6 with the calculator and tell me the result.', maxSteps: 12 });
  const events: TaskEvent[] = [];
  runner.subscribe(id, (e) => events.push(e));
  const task = await runner.wait(id);
  const wallMs = Math.round(performance.now() - t0);
  await runner.close();
  console.info(
    `[agent computer e2e: ${computerTool}] status=${task.status} answer=${JSON.stringify(task.answer)} error=${JSON.stringify(task.error)} steps=${task.steps.length} wall=${wallMs}ms ` +
      task.steps.map((s) => `step${s.index}: model ${Math.round(s.modelMs)} ms, act ${Math.round(s.actMs)} ms`).join('; '),
  );
  return { task, events, wallMs };
}

/** Each click must land inside the accessible bounds of the button it was meant for (AT-SPI, not the model's view). */
function expectClicksOn(done: { x: number; y: number }[], buttons: Map<string, Element>, labels: string[]): void {
  expect(done).toHaveLength(labels.length);
  for (const [i, label] of labels.entries()) {
    const b = buttons.get(label)?.bounds;
    expect(b, `accessible button ${label}`).toBeDefined();
    const c = done[i]!;
    expect({ label, inside: c.x >= b!.x && c.x < b!.x + b!.width && c.y >= b!.y && c.y < b!.y + b!.height }).toEqual({ label, inside: true });
  }
}

const SEQUENCE = ['7', '×', '6', '='];

/** A number as the calculator shows one (a result, not an expression such as "7×6"). */
const NUMBER = /^[-−]?\d+(?:[.,]\d+)?$/;

/**
 * The scripted model's last turn: read the entry in the latest screenshot; a number is the answer (a
 * final message), anything else means the calculator has not shown the result yet (the screenshot can
 * follow the `=` click before the app redraws), so it asks for a `wait` action — as a computer-use
 * model does — and reads again from the next screenshot, at most `tries` times.
 */
function readTurn(opts: { tool: AgentConfig['computerTool']; reads: string[]; tries: number }): (req: RecordedRequest) => Promise<Reply> {
  const turn = async (req: RecordedRequest): Promise<Reply> => {
    const entry = await readEntry(eyes, latestScreenshot(req));
    opts.reads.push(entry);
    if (!NUMBER.test(entry)) {
      if (opts.reads.length >= opts.tries) throw new Error(`the entry never showed a number: ${JSON.stringify(opts.reads)}`);
      server.push(turn);
      return opts.tool === 'computer' ? computerCall([{ type: 'wait' }]) : previewCall({ type: 'wait' });
    }
    if (opts.tool === 'computer') return finalMessage(entry);
    // The final message in the preview model's recorded shape.
    const body = fixture('responses-final-message-preview');
    body.id = `resp_${Date.now().toString(16)}${opts.reads.length}`;
    body.output.find((o: { type: string }) => o.type === 'message').content[0].text = entry;
    return { body };
  };
  return turn;
}

/** The operations of a task, checked: the clicks (all done) in order, then only `wait`s (done) in the steps after them. */
function expectClicksThenWaits(task: TaskView, clickSteps: number): { x: number; y: number }[] {
  const ops = task.steps.flatMap((s) => s.operations.map((o) => ({ step: s.index, type: (o.input as { type: string }).type, outcome: o.outcome, tool: o.tool, input: o.input as { x: number; y: number } })));
  expect(ops.every((o) => o.tool === 'computer' && o.outcome === 'done')).toBe(true);
  const done = ops.filter((o) => o.type === 'click');
  expect(done.every((o) => o.step <= clickSteps)).toBe(true);
  expect(ops.filter((o) => o.step > clickSteps).every((o) => o.type === 'wait')).toBe(true);
  return done.map((o) => o.input);
}

describe('agent on gnome-calculator, computer mode (Responses API, local OpenAI-compatible test server with recorded computer-use response shapes)', () => {
  it('computer tool: the scripted model finds 7, ×, 6, = in the screenshot, clicks them in one batched computer_call, reads 42 and answers it', async () => {
    await freshCalculator();
    const before = await accessibleCalculator();
    expect(before.display).not.toBe('42');
    const first = server.requests.length;
    const reads: string[] = [];
    let lookMs = 0;
    server.push(
      async (req) => {
        const t = performance.now();
        const view = await look(eyes, latestScreenshot(req));
        const actions = SEQUENCE.map((l) => clickOn(locate(view, l)));
        lookMs = Math.round(performance.now() - t);
        return computerCall(actions);
      },
      readTurn({ tool: 'computer', reads, tries: 5 }),
    );
    const { task, events } = await runTask('computer');
    console.info(`[agent computer e2e: computer] scripted model: keypad located and read in ${lookMs} ms; entry reads ${JSON.stringify(reads)}`);

    expect(task.error).toBeNull();
    expect(task.status).toBe('succeeded');
    expect(task.answer).toBe('42');
    expect(reads[reads.length - 1]).toBe('42');
    const sent = server.requests.slice(first);
    expect(sent.map((r) => r.body.tools)).toEqual(sent.map(() => [{ type: 'computer' }]));
    // Step 1 ran the four batched clicks; then zero or more waits; the last step got the final message.
    expect(task.steps).toHaveLength(1 + reads.length);
    expect(task.steps[0]!.operations).toHaveLength(4);
    const done = expectClicksThenWaits(task, 1);
    expect(task.denials).toEqual([]);
    // The accessibility tree agrees: the clicks hit 7, ×, 6, = and the calculator shows 42.
    const after = await waitFor(async () => {
      const a = await accessibleCalculator();
      return a.display === '42' ? a : null;
    }, 10_000, 'the calculator entry to read 42 over AT-SPI');
    expectClicksOn(done, after.buttons, SEQUENCE);
    // The model was answered with screenshots of the display's size.
    const shot = await sharp(Buffer.from(latestScreenshot(sent[sent.length - 1]!).split(',')[1]!, 'base64')).metadata();
    expect([shot.width, shot.height]).toEqual([WIDTH, HEIGHT]);
    expect(events.filter((e) => e.type === 'step')).toHaveLength(task.steps.length);
    expect(events[events.length - 1]).toMatchObject({ type: 'final', status: 'succeeded', answer: '42' });
    const audit = await runtime.audit.read({ limit: 200 });
    expect(audit.filter((r) => r.kind === 'decision' && r.actor === `task:${task.taskId}`).length).toBeGreaterThanOrEqual(4);
  });

  it('computer_use_preview tool: one click per computer_call, each located in the latest screenshot, then answers 42', async () => {
    await freshCalculator();
    const before = await accessibleCalculator();
    expect(before.display).not.toBe('42');
    const first = server.requests.length;
    const reads: string[] = [];
    for (const label of SEQUENCE) {
      server.push(async (req) => previewCall(clickOn(locate(await look(eyes, latestScreenshot(req)), label))));
    }
    server.push(readTurn({ tool: 'computer_use_preview', reads, tries: 5 }));
    const { task } = await runTask('computer_use_preview');
    console.info(`[agent computer e2e: computer_use_preview] scripted model: entry reads ${JSON.stringify(reads)}`);

    expect(task.error).toBeNull();
    expect(task.status).toBe('succeeded');
    expect(task.answer).toBe('42');
    const sent = server.requests.slice(first);
    expect(sent).toHaveLength(4 + reads.length);
    for (const r of sent) expect(r.body.tools).toEqual([{ type: 'computer_use_preview', display_width: WIDTH, display_height: HEIGHT, environment: 'linux' }]);
    // Each request after the first answers the previous call with a computer_call_output (a screenshot).
    for (const [i, r] of sent.entries()) {
      const outputs = (r.body.input as { type?: string }[]).filter((x) => x.type === 'computer_call_output');
      expect(outputs).toHaveLength(i);
    }
    expect(task.steps).toHaveLength(4 + reads.length);
    expect(task.steps.map((s) => s.operations.length)).toEqual([...task.steps.map(() => 1).slice(1), 0]);
    const done = expectClicksThenWaits(task, 4);
    const after = await waitFor(async () => {
      const a = await accessibleCalculator();
      return a.display === '42' ? a : null;
    }, 10_000, 'the calculator entry to read 42 over AT-SPI');
    expectClicksOn(done, after.buttons, SEQUENCE);
  });
});
