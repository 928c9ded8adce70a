import { DeskdError } from '../errors.js';
import { contains } from '../perception/geometry.js';
import { canonicalHash } from './canonical.js';
import { requestChordKey, parseChordSpec } from './keys.js';
import {
  ACTION_GROUPS,
  type AppMatcher,
  type Match,
  type Pattern,
  type Policy,
  type RegexPattern,
  type Rule,
} from './schema.js';

/**
 * The policy engine: a pure function from (request, policy) to a decision. No I/O, no clock.
 *
 * Order (docs/policy.md, "Evaluation"):
 * 1. Invariants no policy can lift (actions): halted → deny `invariant:halted`; screen locked → deny
 *    `invariant:screen-locked`; `type`/`set_value`/`keypress` aimed at an element with the `password`
 *    state → deny `invariant:password-field`; text longer than `limits.maxTypeChars` → deny
 *    `limit:maxTypeChars`. For perception: a password element → deny `invariant:password-field`
 *    (its value is never read).
 * 2. Every rule of the request's kind (`on: action` / `on: perceive`) is tested; perception masks act
 *    as deny rules named `perception.mask[i]`. Among the matches deny > ask > allow; ties go to the
 *    rule written first.
 * 3. No match: `defaults.unmatched` (deny or ask) as `default:unmatched` for actions,
 *    `defaults.perceive` as `default:perceive` for perception.
 */

/** An action as the policy sees it. Points are logical screen points. */
export interface PolicyAction {
  /** Action type (`click`, `type`, …; see `POLICY_ACTION_TYPES`). */
  type: string;
  x?: number;
  y?: number;
  /** `drag` path, logical points. */
  path?: ReadonlyArray<{ x: number; y: number }>;
  /** `keypress` chord, or modifier keys held during a pointer action (any spelling the executor accepts). */
  keys?: readonly string[];
  /** Text of `type` / `set_value`. */
  text?: string;
  button?: string;
}

/** An accessibility element as the policy sees it (deskd role vocabulary, normalised states). */
export interface PolicyElement {
  role: string;
  name?: string;
  states: readonly string[];
  /** Element bounds, logical points; used by `region` when the action itself carries no point. */
  bounds?: { x: number; y: number; width: number; height: number } | null;
}

/** What the request acts on or perceives. Unknown fields are null/undefined and then match nothing. */
export interface PolicyTarget {
  /** Process or accessible application name. */
  app?: string | null;
  pid?: number | null;
  /** macOS bundle identifier. */
  bundleId?: string | null;
  /** X11 WM_CLASS (instance or class name). */
  wmClass?: string | null;
  /** Window title. */
  window?: string | null;
  /** Window-system id of the window (X11 id in hex, macOS CGWindowID); identity only, no matcher reads it. */
  windowId?: string | null;
  element?: PolicyElement | null;
  /**
   * Document URL when the browser's accessibility tree gives it. `null` (and not listed in `unknown`)
   * means *not applicable*: the app is not a browser, so a `url` matcher does not match, for any effect.
   */
  url?: string | null;
  /**
   * Fields that could NOT be determined for this effect (as opposed to null = not applicable, e.g. no URL
   * in a non-browser app): `app`/`window` when no window is known at the point or with the focus,
   * `element` when the accessibility hit-test failed, `url` when a browser's URL could not be read.
   * A matcher on an unknown field never lets an `allow` rule match, and always lets a `deny`/`ask` rule
   * match: withholding information can neither earn an allow nor dodge a deny (docs/policy.md,
   * "Unknown and not applicable"; targets are found in `src/actuation/targets.ts`).
   */
  unknown?: ReadonlyArray<UnknownField>;
}

/** A target field that can be unknown (see {@link PolicyTarget.unknown}). */
export type UnknownField = 'app' | 'window' | 'element' | 'url';

/** Daemon state that invariants depend on (supplied by the caller: the engine has no state). */
export interface PolicyState {
  halted?: boolean;
  screenLocked?: boolean;
}

/** One request to decide. `action` is required for `kind: 'action'`. */
export interface PolicyRequest {
  kind: 'action' | 'perceive';
  action?: PolicyAction;
  target: PolicyTarget;
  /** Halt / screen-lock state; when omitted both are taken as false. */
  state?: PolicyState;
}

/** The engine's answer. */
export interface PolicyDecision {
  effect: 'allow' | 'ask' | 'deny';
  /** The deciding rule: a rule id, `default:unmatched`, `default:perceive`, `invariant:*`, `limit:*` or `perception.mask[i]`. */
  ruleId: string;
  /** A sentence for people and logs. */
  reason: string;
  /** Every rule id that matched, in file order (for the audit record). */
  matched: string[];
}

type Effect = PolicyDecision['effect'];
type Pred = (req: PolicyRequest, effect: Effect) => boolean;
interface CompiledRule {
  id: string;
  effect: Effect;
  on: 'action' | 'perceive';
  description: string | undefined;
  test: Pred;
}
interface CompiledPolicy {
  rules: CompiledRule[];
  masks: Array<{ id: string; test: (t: PolicyTarget) => boolean; text: string }>;
}

const PASSWORD_INPUT_ACTIONS: ReadonlySet<string> = new Set(['type', 'set_value', 'keypress']);

/**
 * Chords that leave or submit a password field without putting a character into it: Tab, Shift+Tab,
 * Escape, Enter (canonical chord keys, see `requestChordKey`). Everything else pressed there (letters,
 * Ctrl+V, Space, …) stays denied by `invariant:password-field`.
 */
const PASSWORD_NAVIGATION_CHORDS: ReadonlySet<string> = new Set(['tab', 'shift+tab', 'escape', 'enter']);

function isNavigationChord(keys: readonly string[] | undefined): boolean {
  const k = requestChordKey(keys);
  return k !== null && PASSWORD_NAVIGATION_CHORDS.has(k);
}
const TEXT_ACTIONS: ReadonlySet<string> = new Set(['type', 'set_value']);
const RANK: Record<Effect, number> = { allow: 0, ask: 1, deny: 2 };

const cache = new WeakMap<Policy, CompiledPolicy>();

/**
 * Decide a request under a policy. Pure: the same inputs give the same decision.
 * The policy must have passed `PolicySchema` (see `parsePolicy` in loader.ts); compiled matchers are
 * cached per policy object, so do not mutate a policy after first use.
 */
export function evaluate(req: PolicyRequest, policy: Policy): PolicyDecision {
  const compiled = compile(policy);
  const el = req.target.element ?? null;
  const isPasswordEl = !!el && (el.states ?? []).some((s) => s.toLowerCase() === 'password');

  if (req.kind === 'perceive') {
    if (isPasswordEl) return invariant('invariant:password-field', 'password field values are never read');
    const matched: Array<{ id: string; effect: Effect; why: string }> = [];
    for (const m of compiled.masks) {
      if (m.test(req.target)) matched.push({ id: m.id, effect: 'deny', why: `app matches perception mask ${m.text}` });
    }
    for (const r of compiled.rules) {
      if (r.on === 'perceive' && r.test(req, r.effect)) matched.push({ id: r.id, effect: r.effect, why: describe(r) });
    }
    return pick(matched) ?? {
      effect: policy.defaults.perceive,
      ruleId: 'default:perceive',
      reason: `no perception rule or mask matched; defaults.perceive is ${policy.defaults.perceive}`,
      matched: [],
    };
  }

  const action = req.action;
  if (!action) return invariant('invariant:malformed', 'an action request carries no action');
  if (req.state?.halted) return invariant('invariant:halted', 'the kill switch is engaged; nothing runs until the operator resumes');
  if (req.state?.screenLocked) return invariant('invariant:screen-locked', 'the screen is locked; nothing runs until it is unlocked');
  if (isPasswordEl && PASSWORD_INPUT_ACTIONS.has(action.type) && !(action.type === 'keypress' && isNavigationChord(action.keys))) {
    return invariant('invariant:password-field', `${action.type} into a password field is never allowed (only Tab, Shift+Tab, Escape and Enter may be pressed there)`);
  }
  if (TEXT_ACTIONS.has(action.type) && typeof action.text === 'string' && action.text.length > policy.limits.maxTypeChars) {
    return invariant('limit:maxTypeChars', `text of ${action.text.length} characters exceeds limits.maxTypeChars (${policy.limits.maxTypeChars})`);
  }
  const matched: Array<{ id: string; effect: Effect; why: string }> = [];
  for (const r of compiled.rules) {
    if (r.on === 'action' && r.test(req, r.effect)) matched.push({ id: r.id, effect: r.effect, why: describe(r) });
  }
  return pick(matched) ?? {
    effect: policy.defaults.unmatched,
    ruleId: 'default:unmatched',
    reason: `no rule matched ${action.type}; defaults.unmatched is ${policy.defaults.unmatched}`,
    matched: [],
  };
}

/** What kind of event an effect is: pointer events, key events, an accessibility action on an element, or a window raised and focused. */
export type EffectKind = 'pointer' | 'keys' | 'accessibility' | 'window';

/** One effect of an action and the target that receives it (issue 13: every place where effects land). */
export interface PolicyEffect {
  kind: EffectKind;
  target: PolicyTarget;
}

/** The decision over all effects of one action, and each effect's own decision. */
export interface EffectsDecision extends PolicyDecision {
  /** Each effect's decision, in the order given. Empty for an action without effects (wait, screenshot). */
  effects: Array<{ kind: EffectKind; decision: PolicyDecision }>;
  /** Index into `effects` of the effect that decided (-1 when there are no effects). */
  deciding: number;
}

/**
 * Decide an action by every effect it has: each effect is evaluated as `{kind: 'action', action,
 * target: effect.target}`; the action is denied if any effect is denied, asked if any asks, allowed
 * only if every effect is allowed (ties go to the first effect). An action with no effects (`wait`,
 * `screenshot`) is evaluated once with an empty target. Pure, like {@link evaluate}.
 */
export function evaluateEffects(action: PolicyAction, effects: readonly PolicyEffect[], policy: Policy, state?: PolicyState): EffectsDecision {
  if (effects.length === 0) {
    const d = evaluate({ kind: 'action', action, target: {}, ...(state ? { state } : {}) }, policy);
    return { ...d, effects: [], deciding: -1 };
  }
  // Effects often share a receiver (a drag's points in one window, a click's pointer and held keys in the
  // same focused window): each distinct target is evaluated once.
  const seen = new Map<string, PolicyDecision>();
  const each = effects.map((e) => {
    const key = effects.length > 1 ? JSON.stringify(e.target) : '';
    let decision = seen.get(key);
    if (!decision) {
      decision = evaluate({ kind: 'action', action, target: e.target, ...(state ? { state } : {}) }, policy);
      seen.set(key, decision);
    }
    return { kind: e.kind, decision };
  });
  let deciding = 0;
  for (let i = 1; i < each.length; i++) if (RANK[each[i]!.decision.effect] > RANK[each[deciding]!.decision.effect]) deciding = i;
  const d = each[deciding]!.decision;
  const matched = [...new Set(each.flatMap((e) => e.decision.matched))];
  const reason = effects.length > 1 ? `${d.reason} (for the ${each[deciding]!.kind} effect ${deciding + 1} of ${effects.length})` : d.reason;
  return { effect: d.effect, ruleId: d.ruleId, reason, matched, effects: each, deciding };
}

function invariant(ruleId: string, reason: string): PolicyDecision {
  return { effect: 'deny', ruleId, reason, matched: [] };
}

function describe(r: CompiledRule): string {
  return r.description ? `rule "${r.id}" (${r.effect}): ${r.description}` : `rule "${r.id}" (${r.effect}) matched`;
}

function pick(matched: Array<{ id: string; effect: Effect; why: string }>): PolicyDecision | null {
  let best: (typeof matched)[number] | undefined;
  for (const m of matched) if (!best || RANK[m.effect] > RANK[best.effect]) best = m;
  if (!best) return null;
  return { effect: best.effect, ruleId: best.id, reason: best.why, matched: matched.map((m) => m.id) };
}

/**
 * The error an HTTP handler throws for a deny decision: `HALTED` for `invariant:halted`,
 * `SCREEN_LOCKED` for `invariant:screen-locked`, else `POLICY_DENIED`; the message names the rule and
 * `details` is `{ruleId, reason}`.
 */
export function denialError(d: PolicyDecision): DeskdError {
  const details = { ruleId: d.ruleId, reason: d.reason };
  if (d.ruleId === 'invariant:halted') return new DeskdError('HALTED', `Halted: ${d.reason}`, details);
  if (d.ruleId === 'invariant:screen-locked') return new DeskdError('SCREEN_LOCKED', `Screen locked: ${d.reason}`, details);
  return new DeskdError('POLICY_DENIED', `Denied by ${d.ruleId}: ${d.reason}`, details);
}

/**
 * The identity of a target, as approvals and target verification compare it: app, pid, bundle id,
 * WM_CLASS, window title and id, document URL, element role + name (not its states, which change with
 * focus), and which fields were unknown.
 */
export function targetIdentity(t: PolicyTarget): Record<string, unknown> {
  return {
    app: t.app ?? null,
    pid: t.pid ?? null,
    bundleId: t.bundleId ?? null,
    wmClass: t.wmClass ?? null,
    window: t.window ?? null,
    windowId: t.windowId ?? null,
    url: t.url ?? null,
    element: t.element ? { role: t.element.role, name: t.element.name ?? null } : null,
    unknown: t.unknown && t.unknown.length > 0 ? [...t.unknown].sort() : null,
  };
}

/** SHA-256 (hex) of the canonical JSON of {@link targetIdentity}. Equal hashes ⇔ same identity. */
export function targetIdentityHash(t: PolicyTarget): string {
  return canonicalHash(targetIdentity(t));
}

// ---------------------------------------------------------------------------------------------
// Compilation of matchers.

function compile(policy: Policy): CompiledPolicy {
  let c = cache.get(policy);
  if (!c) {
    c = {
      rules: policy.rules.map(compileRule),
      masks: policy.perception.mask.map((m, i) => ({ id: `perception.mask[${i}]`, test: compileAppMatcher(m), text: JSON.stringify(m) })),
    };
    cache.set(policy, c);
  }
  return c;
}

function compileRule(rule: Rule): CompiledRule {
  const preds = compileMatch(rule.match);
  return {
    id: rule.id,
    effect: rule.effect,
    on: rule.on,
    description: rule.description,
    test: (req, effect) => preds.every((p) => p(req, effect)),
  };
}

const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

function compileMatch(m: Match): Pred[] {
  const preds: Pred[] = [];
  if (m.actions) {
    const set = new Set<string>();
    for (const a of m.actions) {
      if (a.startsWith('@')) for (const t of ACTION_GROUPS[a as keyof typeof ACTION_GROUPS]) set.add(t);
      else set.add(a);
    }
    preds.push((req) => !!req.action && set.has(req.action.type));
  }
  if (m.app !== undefined) {
    const tests = asList(m.app).map(compileAppMatcher);
    preds.push((req, effect) => (isUnknown(req.target, 'app') ? effect !== 'allow' : tests.some((t) => t(req.target))));
  }
  if (m.window !== undefined) {
    const tests = asList(m.window).map((p) => compilePattern(p));
    preds.push((req, effect) =>
      isUnknown(req.target, 'window') ? effect !== 'allow' : typeof req.target.window === 'string' && tests.some((t) => t(req.target.window as string)),
    );
  }
  if (m.element) {
    const roles = m.element.role === undefined ? null : asList(m.element.role).map((r) => r.toLowerCase());
    const states = m.element.states?.map((s) => s.toLowerCase()) ?? [];
    const name = m.element.name === undefined ? null : compilePattern(m.element.name);
    preds.push((req, effect) => {
      if (isUnknown(req.target, 'element')) return effect !== 'allow';
      const el = req.target.element;
      if (!el) return false;
      if (roles && !roles.includes(el.role.toLowerCase())) return false;
      const have = new Set((el.states ?? []).map((s) => s.toLowerCase()));
      if (!states.every((s) => have.has(s))) return false;
      if (name && !name(el.name ?? '')) return false;
      return true;
    });
  }
  if (m.keys !== undefined) {
    const chords = new Set(asList(m.keys).map(parseChordSpec));
    preds.push((req) => {
      const k = requestChordKey(req.action?.keys);
      return k !== null && chords.has(k);
    });
  }
  if (m.text !== undefined) {
    const re = typeof m.text === 'string' ? new RegExp(m.text) : new RegExp(m.text.regex, m.text.flags);
    preds.push((req) => typeof req.action?.text === 'string' && re.test(req.action.text));
  }
  if (m.region !== undefined) {
    const regions = asList(m.region);
    // An allow rule must contain every point of the action; deny/ask rules catch any point inside.
    preds.push((req, effect) => {
      const pts = pointsOf(req.action, req.target);
      if (pts.length === 0) return false;
      const inside = (p: { x: number; y: number }) => regions.some((r) => contains(r, p));
      return effect === 'allow' ? pts.every(inside) : pts.some(inside);
    });
  }
  if (m.url !== undefined) {
    const tests = asList(m.url).map((g) => compileGlob(g));
    preds.push((req, effect) => {
      if (isUnknown(req.target, 'url')) return effect !== 'allow';
      const o = originOf(req.target.url);
      return o !== null && tests.some((t) => t(o));
    });
  }
  return preds;
}

/** True when `field` of the target could not be determined (see {@link PolicyTarget.unknown}). */
function isUnknown(t: PolicyTarget, field: UnknownField): boolean {
  return t.unknown?.includes(field) ?? false;
}

const POINTED_ACTIONS: ReadonlySet<string> = new Set(['click', 'double_click', 'move', 'scroll', 'drag', 'press', 'set_value', 'focus']);

/**
 * Points an action touches, logical points: its own point or drag path; for a pointer or element
 * action aimed at an element without coordinates (a ref), the centre of the element's bounds.
 */
function pointsOf(a: PolicyAction | undefined, t: PolicyTarget): Array<{ x: number; y: number }> {
  if (!a) return [];
  if (a.type === 'drag') return a.path ? [...a.path] : [];
  if (typeof a.x === 'number' && typeof a.y === 'number') return [{ x: a.x, y: a.y }];
  const b = t.element?.bounds;
  if (POINTED_ACTIONS.has(a.type) && b) return [{ x: b.x + b.width / 2, y: b.y + b.height / 2 }];
  return [];
}

/** `scheme://host[:port]` of a URL (default ports dropped by WHATWG URL), or null. */
function originOf(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return null;
  }
}

function compileAppMatcher(m: AppMatcher): (t: PolicyTarget) => boolean {
  if (typeof m === 'string') {
    const p = compileGlob(m);
    return (t) => [t.app, t.bundleId, t.wmClass].some((v) => typeof v === 'string' && p(v));
  }
  const fields: Array<[keyof PolicyTarget, (s: string) => boolean]> = [];
  if (m.name !== undefined) fields.push(['app', compilePattern(m.name)]);
  if (m.bundleId !== undefined) fields.push(['bundleId', compilePattern(m.bundleId)]);
  if (m.wmClass !== undefined) fields.push(['wmClass', compilePattern(m.wmClass)]);
  return (t) =>
    fields.every(([k, p]) => {
      const v = t[k];
      return typeof v === 'string' && p(v);
    });
}

function compilePattern(p: Pattern): (s: string) => boolean {
  if (typeof p === 'string') return compileGlob(p);
  return compileRegex(p);
}

function compileRegex(p: RegexPattern): (s: string) => boolean {
  const re = new RegExp(p.regex, p.flags);
  return (s) => re.test(s);
}

/** Glob (`*`, `?`) or exact, case-insensitive, whole string. */
export function compileGlob(glob: string): (s: string) => boolean {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  const re = new RegExp(`^${src}$`, 'isu');
  return (s) => re.test(s);
}
