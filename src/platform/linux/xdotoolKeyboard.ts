import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NutKeyboard } from '../common/nutInput.js';
import { DeskdError } from '../../errors.js';

const run = promisify(execFile);

/**
 * X11 keyboard: key presses through nut-js (libnut, XTest), literal text through `xdotool type`.
 *
 * Why not libnut for text: under Xvfb its `typeString` drops the shift state of some shifted symbols
 * (measured: "echo $((40 + 2))" arrived as "echo 4((40 = 2))"), and it cannot type characters absent
 * from the keymap. xdotool maps each character to a keysym (remapping a spare keycode for
 * characters the layout lacks, so Unicode text works) and sends it with XTest too.
 */
export class X11Keyboard extends NutKeyboard {
  constructor() {
    super('LeftSuper');
  }
  override async type(text: string): Promise<void> {
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
