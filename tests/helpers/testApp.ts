import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import type { FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { DEFAULT_AX_BUDGET, ObservationStore, Observer, type TextRecognizer } from '../../src/perception/observer.js';
import { perceptionMask } from '../../src/policy/perception.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';

export const AGENT_TOKEN = 'agent-token-0123456789abcdef';
export const OPERATOR_TOKEN = 'operator-token-0123456789abcdef';

/**
 * The real policy engine on the fake `platform`, as the daemon wires it: `policyYaml` parsed (as
 * `test-policy.yaml`), an audit log in a new temp dir (`<dir>/audit.jsonl`, key `<dir>/audit.key`), the halt
 * switch, approvals (the policy's timeout), the gate (the policy's rate limit; screen locked when the platform
 * is; wired to the halt switch), an observation store and an observer with the policy's perception mask and
 * `ocr`. The caller builds its executor over these and removes `dir` when done (after closing `audit`).
 * @param opts.dirPrefix the temp dir's name prefix (default `deskd-test-`)
 * @throws DeskdError POLICY_INVALID from `parsePolicy` when `policyYaml` is not a valid policy
 */
export async function buildPolicyStack(platform: FakePlatform, policyYaml: string, opts: { ocr?: TextRecognizer | null; dirPrefix?: string } = {}) {
  const dir = await mkdtemp(join(tmpdir(), opts.dirPrefix ?? 'deskd-test-'));
  const policy = parsePolicy(policyYaml, 'test-policy.yaml');
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  const approvals = new ApprovalManager({ timeoutMs: policy.approvals.timeoutMs });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit, screenLocked: () => platform.locked });
  gate.wireHalt();
  const store = new ObservationStore();
  const observer = new Observer(platform, opts.ocr ?? null, store, DEFAULT_AX_BUDGET, (windows) => perceptionMask(windows, policy));
  return { dir, policy, audit, halt, approvals, gate, store, observer };
}

/** An app on the fake platform with the real policy engine, approvals, halt switch and audit log (in a temp dir). */
export async function buildPolicyApp(platform: FakePlatform, policyYaml: string, ocr: TextRecognizer | null = null) {
  const { dir, audit, halt, approvals, gate, store, observer } = await buildPolicyStack(platform, policyYaml, { ocr });
  const executor = new Executor({ platform, store, policy: gate, halt, verifyElement: createElementVerifier(platform, ocr), agentCapture: async (id) => (await observer.agentCapture.capture(id)).image });
  const app: FastifyInstance = await buildApp({
    platform, observer, executor, token: AGENT_TOKEN, operatorToken: OPERATOR_TOKEN, version: 't',
    policy: { approvals, halt, audit },
  });
  return {
    app, audit, approvals, halt, dir,
    auditPath: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key'),
    async close() {
      await app.close();
      approvals.cancelAll('test');
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
