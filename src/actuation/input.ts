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

/**
 * The points the pointer visits during a drag, in order, logical points: press at the first, motion to
 * each following one, release at the last. The policy judges the window (and element) under every one
 * of them; dispatch moves through exactly these, so the two cannot disagree.
 */
export function dragPoints(path: readonly Point[]): Point[] {
  return path.map((p) => ({ x: p.x, y: p.y }));
}

/** Input built from raw events. All points are logical screen points. */
export class Input {
  constructor(
    private readonly mouse: RawMouse,
    private readonly keyboard: RawKeyboard,
  ) {}

  /** Hold `keys` (pressed in order) while `fn` runs; released in reverse order even when `fn` throws. */
  async withHeld<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const pressed: string[] = [];
    try {
      for (const k of keys) {
        await this.keyboard.down(k);
        pressed.push(k);
      }
      return await fn();
    } finally {
      for (const k of pressed.reverse()) await this.keyboard.up(k);
    }
  }

  /** Press a chord: keys down in order (modifiers first), then released in reverse. */
  tap(keys: readonly string[]): Promise<void> {
    return this.withHeld(keys, async () => undefined);
  }

  /** Move to `point` and click `clicks` times with `button`, holding `hold` (modifiers). */
  click(point: Point, button: MouseButton, clicks: number, hold: readonly string[] = []): Promise<void> {
    return this.withHeld(hold, async () => {
      await this.mouse.move(point);
      for (let c = 0; c < clicks; c++) {
        await this.mouse.down(button);
        await this.mouse.up(button);
      }
    });
  }

  /** Move the pointer to `point`, holding `hold`. */
  move(point: Point, hold: readonly string[] = []): Promise<void> {
    return this.withHeld(hold, () => this.mouse.move(point));
  }

  /** Move to `point` and scroll whole wheel steps (positive dy = down, dx = right), holding `hold`. */
  scroll(point: Point, steps: { dx: number; dy: number }, hold: readonly string[] = []): Promise<void> {
    return this.withHeld(hold, async () => {
      await this.mouse.move(point);
      await this.mouse.wheel(steps.dx, steps.dy);
    });
  }

  /** Press the left button at the first point of {@link dragPoints}, move through the rest, release (always). */
  drag(path: readonly Point[], hold: readonly string[] = []): Promise<void> {
    const pts = dragPoints(path);
    return this.withHeld(hold, async () => {
      await this.mouse.move(pts[0]!);
      await this.mouse.down('left');
      try {
        for (const pt of pts.slice(1)) await this.mouse.move(pt);
      } finally {
        await this.mouse.up('left');
      }
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
