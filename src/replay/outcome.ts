import type { Rect, WindowInfo } from '../platform/types.js';
import { normalizeForMatch } from '../perception/find.js';
import { center, contains } from '../perception/geometry.js';
import type { Element } from '../perception/elements.js';
import { textsOf, type FingerprintSource, type ShownText } from './fingerprint.js';
import { postconditionHolds, type CheckContext } from './conditions.js';
import { CHECKED_STATES, MAX_POSTCONDITIONS, type Postcondition } from './types.js';

/**
 * Outcomes (issue 18): what changed between the observation right before a recorded step and the one
 * right after it, and the postconditions proposed from it. Pure: elements and lines of two observations
 * (logical global points) and the window lists read with them (top-most first, masked windows left out).
 *
 * Proposed, in this order, at most {@link MAX_POSTCONDITIONS} in all, each one checked to hold in the
 * "after" observation itself (a proposal that would not hold there is dropped):
 * - up to 3 `appears`: texts that appeared in the target's window, shortest first (long texts change more
 *   often) — accessible texts only, unless none appeared (then OCR lines: OCR also reads passing pixels,
 *   a text cursor read as "7x|");
 * - up to 2 `state`: elements of the target's window, the same before and after by role and name (both
 *   unique, name not empty), whose states among {@link CHECKED_STATES} or whose value changed;
 * - up to 2 `window`: windows of the target's app that appeared (`present`) or went away, by title;
 * - up to 2 `gone`: accessible texts of the target's window no longer shown, shortest first (OCR lines
 *   never: a blinking cursor or a repaint makes OCR text "go").
 */

/** Inputs of {@link outcomeOf} besides the two observations. */
export interface OutcomeContext {
  /** The target's window bounds (global points): only changes inside it count. Null: the whole screen. */
  within: Rect | null;
  /** The target's app: only its windows count for `window` postconditions (null: every window). */
  app?: string | null;
  /** Window lists read with the observations before and after (top-most first, masked ones left out). */
  windowsBefore?: readonly WindowInfo[];
  windowsAfter?: readonly WindowInfo[];
}

/** What changed in a step, as shown in a recording's `outcome`, and the postconditions proposed from it. */
export interface Outcome {
  appeared: string[];
  gone: string[];
  /** Elements whose checked states or value changed: `role "name": +checked -expanded value "x"`. */
  states: string[];
  /** Windows that appeared (`+`) or went away (`-`): `+app "title"`. */
  windows: string[];
  postconditions: Postcondition[];
}

const MAX_LISTED = 20;
const MAX_GONE_TEXT = 80;

/**
 * What changed between `before` and `after` (see the module comment), and the proposed postconditions.
 * `ctx` may be a bare `Rect | null` (the target's window bounds; no window lists).
 */
export function outcomeOf(before: FingerprintSource, after: FingerprintSource, ctx: OutcomeContext | Rect | null): Outcome {
  const o: OutcomeContext = ctx === null || !('within' in ctx) ? { within: ctx } : ctx;
  const within = o.within;
  const a = textsOf(before, within);
  const b = textsOf(after, within);
  const appeared = [...b.entries()].filter(([k]) => !a.has(k)).map(([, t]) => t);
  const gone = [...a.entries()].filter(([k]) => !b.has(k)).map(([, t]) => t);
  const check: CheckContext = { within, ...(o.windowsAfter ? { windows: o.windowsAfter } : {}) };
  const holds = (pc: Postcondition) => postconditionHolds(pc, after, check);

  // appears: OCR text only when no accessible text appeared (passing pixels).
  const accessible = appeared.filter((t) => t.source === 'accessibility');
  const ranked = [...(accessible.length > 0 ? accessible : appeared)].sort((x, y) => x.text.length - y.text.length);
  const appears: Postcondition[] = ranked.slice(0, 3).map((t) => ({ kind: 'appears', text: t.text, role: t.role, source: t.source }));

  const { states, stateConditions } = stateChanges(before, after, within);
  const { windows, windowConditions } = windowChanges(o);

  const goneConditions: Postcondition[] = gone
    .filter((t) => t.source === 'accessibility' && t.text.length <= MAX_GONE_TEXT)
    .sort((x, y) => x.text.length - y.text.length)
    .map((t): Postcondition => ({ kind: 'gone', text: t.text, role: t.role, source: 'accessibility' }))
    .filter(holds)
    .slice(0, 2);

  const postconditions = [...appears.filter(holds), ...stateConditions.filter(holds).slice(0, 2), ...windowConditions.filter(holds).slice(0, 2), ...goneConditions].slice(0, MAX_POSTCONDITIONS);
  const show = (t: ShownText) => `${t.role} "${t.text}"`;
  return { appeared: appeared.slice(0, MAX_LISTED).map(show), gone: gone.slice(0, MAX_LISTED).map(show), states: states.slice(0, MAX_LISTED), windows: windows.slice(0, MAX_LISTED), postconditions };
}

/** Elements of `src` inside `within` keyed by role and normalised name, only the keys held by exactly one element. */
function uniqueByName(src: FingerprintSource, within: Rect | null): Map<string, Element> {
  const seen = new Map<string, Element | null>();
  for (const e of src.elements) {
    if (e.source === 'ocr' || e.name === '' || (within && !contains(within, center(e.bounds)))) continue;
    const key = `${e.role}\u0000${normalizeForMatch(e.name)}`;
    seen.set(key, seen.has(key) ? null : e);
  }
  const out = new Map<string, Element>();
  for (const [k, e] of seen) if (e) out.set(k, e);
  return out;
}

function stateChanges(before: FingerprintSource, after: FingerprintSource, within: Rect | null): { states: string[]; stateConditions: Postcondition[] } {
  const a = uniqueByName(before, within);
  const b = uniqueByName(after, within);
  const states: string[] = [];
  const stateConditions: Postcondition[] = [];
  for (const [key, now] of b) {
    const was = a.get(key);
    if (!was) continue;
    const has = CHECKED_STATES.filter((s) => now.states.includes(s) && !was.states.includes(s));
    const lacks = CHECKED_STATES.filter((s) => was.states.includes(s) && !now.states.includes(s));
    const valueChanged = now.value !== undefined && was.value !== undefined && now.value !== was.value && now.value.length <= 200;
    if (has.length === 0 && lacks.length === 0 && !valueChanged) continue;
    const name = now.name.slice(0, 200);
    states.push(`${now.role} "${name}":${has.map((s) => ` +${s}`).join('')}${lacks.map((s) => ` -${s}`).join('')}${valueChanged ? ` value "${now.value}"` : ''}`);
    stateConditions.push({ kind: 'state', role: now.role, name, has, lacks, ...(valueChanged ? { value: now.value! } : {}) });
  }
  return { states, stateConditions };
}

function windowChanges(o: OutcomeContext): { windows: string[]; windowConditions: Postcondition[] } {
  if (!o.windowsBefore || !o.windowsAfter) return { windows: [], windowConditions: [] };
  const app = o.app ?? null;
  const keyed = (ws: readonly WindowInfo[]) => {
    const m = new Map<string, WindowInfo>();
    for (const w of ws) {
      const title = (w.title ?? '').trim();
      if (title === '' || title.length > 200 || (app !== null && w.app !== app)) continue;
      m.set(`${w.app ?? ''}\u0000${title}`, w);
    }
    return m;
  };
  const a = keyed(o.windowsBefore);
  const b = keyed(o.windowsAfter);
  const windows: string[] = [];
  const windowConditions: Postcondition[] = [];
  for (const [k, w] of b) {
    if (a.has(k)) continue;
    windows.push(`+${w.app ?? '?'} "${w.title}"`);
    windowConditions.push({ kind: 'window', app: w.app, title: (w.title ?? '').trim(), present: true });
  }
  for (const [k, w] of a) {
    if (b.has(k)) continue;
    windows.push(`-${w.app ?? '?'} "${w.title}"`);
    windowConditions.push({ kind: 'window', app: w.app, title: (w.title ?? '').trim(), present: false });
  }
  return { windows, windowConditions };
}
