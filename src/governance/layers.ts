import { evaluate, type EffectsDecision, type PolicyAction, type PolicyDecision, type PolicyEffect, type PolicyRequest, type PolicyState } from '../policy/engine.js';
import type { Limits, Policy } from '../policy/schema.js';

/**
 * Layered policy (issue 17): **managed** (the organisation's), **user** (`--policy` / `DESKD_POLICY`) and an
 * optional per-agent **overlay**. Semantics (docs/governance.md, "Layers"):
 *
 * 1. Invariants (halted, screen locked, password fields, `limits.maxTypeChars` — with the managed maximum
 *    applied) deny first, as in the single-policy engine (`src/policy/engine.ts`).
 * 2. Each of the user and agent layers is evaluated on its own (its rules, then its `defaults`); the
 *    managed layer contributes only its `deny` and `ask` rules (a managed `allow` grants nothing, and its
 *    defaults are not used).
 * 3. The combined effect is the strictest: a deny in any layer holds, then an ask in any layer; `allow`
 *    only when the user layer and the agent overlay (when there is one) both allow and no managed rule
 *    denies or asks. Ties go to managed, then user, then agent.
 * 4. Managed `limits` are maxima: the other layers' limits are clamped to them (and the rate limiter
 *    uses the clamped values). Managed `approvals.timeoutMs` is a maximum too.
 * 5. A managed `lock: {unmatched: deny}` makes the user and agent layers' `defaults.unmatched` `deny`
 *    (they cannot widen the default to `ask`).
 * 6. Perception: masks and `on: perceive` deny rules of the managed and user layers are all applied.
 *
 * Decisions keep the user layer's rule ids as they are (a daemon without managed policy and overlays
 * decides exactly as before); the managed layer's ids are prefixed `managed:`, an overlay's `agent:<id>:`.
 */

/** The policies one decision is made under. */
export interface PolicyLayers {
  managed: Policy | null;
  user: Policy;
  /** The acting agent's overlay, when it has one. */
  agent?: { id: string; policy: Policy } | null;
}

/** One layer's part of a decision (for audit and `policy explain`). */
export interface LayerDecision {
  layer: 'managed' | 'user' | 'agent';
  /** The layer's own decision (`null` for a managed layer with no deny/ask rule matching: it grants nothing). */
  decision: PolicyDecision | null;
}

/** A combined decision with each layer's part. */
export interface LayeredDecision extends PolicyDecision {
  layers: LayerDecision[];
}

const RANK: Record<PolicyDecision['effect'], number> = { allow: 0, ask: 1, deny: 2 };

const clampCache = new WeakMap<Policy, WeakMap<Policy, Policy>>();

/**
 * The user or agent layer as it is evaluated under a managed policy: limits clamped to the managed
 * maxima, approvals timeout clamped, `defaults.unmatched` forced to `deny` under `lock`. The result is
 * cached per (layer, managed) pair: the engine caches compiled matchers per policy object.
 */
export function constrained(layer: Policy, managed: Policy | null): Policy {
  if (!managed) return layer;
  let byManaged = clampCache.get(layer);
  if (!byManaged) clampCache.set(layer, (byManaged = new WeakMap()));
  const hit = byManaged.get(managed);
  if (hit) return hit;
  const limits: Limits = {
    actionsPerSecond: Math.min(layer.limits.actionsPerSecond, managed.limits.actionsPerSecond),
    burst: Math.min(layer.limits.burst, managed.limits.burst),
    maxTypeChars: Math.min(layer.limits.maxTypeChars, managed.limits.maxTypeChars),
  };
  const locked = managed.lock?.unmatched === 'deny';
  const out: Policy = {
    ...layer,
    limits,
    approvals: { timeoutMs: Math.min(layer.approvals.timeoutMs, managed.approvals.timeoutMs) },
    defaults: { ...layer.defaults, unmatched: locked ? 'deny' : layer.defaults.unmatched },
  };
  byManaged.set(managed, out);
  return out;
}

/**
 * The managed layer as a rule set that only denies or asks: its allow rules are dropped (a managed allow
 * grants nothing), its rule ids prefixed `managed:`. Cached per policy object.
 */
const managedCache = new WeakMap<Policy, Policy>();
function managedRestrictions(managed: Policy): Policy {
  let p = managedCache.get(managed);
  if (!p) {
    p = { ...managed, rules: managed.rules.filter((r) => r.effect !== 'allow').map((r) => ({ ...r, id: `managed:${r.id}` })) };
    managedCache.set(managed, p);
  }
  return p;
}

const agentCache = new WeakMap<Policy, Map<string, Policy>>();
function prefixedAgent(policy: Policy, id: string): Policy {
  let m = agentCache.get(policy);
  if (!m) agentCache.set(policy, (m = new Map()));
  let p = m.get(id);
  if (!p) {
    p = { ...policy, rules: policy.rules.map((r) => ({ ...r, id: `agent:${id}:${r.id}` })) };
    m.set(id, p);
  }
  return p;
}

function isInvariant(d: PolicyDecision): boolean {
  return d.ruleId.startsWith('invariant:') || d.ruleId.startsWith('limit:');
}

/**
 * Decide one request under the layers (see the module comment).
 * Pure, like `engine.evaluate`; with only a user layer the answer equals `evaluate(req, user)`.
 */
export function evaluateLayered(req: PolicyRequest, layers: PolicyLayers): LayeredDecision {
  const managed = layers.managed;
  const user = evaluate(req, constrained(layers.user, managed));
  const parts: LayerDecision[] = [];
  if (isInvariant(user)) {
    return { ...user, layers: [{ layer: 'user', decision: user }] };
  }
  let managedD: PolicyDecision | null = null;
  if (managed) {
    const m = evaluate(req, managedRestrictions(managed));
    // Only the managed layer's deny/ask *rules* count (and its masks for perception); its defaults do not.
    managedD = m.effect !== 'allow' && !m.ruleId.startsWith('default:') ? m : null;
    parts.push({ layer: 'managed', decision: managedD ?? (m.matched.length > 0 ? m : null) });
  }
  parts.push({ layer: 'user', decision: user });
  let agentD: PolicyDecision | null = null;
  if (layers.agent) {
    agentD = evaluate(req, constrained(prefixedAgent(layers.agent.policy, layers.agent.id), managed));
    parts.push({ layer: 'agent', decision: agentD });
  }
  const candidates = [managedD, user, agentD].filter((d): d is PolicyDecision => d !== null);
  let best = candidates[0]!;
  for (const d of candidates) if (RANK[d.effect] > RANK[best.effect]) best = d;
  const matched = [...new Set(parts.flatMap((p) => p.decision?.matched ?? []))];
  return { effect: best.effect, ruleId: best.ruleId, reason: best.reason, matched, layers: parts };
}

/** An effects decision with each layer's part for the deciding effect. */
export interface LayeredEffectsDecision extends EffectsDecision {
  layers: LayerDecision[];
}

/**
 * Decide an action by every effect it has under the layers: each effect's combined decision as in
 * {@link evaluateLayered}; the action is denied if any effect is, asked if any asks, allowed only if every
 * effect is (ties to the first effect) — the same combination as `engine.evaluateEffects`.
 */
export function evaluateLayeredEffects(action: PolicyAction, effects: readonly PolicyEffect[], layers: PolicyLayers, state?: PolicyState): LayeredEffectsDecision {
  const one = (target: PolicyEffect['target']) => evaluateLayered({ kind: 'action', action, target, ...(state ? { state } : {}) }, layers);
  if (effects.length === 0) {
    const d = one({});
    return { ...d, effects: [], deciding: -1 };
  }
  const seen = new Map<string, LayeredDecision>();
  const each = effects.map((e) => {
    const key = effects.length > 1 ? JSON.stringify(e.target) : '';
    let d = seen.get(key);
    if (!d) seen.set(key, (d = one(e.target)));
    return { kind: e.kind, decision: d };
  });
  let deciding = 0;
  for (let i = 1; i < each.length; i++) if (RANK[each[i]!.decision.effect] > RANK[each[deciding]!.decision.effect]) deciding = i;
  const d = each[deciding]!.decision;
  const matched = [...new Set(each.flatMap((e) => e.decision.matched))];
  const reason = effects.length > 1 ? `${d.reason} (for the ${each[deciding]!.kind} effect ${deciding + 1} of ${effects.length})` : d.reason;
  return {
    effect: d.effect,
    ruleId: d.ruleId,
    reason,
    matched,
    effects: each.map((e) => ({ kind: e.kind, decision: { effect: e.decision.effect, ruleId: e.decision.ruleId, reason: e.decision.reason, matched: e.decision.matched } })),
    deciding,
    layers: d.layers,
  };
}

/**
 * The policy perception and the rate limiter use: the user layer constrained by the managed one (limits
 * clamped, lock applied), with the managed layer's masks and `on: perceive` deny rules added.
 */
export function effectivePolicy(layers: Pick<PolicyLayers, 'managed' | 'user'>): Policy {
  const { managed, user } = layers;
  if (!managed) return user;
  const base = constrained(user, managed);
  const r = managedRestrictions(managed);
  return {
    ...base,
    perception: { mask: [...managed.perception.mask, ...base.perception.mask] },
    rules: [...r.rules.filter((x) => x.on === 'perceive'), ...base.rules],
    ...(managed.requireReason || user.requireReason ? { requireReason: true } : {}),
  };
}

/** Whether an action needs a `reason` under the layers: any layer's `requireReason: true`. */
export function reasonRequired(layers: PolicyLayers): boolean {
  return !!(layers.managed?.requireReason || layers.user.requireReason || layers.agent?.policy.requireReason);
}
