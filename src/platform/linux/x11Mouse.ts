import { DeskdError } from '../../errors.js';
import type { MouseButton, Point, RawMouse } from '../types.js';
import type { X11Supervisor } from './x11Supervisor.js';

/**
 * X11 mouse: nut-js (libnut, XTest) in the X11 worker process (`x11Supervisor.ts`). Points are logical
 * points = root-window pixels (X11 has no backing scale); moves are instant (`setPosition`).
 * Errors: `ACTION_FAILED` (X display unreachable — the message names it —, worker crashed or timed out,
 * buttons `back`/`forward`, which libnut cannot press).
 */
export class X11Mouse implements RawMouse {
  constructor(private readonly x11: X11Supervisor) {}
  async move(p: Point): Promise<void> {
    await this.x11.request('mouseMove', { x: Math.round(p.x), y: Math.round(p.y) });
  }
  async down(button: MouseButton): Promise<void> {
    await this.x11.request('mouseDown', { button: this.button(button) });
  }
  async up(button: MouseButton): Promise<void> {
    await this.x11.request('mouseUp', { button: this.button(button) });
  }
  async wheel(dx: number, dy: number): Promise<void> {
    await this.x11.request('mouseWheel', { dx, dy });
  }
  async position(): Promise<Point> {
    return this.x11.request('mousePosition', {});
  }
  private button(b: MouseButton): 'left' | 'right' | 'middle' {
    if (b === 'left' || b === 'right' || b === 'middle') return b;
    throw new DeskdError('ACTION_FAILED', `Mouse button "${b}" is not supported by the nut-js backend`);
  }
}
