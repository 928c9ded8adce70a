import { DeskdError } from '../errors.js';
import type { ApprovalManager, ApprovalOutcome, ApprovalTicket } from './approvals.js';
import type { AuditLog } from './audit.js';
import { denialError, evaluate, evaluateEffects, type EffectsDecision, type PolicyAction, type PolicyDecision, type PolicyEffect, type PolicyState, type PolicyTarget } from './engine.js';
import type { HaltSwitch } from './halt.js';
import type { TokenBucket } from './rateLimit.js';
import type { Policy } from './schema.js';

/** What the gate needs. `policy()` returns the policy in force (e.g. `() => store.policy`). */
export interface PolicyGateDeps {
  policy: () => Policy;
  halt: HaltSwitch;
  bucket: TokenBucket;
  approvals: ApprovalManager;
  audit: AuditLog;
  /** Whether the screen is locked right now (platform query); default: never. */
  screenLocked?: () => boolean | Promise<boolean>;
  /**
   * Layered policy (issue 17, `src/governance/policyStore.ts`): when set, {@link PolicyGate.checkEffects} and
   * {@link PolicyGate.wouldAllow} decide under the managed, user and agent layers instead of `policy()`.
   */
  layers?: LayeredDecider;
  /** The agent behind an audit actor (`agent:<id>/<client>` → its id and overlay); default: none. */
  agentOf?: (actor: string) => { id: string; policy?: string } | null;
}

/** Longest `reason`, characters (UTF-16 code units). */
export const MAX_REASON_CHARS = 500;

/** What the gate needs of a layered policy store (`LayeredPolicyStore`). */
export interface LayeredDecider {
  evaluateEffects(action: PolicyAction, effects: readonly PolicyEffect[], agent: { id: string; policy?: string } | null, state?: PolicyState): EffectsDecision & { layers?: unknown };
  /** Any layer deciding for `agent` has `requireReason: true`. */
  requiresReason(agent: { id: string; policy?: string } | null): boolean;
  /** Combined SHA-256 of the layers deciding for the agent. */
  hashFor(agentId: string | undefined, overlayPath?: string): string;
}

/** Options of {@link PolicyGate.checkEffects}. */
export interface CheckOptions {
  /** What the agent is trying to do (≤ {@link MAX_REASON_CHARS}); audited with the decision. */
  reason?: string;
}

/** An action that may go ahead now (`allow`) or waits for the operator (`ask`). */
export type GateResult =
  | { effect: 'allow'; decision: PolicyDecision; auditSeq: number; target?: PolicyTarget }
  | { effect: 'ask'; decision: PolicyDecision; auditSeq: number; approval: ApprovalTicket; target?: PolicyTarget };

/**
 * One place that runs the policy pieces in the order issue 5 requires, for the HTTP layer and the
 * executor:
 *
 * 1. `evaluate` with the halt and screen-lock state (invariants first, then rules);
 * 2. the rate limit, for requests not already denied (`limit:rate`);
 * 3. a durable `decision` audit record **before** anything is dispatched (throws `AUDIT_WRITE_FAILED`:
 *    fail closed);
 * 4. deny → throws (`POLICY_DENIED` naming the rule, `HALTED`, `SCREEN_LOCKED`, `RATE_LIMITED`);
 *    ask → a pending approval bound to the action and target (cancelled by halt); allow → go.
 *
 * After dispatch call {@link PolicyGate.recordResult}. The gate does not re-check the target before
 * dispatch (`TARGET_CHANGED`): that is the executor's job, with `approvals.assertBound` for approved asks.
 */
export class PolicyGate {
  constructor(private readonly deps: PolicyGateDeps) {}

  /**
   * Decide an action and write its decision record.
   * @param actor who asked (`agent`, `operator`, a task id); recorded.
   * @throws DeskdError `POLICY_DENIED` | `HALTED` | `SCREEN_LOCKED` | `RATE_LIMITED` | `AUDIT_WRITE_FAILED`.
   */
  async check(action: PolicyAction, target: PolicyTarget, actor: string): Promise<GateResult> {
    const screenLocked = this.deps.screenLocked ? await this.deps.screenLocked() : false;
    let decision = evaluate({ kind: 'action', action, target, state: { halted: this.deps.halt.halted, screenLocked } }, this.deps.policy());
    let error: DeskdError | null = decision.effect === 'deny' ? denialError(decision) : null;
    if (!error && !this.deps.bucket.tryTake()) {
      const retryAfterMs = this.deps.bucket.retryAfterMs();
      decision = { effect: 'deny', ruleId: 'limit:rate', reason: `rate limit exceeded; retry in ${retryAfterMs} ms`, matched: decision.matched };
      error = new DeskdError('RATE_LIMITED', `Rate limit exceeded; retry in ${retryAfterMs} ms`, { retryAfterMs });
    }
    const rec = await this.deps.audit.append('decision', { actor, action, target, decision });
    if (error) throw error;
    if (decision.effect === 'allow') return { effect: 'allow', decision, auditSeq: rec.seq };
    const approval = this.deps.approvals.request({ action, target, decision, signal: this.deps.halt.signal, actor });
    // Not the binding hash: it covers the unmasked text, so a short text could be recovered from it.
    await this.deps.audit.append('approval', { event: 'requested', approvalId: approval.id, decisionSeq: rec.seq });
    return { effect: 'ask', decision, auditSeq: rec.seq, approval };
  }

  /**
   * Decide an action by every effect it has (issue 13: the policy judges where effects land) and write
   * one decision record naming each effect, its target and its own decision. The action is denied if
   * any effect is denied, asked (one approval, bound to every effect's target) if any asks, allowed
   * only if all are. Invariants, the rate limit and the audit-before-dispatch order are as in {@link check}.
   * @param effects each effect and its target; empty for actions without effects (wait, screenshot).
   * @throws DeskdError `POLICY_DENIED` | `HALTED` | `SCREEN_LOCKED` | `RATE_LIMITED` | `AUDIT_WRITE_FAILED`.
   */
  async checkEffects(action: PolicyAction, effects: readonly PolicyEffect[], actor: string, opts: CheckOptions = {}): Promise<GateResult> {
    const agent = this.deps.agentOf?.(actor) ?? null;
    const reason = opts.reason;
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_REASON_CHARS)) {
      throw new DeskdError('VALIDATION_FAILED', `reason must be a string of at most ${MAX_REASON_CHARS} characters`);
    }
    const layers = this.deps.layers;
    // Who and why (issue 17): the agent, the reason and the combined hash of every layer that decided.
    const who = { ...(agent ? { agent: agent.id } : {}), ...(reason ? { reason } : {}), ...(layers ? { policyHash: layers.hashFor(agent?.id, agent?.policy) } : {}) };
    if (layers?.requiresReason(agent) && !reason?.trim()) {
      await this.deps.audit.append('decision', { actor, ...who, action, decision: { effect: 'deny', ruleId: 'policy:requireReason', reason: 'the policy requires a reason on every action', matched: [] } });
      throw new DeskdError('REASON_REQUIRED', 'The policy requires a `reason` (what the agent is trying to do, at most 500 characters) on every action; nothing was dispatched');
    }
    const screenLocked = this.deps.screenLocked ? await this.deps.screenLocked() : false;
    const state = { halted: this.deps.halt.halted, screenLocked };
    let decision: EffectsDecision = layers ? layers.evaluateEffects(action, effects, agent, state) : evaluateEffects(action, effects, this.deps.policy(), state);
    const target = decision.deciding >= 0 ? effects[decision.deciding]!.target : {};
    let error: DeskdError | null = decision.effect === 'deny' ? denialError(decision) : null;
    if (!error && !this.deps.bucket.tryTake()) {
      const retryAfterMs = this.deps.bucket.retryAfterMs();
      decision = { ...decision, effect: 'deny', ruleId: 'limit:rate', reason: `rate limit exceeded; retry in ${retryAfterMs} ms` };
      error = new DeskdError('RATE_LIMITED', `Rate limit exceeded; retry in ${retryAfterMs} ms`, { retryAfterMs });
    }
    // `target` is the deciding effect's receiver; each effect lists its kind and own decision, and its
    // receiver only where it differs from `target` (most actions have one receiver: the record stays small).
    let targetKey: string | undefined;
    const sameAsTarget = (t: PolicyTarget) => t === target || (targetKey ??= JSON.stringify(target)) === JSON.stringify(t);
    const rec = await this.deps.audit.append('decision', {
      actor,
      ...who,
      action,
      target,
      effects: effects.map((e, i) => {
        const d = decision.effects[i]!.decision;
        return { kind: e.kind, effect: d.effect, ruleId: d.ruleId, ...(sameAsTarget(e.target) ? {} : { target: e.target }) };
      }),
      decision: { effect: decision.effect, ruleId: decision.ruleId, reason: decision.reason, matched: decision.matched },
      ...('layers' in decision && Array.isArray(decision.layers) && decision.layers.length > 1 ? { layers: decision.layers } : {}),
    });
    if (error) throw error;
    if (decision.effect === 'allow') return { effect: 'allow', decision, auditSeq: rec.seq, target };
    const approval = this.deps.approvals.request({ action, target, effects, decision, signal: this.deps.halt.signal, actor });
    await this.deps.audit.append('approval', { event: 'requested', approvalId: approval.id, decisionSeq: rec.seq });
    return { effect: 'ask', decision, auditSeq: rec.seq, approval, target };
  }

  /**
   * Decide, without audit, approval or rate limit, whether effects re-read right before dispatch would
   * still be allowed: used when an allowed action's targets changed between decision and dispatch.
   */
  wouldAllow(action: PolicyAction, effects: readonly PolicyEffect[], actor?: string): EffectsDecision {
    const state = { halted: this.deps.halt.halted };
    if (this.deps.layers) return this.deps.layers.evaluateEffects(action, effects, actor ? (this.deps.agentOf?.(actor) ?? null) : null, state);
    return evaluateEffects(action, effects, this.deps.policy(), state);
  }

  /**
   * Wait for an `ask` to be settled and audit the outcome.
   * @returns the approving outcome.
   * @throws DeskdError `POLICY_DENIED` when denied, timed out or cancelled (`HALTED` when cancelled by
   *   a halt); `AUDIT_WRITE_FAILED`.
   */
  async awaitApproval(result: Extract<GateResult, { effect: 'ask' }>): Promise<ApprovalOutcome> {
    const outcome = await result.approval.promise;
    await this.deps.audit.append('approval', { event: 'settled', approvalId: outcome.id, outcome, decisionSeq: result.auditSeq });
    if (outcome.decision === 'approve') return outcome;
    if (outcome.via === 'cancelled' && this.deps.halt.halted) throw new DeskdError('HALTED', `Approval ${outcome.id} cancelled: halted`);
    const why = outcome.via === 'timeout' ? 'no decision before the timeout' : outcome.via === 'cancelled' ? `cancelled by ${outcome.by}` : `denied by ${outcome.by}`;
    throw new DeskdError('POLICY_DENIED', `Approval ${outcome.id} for ${result.decision.ruleId}: ${why}`, { ruleId: result.decision.ruleId, approvalId: outcome.id, via: outcome.via });
  }

  /**
   * Right before dispatching an approved action: the approval must be bound to exactly this action and
   * the target it was decided on.
   * @throws DeskdError `TARGET_CHANGED`.
   */
  assertApprovalBound(result: Extract<GateResult, { effect: 'ask' }>, action: PolicyAction, target: PolicyTarget, effects?: readonly PolicyEffect[]): void {
    this.deps.approvals.assertBound(result.approval.id, action, target, effects);
  }

  /**
   * Audit what happened after dispatch.
   * @throws DeskdError `AUDIT_WRITE_FAILED`.
   */
  async recordResult(decisionSeq: number, result: { ok: boolean; error?: { code: string; message: string }; [k: string]: unknown }, opts: { soon?: boolean } = {}): Promise<void> {
    await this.deps.audit.append('result', { decisionSeq, ...result }, opts);
  }

  /**
   * Subscribe to the halt switch: on halt, deny every pending approval and audit `halt`; on resume,
   * audit `resume`. Audit failures here are reported to `onError` (the halt itself already happened).
   * @returns an unsubscribe function.
   */
  wireHalt(onError: (e: unknown) => void = () => {}): () => void {
    const onHalt = (s: { by: string | null; reason: string | null }) => {
      const cancelled = this.deps.approvals.cancelAll('halt');
      this.deps.audit.append('halt', { by: s.by, reason: s.reason, cancelledApprovals: cancelled }).catch(onError);
    };
    const onResume = (s: { by: string | null }) => {
      this.deps.audit.append('resume', { by: s.by }).catch(onError);
    };
    this.deps.halt.on('halt', onHalt);
    this.deps.halt.on('resume', onResume);
    return () => {
      this.deps.halt.off('halt', onHalt);
      this.deps.halt.off('resume', onResume);
    };
  }
}
