import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { hasKeyCode, nutKeyName } from '../common/nutInput.js';
import { DeskdError } from '../../errors.js';
import type { RawKeyboard } from '../types.js';
import type { X11Supervisor } from './x11Supervisor.js';

const run = promisify(execFile);

/**
 * X11 keyboard: key presses through nut-js (libnut, XTest) in the X11 worker process (`x11Supervisor.ts`),
 * literal text through `xdotool type` from this process.
 *
 * Why not libnut for text: under Xvfb its `typeString` drops the shift state of some shifted symbols
 * (measured: "echo $((40 + 2))" arrived as "echo 4((40 = 2))"), and it cannot type characters absent
 * from the keymap. xdotool maps each character to a keysym (remapping a spare keycode for
 * characters the layout lacks, so Unicode text works) and sends it with XTest too.
 *
 * Errors: `UNKNOWN_KEY` (no key code for the name), `ACTION_FAILED` (X display unreachable, worker crashed
 * or timed out, xdotool missing or failed).
 */
export class X11Keyboard implements RawKeyboard {
  constructor(private readonly x11: X11Supervisor) {}
  supportsKey(key: string): boolean {
    return hasKeyCode(key);
  }
  async down(key: string): Promise<void> {
    await this.x11.request('keyDown', { key: nutKeyName(key, 'LeftSuper') });
  }
  async up(key: string): Promise<void> {
    await this.x11.request('keyUp', { key: nutKeyName(key, 'LeftSuper') });
  }
  async type(text: string): Promise<void> {
    if (text === '') return;
    try {
      // `--` so text starting with "-" is not read as an option; no delay between keys.
      await run('xdotool', ['type', '--clearmodifiers', '--delay', '0', '--', text], { timeout: 30_000, env: process.env });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      if (err.code === 'ENOENT') throw new DeskdError('ACTION_FAILED', 'xdotool is missing (Debian package xdotool)');
      throw new DeskdError('ACTION_FAILED', `xdotool type failed: ${(err.stderr ?? err.message).trim()}`);
    }
  }
}
