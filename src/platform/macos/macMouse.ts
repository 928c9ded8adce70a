/**
 * The macOS mouse: pointer moves and buttons through nut-js, scrolling in pixels through the helper's
 * `scroll` (`CGEventCreateScrollWheelEvent2`, `kCGScrollEventUnitPixel`), so a scroll of N points scrolls N
 * points instead of a rounded number of wheel lines (issue 21 parity). Not run on a Mac (see docs/macos.md).
 */
import type { MouseButton, Point, RawMouse } from '../types.js';
import type { MacInput } from './macInput.js';

/** Largest delta of one helper `scroll` event (points; protocol.ts `ScrollParamsSchema`). */
export const MAX_SCROLL_EVENT_POINTS = 10_000;

/** A {@link RawMouse} that moves and clicks with `pointer` (nut-js) and scrolls in pixels with the helper. */
export class MacMouse implements RawMouse {
  constructor(
    private readonly pointer: RawMouse,
    private readonly input: Pick<MacInput, 'scrollPixels'>,
  ) {}

  /** Move the pointer (nut-js). */
  move(p: Point): Promise<void> {
    return this.pointer.move(p);
  }

  /** Press a button (nut-js). */
  down(button: MouseButton): Promise<void> {
    return this.pointer.down(button);
  }

  /** Release a button (nut-js). */
  up(button: MouseButton): Promise<void> {
    return this.pointer.up(button);
  }

  /** Scroll whole wheel lines (nut-js); the scroll action uses {@link scrollPoints}. */
  wheel(dx: number, dy: number): Promise<void> {
    return this.pointer.wheel(dx, dy);
  }

  /** Pointer position (nut-js). */
  position(): Promise<Point> {
    return this.pointer.position();
  }

  /**
   * Scroll by `dx`, `dy` points at the pointer (positive down/right) in pixel scroll events, each at most
   * {@link MAX_SCROLL_EVENT_POINTS} per axis (a larger amount is several events). Amounts are rounded to
   * whole points; nothing is sent for 0, 0.
   * @throws DeskdError `PERMISSION_DENIED_ACCESSIBILITY`, `HELPER_UNAVAILABLE`, `TIMEOUT` (from the helper).
   */
  async scrollPoints(dx: number, dy: number): Promise<void> {
    let x = Math.round(dx);
    let y = Math.round(dy);
    const clampStep = (v: number) => Math.sign(v) * Math.min(Math.abs(v), MAX_SCROLL_EVENT_POINTS);
    while (x !== 0 || y !== 0) {
      const sx = clampStep(x);
      const sy = clampStep(y);
      await this.input.scrollPixels(sx, sy);
      x -= sx;
      y -= sy;
    }
  }
}
