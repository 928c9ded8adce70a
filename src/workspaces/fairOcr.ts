/**
 * Fair sharing of one OCR engine among workspaces (issue 22): each workspace's observer gets its own
 * {@link TextRecognizer} from {@link FairOcr.forClient}; jobs wait in one queue per client and are handed to
 * the engine round-robin across clients (the least recently served client with a job goes first), at most
 * `concurrency` at a time (the engine's worker count). So a
 * workspace that asks for many reads (a full-screen OCR read window by window) delays another workspace's
 * next read by at most one job per busy client, instead of by its whole backlog as in the engine's FIFO.
 */
import type { TextRecognizer } from '../perception/observer.js';

interface Job {
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Round-robin scheduler over an OCR engine. */
export class FairOcr {
  private readonly queues = new Map<string, Job[]>();
  /** Clients with queued jobs, in round-robin order (the next one to serve first). */
  private readonly ring: string[] = [];
  private active = 0;
  /** Jobs handed to the engine so far, and when (in that count) each client was last served. */
  private served = 0;
  private readonly lastServed = new Map<string, number>();

  /**
   * @param inner the shared engine.
   * @param concurrency jobs given to the engine at once (its worker count; at least 1).
   */
  constructor(
    private readonly inner: TextRecognizer,
    private readonly concurrency: number,
  ) {}

  /** Jobs waiting (not yet given to the engine), per client. */
  get queued(): Record<string, number> {
    return Object.fromEntries([...this.queues].map(([k, q]) => [k, q.length]));
  }

  /** A recognizer whose jobs queue under `client` (a workspace id). */
  forClient(client: string): TextRecognizer {
    return { recognize: (img, opts) => this.enqueue(client, () => this.inner.recognize(img, opts)) as ReturnType<TextRecognizer['recognize']> };
  }

  /** Drop a client's queue (its workspace was deleted): its waiting jobs fail with `reason`. */
  forget(client: string, reason: Error): void {
    const q = this.queues.get(client);
    this.queues.delete(client);
    const i = this.ring.indexOf(client);
    if (i >= 0) this.ring.splice(i, 1);
    this.lastServed.delete(client);
    for (const j of q ?? []) j.reject(reason);
  }

  private enqueue(client: string, run: () => Promise<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(client);
      if (!q) this.queues.set(client, (q = []));
      q.push({ run, resolve, reject });
      if (!this.ring.includes(client)) this.ring.push(client);
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < Math.max(1, this.concurrency) && this.ring.length > 0) {
      // The client served least recently goes first (a client that was served while nobody else waited
      // must not stay ahead of one that queued since).
      let pick = 0;
      for (let i = 1; i < this.ring.length; i++) if ((this.lastServed.get(this.ring[i]!) ?? -1) < (this.lastServed.get(this.ring[pick]!) ?? -1)) pick = i;
      const client = this.ring.splice(pick, 1)[0]!;
      this.lastServed.set(client, ++this.served);
      const q = this.queues.get(client)!;
      const job = q.shift()!;
      if (q.length > 0) this.ring.push(client);
      else this.queues.delete(client);
      this.active++;
      job
        .run()
        .then(job.resolve, job.reject)
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
  }
}
