import { setTimeout as delay } from 'node:timers/promises';
import type { MouseButton, Point, RawKeyboard, RawMouse } from '../platform/types.js';

/**
 * The generic input layer: clicks, chords, drags and chunked typing built from the raw backend
 * primitives (`RawMouse`, `RawKeyboard`), as Playwright's `input.ts` builds its Mouse and Keyboard over
 * its raw interfaces. No policy and no window knowledge here: the executor decides before it calls in,
 * and passes `recheck` where the target must be confirmed between events.
 */

/**
 * Number of characters typed between two checks of the keyboard focus. A focus change in the middle of a
 * `type` lets at most this many characters reach the new window before the check stops the action
 * (docs/security.md, "Typing").
 */
export const TYPE_CHUNK = 8;

/** Largest distance between two consecutive points of a drag, logical points (before {@link DRAG_MAX_POINTS} widens it). */
export const DRAG_STEP_POINTS = 20;
/**
 * Most points one drag visits (press, motions, release). A longer path gets a wider step; more vertices
 * than this are kept as given, without interpolation. Kept low because the policy resolves every point
 * twice (a window read and an accessibility hit-test when deciding, and again, fresh, right before
 * dispatch): on X11 under load, 40 concurrent fresh window reads took 3 s and some failed.
 */
export const DRAG_MAX_POINTS = 32;
/** Pause after the button goes down, before the first motion, milliseconds. */
export const DRAG_PRESS_DELAY_MS = 15;
/**
 * Pause after the first motion (the one that crosses the toolkit's drag threshold — GTK 8 px, Chromium a
 * few px — as every step of {@link DRAG_STEP_POINTS} does), milliseconds: Chromium starts an HTML5
 * drag-and-drop session (its XDND loop) asynchronously after `dragstart`, and motion sent before the loop
 * runs is lost.
 */
export const DRAG_START_DELAY_MS = 60;
/** Pause between the following motion events, milliseconds. */
export const DRAG_MOTION_DELAY_MS = 5;
/** Pause at the last point before the release, milliseconds (drop targets see a `dragover` there first). */
export const DRAG_RELEASE_DELAY_MS = 60;

/**
 * The points the pointer visits during a drag, in order, logical points: press at the first, motion to
 * each following one, release at the last. Every vertex of `path` is kept, and straight segments are
 * interpolated so that consecutive points are at most {@link DRAG_STEP_POINTS} apart (intermediate points
 * rounded to whole points), at most {@link DRAG_MAX_POINTS} points in all (the step widens for long paths;
 * a path with more vertices than that is returned as given). Toolkits need these intermediate motion
 * events: a press and one jump to the end starts no HTML5 drag in Chromium and moves no slider smoothly.
 *
 * This is the single source of the drag's points: the policy judges the window (and element) under every
 * one of them (effects.ts), and dispatch ({@link Input.drag}) moves through exactly these, so the two
 * cannot disagree.
 */
export function dragPoints(path: readonly Point[]): Point[] {
  const pts = path.map((p) => ({ x: p.x, y: p.y }));
  if (pts.length < 2) return pts;
  const seg = pts.slice(1).map((p, i) => Math.hypot(p.x - pts[i]!.x, p.y - pts[i]!.y));
  const total = seg.reduce((a, b) => a + b, 0);
  const budget = DRAG_MAX_POINTS - pts.length; // interpolated points we may add
  if (budget <= 0 || total === 0) return pts;
  // Smallest step ≥ DRAG_STEP_POINTS whose interpolated points fit the budget (each segment adds ceil(len/step) - 1).
  const added = (step: number) => seg.reduce((n, len) => n + Math.max(0, Math.ceil(len / step) - 1), 0);
  let step = Math.max(DRAG_STEP_POINTS, total / budget);
  while (added(step) > budget) step *= 1.05;
  const out: Point[] = [pts[0]!];
  for (const [i, len] of seg.entries()) {
    const a = pts[i]!;
    const b = pts[i + 1]!;
    const n = Math.max(1, Math.ceil(len / step));
    for (let k = 1; k < n; k++) out.push({ x: Math.round(a.x + ((b.x - a.x) * k) / n), y: Math.round(a.y + ((b.y - a.y) * k) / n) });
    out.push(b);
  }
  return out;
}

/**
 * Where a click into a popup window (override-redirect: a menu, an open `<select>` list) passes first: one
 * point above `p` (below it on the top row), so the popup sees a motion inside it before the press. A warped
 * pointer otherwise sends a single enter at the click point, and such popups may take a press only after a
 * motion in them (Chromium's open `<select>` list ignored a click by ref, and took it after one more motion:
 * tests/e2e/movedWindows.test.ts). The plan sets it (`plan.ts`); the executor judges it as a pointer effect
 * too (`effects.ts`).
 */
export function hoverPoint(p: Point): Point {
  return { x: p.x, y: p.y >= 1 ? p.y - 1 : p.y + 1 };
}

/** Input built from raw events. All points are logical screen points. */
export class Input {
  constructor(
    private readonly mouse: RawMouse,
    private readonly keyboard: RawKeyboard,
  ) {}

  /**
   * Hold `keys` (pressed in order) while `fn` runs; released in reverse order even when `fn` throws. A key
   * whose press failed is released too (the press may have reached the X server before its reply was lost:
   * a key left held would go with every later key and click, into whatever window then has the focus), and
   * one failed release does not stop the others. @throws what `fn` or a press threw, else the first failed
   * release.
   */
  async withHeld<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const pressed: string[] = [];
    let result: T;
    try {
      for (const k of keys) {
        pressed.push(k);
        await this.keyboard.down(k);
      }
      result = await fn();
    } catch (e) {
      await releaseEach([...pressed].reverse(), (k) => this.keyboard.up(k));
      throw e;
    }
    const failed = await releaseEach([...pressed].reverse(), (k) => this.keyboard.up(k));
    if (failed) throw failed.error;
    return result;
  }

  /**
   * Press and release `button` once. A press or release that failed is followed by one more release, best
   * effort (a press processed by the X server whose reply was lost would leave the button held, and every
   * later move would drag under the first window's grab: review of 2026-12-07, Xvfb keeps an XTEST button
   * held after its client disconnects). @throws what the press or release threw.
   */
  private async pressOnce(button: MouseButton): Promise<void> {
    try {
      await this.mouse.down(button);
      await this.mouse.up(button);
    } catch (e) {
      await this.mouse.up(button).catch(() => undefined);
      throw e;
    }
  }

  /** Release `button`; when that fails, one more release, best effort (see {@link pressOnce}). @throws what the first release threw. */
  private async release(button: MouseButton): Promise<void> {
    try {
      await this.mouse.up(button);
    } catch (e) {
      await this.mouse.up(button).catch(() => undefined);
      throw e;
    }
  }

  /** Press a chord: keys down in order (modifiers first), then released in reverse. */
  tap(keys: readonly string[]): Promise<void> {
    return this.withHeld(keys, async () => undefined);
  }

  /**
   * Move to `point` (through `hover` first when given: see {@link hoverPoint}) and click `clicks` times with
   * `button`, holding `hold` (modifiers).
   */
  click(point: Point, button: MouseButton, clicks: number, hold: readonly string[] = [], hover?: Point): Promise<void> {
    return this.withHeld(hold, async () => {
      if (hover) await this.mouse.move(hover);
      if (clicks === 1 && this.mouse.click) {
        // The move, press and release at once (`RawMouse.click`: in order, one round trip on X11).
        try {
          await this.mouse.click(point, button);
        } catch (e) {
          // As pressOnce: the press may have been processed although the call failed.
          await this.mouse.up(button).catch(() => undefined);
          throw e;
        }
        return;
      }
      await this.mouse.move(point);
      for (let c = 0; c < clicks; c++) {
        // A double click's second press 30 ms after the first release, as a hand gives it (well inside the
        // toolkits' double-click interval): sent back to back over XTEST, Chromium sometimes missed it.
        if (c > 0) await new Promise((r) => setTimeout(r, 30));
        await this.pressOnce(button);
      }
    });
  }

  /** Move the pointer to `point`, holding `hold`. */
  move(point: Point, hold: readonly string[] = []): Promise<void> {
    return this.withHeld(hold, () => this.mouse.move(point));
  }

  /**
   * Move to `point` and scroll `steps` (positive dy = down, dx = right), holding `hold`: logical points
   * where the platform scrolls in pixels (`RawMouse.scrollPoints`), else whole wheel steps (see `scroll.ts`
   * for how points become steps; the plan chose the unit the same way). With both 0 only the pointer moves;
   * no scroll event is sent.
   */
  scroll(point: Point, steps: { dx: number; dy: number }, hold: readonly string[] = []): Promise<void> {
    return this.withHeld(hold, async () => {
      await this.mouse.move(point);
      if (steps.dx === 0 && steps.dy === 0) return;
      if (this.mouse.scrollPoints) await this.mouse.scrollPoints(steps.dx, steps.dy);
      else await this.mouse.wheel(steps.dx, steps.dy);
    });
  }

  /**
   * Drag with the left button through {@link dragPoints}: move to the first point, press, pause
   * ({@link DRAG_PRESS_DELAY_MS}), move to the second point (past the drag threshold) and pause
   * ({@link DRAG_START_DELAY_MS}), move through the rest {@link DRAG_MOTION_DELAY_MS} apart, pause at the
   * last ({@link DRAG_RELEASE_DELAY_MS}), release. The button is released even when a motion fails.
   * A 64-point drag takes ≈ 0.5 s on X11 (delays plus one IPC round trip per event).
   * @returns the number of points visited (press and release included).
   */
  drag(path: readonly Point[], hold: readonly string[] = []): Promise<number> {
    const pts = dragPoints(path);
    return this.withHeld(hold, async () => {
      await this.mouse.move(pts[0]!);
      try {
        // Inside the try: a press whose reply was lost may still have pressed the button.
        await this.mouse.down('left');
        await delay(DRAG_PRESS_DELAY_MS);
        for (const [k, pt] of pts.slice(1).entries()) {
          await this.mouse.move(pt);
          await delay(k === 0 ? DRAG_START_DELAY_MS : k === pts.length - 2 ? DRAG_RELEASE_DELAY_MS : DRAG_MOTION_DELAY_MS);
        }
      } catch (e) {
        await this.mouse.up('left').catch(() => undefined);
        throw e;
      }
      await this.release('left');
      return pts.length;
    });
  }

  /**
   * Type text: `\n` and `\t` are pressed as Enter and Tab, the rest typed literally in chunks of at most
   * {@link TYPE_CHUNK} characters. `recheck` runs before every chunk and key after the first; when it
   * throws, nothing more is typed and the error propagates.
   */
  async type(text: string, recheck: () => Promise<void>): Promise<void> {
    let first = true;
    const next = async () => {
      if (!first) await recheck();
      first = false;
    };
    for (const part of text.split(/([\n\t])/)) {
      if (part === '\n' || part === '\t') {
        await next();
        await this.tap([part === '\n' ? 'enter' : 'tab']);
        continue;
      }
      const chars = [...part];
      for (let k = 0; k < chars.length; k += TYPE_CHUNK) {
        await next();
        await this.keyboard.type(chars.slice(k, k + TYPE_CHUNK).join(''));
      }
    }
  }
}

/**
 * Run `release` for every item in order, each even when one before failed. @returns the first failure
 * (wrapped, so a thrown `undefined` still counts), or null.
 */
async function releaseEach<T>(items: readonly T[], release: (item: T) => Promise<void>): Promise<{ error: unknown } | null> {
  let first: { error: unknown } | null = null;
  for (const it of items) {
    try {
      await release(it);
    } catch (error) {
      first ??= { error };
    }
  }
  return first;
}
