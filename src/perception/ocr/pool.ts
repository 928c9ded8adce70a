import type { Worker as ThreadWorker } from 'node:worker_threads';
import type Tesseract from 'tesseract.js';
import { DeskdError, isDeskdError } from '../../errors.js';

/** The logger shape deskd's OCR code writes to (a pino logger fits). */
export interface OcrLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options of {@link OcrWorkerPool}. */
export interface OcrWorkerPoolOptions {
  /** Number of tesseract workers (threads), ≥ 1. */
  size: number;
  /** Start one tesseract worker, ready to recognise (languages loaded, parameters set). */
  spawn: () => Promise<Tesseract.Worker>;
  /** Terminate and replace a worker after it has run this many jobs (its wasm heap grows and never shrinks). */
  recycleAfterJobs: number;
  /** A job running longer than this (ms) fails with `TIMEOUT` and its worker is replaced. */
  jobTimeoutMs: number;
  logger?: OcrLogger | undefined;
}

interface Slot {
  index: number;
  worker: Tesseract.Worker | null;
  /** Rejects when the worker's thread dies (error or exit); replaced with each new worker. */
  died: Promise<never>;
  jobs: number;
  busy: boolean;
}

interface Task<T> {
  run: (w: Tesseract.Worker) => Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/**
 * A fixed-size pool of tesseract.js workers with a FIFO job queue, in the manner of tesseract.js's own
 * `createScheduler()` (src/createScheduler.js), which it replaces because the scheduler cannot remove a
 * worker: a tesseract worker's wasm memory grows with the images it has seen and is only given back by
 * terminating the thread, so each worker here is terminated and respawned after `recycleAfterJobs` jobs
 * (kept high: see `OcrEngineOptions.recycleAfterJobs`), after a failed job, and when its thread dies.
 *
 * Errors: jobs failing inside tesseract reject with `OCR_FAILED`; a job over `jobTimeoutMs` rejects with
 * `TIMEOUT`; jobs queued or submitted after {@link close} reject with `OCR_FAILED`.
 */
export class OcrWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task<unknown>[] = [];
  private closed = false;
  private readonly respawns = new Set<Promise<void>>();
  private readonly running = new Set<Promise<unknown>>();
  /** Total workers started (including replacements), for diagnostics and tests. */
  spawned = 0;

  private constructor(private readonly opts: OcrWorkerPoolOptions) {}

  /**
   * Start `size` workers concurrently.
   * @throws DeskdError `OCR_FAILED` when a worker cannot be started (every started worker is terminated first).
   */
  static async start(opts: OcrWorkerPoolOptions): Promise<OcrWorkerPool> {
    const pool = new OcrWorkerPool(opts);
    const n = Math.max(1, Math.floor(opts.size));
    const results = await Promise.allSettled(Array.from({ length: n }, () => pool.spawnOne()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') {
        const slot: Slot = { index: i, ...r.value, jobs: 0, busy: false };
        pool.slots.push(slot);
        pool.watchIdle(slot);
      }
    }
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    return pool;
  }

  /** Number of workers. */
  get size(): number {
    return this.slots.length;
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Run `fn` on the next free worker (FIFO).
   * @throws DeskdError `OCR_FAILED` (tesseract error, dead worker, pool closed) or `TIMEOUT`.
   */
  run<T>(fn: (w: Tesseract.Worker) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DeskdError('OCR_FAILED', 'the OCR engine is closed'));
    if (this.slots.every((s) => !s.worker && !s.busy)) {
      return Promise.reject(new DeskdError('OCR_FAILED', 'no tesseract worker is running'));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve, reject } as Task<unknown>);
      this.dispatch();
    });
  }

  /** Reject queued jobs, wait for running ones, terminate every worker. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new DeskdError('OCR_FAILED', 'the OCR engine was closed before this job ran'));
    await Promise.allSettled([...this.running]);
    await Promise.allSettled([...this.respawns]);
    await Promise.allSettled(this.slots.map(async (s) => {
      const w = s.worker;
      s.worker = null;
      if (w) await w.terminate();
    }));
  }

  private async spawnOne(): Promise<{ worker: Tesseract.Worker; died: Promise<never> }> {
    let worker: Tesseract.Worker;
    try {
      worker = await this.opts.spawn();
    } catch (e) {
      throw isDeskdError(e) ? e : new DeskdError('OCR_FAILED', `could not start a tesseract worker: ${String(e)}`);
    }
    this.spawned += 1;
    // tesseract.js sets `worker.onerror`, which node:worker_threads never calls: without an 'error' listener a
    // crashed thread (e.g. wasm out of memory) would be an uncaught exception in the daemon.
    const thread = (worker as unknown as { worker?: ThreadWorker }).worker;
    const died = new Promise<never>((_, reject) => {
      if (!thread) return;
      thread.once('error', (err) => reject(new DeskdError('OCR_FAILED', `tesseract worker crashed: ${err.message}`)));
      thread.once('exit', (code) => reject(new DeskdError('OCR_FAILED', `tesseract worker exited (code ${code})`)));
    });
    died.catch(() => {});
    return { worker, died };
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.busy || !slot.worker) continue;
      const task = this.queue.shift()!;
      const p = this.execute(slot, slot.worker, task);
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
  }

  private async execute(slot: Slot, worker: Tesseract.Worker, task: Task<unknown>): Promise<void> {
    slot.busy = true;
    let timer: NodeJS.Timeout | undefined;
    let healthy = true;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DeskdError('TIMEOUT', `OCR job exceeded ${this.opts.jobTimeoutMs} ms`)),
          this.opts.jobTimeoutMs,
        );
      });
      const value = await Promise.race([task.run(worker), slot.died, timeout]);
      task.resolve(value);
    } catch (e) {
      healthy = false;
      task.reject(isDeskdError(e) ? e : new DeskdError('OCR_FAILED', `tesseract failed: ${String(e)}`));
    } finally {
      clearTimeout(timer);
    }
    slot.jobs += 1;
    if (!healthy || slot.jobs >= this.opts.recycleAfterJobs) {
      const reason = healthy ? 'recycle' : 'failed job';
      const r = this.respawn(slot, reason);
      this.respawns.add(r);
      await r.finally(() => this.respawns.delete(r));
      return;
    }
    slot.busy = false;
    this.dispatch();
  }

  /**
   * Replace a worker whose thread dies while its slot is idle, at once, so the next job does not fail on
   * a dead worker (a thread dying during a job is handled by that job's race against `died`).
   */
  private watchIdle(slot: Slot): void {
    const worker = slot.worker;
    slot.died.catch(() => {
      if (this.closed || slot.busy || slot.worker !== worker) return;
      slot.busy = true;
      const r = this.respawn(slot, 'died while idle');
      this.respawns.add(r);
      void r.finally(() => this.respawns.delete(r));
    });
  }

  /** Replace a slot's worker; the slot stays busy (takes no jobs) meanwhile. */
  private async respawn(slot: Slot, reason: string): Promise<void> {
    const old = slot.worker;
    slot.worker = null;
    this.opts.logger?.debug({ component: 'ocr', slot: slot.index, jobs: slot.jobs, reason }, 'replacing tesseract worker');
    await old?.terminate().catch(() => {});
    if (this.closed) return;
    try {
      const fresh = await this.spawnOne();
      if (this.closed) {
        await fresh.worker.terminate().catch(() => {});
        return;
      }
      slot.worker = fresh.worker;
      slot.died = fresh.died;
      slot.jobs = 0;
      slot.busy = false;
      this.watchIdle(slot);
    } catch (e) {
      // The slot stays empty; the other slots keep serving. With none left, queued jobs would wait forever.
      this.opts.logger?.warn({ component: 'ocr', slot: slot.index, err: e }, 'could not replace tesseract worker');
      slot.busy = false;
      if (this.slots.every((s) => !s.worker)) {
        for (const t of this.queue.splice(0)) t.reject(new DeskdError('OCR_FAILED', 'no tesseract worker could be started'));
      }
    }
    this.dispatch();
  }
}
