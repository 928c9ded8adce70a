import type { DisplayInfo, MouseButton, Platform, Point, WindowInfo } from '../platform/types.js';
import { DeskdError } from '../errors.js';
import type { Action, Target } from './schema.js';
import { MODIFIERS, normalizeChord } from '../platform/keys.js';
import { center, displayAt } from '../perception/geometry.js';
import type { Element } from '../perception/elements.js';
import type { ObservationStore } from '../perception/observer.js';
import { describeQuery, findBest, type Findable } from '../perception/find.js';
import { hoverPoint } from './input.js';
import { DEFAULT_WHEEL_STEP_POINTS, planPixelScroll, planScroll, wheelStepFor, type ScrollReport } from './scroll.js';

/**
 * Step 1 of the action path (issue 13: plan → effects → decide): validate a batch and resolve every
 * ref and locator to a concrete point and element. Nothing here reads the policy or dispatches.
 */

/**
 * Points per wheel step where the app under the pointer has no measured size (an estimate). Measured
 * sizes per toolkit (Chromium: 120) and the rounding rule are in `scroll.ts`.
 */
export const SCROLL_POINTS_PER_STEP = DEFAULT_WHEEL_STEP_POINTS;

/**
 * One action after validation and target resolution: every point is concrete (logical points, on a
 * display), every key normalised. `hold` holds modifier keys only. This is what the effects are listed
 * from, what the policy judges, and what is dispatched.
 */
export type PlannedAction =
  /** `hover`: a point the pointer passes first, set when the window under the click is a popup (see input.ts `hoverPoint`). */
  | { type: 'click'; point: Point; button: MouseButton; clicks: 1 | 2; hold: string[]; element?: Element; hover?: Point }
  | { type: 'move'; point: Point; hold: string[]; element?: Element }
  | { type: 'drag'; path: Point[]; hold: string[] }
  /** `steps`: wheel clicks to send (= `scrolled.steps`); `scrolled`: the requested points, clicks and their approximate points (reported in the result). */
  | { type: 'scroll'; point: Point; steps: { dx: number; dy: number }; scrolled: ScrollReport; hold: string[]; element?: Element }
  | { type: 'type'; text: string }
  | { type: 'keypress'; keys: string[] }
  | { type: 'wait'; ms: number }
  | { type: 'screenshot'; format: 'png' | 'jpeg' }
  /** `via: 'accessibility'` → `doAction(handle, 'press')`, falling back to a click at `point` if refused; `'pointer'` → a left click at `point`. */
  | { type: 'press'; point: Point; element: Element; observationId: string; via: 'accessibility' | 'pointer'; hover?: Point }
  | { type: 'set_value'; point: Point; element: Element; observationId: string; value: string }
  | { type: 'focus'; point: Point; element: Element; observationId: string }
  /** Raise and focus a top-level window (`RawWindows.activate`); `window` as listed when planned. */
  | { type: 'focus_window'; window: WindowInfo };

/** Action names (AT-SPI, AX, deskd) that mean "the element's default action". */
export const PRESS_ACTIONS: ReadonlySet<string> = new Set(['press', 'click', 'activate', 'axpress']);

/** Roles whose value `set_value` may replace (besides any element with the `editable` state). */
const VALUE_ROLES: ReadonlySet<string> = new Set(['textbox', 'combobox', 'spinbutton']);

/**
 * Confirms a ref's element is still where it was observed, with the same name.
 * @throws DeskdError `STALE_REF`.
 */
export type ElementVerifier = (el: Element) => Promise<void>;

/** What planning needs. */
export interface PlanContext {
  platform: Platform;
  store: ObservationStore;
  verifyElement?: ElementVerifier | undefined;
  /** A fresh observation for locator targets (`{text}`, `{role, name}`); absent → such targets are refused. */
  observe?: (() => Promise<Findable>) | undefined;
  /** Chords for the OpenAI `back`/`forward` buttons. */
  navigationKeys?: { back: string[]; forward: string[] } | undefined;
  /** True when a policy gate decides actions (without one, planning refuses set_value into password fields itself). */
  policyEnforced: boolean;
}

/**
 * Refuse text the keyboard backend cannot deliver (`RawKeyboard.supportsText`), before anything is typed.
 * @throws DeskdError `TEXT_NOT_TYPEABLE` with `details.character` and `details.codePoint`.
 */
export function assertTypeable(kb: Platform['keyboard'], text: string, where: string): void {
  const untypeable = kb.supportsText?.(text);
  if (untypeable == null) return;
  const cp = untypeable.codePointAt(0)!;
  throw new DeskdError('TEXT_NOT_TYPEABLE', `${where}: the character U+${cp.toString(16).toUpperCase().padStart(4, '0')} cannot be typed on this platform; nothing was typed`, { character: untypeable, codePoint: cp });
}

/**
 * Plan a batch without dispatching: resolve targets, normalise keys, check coordinates.
 * Locator targets (`{text}`, `{role, name}`) are resolved against one fresh observation per batch,
 * taken before anything of the batch runs (so a target that only appears after an earlier action of the
 * same batch is not found: send it in a later batch).
 * @throws DeskdError `POINT_OFF_SCREEN`, `UNKNOWN_KEY`, `OBSERVATION_NOT_FOUND`, `REF_NOT_FOUND`, `STALE_REF`,
 *   `TARGET_NOT_FOUND`, `ELEMENT_NOT_ACTIONABLE`, `POLICY_DENIED` (set_value into a password field without a
 *   policy), `VALIDATION_FAILED` (e.g. a non-modifier key held during a pointer action).
 */
export async function planActions(ctx: PlanContext, actions: Action[]): Promise<PlannedAction[]> {
  const displays = await ctx.platform.capture.displays();
  let snapshot: Promise<Findable> | undefined;
  const fresh = () => {
    const observe = ctx.observe;
    if (!observe) throw new DeskdError('VALIDATION_FAILED', 'targets by text or role need a daemon with an observer; use {ref, observationId}');
    snapshot ??= observe();
    return snapshot;
  };
  const out: PlannedAction[] = [];
  for (const [i, a] of actions.entries()) out.push(await planOne(ctx, a, i, displays, fresh));
  return out;
}

async function planOne(ctx: PlanContext, a: Action, i: number, displays: DisplayInfo[], fresh: () => Promise<Findable>): Promise<PlannedAction> {
  const where = `actions[${i}]`;
  const onScreen = (p: Point, what: string): Point => {
    if (!displayAt(displays, p)) {
      const ds = displays.map((d) => `${d.id}: ${d.x},${d.y} ${d.width}x${d.height}`).join('; ');
      throw new DeskdError('POINT_OFF_SCREEN', `${where}: ${what} (${p.x}, ${p.y}) is outside every display (${ds})`);
    }
    return { x: p.x, y: p.y };
  };
  const kb = ctx.platform.keyboard;
  const pressable = (keys: string[]): string[] => {
    for (const k of keys) {
      if (kb.supportsKey && !kb.supportsKey(k)) throw new DeskdError('UNKNOWN_KEY', `${where}: key "${k}" cannot be pressed on this platform; send text with type`);
    }
    return keys;
  };
  // Only modifiers may be held during a pointer action: any other key would be pressed into whatever
  // window holds the keyboard focus, which the pointer's target says nothing about (issue 13, finding 1).
  const held = (keys: string[] | undefined): string[] => {
    if (!keys || keys.length === 0) return [];
    const chord = normalizeChord(keys);
    const bad = chord.filter((k) => !MODIFIERS.has(k));
    if (bad.length > 0) {
      throw new DeskdError('VALIDATION_FAILED', `${where}: only modifier keys (${[...MODIFIERS].join(', ')}) can be held during a ${a.type}; got ${bad.map((k) => `"${k}"`).join(', ')}. Send other keys with keypress or text with type`);
    }
    return pressable(chord);
  };
  // A popup (override-redirect: a menu, an open <select> list) may take a press only after a motion in it.
  const hoverFor = async (p: Point): Promise<{ hover?: Point }> => ((await ctx.platform.windows.windowAt(p).catch(() => null))?.overrideRedirect ? { hover: hoverPoint(p) } : {});
  const resolve = async (x: { x?: number; y?: number; target?: Target }): Promise<{ point: Point; element?: Element; observationId?: string }> => {
    if (x.target && !('ref' in x.target)) {
      // Found in a fresh observation: nothing to re-verify; aim at the matched text inside the element.
      const obs = await fresh();
      const q = x.target;
      const m = findBest(obs, { ...(q.text !== undefined ? { text: q.text } : {}), ...(q.role !== undefined ? { role: q.role } : {}), ...(q.name !== undefined ? { name: q.name } : {}), ...(q.exact !== undefined ? { exact: q.exact } : {}) });
      const el = obs.elements.find((e) => e.ref === m.ref)!;
      if (el.bounds.width <= 0 || el.bounds.height <= 0) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${describeQuery(q)}) has no on-screen bounds`);
      return { point: onScreen(center(m.textBounds), `the centre of ${el.ref} (${describeQuery(q)})`), element: el, observationId: obs.observationId };
    }
    if (x.target) {
      const el = ctx.store.element(x.target.observationId, x.target.ref);
      if (el.bounds.width <= 0 || el.bounds.height <= 0) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} has no on-screen bounds`);
      if (ctx.verifyElement) await ctx.verifyElement(el);
      return { point: onScreen(center(el.bounds), `the centre of ${el.ref}`), element: el, observationId: x.target.observationId };
    }
    return { point: onScreen({ x: x.x!, y: x.y! }, 'point') };
  };

  switch (a.type) {
    case 'click': {
      const r = await resolve(a);
      const hold = held(a.keys);
      if (a.button === 'back' || a.button === 'forward') {
        const nav = ctx.navigationKeys ?? { back: ['alt', 'left'], forward: ['alt', 'right'] };
        return { type: 'keypress', keys: nav[a.button] };
      }
      const button: MouseButton = a.button === 'wheel' ? 'middle' : a.button;
      return { type: 'click', point: r.point, button, clicks: 1, hold, ...(r.element ? { element: r.element } : {}), ...(await hoverFor(r.point)) };
    }
    case 'double_click': {
      const r = await resolve(a);
      return { type: 'click', point: r.point, button: 'left', clicks: 2, hold: held(a.keys), ...(r.element ? { element: r.element } : {}), ...(await hoverFor(r.point)) };
    }
    case 'move': {
      const r = await resolve(a);
      return { type: 'move', point: r.point, hold: held(a.keys), ...(r.element ? { element: r.element } : {}) };
    }
    case 'scroll': {
      const r = await resolve(a);
      // In points where the platform scrolls in pixels (macOS); else wheel clicks of the toolkit under the
      // point (scroll.ts), nearest whole number: tiny amounts send 0, and say so.
      const scrolled = ctx.platform.mouse.scrollPoints
        ? planPixelScroll({ dx: a.scroll_x, dy: a.scroll_y })
        : planScroll({ dx: a.scroll_x, dy: a.scroll_y }, wheelStepFor(await ctx.platform.windows.windowAt(r.point).catch(() => null), ctx.platform.name));
      return { type: 'scroll', point: r.point, steps: { ...scrolled.steps }, scrolled, hold: held(a.keys), ...(r.element ? { element: r.element } : {}) };
    }
    case 'drag':
      return { type: 'drag', path: a.path.map((p, k) => onScreen(p, `path[${k}]`)), hold: held(a.keys) };
    case 'type': {
      const bad = /[\p{Cc}]/u.exec(a.text.replace(/[\n\t]/g, ''));
      if (bad) {
        throw new DeskdError('VALIDATION_FAILED', `${where}: text contains control character U+${bad[0].codePointAt(0)!.toString(16).padStart(4, '0')}; send keys with keypress`);
      }
      const text = a.text.normalize('NFC');
      assertTypeable(kb, text, where);
      return { type: 'type', text };
    }
    case 'keypress':
      return { type: 'keypress', keys: pressable(normalizeChord(a.keys)) };
    case 'wait':
      return { type: 'wait', ms: a.ms };
    case 'screenshot':
      return { type: 'screenshot', format: a.format };
    case 'press': {
      const r = await resolve(a);
      const el = r.element!;
      const via = el.handle && el.actions.some((n) => PRESS_ACTIONS.has(n.toLowerCase())) ? 'accessibility' : 'pointer';
      return { type: 'press', point: r.point, element: el, observationId: r.observationId!, via, ...(await hoverFor(r.point)) };
    }
    case 'focus': {
      const r = await resolve(a);
      const el = r.element!;
      if (!el.handle) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${el.role} "${el.name}") is not an accessible element (OCR text cannot take focus); click it instead`);
      return { type: 'focus', point: r.point, element: el, observationId: r.observationId! };
    }
    case 'focus_window': {
      if (!ctx.platform.windows.activate) throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: this platform cannot raise and focus windows`);
      const id = /^\d+$/.test(a.window) ? `0x${Number(a.window).toString(16)}` : a.window.toLowerCase();
      const w = (await ctx.platform.windows.list({ fresh: true })).find((x) => x.id.toLowerCase() === id);
      if (!w) throw new DeskdError('WINDOW_NOT_FOUND', `${where}: no visible top-level window has id ${a.window} (see GET /v1/windows)`);
      return { type: 'focus_window', window: w };
    }
    case 'set_value': {
      const r = await resolve(a);
      const el = r.element!;
      if (el.states.includes('password') && !ctx.policyEnforced) {
        throw new DeskdError('POLICY_DENIED', `${where}: set_value into a password field is never allowed (invariant:password-field)`);
      }
      if (!el.handle) {
        throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${el.role} "${el.name}") has no accessible value to set (OCR text); click it and type instead`);
      }
      if (!el.states.includes('editable') && !VALUE_ROLES.has(el.role)) {
        throw new DeskdError('ELEMENT_NOT_ACTIONABLE', `${where}: ${el.ref} (${el.role} "${el.name}") is not editable`);
      }
      const bad = /[\p{Cc}]/u.exec(a.value.replace(/[\n\t]/g, ''));
      if (bad) throw new DeskdError('VALIDATION_FAILED', `${where}: value contains control character U+${bad[0].codePointAt(0)!.toString(16).padStart(4, '0')}`);
      return { type: 'set_value', point: r.point, element: el, observationId: r.observationId!, value: a.value.normalize('NFC') };
    }
  }
}

