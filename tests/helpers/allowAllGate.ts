import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '../../src/policy/parse.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';

/**
 * The policy is mandatory in the executor (issue 13: one action path). Tests that want no restrictions
 * use this: a real {@link PolicyGate} over an explicit allow-all policy (high rate limit), with its audit
 * log in a fresh temp directory. Invariants (halt, password fields, screen lock) still apply.
 */
export async function allowAllGate(opts: { halt?: HaltSwitch } = {}): Promise<PolicyGate> {
  const policy = parsePolicy('version: 1\nlimits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 100000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n', 'allow-all.yaml');
  const dir = mkdtempSync(join(tmpdir(), 'deskd-allow-all-'));
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  return new PolicyGate({ policy: () => policy, halt: opts.halt ?? new HaltSwitch(), bucket: new TokenBucket(policy.limits), approvals: new ApprovalManager({ timeoutMs: 60_000 }), audit });
}
