import type { Platform, Point, WindowInfo } from '../platform/types.js';
import type { EffectKind, PolicyAction, PolicyEffect, PolicyTarget } from '../policy/engine.js';
import { targetIdentity } from '../policy/engine.js';
import type { Element } from '../perception/elements.js';
import type { PlannedAction } from './plan.js';
import { dragPoints } from './input.js';
import { elementOwnerTarget, keyboardTarget, pointerTarget, windowTarget, withHit, type EffectTarget, type TargetOptions } from './targets.js';

/**
 * Step 2 of the action path (issue 13): every effect an action will have, and the target that receives
 * it. The policy (step 3, `PolicyGate.checkEffects`) judges each effect for its own target, so an action
 * is allowed only when every place it lands is allowed:
 *
 * - each pointer event → the window (and accessible element) under its point: click/move/scroll at
 *   their point, a drag at every point of its path (press, each motion, release);
 * - key events → the window holding the keyboard focus at dispatch: `type`, `keypress`, and the
 *   modifiers held during a pointer action (pressed before the pointer moves, so they go to whatever
 *   has the focus then, not to the window under the click);
 * - an accessibility action (`press`, `set_value`, `focus`) → the app and window that own the element,
 *   whether or not they are on top (a covered, denied app cannot be reached through its tree); `press`
 *   also lists the pointer click it falls back to, and `set_value` the keys it falls back to.
 */

/** How one effect's target is found. `keys` effects are predicted from an earlier click in the batch when `predicted` is set. */
export type EffectSpec =
  /** `hitTest: false` for a drag's interpolated motion points (window judged, no element: see `TargetOptions.hitTest`). */
  | { kind: 'pointer'; point: Point; what: 'click' | 'move' | 'scroll' | 'press' | 'motion' | 'release'; hitTest?: boolean }
  | { kind: 'keys'; what: 'type' | 'keypress' | 'held' | 'fallback' }
  | { kind: 'accessibility'; element: Element; what: 'press' | 'set_value' | 'focus' }
  | { kind: 'window'; window: WindowInfo; what: 'activate' };

/** An effect with its resolved target. */
export interface ResolvedEffect {
  spec: EffectSpec;
  /** Who receives it (window, policy target, element handle). */
  to: EffectTarget;
}

/** The effects of one planned action, in dispatch order. `wait` and `screenshot` have none. */
export function effectsOf(p: PlannedAction): EffectSpec[] {
  const held = (hold: readonly string[]): EffectSpec[] => (hold.length > 0 ? [{ kind: 'keys', what: 'held' }] : []);
  const hover = (h: Point | undefined): EffectSpec[] => (h ? [{ kind: 'pointer', point: h, what: 'motion', hitTest: false }] : []);
  switch (p.type) {
    case 'click':
      // Into a popup the pointer passes its hover point first (input.ts hoverPoint): that window gets a motion.
      return [...held(p.hold), ...hover(p.hover), { kind: 'pointer', point: p.point, what: 'click' }];
    case 'move':
      return [...held(p.hold), { kind: 'pointer', point: p.point, what: 'move' }];
    case 'scroll':
      return [...held(p.hold), { kind: 'pointer', point: p.point, what: 'scroll' }];
    case 'drag': {
      // Every point the pointer visits is a pointer effect for the window under it; the points the caller
      // gave (press, corners, release) are hit-tested for their element too, the interpolated motion
      // points in between (which neither press nor release anything) only for their window.
      const pts = dragPoints(p.path);
      const given = new Set(p.path.map((q) => `${q.x},${q.y}`));
      return [
        ...held(p.hold),
        ...pts.map((point, i): EffectSpec => {
          const what = i === 0 ? 'press' : i === pts.length - 1 ? 'release' : 'motion';
          return { kind: 'pointer', point, what, ...(what === 'motion' && !given.has(`${point.x},${point.y}`) ? { hitTest: false } : {}) };
        }),
      ];
    }
    case 'type':
      return [{ kind: 'keys', what: 'type' }];
    case 'keypress':
      return [{ kind: 'keys', what: 'keypress' }];
    case 'press': {
      const click: EffectSpec[] = [...hover(p.hover), { kind: 'pointer', point: p.point, what: 'click' }];
      return p.via === 'accessibility' ? [{ kind: 'accessibility', element: p.element, what: 'press' }, ...click] : click;
    }
    case 'focus':
      return [{ kind: 'accessibility', element: p.element, what: 'focus' }];
    case 'set_value':
      return [{ kind: 'accessibility', element: p.element, what: 'set_value' }];
    case 'focus_window':
      return [{ kind: 'window', window: p.window, what: 'activate' }];
    case 'wait':
    case 'screenshot':
      return [];
  }
}

/**
 * Find who receives one effect. Pointer → {@link pointerTarget} at its point (`opts.known`: see
 * `TargetOptions.known`); keys → the predicted
 * target when given (the window an earlier click of the batch focuses), else {@link keyboardTarget};
 * accessibility → {@link elementOwnerTarget}.
 */
export async function resolveEffect(
  platform: Platform,
  spec: EffectSpec,
  opts: TargetOptions & { predictedKeys?: EffectTarget | undefined; deferHitTest?: boolean } = {},
): Promise<EffectTarget> {
  const o = { fresh: opts.fresh ?? false };
  switch (spec.kind) {
    case 'pointer': {
      const hitTest = spec.hitTest === false ? false : opts.deferHitTest ? ('deferred' as const) : undefined;
      return pointerTarget(platform, spec.point, { ...o, ...(hitTest !== undefined ? { hitTest } : {}), ...(opts.known ? { known: opts.known } : {}) });
    }
    case 'keys':
      return opts.predictedKeys ?? keyboardTarget(platform, o);
    case 'accessibility':
      return elementOwnerTarget(platform, spec.element, o);
    case 'window':
      return windowTarget(platform, spec.window, o);
  }
}

/** The policy target of a resolved effect, with the window id for identity (approvals, re-checks). */
export function policyTargetOf(t: EffectTarget): PolicyTarget {
  return { ...t.target, windowId: t.window?.id ?? null };
}

/** The effects as the policy judges them. */
export function policyEffectsOf(effects: readonly ResolvedEffect[]): PolicyEffect[] {
  return effects.map((e) => ({ kind: e.spec.kind as EffectKind, target: policyTargetOf(e.to) }));
}

/** True when two targets are the same receiver: app, pid, window id and title, URL, element role and name, unknown fields. */
export function sameReceiver(a: PolicyTarget, b: PolicyTarget): boolean {
  return JSON.stringify(targetIdentity(a)) === JSON.stringify(targetIdentity(b));
}

/** The policy's view of a planned action (points resolved, keys normalised). */
export function toPolicyAction(p: PlannedAction): PolicyAction {
  switch (p.type) {
    case 'click':
      return { type: p.clicks === 2 ? 'double_click' : 'click', x: p.point.x, y: p.point.y, button: p.button, keys: p.hold };
    case 'move':
      return { type: 'move', x: p.point.x, y: p.point.y, keys: p.hold };
    case 'scroll':
      return { type: 'scroll', x: p.point.x, y: p.point.y, keys: p.hold };
    case 'drag':
      return { type: 'drag', path: p.path, keys: p.hold };
    case 'type':
      return { type: 'type', text: p.text };
    case 'keypress':
      return { type: 'keypress', keys: p.keys };
    case 'wait':
      return { type: 'wait' };
    case 'screenshot':
      return { type: 'screenshot' };
    case 'press':
    case 'focus':
      return { type: p.type, x: p.point.x, y: p.point.y };
    case 'set_value':
      return { type: 'set_value', x: p.point.x, y: p.point.y, text: p.value };
    case 'focus_window':
      return { type: 'focus_window' };
  }
}

/** Actions whose pointer receivers' element/URL may be reused at the dispatch-time re-check ({@link reusableFields}) or hit-tested after the decision ({@link settleElements}). */
export const REUSE_ACTIONS: ReadonlySet<PlannedAction['type']> = new Set(['click', 'move', 'scroll', 'drag']);

/**
 * Issue 15 (clicks): the pointer receivers of an action resolved with `deferHitTest` (window and URL read,
 * element **unknown**, the hit-test running as `to.deferred`) get their element here, in one of two ways:
 *
 * - the policy in force decides the same whatever the element is — `allows` (a pure evaluation,
 *   `PolicyGate.wouldAllow`, no audit) of these effects, with the element unknown, allows; an unknown field
 *   never lets an allow rule match and always lets a deny or ask rule match (engine.ts, every layer), so
 *   every concrete element allows too (the proof of {@link reusableFields}): the element stays unknown for the
 *   decision and its audit record, and each hit-test (in the same window, `to.deferred`) goes on while the
 *   decision is audited; the dispatch-time re-check waits for it before it reads the windows again
 *   (`settleDeferred`), so `hit` still names the element under the point before the click;
 * - otherwise (an element rule, an action that is not a `click`, `move`, `scroll` or `drag`): every
 *   hit-test is waited for now and the decision sees the elements, as without deferral.
 *
 * Receivers that were not deferred (no window there, a drag's interpolated motion points, other kinds) are
 * returned as they are. The caller defers only actions whose receiver no later key effect of the batch is
 * predicted from (`Executor.decide`): that prediction carries the element to the key effect's decision
 * (`invariant:password-field`).
 */
export async function settleElements(type: PlannedAction['type'], effects: readonly ResolvedEffect[], allows: (effects: PolicyEffect[]) => boolean): Promise<ResolvedEffect[]> {
  if (!effects.some((e) => e.to.deferred)) return [...effects];
  if (REUSE_ACTIONS.has(type) && allows(policyEffectsOf(effects))) return [...effects];
  return Promise.all(effects.map(async (e) => (e.to.deferred ? { spec: e.spec, to: withHit(e.to, await e.to.deferred) } : e)));
}

/** Receivers re-read at dispatch that still carry a deferred hit-test (the same window as decided): its element filled in, for `hit` and the audit's result record. */
export async function settleDeferred(fresh: readonly ResolvedEffect[]): Promise<ResolvedEffect[]> {
  return Promise.all(fresh.map(async (f) => (f.to.deferred ? { spec: f.spec, to: withHit(f.to, await f.to.deferred) } : f)));
}

/**
 * Which fields of the pointer receivers decided for this action need not be read again right before
 * dispatch (issue 15: one accessibility hit-test per action instead of two): those the policy in force
 * provably decides the same for, whatever their value. Only for a `click`, `move`, `scroll` or `drag` the gate allowed
 * (the caller checks that; asked actions are read again); null when every field is read again. `allows` is a pure
 * evaluation of the policy in force (`PolicyGate.wouldAllow`, no audit) for effects in the shape of `decided`.
 *
 * The proof is a pure evaluation (`wouldAllow`, no audit) of the decided effects with the pointer
 * receivers' element (and URL) marked *unknown*: an unknown field never lets an allow rule match and
 * always lets a deny or ask rule match (engine.ts, also across the managed/user/agent layers, which take
 * the strictest), so when that still allows, every concrete value allows too. The only invariant that
 * reads the element (`invariant:password-field`) applies to `type`/`set_value`/`keypress`, never to these
 * actions. The window under each point is read again in any case (`pointerTarget` reuses a field only
 * when that window has the same id, pid, app, WM_CLASS and title), so a window raised, moved, retitled or
 * replaced since the decision is still seen; what is not seen again is a change inside the same window
 * that the policy is indifferent to (`hit` then reports the element as hit-tested for the decision).
 */
export function reusableFields(
  type: PlannedAction['type'],
  effects: readonly ResolvedEffect[],
  allows: (effects: PolicyEffect[]) => boolean,
  decided: readonly PolicyEffect[],
): { element: boolean; url: boolean } | null {
  if (!REUSE_ACTIONS.has(type)) return null;
  const probe = (fields: Array<'element' | 'url'>) =>
    allows(
      decided.map((e, k) =>
        effects[k]!.spec.kind !== 'pointer' ? e : { ...e, target: { ...e.target, ...(fields.includes('element') ? { element: null } : {}), ...(fields.includes('url') ? { url: null } : {}), unknown: [...new Set([...(e.target.unknown ?? []), ...fields])] } },
      ),
    );
  if (probe(['element', 'url'])) return { element: true, url: true };
  if (probe(['element'])) return { element: true, url: false };
  return null;
}
