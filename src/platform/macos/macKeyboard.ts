/**
 * The macOS keyboard: key presses (chords, held modifiers) through nut-js, literal text through the helper's
 * `typeText` (`CGEventKeyboardSetUnicodeString`), so any Unicode text arrives as typed — nut-js types only
 * what the keyboard layout has keys for and silently drops the rest (issue 14 item 9; issue 21 parity).
 * Not run on a Mac (see docs/macos.md).
 */
import type { RawKeyboard } from '../types.js';
import type { MacInput } from './macInput.js';

/** The key-press half of a keyboard (nut-js on macOS). */
export type KeyPresser = Pick<RawKeyboard, 'down' | 'up'> & { supportsKey?(key: string): boolean };

/** A {@link RawKeyboard} that presses keys with `keys` and types text with the helper. */
export class MacKeyboard implements RawKeyboard {
  constructor(
    private readonly keys: KeyPresser,
    private readonly input: Pick<MacInput, 'typeText'>,
  ) {}

  /** Whether `down`/`up` can press this canonical key (nut-js's key table). */
  supportsKey(key: string): boolean {
    return this.keys.supportsKey ? this.keys.supportsKey(key) : true;
  }

  /** Press a key through nut-js. @throws as nut-js. */
  down(key: string): Promise<void> {
    return this.keys.down(key);
  }

  /** Release a key through nut-js. @throws as nut-js. */
  up(key: string): Promise<void> {
    return this.keys.up(key);
  }

  /**
   * Type `text` literally through the helper (any Unicode; no chord interpretation). An empty text sends
   * nothing. @throws DeskdError `PERMISSION_DENIED_ACCESSIBILITY`, `HELPER_UNAVAILABLE`, `TIMEOUT`.
   */
  async type(text: string): Promise<void> {
    if (text.length === 0) return;
    await this.input.typeText(text);
  }
}
