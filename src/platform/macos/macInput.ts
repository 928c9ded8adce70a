/**
 * Keyboard text and pixel scrolling through the macOS helper, for what nut-js cannot do: typing text that
 * is not on the keyboard layout (any Unicode: emoji, CJK, accents) and scrolling by pixels rather than whole
 * wheel steps. `typeText` is the macOS keyboard's `type` (`MacKeyboard` in macKeyboard.ts, which imports this
 * module; a link back would make an import circle); `scrollPixels` is the macOS mouse's `scrollPoints`
 * (`MacMouse` in macMouse.ts), which the scroll action uses wherever it exists.
 */
import type { Point } from '../types.js';
import type { HelperClient } from './helperClient.js';

/** Unicode typing and pixel scrolling over the helper's `typeText` and `scroll` operations. */
export class MacInput {
  constructor(private readonly client: HelperClient) {}

  /**
   * Type `text` as keyboard events carrying it as their Unicode string (`CGEventKeyboardSetUnicodeString`,
   * at most 20 UTF-16 units per event, surrogate pairs kept whole), independent of the keyboard layout.
   * Apps that translate key codes themselves may ignore the string (Apple's note on the call).
   * @returns the number of key-down/key-up pairs posted.
   * @throws DeskdError `INTERNAL` for an empty text (nothing is sent), `PERMISSION_DENIED_ACCESSIBILITY`,
   *   `HELPER_UNAVAILABLE`, `TIMEOUT`.
   */
  async typeText(text: string, timeoutMs?: number): Promise<number> {
    const r = await this.client.request('typeText', { text }, timeoutMs ? { timeoutMs } : {});
    return r.chunks;
  }

  /**
   * Scroll by pixels (logical points) with one `CGEventCreateScrollWheelEvent2` event in
   * `kCGScrollEventUnitPixel`, at `at` if given (the pointer moves there first). Positive `dy` scrolls toward
   * the end of the content (down), positive `dx` to the right, as `RawMouse.wheel` does in steps.
   * @throws DeskdError `INTERNAL` when both deltas are 0 or one is beyond ±10000 (nothing is sent),
   *   `PERMISSION_DENIED_ACCESSIBILITY`, `HELPER_UNAVAILABLE`, `TIMEOUT`.
   */
  async scrollPixels(dx: number, dy: number, at?: Point): Promise<void> {
    const deltaX = Math.round(dx);
    const deltaY = Math.round(dy);
    // A zero delta is left out of the request (the helper defaults it to 0).
    await this.client.request('scroll', { ...(deltaX ? { deltaX } : {}), ...(deltaY ? { deltaY } : {}), ...(at ? { x: at.x, y: at.y } : {}) });
  }
}
