import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { DeskdError } from '../errors.js';
import { canonicalHash } from './canonical.js';
import { targetIdentity, type PolicyAction, type PolicyDecision, type PolicyEffect, type PolicyTarget } from './engine.js';
import { requestChordKey } from './keys.js';

/** The operator's answer. */
export type ApprovalVerdict = 'approve' | 'deny';
/**
 * `once`: this request only; `session`: also every later request with the same action type, the same
 * held/pressed keys (as a chord) and the same identity of every effect's target (app, pid, window id
 * and title, element role and name; where an effect has no element, the action's point(s) too), until
 * the process exits. A session grant never covers a whole window.
 */
export type ApprovalScope = 'once' | 'session';

/** How an approval was settled. */
export interface ApprovalOutcome {
  id: string;
  decision: ApprovalVerdict;
  scope: ApprovalScope;
  /** Who decided: the operator's name/label, `timeout`, `session-grant`, or the canceller (`halt`, …). */
  by: string;
  /** `operator`: decided by `decide()`; `timeout`: nobody answered in time (deny); `session-grant`: an earlier session approval covered it; `cancelled`: halted/shut down (deny). */
  via: 'operator' | 'timeout' | 'session-grant' | 'cancelled';
  /** Epoch ms. */
  decidedAt: number;
}

/** One approval, pending or settled. */
export interface Approval {
  /** `apr_` + 12 url-safe random characters. */
  id: string;
  status: 'pending' | 'approved' | 'denied';
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms after which a pending approval is denied. */
  expiresAt: number;
  /** The action waiting (text included: the operator must see what would be typed). */
  action: PolicyAction;
  target: PolicyTarget;
  /** The policy decision that asked (ruleId names the `ask` rule). */
  decision: PolicyDecision;
  /** Every effect of the action and the target receiving it (absent for approvals without effects, e.g. safety checks). */
  effects?: PolicyEffect[];
  /** SHA-256 (hex) of canonical `{action, target identity, effect target identities}`: what this approval is bound to. */
  binding: string;
  outcome: ApprovalOutcome | null;
}

/** What `request()` returns. */
export interface ApprovalTicket {
  id: string;
  /** Resolves (never rejects) when the approval is settled. */
  promise: Promise<ApprovalOutcome>;
  /** A snapshot at creation; `status` is already `approved` when a session grant covered it. */
  approval: Approval;
}

/** Options of {@link ApprovalManager}. */
export interface ApprovalManagerOptions {
  /** How long a pending approval waits before it is denied, ms (policy `approvals.timeoutMs`). */
  timeoutMs: number;
  /** How many settled approvals to remember for replay detection (default 1000). */
  maxRemembered?: number;
  /** Clock, epoch ms (default Date.now). Timers always use setTimeout. */
  now?: () => number;
  /** Approvals one actor may have pending at once (default {@link DEFAULT_MAX_PENDING_PER_ACTOR}); one more → `TOO_MANY_PENDING_APPROVALS`. */
  maxPendingPerActor?: number;
}

/** Default cap of pending approvals per actor. */
export const DEFAULT_MAX_PENDING_PER_ACTOR = 8;

interface ApprovalEvents {
  pending: [Approval];
  decided: [Approval];
}

interface Entry {
  approval: Approval;
  resolve: (o: ApprovalOutcome) => void;
  promise: Promise<ApprovalOutcome>;
  timer: NodeJS.Timeout | null;
  sessionKey: string;
  onAbort: (() => void) | null;
  signal: AbortSignal | null;
  /** Who asked (the cap on pending approvals is per actor). */
  actor: string;
}

/**
 * Human approvals for `ask` decisions (`GET /v1/approvals`, `POST /v1/approvals/:id`).
 *
 * An approval is bound to its action and the target identity (app, pid, bundle id, WM_CLASS, window,
 * element role+name) by a canonical hash (`binding`); the executor checks with {@link assertBound}
 * that what it is about to dispatch is what was approved. A settled approval cannot be decided again
 * (`APPROVAL_ALREADY_DECIDED`, 409); an unanswered one is denied after `timeoutMs`. Approving with
 * `scope: session` remembers the (action type, target identity) pair for the life of this manager
 * (denials are never remembered).
 *
 * Events: `pending` (a new approval waits), `decided` (settled by any means), with a copy of the approval.
 */
export class ApprovalManager extends EventEmitter<ApprovalEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly settledOrder: string[] = [];
  private readonly sessionGrants = new Map<string, { by: string; at: number }>();
  private timeoutMs: number;
  private readonly maxRemembered: number;
  private readonly now: () => number;
  private readonly maxPendingPerActor: number;

  constructor(opts: ApprovalManagerOptions) {
    super();
    this.timeoutMs = opts.timeoutMs;
    this.maxRemembered = opts.maxRemembered ?? 1000;
    this.now = opts.now ?? Date.now;
    this.maxPendingPerActor = opts.maxPendingPerActor ?? DEFAULT_MAX_PENDING_PER_ACTOR;
  }

  /** Change the timeout for approvals created from now on (policy reload). */
  setTimeoutMs(ms: number): void {
    this.timeoutMs = ms;
  }

  /**
   * SHA-256 (hex) binding of an action to a target identity and, when given, to every effect's target
   * identity (app, pid, window id and title, URL, element role + name).
   */
  bindingOf(action: PolicyAction, target: PolicyTarget, effects?: readonly PolicyEffect[]): string {
    if (!effects || effects.length === 0) return canonicalHash({ action, target: targetIdentity(target) });
    return canonicalHash({ action, target: targetIdentity(target), effects: effects.map((e) => ({ kind: e.kind, target: targetIdentity(e.target) })) });
  }

  /**
   * What a `scope: session` grant covers: the action type, its keys as a chord, and the identity of each
   * effect's target; an effect without a known element adds the action's point(s), so a grant for one
   * click never covers the whole window.
   */
  private sessionKeyOf(action: PolicyAction, target: PolicyTarget, effects?: readonly PolicyEffect[]): string {
    const targets = effects && effects.length > 0 ? effects.map((e) => ({ kind: e.kind, t: e.target })) : [{ kind: 'target', t: target }];
    const points = action.path ? action.path.map((p) => [p.x, p.y]) : typeof action.x === 'number' ? [[action.x, action.y ?? null]] : [];
    return canonicalHash({
      type: action.type,
      keys: requestChordKey(action.keys),
      targets: targets.map(({ kind, t }) => ({ kind, id: targetIdentity(t), at: t.element ? null : points })),
    });
  }

  /** True when an earlier `scope: session` approval covers this action (type, keys) on these effect targets. */
  sessionGranted(action: PolicyAction, target: PolicyTarget, effects?: readonly PolicyEffect[]): boolean {
    return this.sessionGrants.has(this.sessionKeyOf(action, target, effects));
  }

  /**
   * Open an approval for an `ask` decision. If a session grant covers it, it is approved at once
   * (`via: 'session-grant'`, no `pending` event). `signal` (e.g. the halt switch's) denies it when aborted.
   * `actor` (who asks: `agent`, `operator`, `mcp`, `task:<id>`; default `unknown`) may have at most
   * `maxPendingPerActor` approvals pending at once.
   * @throws DeskdError `TOO_MANY_PENDING_APPROVALS` (429) when `actor` already has that many pending: the
   *   request is refused, not queued (no approval, no `pending` event, nothing to dispatch).
   */
  request(input: { action: PolicyAction; target: PolicyTarget; effects?: readonly PolicyEffect[]; decision: PolicyDecision; signal?: AbortSignal; actor?: string }): ApprovalTicket {
    const id = `apr_${randomBytes(9).toString('base64url')}`;
    const createdAt = this.now();
    const action = structuredClone(input.action);
    const target = structuredClone(input.target);
    const effects = input.effects && input.effects.length > 0 ? structuredClone([...input.effects]) : undefined;
    const approval: Approval = {
      id,
      status: 'pending',
      createdAt,
      expiresAt: createdAt + this.timeoutMs,
      action,
      target,
      decision: structuredClone(input.decision),
      ...(effects ? { effects } : {}),
      binding: this.bindingOf(action, target, effects),
      outcome: null,
    };
    let resolve!: (o: ApprovalOutcome) => void;
    const promise = new Promise<ApprovalOutcome>((r) => (resolve = r));
    const entry: Entry = { approval, resolve, promise, timer: null, sessionKey: this.sessionKeyOf(action, target, effects), onAbort: null, signal: null, actor: input.actor ?? 'unknown' };
    this.entries.set(id, entry);

    const grant = this.sessionGrants.get(entry.sessionKey);
    if (grant) {
      this.settle(entry, { decision: 'approve', scope: 'session', by: 'session-grant', via: 'session-grant' });
      return { id, promise, approval: copy(approval) };
    }
    if (input.signal?.aborted) {
      this.settle(entry, { decision: 'deny', scope: 'once', by: 'halt', via: 'cancelled' });
      return { id, promise, approval: copy(approval) };
    }
    let pending = 0;
    for (const e of this.entries.values()) if (e !== entry && e.actor === entry.actor && e.approval.status === 'pending') pending++;
    if (pending >= this.maxPendingPerActor) {
      this.entries.delete(id);
      throw new DeskdError('TOO_MANY_PENDING_APPROVALS', `${entry.actor} already has ${pending} actions waiting for the operator's approval (at most ${this.maxPendingPerActor}); wait for a decision`, { limit: this.maxPendingPerActor, pending });
    }
    entry.timer = setTimeout(() => this.settle(entry, { decision: 'deny', scope: 'once', by: 'timeout', via: 'timeout' }), this.timeoutMs);
    entry.timer.unref();
    if (input.signal) {
      entry.signal = input.signal;
      entry.onAbort = () => this.settle(entry, { decision: 'deny', scope: 'once', by: 'halt', via: 'cancelled' });
      input.signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    const snapshot = copy(approval);
    this.emit('pending', copy(approval));
    return { id, promise, approval: snapshot };
  }

  /** Pending approvals, oldest first (copies). */
  list(): Approval[] {
    return [...this.entries.values()].filter((e) => e.approval.status === 'pending').map((e) => copy(e.approval));
  }

  /** One approval, pending or recently settled (copy), or undefined. */
  get(id: string): Approval | undefined {
    const e = this.entries.get(id);
    return e ? copy(e.approval) : undefined;
  }

  /**
   * The operator's decision. The HTTP layer must have checked the operator credential.
   * @param by who decided (logged and audited).
   * @throws DeskdError `APPROVAL_NOT_FOUND` (404) for an unknown or forgotten id;
   *   `APPROVAL_ALREADY_DECIDED` (409) when it was already settled (operator, timeout, cancel).
   */
  decide(id: string, answer: { decision: ApprovalVerdict; scope?: ApprovalScope }, by: string): ApprovalOutcome {
    const e = this.entries.get(id);
    if (!e) throw new DeskdError('APPROVAL_NOT_FOUND', `No approval with id "${id}"`);
    if (e.approval.status !== 'pending') {
      const o = e.approval.outcome!;
      throw new DeskdError('APPROVAL_ALREADY_DECIDED', `Approval ${id} was already ${e.approval.status} (${o.via}, by ${o.by})`, { status: e.approval.status, via: o.via });
    }
    const scope = answer.scope ?? 'once';
    const outcome = this.settle(e, { decision: answer.decision, scope, by, via: 'operator' });
    if (answer.decision === 'approve' && scope === 'session') {
      this.sessionGrants.set(e.sessionKey, { by, at: outcome.decidedAt });
      // Other requests already waiting for the same (action type, target identity) are covered too.
      for (const other of this.entries.values()) {
        if (other.approval.status === 'pending' && other.sessionKey === e.sessionKey) {
          this.settle(other, { decision: 'approve', scope: 'session', by: 'session-grant', via: 'session-grant' });
        }
      }
    }
    return outcome;
  }

  /**
   * Check, right before dispatch, that the action and target about to run are the ones approval `id`
   * was granted for.
   * @throws DeskdError `APPROVAL_NOT_FOUND`; `POLICY_DENIED` when the approval is not approved;
   *   `TARGET_CHANGED` (409) when the action or the target identity differs from the approved binding.
   */
  assertBound(id: string, action: PolicyAction, target: PolicyTarget, effects?: readonly PolicyEffect[]): void {
    const e = this.entries.get(id);
    if (!e) throw new DeskdError('APPROVAL_NOT_FOUND', `No approval with id "${id}"`);
    if (e.approval.status !== 'approved') throw new DeskdError('POLICY_DENIED', `Approval ${id} is ${e.approval.status}`, { ruleId: e.approval.decision.ruleId });
    if (this.bindingOf(action, target, effects) !== e.approval.binding) {
      throw new DeskdError('TARGET_CHANGED', `The action or its target is not the one approval ${id} was granted for`);
    }
  }

  /** Deny every pending approval (`via: 'cancelled'`), e.g. on halt or shutdown. Returns how many. */
  cancelAll(by: string): number {
    let n = 0;
    for (const e of [...this.entries.values()]) {
      if (e.approval.status === 'pending') {
        this.settle(e, { decision: 'deny', scope: 'once', by, via: 'cancelled' });
        n++;
      }
    }
    return n;
  }

  /**
   * Deny the pending approvals whose actor `pick` selects (`via: 'cancelled'`), e.g. those of an agent whose
   * credential was just revoked (issue 17). Returns how many.
   */
  cancelWhere(pick: (actor: string) => boolean, by: string): number {
    let n = 0;
    for (const e of [...this.entries.values()]) {
      if (e.approval.status === 'pending' && pick(e.actor)) {
        this.settle(e, { decision: 'deny', scope: 'once', by, via: 'cancelled' });
        n++;
      }
    }
    return n;
  }

  /** Forget session grants (e.g. on operator request or policy change). */
  clearSessionGrants(): void {
    this.sessionGrants.clear();
  }

  /** Deny all pending approvals and stop timers. */
  close(): void {
    this.cancelAll('shutdown');
  }

  private settle(e: Entry, o: Omit<ApprovalOutcome, 'id' | 'decidedAt'>): ApprovalOutcome {
    if (e.approval.status !== 'pending') return e.approval.outcome!;
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    if (e.signal && e.onAbort) e.signal.removeEventListener('abort', e.onAbort);
    e.onAbort = null;
    e.signal = null;
    const outcome: ApprovalOutcome = { id: e.approval.id, ...o, decidedAt: this.now() };
    e.approval.status = o.decision === 'approve' ? 'approved' : 'denied';
    e.approval.outcome = outcome;
    this.settledOrder.push(e.approval.id);
    while (this.settledOrder.length > this.maxRemembered) this.entries.delete(this.settledOrder.shift()!);
    e.resolve({ ...outcome });
    this.emit('decided', copy(e.approval));
    return { ...outcome };
  }
}

function copy(a: Approval): Approval {
  return structuredClone(a);
}
