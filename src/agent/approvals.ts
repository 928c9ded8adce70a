import type { ApprovalManager } from '../policy/approvals.js';
import type { SafetyApprover } from './types.js';

/**
 * A {@link SafetyApprover} backed by the daemon's {@link ApprovalManager}: an OpenAI
 * `pending_safety_checks` entry becomes a pending approval the operator sees in `GET /v1/approvals`
 * and decides with `POST /v1/approvals/:id` (operator token only). The approval's action is
 * `{type: 'safety_check', text: "<code>: <message>"}`, its decision `ask` with ruleId
 * `openai:safety_check:<code>`, its target `{app: 'deskd-task', window: <taskId>}`.
 * Resolves true only when a person approved (`via: operator`, or a session grant they gave earlier);
 * timeouts, denials and cancellation (the task's signal, the halt switch's) resolve false.
 */
export function approvalManagerApprover(approvals: ApprovalManager, haltSignal?: () => AbortSignal): SafetyApprover {
  return async (req, signal) => {
    const code = req.check.code ?? 'unknown';
    const both = haltSignal ? AbortSignal.any([signal, haltSignal()]) : signal;
    const ticket = approvals.request({
      action: { type: 'safety_check', text: `${code}: ${req.check.message ?? ''}`.trim() },
      target: { app: 'deskd-task', window: req.taskId },
      decision: {
        effect: 'ask',
        ruleId: `openai:safety_check:${code}`,
        reason: `The model's computer call ${req.callId} (step ${req.step}) raised a safety check: ${req.check.message ?? code}`,
        matched: [],
      },
      signal: both,
    });
    const outcome = await ticket.promise;
    return outcome.decision === 'approve';
  };
}

/** A `denyApproval` hook for the task runner: deny a pending policy approval when its task is cancelled. */
export function approvalDenier(approvals: ApprovalManager): (approvalId: string) => void {
  return (id) => {
    try {
      approvals.decide(id, { decision: 'deny' }, 'task-cancelled');
    } catch {
      // Already decided (operator, timeout): nothing to do.
    }
  };
}
