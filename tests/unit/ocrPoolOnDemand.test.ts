/**
 * OcrWorkerPool's workers beyond the warm ones (issue 15: each tesseract worker holds ≈ 30 MB): started when
 * a job waits and every running worker is busy, stopped after `idleMs` without a job, started again on the
 * next wait; the warm worker is never stopped; `size` stays the capacity (callers split reads into `size`
 * bands); a job that a busy worker frees up for within `startAfterMs` starts nothing. Fake workers
 * (tesseract.js keeps its node Worker at `.worker`), jobs released by the test.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import type Tesseract from 'tesseract.js';
import { OcrWorkerPool } from '../../src/perception/ocr/pool.js';

class FakeWorker {
  readonly worker = new EventEmitter();
  terminated = false;
  constructor(readonly id: number) {}
  async terminate(): Promise<void> {
    this.terminated = true;
    this.worker.emit('exit', 0);
  }
}

/** A job that runs until `release()`; `started` resolves with the worker it runs on. */
function gatedJob(): { run: (w: Tesseract.Worker) => Promise<number>; started: Promise<number>; release: () => void } {
  let onStart!: (id: number) => void;
  let onRelease!: () => void;
  const started = new Promise<number>((r) => (onStart = r));
  const released = new Promise<void>((r) => (onRelease = r));
  return {
    started,
    release: () => onRelease(),
    run: async (w) => {
      const id = (w as unknown as FakeWorker).id;
      onStart(id);
      await released;
      return id;
    },
  };
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

let pools: OcrWorkerPool[] = [];
afterEach(async () => {
  for (const p of pools) await p.close();
  pools = [];
});

/** A pool of fake workers; `startAfterMs` defaults to 0 here (start a parked worker as soon as a job waits). */
async function pool(opts: { size: number; warm?: number; idleMs?: number; startAfterMs?: number; spawnFails?: (n: number) => boolean }) {
  const made: FakeWorker[] = [];
  let gate: Promise<void> = Promise.resolve();
  let openGate!: () => void;
  const p = await OcrWorkerPool.start({
    size: opts.size,
    ...(opts.warm !== undefined ? { warm: opts.warm } : {}),
    ...(opts.idleMs !== undefined ? { idleMs: opts.idleMs } : {}),
    startAfterMs: opts.startAfterMs ?? 0,
    recycleAfterJobs: 1000,
    jobTimeoutMs: 10_000,
    spawn: async () => {
      await gate;
      if (opts.spawnFails?.(made.length)) throw new Error('no wasm today');
      const w = new FakeWorker(made.length);
      made.push(w);
      return w as unknown as Tesseract.Worker;
    },
  });
  pools.push(p);
  return {
    p,
    made,
    /** Hold the next spawns until the returned function is called. */
    holdSpawns: () => {
      gate = new Promise<void>((r) => (openGate = r));
      return () => openGate();
    },
  };
}

describe('OcrWorkerPool: workers beyond the warm ones start on demand and stop when idle', () => {
  it('starts one worker; size stays the capacity', async () => {
    const { p, made } = await pool({ size: 2 });
    expect(p.size).toBe(2);
    expect(p.workers).toBe(1);
    expect(p.spawned).toBe(1);
    expect(made).toHaveLength(1);
  });

  it('warm = size starts every worker at once (the pool before on-demand workers)', async () => {
    const { p } = await pool({ size: 2, warm: 2 });
    expect(p.workers).toBe(2);
    expect(p.spawned).toBe(2);
  });

  it('a second job while the warm worker is busy starts the second worker, and both jobs run at once', async () => {
    const { p } = await pool({ size: 2 });
    const a = gatedJob();
    const b = gatedJob();
    const ra = p.run(a.run);
    const rb = p.run(b.run);
    expect(await a.started).toBe(0);
    expect(await b.started).toBe(1);
    expect(p.spawned).toBe(2);
    a.release();
    b.release();
    expect(await Promise.all([ra, rb])).toEqual([0, 1]);
  });

  it('a job waiting for a starting worker runs on whichever worker is free first (FIFO), the start is not wasted', async () => {
    const { p, holdSpawns } = await pool({ size: 2 });
    const open = holdSpawns();
    const a = gatedJob();
    const b = gatedJob();
    const ra = p.run(a.run);
    const rb = p.run(b.run);
    expect(await a.started).toBe(0);
    expect(p.queued).toBe(1);
    a.release();
    expect(await ra).toBe(0);
    // The warm worker took b before the second one started.
    expect(await b.started).toBe(0);
    b.release();
    await rb;
    open();
    await until(() => p.spawned === 2);
    expect(p.workers).toBe(2);
  });

  it('the on-demand worker stops after idleMs without a job and starts again on the next wait; the warm one stays', async () => {
    const { p, made } = await pool({ size: 2, idleMs: 30 });
    const a = gatedJob();
    const b = gatedJob();
    const both = Promise.all([p.run(a.run), p.run(b.run)]);
    await Promise.all([a.started, b.started]);
    a.release();
    b.release();
    await both;
    await until(() => made[1]!.terminated);
    expect(p.workers).toBe(1);
    expect(made[0]!.terminated).toBe(false);
    // One job at a time: the warm worker serves it, nothing starts.
    const c = gatedJob();
    const rc = p.run(c.run);
    expect(await c.started).toBe(0);
    c.release();
    await rc;
    expect(p.spawned).toBe(2);
    // Two at once again: a new second worker.
    const d = gatedJob();
    const e = gatedJob();
    const again = Promise.all([p.run(d.run), p.run(e.run)]);
    expect(await d.started).toBe(0);
    expect(await e.started).toBe(2);
    d.release();
    e.release();
    expect(await again).toEqual([0, 2]);
    expect(made[0]!.terminated).toBe(false);
  });

  it('jobs within idleMs of each other keep the on-demand worker', async () => {
    const { p, made } = await pool({ size: 2, idleMs: 10_000 });
    const a = gatedJob();
    const b = gatedJob();
    const first = Promise.all([p.run(a.run), p.run(b.run)]);
    await Promise.all([a.started, b.started]);
    a.release();
    b.release();
    await first;
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const c = gatedJob();
      const d = gatedJob();
      const pair = Promise.all([p.run(c.run), p.run(d.run)]);
      expect(await Promise.all([c.started, d.started])).toEqual([0, 1]);
      c.release();
      d.release();
      await pair;
    }
    expect(made[1]!.terminated).toBe(false);
    expect(p.spawned).toBe(2);
  });

  it('an on-demand worker that cannot start leaves the job to the warm worker (no error, no retry loop)', async () => {
    const { p } = await pool({ size: 2, spawnFails: (n) => n >= 1 });
    const a = gatedJob();
    const b = gatedJob();
    const ra = p.run(a.run);
    const rb = p.run(b.run);
    expect(await a.started).toBe(0);
    a.release();
    expect(await b.started).toBe(0);
    b.release();
    expect(await Promise.all([ra, rb])).toEqual([0, 0]);
    expect(p.spawned).toBe(1);
    expect(p.workers).toBe(1);
  });

  it('a job served within startAfterMs starts no worker; one waiting longer does', async () => {
    const { p } = await pool({ size: 2, startAfterMs: 60_000 });
    const a = gatedJob();
    const b = gatedJob();
    const ra = p.run(a.run);
    const rb = p.run(b.run);
    await a.started;
    a.release();
    // b waited far less than a minute: the warm worker took it, nothing was started.
    expect(await b.started).toBe(0);
    b.release();
    await Promise.all([ra, rb]);
    expect(p.spawned).toBe(1);

    const { p: q } = await pool({ size: 2, startAfterMs: 50 });
    const c = gatedJob();
    const d = gatedJob();
    const rc = q.run(c.run);
    const rd = q.run(d.run);
    await c.started;
    // d waits behind c (never released until d runs): after 50 ms the second worker starts for it.
    expect(await d.started).toBe(1);
    expect(q.spawned).toBe(2);
    c.release();
    d.release();
    expect(await Promise.all([rc, rd])).toEqual([0, 1]);
  });

  it('close() while an on-demand worker is starting terminates it once started', async () => {
    const { p, made, holdSpawns } = await pool({ size: 2 });
    const open = holdSpawns();
    const a = gatedJob();
    const ra = p.run(a.run);
    const rb = p.run(async () => 1);
    await a.started;
    const closing = p.close();
    a.release();
    await expect(rb).rejects.toMatchObject({ code: 'OCR_FAILED' });
    expect(await ra).toBe(0);
    open();
    await closing;
    expect(made.every((w) => w.terminated)).toBe(true);
  });
});
