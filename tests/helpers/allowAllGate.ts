import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { parsePolicy } from '../../src/policy/parse.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';

/** Audit logs (and their temp directories) opened by {@link allowAllGate} in this test file. */
const opened: { audit: AuditLog; dir: string }[] = [];

// Every gate's audit log holds an open FileHandle. Close them once the file's tests are done: a handle
// left for the garbage collector is an uncaught ERR_INVALID_STATE on Node.js 26 (DEP0137 reached end of
// life), reported against whichever test file the worker runs next. Registered when a test file imports
// this module (vitest evaluates it once per file: the projects keep the default `isolate: true`).
afterAll(async () => {
  const all = opened.splice(0);
  await Promise.all(all.map((o) => o.audit.close()));
  for (const o of all) rmSync(o.dir, { recursive: true, force: true });
});

/**
 * The policy is mandatory in the executor (issue 13: one action path). Tests that want no restrictions
 * use this: a real {@link PolicyGate} over an explicit allow-all policy (high rate limit), with its audit
 * log in a fresh temp directory. Invariants (halt, password fields, screen lock) still apply.
 *
 * Call it from a test, a hook or the file's top level (not from outside a vitest run): the audit log is
 * closed, and its directory removed, after the calling file's last test (afterAll); the gate refuses
 * actions after that (`AUDIT_WRITE_FAILED`, the log is closed).
 */
export async function allowAllGate(opts: { halt?: HaltSwitch } = {}): Promise<PolicyGate> {
  const policy = parsePolicy('version: 1\nlimits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 100000 }\nrules:\n  - { id: allow-all, effect: allow, match: {} }\n', 'allow-all.yaml');
  const dir = mkdtempSync(join(tmpdir(), 'deskd-allow-all-'));
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  opened.push({ audit, dir });
  return new PolicyGate({ policy: () => policy, halt: opts.halt ?? new HaltSwitch(), bucket: new TokenBucket(policy.limits), approvals: new ApprovalManager({ timeoutMs: 60_000 }), audit });
}
