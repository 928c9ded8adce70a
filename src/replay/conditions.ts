import { DeskdError } from '../errors.js';
import { normalizeForMatch } from '../perception/find.js';
import type { Action } from '../actuation/schema.js';
import { textsOf, type FingerprintSource } from './fingerprint.js';
import { roleScore } from './ground.js';
import type { Postcondition } from './types.js';

/**
 * Postconditions and parameters of replayed steps (issue 18). Pure.
 */

/** Digit runs of a text that also holds letters become `#` ("Build 7 succeeded" → "build # succeeded"); pure numbers stay. */
export function volatileForm(s: string): string {
  const n = normalizeForMatch(s);
  return /\p{L}/u.test(n) ? n.replace(/\d+/g, '#') : n;
}

/**
 * Whether `pc` holds in `obs`: an element of the postcondition's role (or a related one, see `roleScore`)
 * shows its text in its name or value — an OCR line for role `text` — compared normalised (contains),
 * with digit runs folded when the text holds letters ({@link volatileForm}).
 */
export function postconditionHolds(pc: Postcondition, obs: FingerprintSource): boolean {
  const want = volatileForm(pc.text);
  for (const t of textsOf(obs).values()) {
    if (t.role !== pc.role && roleScore(t.role, pc.role) === 0) continue;
    const have = volatileForm(t.text);
    if (have === want || have.includes(want)) return true;
  }
  return false;
}

/** `{{name}}` placeholders: letters, digits, `_`, `-`; 1–40 characters. */
export const PARAM_RE = /\{\{([A-Za-z][A-Za-z0-9_-]{0,39})\}\}/g;

/** Parameter names a text refers to. */
export function paramsIn(text: string): string[] {
  return [...text.matchAll(PARAM_RE)].map((m) => m[1]!);
}

/**
 * Fill `{{name}}` placeholders of `text` from `params` (then from `defaults`).
 * @throws DeskdError `REPLAY_PARAM_MISSING` naming the parameter when neither has it.
 */
export function fillParams(text: string, params: Record<string, string>, defaults: Record<string, string | null>, where: string): string {
  return text.replace(PARAM_RE, (_m, name: string) => {
    const v = Object.hasOwn(params, name) ? params[name] : Object.hasOwn(defaults, name) ? defaults[name] : null;
    if (v === null || v === undefined) throw new DeskdError('REPLAY_PARAM_MISSING', `${where} needs the parameter "${name}" (give it in params)`, { param: name });
    return v;
  });
}

/**
 * Turn typed text into a stored form: with `keepText` the text itself with every recorded parameter value
 * replaced by its `{{name}}`; without it a fresh `{{textN}}` parameter (the text is not stored).
 */
export function storedText(text: string, keepText: boolean, params: Record<string, string | null>, fresh: () => string): string {
  if (!keepText) return `{{${fresh()}}}`;
  let out = text;
  // Longest values first, so "main-2" is not split by "main".
  const entries = Object.entries(params).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '').sort((a, b) => b[1].length - a[1].length);
  for (const [name, value] of entries) out = out.split(value).join(`{{${name}}}`);
  return out;
}

/** Fill the text-bearing fields of an action (`type.text`, `set_value.value`). */
export function fillAction(a: Action, params: Record<string, string>, defaults: Record<string, string | null>, where: string): Action {
  if (a.type === 'type') return { ...a, text: fillParams(a.text, params, defaults, where) };
  if (a.type === 'set_value') return { ...a, value: fillParams(a.value, params, defaults, where) };
  return a;
}
