import { describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';

function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('TokenBucket', () => {
  it('allows a burst, then refuses with RATE_LIMITED and retryAfterMs, then refills at the rate', () => {
    const c = clock();
    const b = new TokenBucket({ actionsPerSecond: 2, burst: 3 }, c.now);
    expect([b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true]);
    let err: unknown;
    try {
      b.take();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeskdError);
    expect((err as DeskdError).code).toBe('RATE_LIMITED');
    expect((err as DeskdError).status).toBe(429);
    expect((err as DeskdError).details).toEqual({ retryAfterMs: 500 });
    c.advance(499);
    expect(b.tryTake()).toBe(false);
    c.advance(1);
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
  });

  it('never holds more than burst tokens', () => {
    const c = clock();
    const b = new TokenBucket({ actionsPerSecond: 10, burst: 2 }, c.now);
    c.advance(60_000);
    expect(b.tokens).toBe(2);
    expect([b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, false]);
  });

  it('a refused take takes nothing', () => {
    const c = clock();
    const b = new TokenBucket({ actionsPerSecond: 1, burst: 1 }, c.now);
    b.take();
    expect(b.tryTake()).toBe(false);
    expect(b.tryTake()).toBe(false);
    c.advance(1000);
    expect(b.tryTake()).toBe(true);
  });

  it('configure() applies new limits and caps held tokens', () => {
    const c = clock();
    const b = new TokenBucket({ actionsPerSecond: 1, burst: 10 }, c.now);
    b.configure({ actionsPerSecond: 100, burst: 2 });
    expect(b.tokens).toBe(2);
    b.take(2);
    expect(b.retryAfterMs()).toBe(10);
    c.advance(10);
    expect(b.tryTake()).toBe(true);
  });

  it('rejects nonsense limits', () => {
    expect(() => new TokenBucket({ actionsPerSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new TokenBucket({ actionsPerSecond: 1, burst: 0 })).toThrow(RangeError);
  });
});
