/**
 * What the second-look readers of `read` share (`cellOcr.ts`: empty table cells; `inkOcr.ts`: pixel-drawn
 * labels and values): a single-line OCR engine started on first use and closed when idle, and a bounded cache
 * keyed by the pixels of a rectangle (an unchanged box is not read again).
 *
 * One {@link IdleEngine} may serve both readers (the daemon does: `src/http/readRoutes.ts`), so a daemon
 * holds at most one single-line tesseract worker for them, not one per reader.
 */
import { createHash } from 'node:crypto';
import type { RawImage, Rect } from '../../platform/types.js';
import type { TextRecognizer } from '../observer.js';

/** A recognizer that holds resources until closed (an `OcrEngine`). */
export type ClosableRecognizer = TextRecognizer & { close(): Promise<void> };

/**
 * An engine made by `create` on first use and closed `idleMs` milliseconds after the last user released it
 * (the next use makes a new one). Users bracket their work with {@link IdleEngine.hold} and
 * {@link IdleEngine.release}; while anyone holds it, it is not closed.
 */
export class IdleEngine<E extends { close(): Promise<void> } = ClosableRecognizer> {
  private engine: Promise<E> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private holders = 0;

  /**
   * @param create makes the engine (called on the first {@link get} after a close)
   * @param idleMs how long after the last release it is closed (milliseconds)
   */
  constructor(
    private readonly create: () => Promise<E>,
    private readonly idleMs = 60_000,
  ) {}

  /** Mark a use as started: no close happens until the matching {@link release}. */
  hold(): void {
    this.holders++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The engine, made now if there is none (only call between {@link hold} and {@link release}). */
  get(): Promise<E> {
    if (!this.engine) {
      const made = this.create();
      // A failed start is not kept: the next use tries again.
      made.catch(() => {
        if (this.engine === made) this.engine = null;
      });
      this.engine = made;
    }
    return this.engine;
  }

  /** Mark a use as ended; the last one arms the idle close. */
  release(): void {
    this.holders = Math.max(0, this.holders - 1);
    if (this.holders > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.close(), this.idleMs);
    this.timer.unref();
  }

  /** Close the engine now, if there is one (an idle close, or the owner's shutdown). Never throws. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const closing = this.engine;
    this.engine = null;
    await closing?.then((x) => x.close()).catch(() => undefined);
  }
}

/** `source` as an {@link IdleEngine}: itself, or a new one over the `create` function with `idleMs`. */
export function idleEngineOf<E extends { close(): Promise<void> }>(source: IdleEngine<E> | (() => Promise<E>), idleMs: number): IdleEngine<E> {
  return source instanceof IdleEngine ? source : new IdleEngine(source, idleMs);
}

/**
 * Hash of the pixels of a rectangle (global points) of an image, with the rectangle itself: equal pixels in
 * the same place give the same key. Pixels outside the image are ignored.
 */
export function pixelKey(img: RawImage, r: Rect): string {
  const h = createHash('sha1');
  h.update(`${r.x},${r.y},${r.width},${r.height}`);
  const x0 = Math.max(0, Math.floor((r.x - img.origin.x) * img.scale));
  const y0 = Math.max(0, Math.floor((r.y - img.origin.y) * img.scale));
  const x1 = Math.min(img.width, Math.ceil((r.x + r.width - img.origin.x) * img.scale));
  const y1 = Math.min(img.height, Math.ceil((r.y + r.height - img.origin.y) * img.scale));
  for (let y = y0; y < y1; y++) h.update(img.data.subarray((y * img.width + x0) * img.channels, (y * img.width + x1) * img.channels));
  return h.digest('hex');
}

/** Set `key` in an insertion-ordered cache, dropping the oldest entry past `max` entries. */
export function remember<V>(cache: Map<string, V>, key: string, value: V, max: number): void {
  cache.set(key, value);
  if (cache.size > max) cache.delete(cache.keys().next().value!);
}
