import { readAuditFile, verifyAuditLog, type AuditVerifyResult } from '../policy/audit.js';

/** What {@link verifyAuditTruncation} found. */
export type TruncationCheck = { ok: true } | { ok: false; reason: string };

/**
 * Make truncation of an audit log detectable (issue 17). The HMAC chain (`verifyAuditLog`) shows edits,
 * insertions and removals inside the file but not records cut off its end; these checks compare with what
 * is known from elsewhere:
 * - `expectSeq`: the log must reach at least this seq (e.g. the seq of the last checkpoint a SIEM received);
 * - `against`: an exported copy (an older copy of the file, or the records shipped to a SIEM): every record
 *   of the copy must be in the log with the same seq and mac, every `checkpoint` record's `{seq, mac}` must
 *   name a record of the log, and the log must reach the copy's last seq.
 * @param verified the chain verification of `file` (must be ok).
 * @throws DeskdError `AUDIT_WRITE_FAILED` when a file cannot be read.
 */
export async function verifyAuditTruncation(file: string, verified: Extract<AuditVerifyResult, { ok: true }>, opts: { expectSeq?: number; against?: string }): Promise<TruncationCheck> {
  if (opts.expectSeq !== undefined && verified.lastSeq < opts.expectSeq) {
    return { ok: false, reason: `the log ends at seq ${verified.lastSeq}, but seq ${opts.expectSeq} was expected: records were removed from its end` };
  }
  if (opts.against) {
    const [mine, copy] = await Promise.all([readAuditFile(file, { limit: Number.MAX_SAFE_INTEGER }), readAuditFile(opts.against, { limit: Number.MAX_SAFE_INTEGER })]);
    const bySeq = new Map(mine.map((r) => [r.seq, r.mac]));
    for (const r of copy) {
      const have = bySeq.get(r.seq);
      if (have === undefined) return { ok: false, reason: `seq ${r.seq} of the copy ${opts.against} is missing from the log (the log ends at seq ${verified.lastSeq}): records were removed` };
      if (have !== r.mac) return { ok: false, reason: `seq ${r.seq} differs between the log and the copy ${opts.against}: the log was rewritten` };
      const cp = r.kind === 'checkpoint' ? (r.checkpoint as { seq?: unknown; mac?: unknown } | undefined) : undefined;
      if (cp && typeof cp.seq === 'number' && bySeq.get(cp.seq) !== cp.mac) return { ok: false, reason: `checkpoint at seq ${r.seq} names seq ${cp.seq} with a mac the log does not have` };
    }
  }
  return { ok: true };
}

/** Convenience: chain verification and truncation checks together. */
export async function verifyAuditFull(file: string, key: Buffer, opts: { expectSeq?: number; against?: string }): Promise<AuditVerifyResult | { ok: false; truncated: true; reason: string; records: number; lastSeq: number }> {
  const r = await verifyAuditLog(file, key);
  if (!r.ok) return r;
  const t = await verifyAuditTruncation(file, r, opts);
  return t.ok ? r : { ok: false, truncated: true, reason: t.reason, records: r.records, lastSeq: r.lastSeq };
}
