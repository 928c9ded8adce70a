/**
 * OCR memory bound: a recognizer that replaces its whole OCR engine when the process's resident memory
 * (`process.memoryUsage().rss`, bytes) goes over a limit. Tesseract workers' WebAssembly heaps grow and
 * never shrink (platform notes); `OcrEngine` already replaces a worker after N jobs, this adds the RSS bound
 * without touching the engine: a new engine is started, new calls go to it, and the old one is closed once
 * its calls in flight have finished.
 */
import type { RawImage, Rect } from '../platform/types.js';
import type { OcrLine, OcrWord } from './elements.js';

/** An OCR engine as this wrapper needs it (`OcrEngine` satisfies it). */
export interface ClosableRecognizer {
  recognize(img: RawImage, opts?: { region?: Rect }): Promise<{ words: OcrWord[]; lines: OcrLine[] }>;
  close(): Promise<void>;
}

/** Options of {@link RecyclingRecognizer}. */
export interface RecyclingOptions {
  /** Resident set size above which the engine is replaced, bytes (default 400 MiB). */
  rssLimitBytes?: number;
  /**
   * Shortest time between two replacements, ms (default 60 000): memory the rest of the process holds would
   * otherwise make every call replace the engine.
   */
  minIntervalMs?: number;
  /** Memory probe (default `process.memoryUsage().rss`), for tests. */
  rss?: () => number;
  /** Told when an engine is replaced or a replacement fails. */
  onRecycle?: (info: { rssBytes: number; ok: boolean; error?: unknown }) => void;
}

/**
 * A `TextRecognizer` over a replaceable engine. After each call, if RSS is over the limit and no
 * replacement is under way, a new engine is created with `factory`; calls made meanwhile still use the old
 * one. A failed replacement keeps the old engine (and is retried after a later call). Replacements are at
 * least `minIntervalMs` apart.
 */
export class RecyclingRecognizer implements ClosableRecognizer {
  private current: ClosableRecognizer;
  private inFlight = new Map<ClosableRecognizer, number>();
  private replacing: Promise<void> | null = null;
  private closed = false;
  private readonly limit: number;
  private readonly rss: () => number;
  private readonly minIntervalMs: number;
  private lastRecycleAt = -Infinity;
  /** Engines replaced so far. */
  recycles = 0;

  private constructor(private readonly factory: () => Promise<ClosableRecognizer>, first: ClosableRecognizer, private readonly opts: RecyclingOptions) {
    this.current = first;
    this.limit = opts.rssLimitBytes ?? 400 * 1024 * 1024;
    this.rss = opts.rss ?? (() => process.memoryUsage().rss);
    this.minIntervalMs = opts.minIntervalMs ?? 60_000;
  }

  /** Start the first engine. @throws whatever `factory` throws (e.g. DeskdError `OCR_FAILED`). */
  static async create(factory: () => Promise<ClosableRecognizer>, opts: RecyclingOptions = {}): Promise<RecyclingRecognizer> {
    return new RecyclingRecognizer(factory, await factory(), opts);
  }

  /** The engine new calls go to. */
  get engine(): ClosableRecognizer {
    return this.current;
  }

  /** `recognize` on the current engine. @throws as the engine. */
  async recognize(img: RawImage, opts?: { region?: Rect }): Promise<{ words: OcrWord[]; lines: OcrLine[] }> {
    const engine = this.current;
    this.inFlight.set(engine, (this.inFlight.get(engine) ?? 0) + 1);
    try {
      return await engine.recognize(img, opts);
    } finally {
      const n = (this.inFlight.get(engine) ?? 1) - 1;
      if (n > 0) this.inFlight.set(engine, n);
      else this.inFlight.delete(engine);
      if (engine !== this.current && n === 0) void engine.close().catch(() => undefined);
      this.maybeRecycle();
    }
  }

  private maybeRecycle(): void {
    if (this.closed || this.replacing || Date.now() - this.lastRecycleAt < this.minIntervalMs) return;
    const rssBytes = this.rss();
    if (rssBytes <= this.limit) return;
    this.lastRecycleAt = Date.now();
    this.replacing = (async () => {
      try {
        const fresh = await this.factory();
        if (this.closed) {
          await fresh.close();
          return;
        }
        const old = this.current;
        this.current = fresh;
        this.recycles++;
        if (!this.inFlight.has(old)) await old.close().catch(() => undefined);
        this.opts.onRecycle?.({ rssBytes, ok: true });
      } catch (error) {
        this.opts.onRecycle?.({ rssBytes, ok: false, error });
      } finally {
        this.replacing = null;
      }
    })();
  }

  /** Close the engine (waiting for a replacement under way). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.replacing;
    await this.current.close();
  }
}
