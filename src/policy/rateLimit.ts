import { performance } from 'node:perf_hooks';
import { DeskdError } from '../errors.js';
import type { Limits } from './schema.js';

/** A monotonic clock in milliseconds (default `performance.now`); injectable for tests. */
export type NowMs = () => number;

/**
 * Token bucket for the action rate limit (policy `limits.actionsPerSecond` and `limits.burst`).
 * The bucket holds at most `burst` tokens, starts full and refills continuously at
 * `actionsPerSecond` tokens per second; each action takes one token.
 */
export class TokenBucket {
  private rate: number;
  private capacity: number;
  private level: number;
  private last: number;

  /**
   * @param opts.actionsPerSecond refill rate, tokens per second (> 0).
   * @param opts.burst capacity, tokens (≥ 1).
   * @param now monotonic clock in ms.
   */
  constructor(opts: Pick<Limits, 'actionsPerSecond' | 'burst'>, private readonly now: NowMs = () => performance.now()) {
    if (!(opts.actionsPerSecond > 0) || !(opts.burst >= 1)) throw new RangeError('actionsPerSecond must be > 0 and burst ≥ 1');
    this.rate = opts.actionsPerSecond;
    this.capacity = opts.burst;
    this.level = opts.burst;
    this.last = this.now();
  }

  private refill(): void {
    const t = this.now();
    const dt = Math.max(0, t - this.last);
    this.last = t;
    this.level = Math.min(this.capacity, this.level + (dt * this.rate) / 1000);
  }

  /** Tokens available now (fractional). */
  get tokens(): number {
    this.refill();
    return this.level;
  }

  /** Take `n` tokens if available; false (and nothing taken) otherwise. */
  tryTake(n = 1): boolean {
    this.refill();
    if (this.level + 1e-9 >= n) {
      this.level = Math.max(0, this.level - n);
      return true;
    }
    return false;
  }

  /** Milliseconds until `n` tokens will be available (0 if they are now). */
  retryAfterMs(n = 1): number {
    this.refill();
    if (n > this.capacity) return Number.POSITIVE_INFINITY;
    return this.level >= n ? 0 : Math.ceil(((n - this.level) * 1000) / this.rate);
  }

  /**
   * Take `n` tokens or throw.
   * @throws DeskdError `RATE_LIMITED` (429) with `details.retryAfterMs`.
   */
  take(n = 1): void {
    if (this.tryTake(n)) return;
    const retryAfterMs = this.retryAfterMs(n);
    throw new DeskdError(
      'RATE_LIMITED',
      `Rate limit: at most ${this.rate} actions per second with a burst of ${this.capacity}; retry in ${retryAfterMs} ms`,
      { retryAfterMs },
    );
  }

  /** Apply new limits (policy reload). Tokens held are kept, capped at the new burst. */
  configure(opts: Pick<Limits, 'actionsPerSecond' | 'burst'>): void {
    if (!(opts.actionsPerSecond > 0) || !(opts.burst >= 1)) throw new RangeError('actionsPerSecond must be > 0 and burst ≥ 1');
    this.refill();
    this.rate = opts.actionsPerSecond;
    this.capacity = opts.burst;
    this.level = Math.min(this.level, this.capacity);
  }
}
