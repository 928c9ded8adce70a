import { DeskdError } from '../errors.js';
import { normalizeForMatch } from '../perception/find.js';
import { center, contains } from '../perception/geometry.js';
import type { Rect, WindowInfo } from '../platform/types.js';
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

/** What a postcondition is checked against besides the observation. */
export interface CheckContext {
  /** The window list read with the observation, top-most first (masked windows left out); `window` postconditions need it. */
  windows?: readonly WindowInfo[];
  /**
   * The bounds of the step's target window now (global points): `gone` and `state` look only inside it
   * (another window may show the same text). Null or absent: the whole screen.
   */
  within?: Rect | null;
}

const related = (have: string, want: string) => have === want || roleScore(have, want) > 0;

/** Elements of `obs` inside `within` (by centre), or all of them. */
function elementsWithin(obs: FingerprintSource, within: Rect | null | undefined) {
  return within ? obs.elements.filter((e) => contains(within, center(e.bounds))) : obs.elements;
}

/**
 * Whether `pc` holds in `obs` (see {@link PostconditionSchema} in types.ts for each kind):
 * - `appears`: an element of the role (or a related one, see `roleScore`) shows the text in its name or
 *   value — an OCR line for role `text` — anywhere on screen (normalised contains, {@link volatileForm});
 * - `gone`: no such element inside `ctx.within` shows exactly the text;
 * - `state`: an element inside `ctx.within` of the role named `name` has every `has` state, no `lacks`
 *   state, and the `value` when one is given;
 * - `window`: a window of the app whose title holds the title is in `ctx.windows` (`present`), or none
 *   whose title is exactly it (not `present`); false without `ctx.windows`.
 */
export function postconditionHolds(pc: Postcondition, obs: FingerprintSource, ctx: CheckContext = {}): boolean {
  switch (pc.kind) {
    case 'appears': {
      const want = volatileForm(pc.text);
      for (const t of textsOf(obs).values()) {
        if (!related(t.role, pc.role)) continue;
        const have = volatileForm(t.text);
        if (have === want || have.includes(want)) return true;
      }
      return false;
    }
    case 'gone': {
      const want = volatileForm(pc.text);
      for (const t of textsOf(obs, ctx.within ?? null).values()) if (related(t.role, pc.role) && volatileForm(t.text) === want) return false;
      return true;
    }
    case 'state':
      return stateMatches(pc, obs, ctx).length > 0;
    case 'window': {
      if (!ctx.windows) return false;
      const want = volatileForm(pc.title);
      const ofApp = ctx.windows.filter((w) => pc.app === null || w.app === pc.app);
      if (pc.present) return ofApp.some((w) => volatileForm(w.title ?? '').includes(want));
      return !ofApp.some((w) => volatileForm(w.title ?? '') === want);
    }
  }
}

/** Elements that satisfy a `state` postcondition. */
function stateMatches(pc: Extract<Postcondition, { kind: 'state' }>, obs: FingerprintSource, ctx: CheckContext) {
  const name = normalizeForMatch(pc.name);
  return elementsWithin(obs, ctx.within).filter(
    (e) =>
      related(e.role, pc.role) &&
      normalizeForMatch(e.name) === name &&
      pc.has.every((s) => e.states.includes(s)) &&
      !pc.lacks.some((s) => e.states.includes(s)) &&
      (pc.value === undefined || volatileForm(e.value ?? '') === volatileForm(pc.value)),
  );
}

/** One line saying a postcondition, e.g. `gone textbox "7"`, `state checkbox "Dark" +checked`. */
export function describePostcondition(pc: Postcondition): string {
  switch (pc.kind) {
    case 'appears':
    case 'gone':
      return `${pc.kind} ${pc.role} "${pc.text}"`;
    case 'state':
      return `state ${pc.role} "${pc.name}"${pc.has.map((s) => ` +${s}`).join('')}${pc.lacks.map((s) => ` -${s}`).join('')}${pc.value !== undefined ? ` value "${pc.value}"` : ''}`;
    case 'window':
      return `window ${pc.app ?? '?'} "${pc.title}" ${pc.present ? 'shown' : 'gone'}`;
  }
}

/**
 * What the screen shows instead, for a postcondition that does not hold (for the divergence report): the
 * element still showing a `gone` text, the states and value of the elements named like a `state`
 * postcondition's, the windows of a `window` postcondition's app; null for `appears` (the report lists
 * the texts seen).
 */
export function seenFor(pc: Postcondition, obs: FingerprintSource, ctx: CheckContext = {}): string | null {
  switch (pc.kind) {
    case 'appears':
      return null;
    case 'gone': {
      const want = volatileForm(pc.text);
      const still = [...textsOf(obs, ctx.within ?? null).values()].find((t) => related(t.role, pc.role) && volatileForm(t.text) === want);
      return still ? `${still.role} "${still.text}" is still shown` : null;
    }
    case 'state': {
      const name = normalizeForMatch(pc.name);
      const named = elementsWithin(obs, ctx.within).filter((e) => related(e.role, pc.role) && normalizeForMatch(e.name) === name);
      if (named.length === 0) return `no ${pc.role} "${pc.name}"`;
      return named.map((e) => `${e.role} "${e.name}" states [${e.states.join(', ')}]${e.value !== undefined ? ` value "${e.value}"` : ''}`).join('; ');
    }
    case 'window':
      return `windows: ${(ctx.windows ?? []).filter((w) => pc.app === null || w.app === pc.app).map((w) => `${w.app ?? '?'} "${w.title ?? ''}"`).join(', ') || 'none'}`;
  }
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
