import { describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { thrown } from '../helpers/rejection.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';

// The kill switch's state and messages, and the rate limit's arithmetic at its edges
// (src/policy/halt.ts, src/policy/rateLimit.ts); the main behaviour is in policyHalt.test.ts and
// policyRateLimit.test.ts.

describe('HaltSwitch state', () => {
  it('starts running, with nobody and no reason; since is the creation time', () => {
    const before = Date.now();
    const h = new HaltSwitch();
    expect(h.halted).toBe(false);
    expect(h.state).toMatchObject({ halted: false, reason: null, by: null });
    expect(h.state.since).toBeGreaterThanOrEqual(before);
    expect(h.state.since).toBeLessThanOrEqual(Date.now());
  });

  it('the default reason, who halted, in the signal reason and in assertRunning', () => {
    const h = new HaltSwitch();
    h.halt('pointer-corner');
    expect(h.state).toMatchObject({ halted: true, by: 'pointer-corner', reason: 'halt requested' });
    expect((h.signal.reason as DeskdError).message).toBe('Halted by pointer-corner: halt requested');
    expect(thrown(() => h.assertRunning()).message).toBe('Halted by pointer-corner: halt requested');
    h.resume('operator');
    h.halt('operator', 'lunch');
    expect(thrown(() => h.assertRunning()).message).toBe('Halted by operator: lunch');
  });

  it('state is a copy; since moves on each change', async () => {
    const h = new HaltSwitch();
    const s = h.state;
    s.halted = true;
    expect(h.halted).toBe(false);
    const t0 = h.state.since;
    await new Promise((r) => setTimeout(r, 5));
    h.halt('agent');
    const t1 = h.state.since;
    expect(t1).toBeGreaterThan(t0);
    await new Promise((r) => setTimeout(r, 5));
    h.resume('operator');
    expect(h.state.since).toBeGreaterThan(t1);
    expect(() => h.assertRunning()).not.toThrow();
  });

  it('a second halt and a second resume emit nothing', () => {
    const h = new HaltSwitch();
    let halts = 0;
    let resumes = 0;
    h.on('halt', () => halts++);
    h.on('resume', () => resumes++);
    h.halt('a');
    h.halt('b');
    h.resume('op');
    h.resume('op');
    expect([halts, resumes]).toEqual([1, 1]);
  });
});

describe('TokenBucket edges', () => {
  it('refills continuously (fractional tokens) and never below zero', () => {
    let t = 0;
    const b = new TokenBucket({ actionsPerSecond: 4, burst: 2 }, () => t);
    expect(b.tokens).toBe(2);
    expect(b.tryTake(2)).toBe(true);
    expect(b.tokens).toBe(0);
    t = 125;
    expect(b.tokens).toBeCloseTo(0.5, 9);
    expect(b.tryTake()).toBe(false);
    expect(b.tokens).toBeCloseTo(0.5, 9);
    t = 250;
    expect(b.tryTake()).toBe(true);
    expect(b.tokens).toBeCloseTo(0, 9);
  });

  it('a clock that steps back gives no tokens and takes none', () => {
    let t = 10_000;
    const b = new TokenBucket({ actionsPerSecond: 1, burst: 2 }, () => t);
    b.take(2);
    t = 0;
    expect(b.tokens).toBe(0);
    t = 500;
    expect(b.tokens).toBeCloseTo(0.5, 9);
  });

  it('retryAfterMs: 0 when available, the wait rounded up, infinite beyond the burst', () => {
    let t = 0;
    const b = new TokenBucket({ actionsPerSecond: 3, burst: 2 }, () => t);
    expect(b.retryAfterMs()).toBe(0);
    expect(b.retryAfterMs(2)).toBe(0);
    expect(b.retryAfterMs(3)).toBe(Number.POSITIVE_INFINITY);
    b.take(2);
    expect(b.retryAfterMs()).toBe(334);
    expect(b.retryAfterMs(2)).toBe(667);
    t = 334;
    expect(b.retryAfterMs()).toBe(0);
    expect(b.tryTake()).toBe(true);
  });

  it('take: the message names the limits and the wait; details carry it', () => {
    const b = new TokenBucket({ actionsPerSecond: 2, burst: 1 }, () => 0);
    b.take();
    const e = thrown(() => b.take());
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.message).toBe('Rate limit: at most 2 actions per second with a burst of 1; retry in 500 ms');
    expect(e.details).toEqual({ retryAfterMs: 500 });
  });

  it('configure keeps the tokens held (capped), refills at the old rate up to now, then uses the new one', () => {
    let t = 0;
    const b = new TokenBucket({ actionsPerSecond: 1, burst: 10 }, () => t);
    b.take(10);
    t = 3000;
    b.configure({ actionsPerSecond: 1000, burst: 10 });
    expect(b.tokens).toBeCloseTo(3, 9);
    t = 3004;
    expect(b.tokens).toBeCloseTo(7, 9);
    b.configure({ actionsPerSecond: 1000, burst: 20 });
    expect(b.tokens).toBeCloseTo(7, 9);
  });

  it('nonsense limits are refused by the constructor and by configure (NaN included), and configure then changes nothing', () => {
    for (const bad of [{ actionsPerSecond: -1, burst: 1 }, { actionsPerSecond: Number.NaN, burst: 1 }, { actionsPerSecond: 1, burst: 0.5 }, { actionsPerSecond: 1, burst: Number.NaN }]) {
      expect(() => new TokenBucket(bad)).toThrow(RangeError);
    }
    let t = 0;
    const b = new TokenBucket({ actionsPerSecond: 1, burst: 1 }, () => t);
    expect(() => b.configure({ actionsPerSecond: 0, burst: 5 })).toThrow(RangeError);
    expect(() => b.configure({ actionsPerSecond: 5, burst: 0 })).toThrow(RangeError);
    b.take();
    t = 999;
    expect(b.tryTake()).toBe(false);
    t = 1000;
    expect(b.tryTake()).toBe(true);
    expect(new TokenBucket({ actionsPerSecond: 0.5, burst: 1 }, () => 0).tokens).toBe(1);
  });

  it('the default clock is monotonic time', () => {
    const b = new TokenBucket({ actionsPerSecond: 1, burst: 1 });
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    expect(b.retryAfterMs()).toBeGreaterThan(900);
  });
});
