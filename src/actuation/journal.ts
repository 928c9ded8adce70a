import { setTimeout as sleep } from 'node:timers/promises';
import { isDeskdError } from '../errors.js';
import type { ActionsResponse, PendingSubmission } from './executor.js';

/** The state of one action batch answered 202: `pending_approval`, then `done` or `failed`. */
export interface JournalEntry {
  actionId: string;
  status: 'pending_approval' | 'done' | 'failed';
  approvals: PendingSubmission['approvals'];
  result?: ActionsResponse;
  error?: { code: string; message: string };
}

/**
 * Remembers batches that waited for approval so the agent can fetch their outcome
 * (`GET /v1/actions/:id?waitMs=`). Keeps the most recent `capacity` entries.
 */
export class ActionJournal {
  private readonly entries = new Map<string, { entry: JournalEntry; settled: Promise<void> }>();
  constructor(private readonly capacity = 500) {}

  /** Track a pending submission until its outcome settles. */
  track(p: PendingSubmission): JournalEntry {
    const entry: JournalEntry = { actionId: p.actionId, status: 'pending_approval', approvals: p.approvals };
    const settled = p.outcome.then(
      (r) => {
        entry.status = 'done';
        entry.result = r;
      },
      (e: unknown) => {
        entry.status = 'failed';
        entry.error = isDeskdError(e) ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: 'Internal error' };
      },
    );
    this.entries.set(p.actionId, { entry, settled });
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  /** The entry (after waiting up to `waitMs` for a pending one to settle), or undefined when unknown. */
  async wait(id: string, waitMs: number): Promise<JournalEntry | undefined> {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (e.entry.status === 'pending_approval' && waitMs > 0) await Promise.race([e.settled, sleep(waitMs)]);
    return e.entry;
  }
}
