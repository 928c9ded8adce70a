import { performance } from 'node:perf_hooks';
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
  /**
   * Workers started with the pool and kept however long they are idle (1 ≤ warm ≤ size; default 1). The
   * others start when a job waits and every running worker is busy, and stop after `idleMs` without a job:
   * each tesseract worker holds ≈ 30 MB (its isolate, compiled wasm and a 19–24 MB wasm memory), and
   * only reads large enough to be split into bands (cold reads of big windows) use a second one (issue 15).
   */
  warm?: number | undefined;
  /** How long a worker beyond the `warm` ones may stay idle before it is stopped, ms (default {@link OCR_WORKER_IDLE_MS}). */
  idleMs?: number | undefined;
  /**
   * How long a job waits for a busy worker before a parked one is started for it, ms (default
   * {@link OCR_WORKER_START_AFTER_MS}): short jobs (a changed strip's lines) finish before a new worker could
   * (starting one costs ≈ 0.4 s of CPU), long ones (the bands of a cold read) get it.
   */
  startAfterMs?: number | undefined;
  logger?: OcrLogger | undefined;
}

/** Default of {@link OcrWorkerPoolOptions.idleMs}, ms. */
export const OCR_WORKER_IDLE_MS = 30_000;
/** Default of {@link OcrWorkerPoolOptions.startAfterMs}, ms. */
export const OCR_WORKER_START_AFTER_MS = 250;

interface Slot {
  index: number;
  worker: Tesseract.Worker | null;
  /** Rejects when the worker's thread dies (error or exit); replaced with each new worker. */
  died: Promise<never>;
  jobs: number;
  busy: boolean;
  /** No worker on purpose: not needed yet, or stopped after `idleMs` idle (started again on demand). */
  parked: boolean;
  /** Stops this (non-warm) slot's worker when it has been idle for `idleMs`. */
  idleTimer: NodeJS.Timeout | null;
}

/** A `died` promise for a slot without a worker: never settles. */
const NEVER = new Promise<never>(() => {});

interface Task<T> {
  run: (w: Tesseract.Worker) => Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  /** `performance.now()` when it was queued. */
  queuedAt: number;
}

/**
 * A pool of up to `size` tesseract.js workers with a FIFO job queue, in the manner of tesseract.js's own
 * `createScheduler()` (src/createScheduler.js), which it replaces because the scheduler cannot remove a
 * worker: a tesseract worker's wasm memory grows with the images it has seen and is only given back by
 * terminating the thread, so each worker here is terminated and respawned after `recycleAfterJobs` jobs
 * (kept high: see `OcrEngineOptions.recycleAfterJobs`), after a failed job, and when its thread dies.
 * `warm` workers run from the start; the rest start when jobs wait for a worker and stop after `idleMs`
 * without work (`size` stays the pool's capacity: callers split a read into `size` bands).
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
  /** Looks at the queue again when a waiting job reaches `startAfterMs`. */
  private startTimer: NodeJS.Timeout | null = null;
  /** Slots below this index keep their worker however idle. */
  private warm = 1;
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
    const warm = Math.min(n, Math.max(1, Math.floor(opts.warm ?? 1)));
    const results = await Promise.allSettled(Array.from({ length: warm }, () => pool.spawnOne()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') {
        const slot: Slot = { index: i, ...r.value, jobs: 0, busy: false, parked: false, idleTimer: null };
        pool.slots.push(slot);
        pool.watchIdle(slot);
      }
    }
    for (let i = warm; i < n; i++) pool.slots.push({ index: i, worker: null, died: NEVER, jobs: 0, busy: false, parked: true, idleTimer: null });
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    pool.warm = warm;
    return pool;
  }

  /** Number of workers the pool may run at once (its capacity; fewer may be running, see {@link workers}). */
  get size(): number {
    return this.slots.length;
  }

  /** Workers running now (started or starting): the warm ones plus those started on demand and not yet stopped. */
  get workers(): number {
    return this.slots.filter((s) => !s.parked && (s.worker || s.busy)).length;
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
    if (this.slots.every((s) => !s.worker && !s.busy && !s.parked)) {
      return Promise.reject(new DeskdError('OCR_FAILED', 'no tesseract worker is running'));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve, reject, queuedAt: performance.now() } as Task<unknown>);
      this.dispatch();
    });
  }

  /** Reject queued jobs, wait for running ones, terminate every worker. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.slots) this.clearIdle(s);
    if (this.startTimer) clearTimeout(this.startTimer);
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
      if (this.queue.length === 0) break;
      if (slot.busy || !slot.worker) continue;
      this.clearIdle(slot);
      const task = this.queue.shift()!;
      const p = this.execute(slot, slot.worker, task);
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
    // Jobs that waited startAfterMs: start parked workers, one per such job (those starting already count);
    // when some wait less, look again when the first of them has waited long enough.
    if (!this.closed && this.queue.length > 0 && this.slots.some((s) => s.parked)) {
      const after = this.opts.startAfterMs ?? OCR_WORKER_START_AFTER_MS;
      const now = performance.now();
      const due = this.queue.filter((t) => now - t.queuedAt >= after).length;
      let starting = this.slots.filter((s) => s.busy && !s.worker && !s.parked).length;
      for (const slot of this.slots) {
        if (due <= starting) break;
        if (!slot.parked) continue;
        starting++;
        const r = this.unpark(slot);
        this.respawns.add(r);
        void r.finally(() => this.respawns.delete(r));
      }
      const next = this.queue.find((t) => now - t.queuedAt < after);
      if (next && !this.startTimer) {
        this.startTimer = setTimeout(() => {
          this.startTimer = null;
          this.dispatch();
        }, Math.max(1, after - (now - next.queuedAt)));
        this.startTimer.unref();
      }
    }
    // Free workers beyond the warm ones stop after idleMs without a job.
    for (const slot of this.slots) {
      if (slot.index >= this.warm && slot.worker && !slot.busy && !slot.idleTimer) {
        slot.idleTimer = setTimeout(() => {
          const r = this.park(slot);
          this.respawns.add(r);
          void r.finally(() => this.respawns.delete(r));
        }, this.opts.idleMs ?? OCR_WORKER_IDLE_MS);
        slot.idleTimer.unref();
      }
    }
  }

  private clearIdle(slot: Slot): void {
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = null;
  }

  /**
   * Start a parked slot's worker (the slot is busy meanwhile). On failure the slot stays empty, as after a
   * failed replacement (`respawn`): the other slots keep serving, and nothing retries in a loop.
   */
  private async unpark(slot: Slot): Promise<void> {
    slot.parked = false;
    slot.busy = true;
    this.opts.logger?.debug({ component: 'ocr', slot: slot.index, queued: this.queue.length }, 'starting tesseract worker on demand');
    if (await this.fill(slot, 'could not start tesseract worker on demand')) this.dispatch();
  }

  /** Stop an idle non-warm worker (its memory goes back to the system); the slot is parked until needed. */
  private async park(slot: Slot): Promise<void> {
    slot.idleTimer = null;
    const w = slot.worker;
    if (this.closed || slot.busy || !w) return;
    slot.worker = null;
    slot.died = NEVER;
    slot.parked = true;
    slot.jobs = 0;
    this.opts.logger?.debug({ component: 'ocr', slot: slot.index }, 'stopping idle tesseract worker');
    await w.terminate().catch(() => {});
  }

  /** With no worker running or starting, queued jobs would wait forever: reject them. */
  private rejectIfNoWorker(): void {
    if (this.slots.every((s) => !s.worker && !s.busy)) {
      for (const t of this.queue.splice(0)) t.reject(new DeskdError('OCR_FAILED', 'no tesseract worker could be started'));
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
    if (await this.fill(slot, 'could not replace tesseract worker')) this.dispatch();
  }

  /**
   * Give an empty slot a new worker (started with `spawnOne`), then watch it for idleness. On failure the slot
   * stays empty (logged with `failure`): the other slots keep serving, and with none left queued jobs are
   * rejected (`rejectIfNoWorker`) instead of waiting forever. Never throws.
   * @returns false when the pool was closed meanwhile (the new worker is stopped; nothing more to dispatch).
   */
  private async fill(slot: Slot, failure: string): Promise<boolean> {
    try {
      const fresh = await this.spawnOne();
      if (this.closed) {
        await fresh.worker.terminate().catch(() => {});
        return false;
      }
      slot.worker = fresh.worker;
      slot.died = fresh.died;
      slot.jobs = 0;
      slot.busy = false;
      this.watchIdle(slot);
    } catch (e) {
      this.opts.logger?.warn({ component: 'ocr', slot: slot.index, err: e }, failure);
      slot.busy = false;
      this.rejectIfNoWorker();
    }
    return true;
  }
}
