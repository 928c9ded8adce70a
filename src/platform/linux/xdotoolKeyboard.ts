import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { hasKeyCode, nutKeyName } from '../common/nutInput.js';
import type { RawKeyboard } from '../types.js';
import type { X11Supervisor } from './x11Supervisor.js';
import { X11TextTyper, type CommandRunner, type X11TextOptions } from './x11Text.js';

const run = promisify(execFile);

/** Runs a command with this process's environment (or `env`), answering its stdout. */
const runCommand: CommandRunner = async (cmd, args, env) => (await run(cmd, args, { timeout: 30_000, env: env ?? process.env, encoding: 'utf8' })).stdout;

/**
 * X11 keyboard: key presses through nut-js (libnut, XTest) in the X11 worker process (`x11Supervisor.ts`),
 * literal text through {@link X11TextTyper} (`x11Text.ts`): characters the layout lacks are bound to empty
 * keycodes with `xmodmap` before anything is pressed, then the text is sent with `xdotool type` (XTest).
 *
 * Why not libnut for text: under Xvfb its `typeString` drops the shift state of some shifted symbols
 * (measured: "echo $((40 + 2))" arrived as "echo 4((40 = 2))"), and it cannot type characters absent
 * from the keymap. Why not `xdotool type` alone: its own remapping un-binds each scratch keycode right after
 * the press, before the client reads the mapping, so Unicode text arrived wrong or not at all (see `x11Text.ts`).
 *
 * Errors: `UNKNOWN_KEY` (no key code for the name), `TEXT_NOT_TYPEABLE` (a character cannot be typed;
 * nothing typed), `ACTION_FAILED` (X display unreachable, worker crashed or timed out, xdotool/xmodmap
 * missing or failed).
 */
export class X11Keyboard implements RawKeyboard {
  /** The text typer (exposed for statistics and tests). */
  readonly text: X11TextTyper;
  /**
   * @param textOptions.env variables laid over every xmodmap/xdotool environment (a workspace's `DISPLAY`,
   *   issue 22); default none (this process's environment).
   */
  constructor(
    private readonly x11: X11Supervisor,
    textOptions: X11TextOptions & { run?: CommandRunner; env?: Readonly<Record<string, string>> } = {},
  ) {
    const base = textOptions.run ?? runCommand;
    const overlay = textOptions.env;
    this.text = new X11TextTyper(overlay ? (cmd, args, env) => base(cmd, args, { ...(env ?? process.env), ...overlay }) : base, textOptions);
  }
  supportsKey(key: string): boolean {
    return hasKeyCode(key);
  }
  async down(key: string): Promise<void> {
    await this.x11.request('keyDown', { key: nutKeyName(key, 'LeftSuper') });
  }
  async up(key: string): Promise<void> {
    await this.x11.request('keyUp', { key: nutKeyName(key, 'LeftSuper') });
  }
  /** The first character of `text` that cannot be typed (see {@link X11TextTyper.untypeable}), or null. */
  supportsText(text: string): string | null {
    return this.text.untypeable(text);
  }
  /**
   * Type literal text (`\n`, `\r` → Return, `\t` → Tab).
   * @throws DeskdError `TEXT_NOT_TYPEABLE` before anything is typed; `ACTION_FAILED`.
   */
  async type(text: string): Promise<void> {
    await this.text.type(text);
  }
}
