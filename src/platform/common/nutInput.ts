import { createRequire } from 'node:module';
import type { MouseButton, Point, RawKeyboard, RawMouse } from '../types.js';
import { DeskdError } from '../../errors.js';

/**
 * Mouse and keyboard through `@nut-tree-fork/nut-js` (libnut, CGEvent) in this process: the macOS backend.
 * The Linux backend runs libnut in a child process instead (`../linux/x11Supervisor.ts`) and uses only
 * the pure key-name mapping from here. Only backends import this file.
 *
 * nut-js is loaded lazily, on first use, so that a process can first point `DISPLAY` at a virtual
 * display (libnut opens the X display when it is first used).
 */
type Nut = typeof import('@nut-tree-fork/nut-js');

let nutPromise: Promise<Nut> | null = null;
/** Load nut-js once, configured for instant, unanimated input. */
async function nut(): Promise<Nut> {
  nutPromise ??= (async () => {
    const require = createRequire(import.meta.url);
    const m = require('@nut-tree-fork/nut-js') as Nut;
    m.keyboard.config.autoDelayMs = 0;
    m.mouse.config.autoDelayMs = 0;
    m.mouse.config.mouseSpeed = 100000;
    return m;
  })();
  return nutPromise;
}

/**
 * Canonical deskd key name → nut-js `Key` enum member name (`ctrl` → `LeftControl`, `a` → `A`). `metaKey`
 * differs per OS. Pure (does not load nut-js); the Linux backend sends these names to its X11 worker.
 * @throws DeskdError `UNKNOWN_KEY`.
 */
export function nutKeyName(key: string, metaKey: 'LeftSuper' | 'LeftCmd'): string {
  const fixed: Record<string, string> = {
    ctrl: 'LeftControl', shift: 'LeftShift', alt: 'LeftAlt', meta: metaKey,
    enter: 'Enter', tab: 'Tab', escape: 'Escape', backspace: 'Backspace', delete: 'Delete', space: 'Space',
    insert: 'Insert', up: 'Up', down: 'Down', left: 'Left', right: 'Right', home: 'Home', end: 'End',
    pageup: 'PageUp', pagedown: 'PageDown', capslock: 'CapsLock', printscreen: 'Print', scrolllock: 'ScrollLock',
    pause: 'Pause', menu: 'Menu',
    '`': 'Grave', '-': 'Minus', '=': 'Equal', '[': 'LeftBracket', ']': 'RightBracket', '\\': 'Backslash',
    ';': 'Semicolon', "'": 'Quote', ',': 'Comma', '.': 'Period', '/': 'Slash', '+': 'Add', '*': 'Multiply',
  };
  const f = Object.hasOwn(fixed, key) ? fixed[key] : undefined;
  if (f) return f;
  if (/^f([1-9]|1\d|2[0-4])$/.test(key)) return key.toUpperCase();
  if (/^[a-z]$/.test(key)) return key.toUpperCase();
  if (/^[0-9]$/.test(key)) return `Num${key}`;
  throw new DeskdError('UNKNOWN_KEY', `Key "${key}" has no key code on this backend; send it with \`type\` instead`);
}

/** Resolve a canonical key name to a nut-js Key value. @throws DeskdError `UNKNOWN_KEY`. */
async function nutKey(key: string, metaKey: 'LeftSuper' | 'LeftCmd'): Promise<number> {
  const m = await nut();
  const name = nutKeyName(key, metaKey);
  const value = (m.Key as unknown as Record<string, number>)[name];
  if (typeof value !== 'number') throw new DeskdError('UNKNOWN_KEY', `nut-js has no key ${name}`);
  return value;
}

/** True if a canonical key can be pressed with a key code by this backend (without loading nut-js). */
export function hasKeyCode(key: string): boolean {
  try {
    nutKeyName(key, 'LeftSuper');
    return true;
  } catch {
    return false;
  }
}

/** nut-js mouse as a {@link RawMouse}. Points are logical points (libnut works in points on macOS and pixels = points on X11). */
export class NutMouse implements RawMouse {
  async move(p: Point): Promise<void> {
    const m = await nut();
    await m.mouse.setPosition(new m.Point(Math.round(p.x), Math.round(p.y)));
  }
  async down(button: MouseButton): Promise<void> {
    const m = await nut();
    await m.mouse.pressButton(this.button(m, button));
  }
  async up(button: MouseButton): Promise<void> {
    const m = await nut();
    await m.mouse.releaseButton(this.button(m, button));
  }
  async wheel(dx: number, dy: number): Promise<void> {
    const m = await nut();
    if (dy > 0) await m.mouse.scrollDown(dy);
    if (dy < 0) await m.mouse.scrollUp(-dy);
    if (dx > 0) await m.mouse.scrollRight(dx);
    if (dx < 0) await m.mouse.scrollLeft(-dx);
  }
  async position(): Promise<Point> {
    const m = await nut();
    const p = await m.mouse.getPosition();
    return { x: p.x, y: p.y };
  }
  private button(m: Nut, b: MouseButton): number {
    if (b === 'left') return m.Button.LEFT;
    if (b === 'right') return m.Button.RIGHT;
    if (b === 'middle') return m.Button.MIDDLE;
    throw new DeskdError('ACTION_FAILED', `Mouse button "${b}" is not supported by the nut-js backend`);
  }
}

/** nut-js keyboard as a {@link RawKeyboard}. `meta` is Super on Linux and Cmd on macOS. */
export class NutKeyboard implements RawKeyboard {
  constructor(private readonly metaKey: 'LeftSuper' | 'LeftCmd') {}
  supportsKey(key: string): boolean {
    return hasKeyCode(key);
  }
  async down(key: string): Promise<void> {
    const m = await nut();
    await m.keyboard.pressKey(await nutKey(key, this.metaKey));
  }
  async up(key: string): Promise<void> {
    const m = await nut();
    await m.keyboard.releaseKey(await nutKey(key, this.metaKey));
  }
  async type(text: string): Promise<void> {
    const m = await nut();
    await m.keyboard.type(text);
  }
}
