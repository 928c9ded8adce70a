import { DeskdError } from '../errors.js';

/**
 * deskd's one key vocabulary and chord parser, beside the role vocabulary (`roles.ts`): backends receive
 * these names (`RawKeyboard`), the executor normalises what callers send into them (`actuation/plan.ts`),
 * and the policy compares chords in them (`policy/keys.ts`), so a chord the executor would send can never
 * escape a policy rule by spelling.
 */

/**
 * Canonical key names. Modifiers: `ctrl`, `shift`, `alt`, `meta` (cmd on macOS, super on Linux).
 * Named keys below; any other single printable character stands for itself (letters lower-cased).
 */
export const NAMED_KEYS = [
  'ctrl', 'shift', 'alt', 'meta',
  'enter', 'tab', 'escape', 'backspace', 'delete', 'space', 'insert',
  'up', 'down', 'left', 'right', 'home', 'end', 'pageup', 'pagedown',
  'capslock', 'printscreen', 'scrolllock', 'pause', 'menu',
  'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'f10', 'f11', 'f12',
  'f13', 'f14', 'f15', 'f16', 'f17', 'f18', 'f19', 'f20', 'f21', 'f22', 'f23', 'f24',
] as const;

/** A canonical key name: one of {@link NAMED_KEYS} or a single printable character. */
export type KeyName = string;

const NAMED: ReadonlySet<string> = new Set(NAMED_KEYS);

/** The four modifier names. */
export const MODIFIERS: ReadonlySet<string> = new Set(['ctrl', 'shift', 'alt', 'meta']);

/**
 * Synonyms accepted from callers. OpenAI's computer-use models send names such as `CTRL`, `CMD`,
 * `ENTER`, `ESC`, `ARROWLEFT`, `PAGEDOWN`, `SPACE` (upper case, DOM `KeyboardEvent.key` style);
 * xdotool-style (`Return`, `super`) and macOS-style (`option`, `command`) names are accepted too.
 */
const SYNONYMS: Readonly<Record<string, string>> = {
  control: 'ctrl', ctl: 'ctrl', lctrl: 'ctrl', rctrl: 'ctrl',
  cmd: 'meta', command: 'meta', super: 'meta', win: 'meta', windows: 'meta', os: 'meta', lmeta: 'meta',
  option: 'alt', opt: 'alt', lalt: 'alt', ralt: 'alt', altgr: 'alt',
  lshift: 'shift', rshift: 'shift',
  return: 'enter', kp_enter: 'enter',
  esc: 'escape',
  del: 'delete',
  bksp: 'backspace', back_space: 'backspace',
  spacebar: 'space', ' ': 'space',
  arrowup: 'up', arrowdown: 'down', arrowleft: 'left', arrowright: 'right',
  pgup: 'pageup', page_up: 'pageup', prior: 'pageup',
  pgdn: 'pagedown', page_down: 'pagedown', next: 'pagedown',
  ins: 'insert', print: 'printscreen', prtsc: 'printscreen', caps_lock: 'capslock', contextmenu: 'menu', apps: 'menu',
  plus: '+', minus: '-', comma: ',', period: '.', slash: '/', backslash: '\\', semicolon: ';',
  quote: "'", apostrophe: "'", equal: '=', equals: '=', grave: '`', backquote: '`',
  bracketleft: '[', bracketright: ']',
};

/**
 * Normalise one key name to its canonical form.
 * @throws DeskdError `UNKNOWN_KEY` when the name is not a known key or a single printable character.
 */
export function normalizeKey(raw: string): KeyName {
  if (typeof raw !== 'string' || raw.length === 0) throw new DeskdError('UNKNOWN_KEY', 'Empty key name');
  if ([...raw].length === 1) {
    if (raw === ' ') return 'space';
    if (/\p{Cc}/u.test(raw)) throw new DeskdError('UNKNOWN_KEY', `Control character U+${raw.codePointAt(0)!.toString(16).padStart(4, '0')} is not a key name`);
    return raw.toLowerCase();
  }
  const lower = raw.toLowerCase();
  // Own names only: `constructor`, `toString`, `__proto__` are not synonyms (a 500 before, found by tests/property/api.test.ts).
  const k = Object.hasOwn(SYNONYMS, lower) ? SYNONYMS[lower]! : lower;
  if (NAMED.has(k) || [...k].length === 1) return k;
  throw new DeskdError('UNKNOWN_KEY', `Unknown key name "${raw}"`);
}

/**
 * Split one `+`-joined chord string into its key names, not yet normalised (`"ctrl+c"` → `["ctrl", "c"]`).
 * `+` itself is written as an empty part: `"ctrl++"` is ctrl and plus, `"+"` is plus. Spaces around a
 * name are dropped (`"ctrl + c"`); a part that is only spaces is the space key. The one chord parser of
 * the executor ({@link normalizeChord}) and the policy (`src/policy/keys.ts`).
 */
export function splitChord(s: string): string[] {
  if (s === '+') return ['+'];
  const parts = s.split('+');
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === '') {
      // An empty part next to another empty part (or at the end) is a literal '+'.
      if (i === parts.length - 1 || parts[i + 1] === '') {
        out.push('+');
        i++;
      }
      continue;
    }
    out.push(p.trim() === '' ? p : p.trim());
  }
  return out;
}

/**
 * Split a chord into canonical keys. Accepts an array (`["CTRL", "C"]`, the OpenAI `keypress` shape; each
 * element one key name) or a `+`-joined string (`"ctrl+c"`, split by {@link splitChord}). Modifiers come
 * first in the result, in the order given.
 * @throws DeskdError `UNKNOWN_KEY`.
 */
export function normalizeChord(keys: string[] | string): KeyName[] {
  const out = (Array.isArray(keys) ? keys : splitChord(keys)).map(normalizeKey);
  const mods = out.filter((k) => MODIFIERS.has(k));
  const rest = out.filter((k) => !MODIFIERS.has(k));
  return [...mods, ...rest];
}
