import { z } from 'zod';
import { DeskdError } from '../errors.js';
import { describeIssues } from '../actuation/parse.js';
import { KeyListSchema } from '../actuation/schema.js';
import { redactQuery } from '../http/guards.js';
import type { PolicyAction, PolicyTarget } from '../policy/engine.js';
import { POLICY_ACTION_TYPES } from '../policy/schema.js';
import { evaluateLayered, reasonRequired, type LayerDecision } from './layers.js';
import type { LayeredPolicyStore } from './policyStore.js';
import type { AgentRegistry } from './agents.js';

/**
 * `deskd policy explain` and `GET /v1/policy/explain` (issue 17): for one action on one target, each
 * layer's decision with the rules of that layer that matched, and the combined decision, so an admin can
 * see why an action was asked or denied. The action is the policy's view of it (`type`, `x`/`y`, `path`,
 * `keys`, `text`, `button`); the target names what it lands on (`app`, `wmClass`, `bundleId`, `window`,
 * `url`, `element: {role, name?, states?}`).
 */

const Point = z.object({ x: z.number().finite(), y: z.number().finite() }).strict();
/** The action to explain. */
export const ExplainActionSchema = z
  .object({
    type: z.enum(POLICY_ACTION_TYPES),
    x: z.number().finite().optional(),
    y: z.number().finite().optional(),
    path: z.array(Point).max(1000).optional(),
    keys: KeyListSchema.optional(),
    text: z.string().max(1_000_000).optional(),
    value: z.string().max(1_000_000).optional(),
    button: z.string().max(16).optional(),
  })
  .strict();
/** The target to explain the action on. */
export const ExplainTargetSchema = z
  .object({
    app: z.string().max(500).nullable().optional(),
    wmClass: z.string().max(500).nullable().optional(),
    bundleId: z.string().max(500).nullable().optional(),
    window: z.string().max(2000).nullable().optional(),
    url: z.string().max(8000).nullable().optional(),
    element: z.object({ role: z.string().min(1).max(40), name: z.string().max(2000).optional(), states: z.array(z.string().max(40)).max(40).default([]) }).strict().nullable().optional(),
  })
  .strict();

/** One layer in an explanation. */
export interface ExplainedLayer {
  layer: LayerDecision['layer'];
  source: string;
  effect: 'allow' | 'ask' | 'deny' | null;
  ruleId: string | null;
  reason: string | null;
  /** Rule ids of this layer that matched the action, in file order. */
  matched: string[];
}

/** What explain answers. */
export interface Explanation {
  action: PolicyAction;
  target: PolicyTarget;
  agent: string | null;
  decision: { effect: 'allow' | 'ask' | 'deny'; ruleId: string; reason: string };
  layers: ExplainedLayer[];
  requireReason: boolean;
  policyHash: string;
}

/**
 * Explain one action under the layers deciding for `agent` (a named agent's overlay when it has one).
 * The action's text is never echoed back (only its length).
 * @throws DeskdError `VALIDATION_FAILED` for a malformed action or target, or an unknown agent.
 */
export function explainAction(store: LayeredPolicyStore, input: { action: unknown; target?: unknown; agent?: string }, agents?: AgentRegistry, agentPolicy?: string): Explanation {
  const a = ExplainActionSchema.safeParse(input.action);
  if (!a.success) throw new DeskdError('VALIDATION_FAILED', `action: ${describeIssues(a.error.issues)}`);
  const t = ExplainTargetSchema.safeParse(input.target ?? {});
  if (!t.success) throw new DeskdError('VALIDATION_FAILED', `target: ${describeIssues(t.error.issues)}`);
  const { value, ...rest } = a.data;
  const action: PolicyAction = { ...rest, ...(value !== undefined && rest.text === undefined ? { text: value } : {}) };
  const target = t.data as PolicyTarget;
  let agent: { id: string; policy?: string } | null = null;
  if (input.agent && input.agent !== 'default') {
    const known = agents?.get(input.agent);
    if (!known && !agentPolicy) throw new DeskdError('VALIDATION_FAILED', `No agent "${input.agent}"`);
    agent = known ?? { id: input.agent, ...(agentPolicy ? { policy: agentPolicy } : {}) };
  } else if (agentPolicy) agent = { id: input.agent ?? 'agent', policy: agentPolicy };
  const layers = store.layersFor(agent);
  const d = evaluateLayered({ kind: 'action', action, target }, layers);
  const sourceOf = (l: LayerDecision['layer']) => (l === 'managed' ? (store.managedPath ?? 'managed') : l === 'user' ? store.user.source : (agent?.policy ?? 'agent overlay'));
  const explained: ExplainedLayer[] = d.layers.map((l) => ({
    layer: l.layer,
    source: sourceOf(l.layer),
    effect: l.decision?.effect ?? null,
    ruleId: l.decision?.ruleId ?? null,
    reason: l.decision?.reason ?? null,
    matched: l.decision?.matched ?? [],
  }));
  const shown: PolicyAction = action.text !== undefined ? { ...action, text: `*** (${action.text.length} characters)` } : action;
  return {
    action: shown,
    target,
    agent: agent?.id ?? null,
    decision: { effect: d.effect, ruleId: d.ruleId, reason: d.reason },
    layers: explained,
    requireReason: reasonRequired(layers),
    policyHash: store.hashFor(agent?.id, agent?.policy),
  };
}

/** Query parameters of `GET /v1/policy/explain` that may hold typed text: their values never reach a log. */
export const EXPLAIN_QUERY_PARAMS: ReadonlySet<string> = new Set(['action', 'target']);

/**
 * A URL with the values of {@link EXPLAIN_QUERY_PARAMS} replaced by `[redacted]` (the explained action may
 * carry the text it would type; fastify logs every request's URL).
 */
export function redactExplainQuery(url: string): string {
  return redactQuery(url, EXPLAIN_QUERY_PARAMS);
}
