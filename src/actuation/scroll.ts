import type { WindowInfo } from '../platform/types.js';

/**
 * Scroll amounts (issue 14, item 10). The `scroll` action's `scroll_x`/`scroll_y` are **logical points**
 * (screen pixels on X11), as in OpenAI's computer-use `scroll` shape; positive scrolls right/down.
 *
 * What the platform can deliver: on X11 deskd's input goes through XTest, whose virtual pointer has only
 * the x/y valuators (no XInput2 scroll valuators, and XI2 does not let a client create a device that has
 * them), so the only scroll events it can produce are wheel clicks (core buttons 4/5/6/7). The amount is
 * therefore delivered as the nearest whole number of wheel clicks, using how far one click scrolls in the
 * app under the pointer, measured per toolkit:
 *
 * | toolkit (window under the point) | points per click | source |
 * | --- | --- | --- |
 * | Chromium / Chrome / Electron (X11) | 120 | measured: Debian Chromium 156 under Xvfb, 1–5 clicks on a page and in an `overflow:auto` box, after the smooth-scroll animation settled: exactly 120 px per click every time |
 * | anything else | 50 | estimate (GTK 3/4 scroll `page_size^(2/3)` px per click — 47 px for a 330 px view, 86 px for 800 px; xterm scrolls lines) |
 *
 * Rounding: to the nearest click, so the delivered amount is within half a click of the request. An
 * amount smaller than half a click (e.g. 37 points where a click is 120) is delivered as **zero** clicks —
 * nothing scrolls — and the result says so (`steps: 0`, `approxPoints: 0`); deskd never silently scrolls
 * a whole click for a tiny request. The action result reports what was delivered (see {@link ScrollReport}).
 */

/** Points one wheel click scrolls where no toolkit below matches (an estimate, see the module comment). */
export const DEFAULT_WHEEL_STEP_POINTS = 50;

/** Wheel-click sizes per toolkit, first match wins; `match` is tested on the window's app (process name), WM_CLASS class and instance. */
export const WHEEL_STEP_POINTS: readonly { toolkit: string; match: RegExp; points: number }[] = [
  { toolkit: 'chromium', match: /^(chromium|chromium-browser|chrome|google-chrome.*|electron.*)$/i, points: 120 },
];

/** How far one wheel click scrolls at a point: the toolkit it was chosen by (`default` when none matched). */
export interface WheelStep {
  toolkit: string;
  /** Logical points per wheel click. */
  points: number;
}

/**
 * The wheel-click size for the window under a scroll's point. Only X11 sizes are measured, so on other
 * platforms (`platform !== 'linux'`) and for unknown apps the answer is {@link DEFAULT_WHEEL_STEP_POINTS}.
 */
export function wheelStepFor(window: Pick<WindowInfo, 'app' | 'wmClass' | 'instance'> | null, platform: string): WheelStep {
  if (window && platform === 'linux') {
    const names = [window.app, window.wmClass, window.instance].filter((n): n is string => typeof n === 'string' && n.length > 0);
    for (const t of WHEEL_STEP_POINTS) if (names.some((n) => t.match.test(n))) return { toolkit: t.toolkit, points: t.points };
  }
  return { toolkit: 'default', points: DEFAULT_WHEEL_STEP_POINTS };
}

/**
 * Whole wheel clicks for an amount of points: the nearest integer of `points / pointsPerStep` (halves
 * away from zero), so |points| < pointsPerStep / 2 gives 0. Sign: positive = down/right.
 */
export function wheelSteps(points: number, pointsPerStep: number): number {
  if (!(pointsPerStep > 0)) throw new RangeError(`pointsPerStep must be > 0, got ${pointsPerStep}`);
  const n = Math.sign(points) * Math.round(Math.abs(points) / pointsPerStep);
  return n === 0 ? 0 : n; // never -0
}

/** What a scroll delivered, as reported in the action result (`scrolled`). */
export interface ScrollReport {
  /** Requested amount, logical points (`scroll_x`, `scroll_y`). */
  requested: { dx: number; dy: number };
  /** Wheel clicks sent (positive = right/down). */
  steps: { dx: number; dy: number };
  /** About how far that scrolls: steps × `pointsPerStep`, logical points (0 when nothing was sent). */
  approxPoints: { dx: number; dy: number };
  /** Points per wheel click used for the conversion. */
  pointsPerStep: number;
  /** Which measurement `pointsPerStep` came from (`chromium`, or `default` = estimate). */
  toolkit: string;
}

/**
 * A scroll delivered in points, as asked, where the platform posts pixel scroll events
 * (`RawMouse.scrollPoints`): one "step" is one point (`pointsPerStep` 1, `toolkit` `pixels`), nothing is
 * rounded, and amounts are whole points.
 */
export function planPixelScroll(requested: { dx: number; dy: number }): ScrollReport {
  const steps = { dx: Math.round(requested.dx) || 0, dy: Math.round(requested.dy) || 0 };
  return { requested: { dx: requested.dx, dy: requested.dy }, steps, approxPoints: { ...steps }, pointsPerStep: 1, toolkit: 'pixels' };
}

/** Convert a requested scroll (logical points) to wheel clicks with `step`, and describe what will be delivered. */
export function planScroll(requested: { dx: number; dy: number }, step: WheelStep): ScrollReport {
  const steps = { dx: wheelSteps(requested.dx, step.points), dy: wheelSteps(requested.dy, step.points) };
  return {
    requested: { dx: requested.dx, dy: requested.dy },
    steps,
    approxPoints: { dx: steps.dx * step.points, dy: steps.dy * step.points },
    pointsPerStep: step.points,
    toolkit: step.toolkit,
  };
}
