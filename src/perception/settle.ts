/**
 * Settle detection: after an action, wait until the screen stops changing instead of sleeping a fixed time.
 *
 * Frames are captured until two consecutive ones are byte-for-byte equal (a memcmp, see `changes.ts`), no
 * earlier than `minMs` after the action and no later than `maxMs` after it; the interval between captures
 * starts small and grows (adaptive), so a screen that settles at once costs about two captures, and an
 * animation costs at most `maxMs`. The last frame is returned so the caller does not capture again.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RawImage } from '../platform/types.js';
import { framesEqual } from './changes.js';

/** Options of {@link waitForSettle}. Milliseconds. */
export interface SettleOptions {
  /** Earliest time after the action at which the screen may be declared settled (default 30). */
  minMs?: number;
  /** Latest: past this the last frame is used as it is (default 300). */
  maxMs?: number;
  /** First interval between two captures (default 15; doubles up to 60). */
  intervalMs?: number;
}

/** What {@link waitForSettle} saw. */
export interface SettleResult {
  /** The last frame captured (equal to the one before it when `settled`). */
  image: RawImage;
  /** True when two consecutive frames were equal; false when `maxMs` passed first. */
  settled: boolean;
  /** Time spent waiting and capturing, ms. */
  waitedMs: number;
  /** Frames captured. */
  frames: number;
}

/**
 * Capture with `grab` until two consecutive frames are equal, between `minMs` and `maxMs` after
 * `actionAt` (a `performance.now()` timestamp).
 * @throws whatever `grab` throws (e.g. DeskdError `CAPTURE_FAILED`).
 */
export async function waitForSettle(grab: () => Promise<RawImage>, actionAt: number, opts: SettleOptions = {}): Promise<SettleResult> {
  const minMs = opts.minMs ?? 30;
  const maxMs = opts.maxMs ?? 300;
  let interval = opts.intervalMs ?? 15;
  const t0 = performance.now();
  let prev = await grab();
  let frames = 1;
  for (;;) {
    const sinceAction = performance.now() - actionAt;
    if (sinceAction >= maxMs) return { image: prev, settled: false, waitedMs: performance.now() - t0, frames };
    await sleep(Math.min(interval, maxMs - sinceAction));
    interval = Math.min(interval * 2, 60);
    const cur = await grab();
    frames++;
    if (framesEqual(prev, cur) && performance.now() - actionAt >= minMs) return { image: cur, settled: true, waitedMs: performance.now() - t0, frames };
    prev = cur;
  }
}
