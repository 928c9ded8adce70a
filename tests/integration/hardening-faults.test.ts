/**
 * Faults, on the fake platform with the real app: the audit log cannot be written (fail closed), the
 * accessibility bus dies, screen capture fails and comes back, an OCR worker thread dies, and the model
 * endpoint errors or times out (through `/v1/tasks`). The daemon keeps serving through each.
 * Real-desktop faults (X server restart, a SIGSTOPped app) are in tests/e2e/faults*.test.ts.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import type Tesseract from 'tesseract.js';
import { buildHardenedApp, AGENT } from '../helpers/hardeningApp.js';
import { DeskdError } from '../../src/errors.js';
import { OcrWorkerPool } from '../../src/perception/ocr/pool.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { approvalDenier, approvalManagerApprover } from '../../src/agent/approvals.js';
import { startOpenAITestServer, computerCall, finalMessage, serverError, type OpenAITestServer } from '../helpers/openaiTestServer.js';

const auth = { authorization: `Bearer ${AGENT}` };
const CLICK = { type: 'click', x: 20, y: 110 };
let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.reverse()) await c();
  closers = [];
});

async function app(opts: Parameters<typeof buildHardenedApp>[0] = {}) {
  const h = await buildHardenedApp(opts);
  closers.push(() => h.close());
  return h;
}

describe('the audit log cannot be written: fail closed', () => {
  it('a full disk (/dev/full) refuses every action with 500 AUDIT_WRITE_FAILED and dispatches nothing; observing goes on', async () => {
    const h = await app({ auditPath: '/dev/full' });
    for (const body of [CLICK, { type: 'type', text: 'hello' }, { actions: [{ type: 'keypress', keys: ['ctrl', 'a'] }, CLICK] }]) {
      const r = await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth, payload: body });
      expect(r.statusCode).toBe(500);
      expect(r.json().error.code).toBe('AUDIT_WRITE_FAILED');
    }
    expect(h.platform.events).toEqual([]);
    const o = await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: { ocr: false } });
    expect(o.statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/v1/health' })).statusCode).toBe(200);
  });
});

describe('the accessibility bus dies', () => {
  it('observe answers with the warning, coordinate actions still run, health stays up', async () => {
    const h = await app();
    const real = h.platform.accessibility.snapshot.bind(h.platform.accessibility);
    h.platform.accessibility.snapshot = async () => {
      throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'the AT-SPI bus connection was lost');
    };
    const o = await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: {} });
    expect(o.statusCode).toBe(200);
    expect(o.json().warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^accessibility: .*connection was lost/)]));
    expect(o.json().lines.length).toBeGreaterThan(0);
    expect((await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth, payload: CLICK })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/v1/health' })).statusCode).toBe(200);
    h.platform.accessibility.snapshot = real;
    const again = await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: { ocr: false } });
    expect(again.json().elements.some((e: { name: string }) => e.name === '7')).toBe(true);
  });
});

describe('screen capture fails (the X server went away) and comes back', () => {
  it('observe → 500 CAPTURE_FAILED while it is gone, the daemon keeps answering, and recovers without a restart', async () => {
    const h = await app();
    const real = h.platform.capture.capture.bind(h.platform.capture);
    h.platform.capture.capture = async () => {
      throw new DeskdError('CAPTURE_FAILED', 'X11 capture failed: cannot open display');
    };
    const o = await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: {} });
    expect(o.statusCode).toBe(500);
    expect(o.json().error.code).toBe('CAPTURE_FAILED');
    const s = await h.app.inject({ method: 'GET', url: '/v1/screenshot', headers: auth });
    expect(s.json().error.code).toBe('CAPTURE_FAILED');
    expect((await h.app.inject({ method: 'GET', url: '/v1/health' })).statusCode).toBe(200);
    h.platform.capture.capture = real;
    expect((await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: {} })).statusCode).toBe(200);
  });
});

/** A stand-in tesseract worker whose thread can die (tesseract.js keeps the node Worker at `.worker`). */
class FakeWorker {
  readonly worker = new EventEmitter();
  terminated = false;
  pending: ((v: unknown) => void) | null = null;
  constructor(readonly id: number, private readonly hang: boolean) {}
  async recognize(): Promise<{ data: { text: string } }> {
    if (this.hang) return new Promise(() => undefined);
    return { data: { text: `worker ${this.id}` } };
  }
  async terminate(): Promise<void> {
    this.terminated = true;
  }
  crash(): void {
    this.worker.emit('error', new Error('RuntimeError: memory access out of bounds'));
    this.worker.emit('exit', 1);
  }
}

describe('an OCR worker crashes', () => {
  it('a crash mid-job fails that job with OCR_FAILED, the worker is replaced, and the next job is served', async () => {
    const made: FakeWorker[] = [];
    const pool = await OcrWorkerPool.start({
      size: 1,
      recycleAfterJobs: 100,
      jobTimeoutMs: 10_000,
      spawn: async () => {
        const w = new FakeWorker(made.length, made.length === 0);
        made.push(w);
        return w as unknown as Tesseract.Worker;
      },
    });
    closers.push(() => pool.close());
    const job = pool.run(async (w) => (await w.recognize(Buffer.alloc(0))).data);
    await new Promise((r) => setImmediate(r));
    made[0]!.crash();
    await expect(job).rejects.toMatchObject({ code: 'OCR_FAILED', message: expect.stringMatching(/crashed/) });
    expect(made[0]!.terminated).toBe(true);
    await expect(pool.run(async (w) => (await w.recognize(Buffer.alloc(0))).data)).resolves.toEqual({ text: 'worker 1' });
    expect(pool.spawned).toBe(2);
  });
});

describe('an OCR worker dies while idle', () => {
  // OcrWorkerPool.watchIdle replaces a worker whose thread dies while its slot is idle; without it the first
  // job after such a death failed with OCR_FAILED (an observe answered 500).
  it('the next job after an idle worker died is served by a replacement', async () => {
    const made: FakeWorker[] = [];
    const pool = await OcrWorkerPool.start({
      size: 1,
      recycleAfterJobs: 100,
      jobTimeoutMs: 10_000,
      spawn: async () => {
        const w = new FakeWorker(made.length, false);
        made.push(w);
        return w as unknown as Tesseract.Worker;
      },
    });
    closers.push(() => pool.close());
    made[0]!.crash();
    await new Promise((r) => setImmediate(r));
    await expect(pool.run(async (w) => (await w.recognize(Buffer.alloc(0))).data)).resolves.toEqual({ text: 'worker 1' });
  });
});

describe('the model endpoint errors or times out (through POST /v1/tasks on the full app)', () => {
  async function withModel(script: Parameters<typeof startOpenAITestServer>[0], cfg: Record<string, number> = {}) {
    const server: OpenAITestServer = await startOpenAITestServer(script);
    closers.push(() => server.close());
    let runner: TaskRunner | null = null;
    const h = await app({
      tasks: ({ observer, executor, approvals, halt }) => {
        runner = new TaskRunner({
          observer,
          actions: executor,
          config: loadAgentConfig({}, { apiKey: 'sk-test-local', baseURL: server.baseURL, retryBaseDelayMs: 5, maxRetryDelayMs: 50, waitMs: 5, timeoutMs: 5000, ...cfg }),
          approve: approvalManagerApprover(approvals, () => halt.signal),
          denyApproval: approvalDenier(approvals),
        });
        return runner;
      },
    });
    closers.push(async () => runner?.close());
    return { h, server, runner: runner! as TaskRunner };
  }

  it('500s and a timeout are retried and the task succeeds; the daemon serves observe meanwhile', async () => {
    const { h, runner, server } = await withModel(
      [serverError(5), { ...finalMessage('late'), delayMs: 1500 }, computerCall([{ type: 'click', button: 'left', x: 20, y: 110 }]), finalMessage('done')],
      { timeoutMs: 300 },
    );
    const start = await h.app.inject({ method: 'POST', url: '/v1/tasks', headers: auth, payload: { goal: 'press 7' } });
    expect(start.statusCode).toBe(202);
    expect((await h.app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: { ocr: false } })).statusCode).toBe(200);
    const t = await runner.wait(start.json().taskId);
    expect(t.status).toBe('succeeded');
    expect(t.steps[0]!.retries).toBe(2);
    expect(server.requests.length).toBe(4);
    const view = await h.app.inject({ method: 'GET', url: `/v1/tasks/${start.json().taskId}`, headers: auth });
    expect(view.json()).toMatchObject({ status: 'succeeded', answer: 'done' });
  });

  it('an endpoint that keeps failing ends the task with MODEL_ERROR, nothing dispatched, and the daemon keeps serving', async () => {
    const { h, runner } = await withModel([serverError(1), serverError(1), serverError(1)], { maxRetries: 2 });
    const start = await h.app.inject({ method: 'POST', url: '/v1/tasks', headers: auth, payload: { goal: 'x' } });
    const t = await runner.wait(start.json().taskId);
    expect(t.status).toBe('failed');
    expect(t.error?.code).toBe('MODEL_ERROR');
    expect(h.platform.events).toEqual([]);
    expect((await h.app.inject({ method: 'POST', url: '/v1/actions', headers: auth, payload: CLICK })).statusCode).toBe(200);
  });
});
