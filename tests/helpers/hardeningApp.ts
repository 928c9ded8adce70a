import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp, type AppDeps } from '../../src/app.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
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
import type { TaskRunner } from '../../src/agent/loop.js';

export const AGENT = 'agent-token-0123456789abcdef';
export const OPERATOR = 'operator-token-0123456789abcdef';

/** Allow everything, with a rate limit high enough for soaks. */
export const ALLOW_ALL = `
version: 1
limits: { actionsPerSecond: 1000, burst: 10000, maxTypeChars: 2000 }
rules:
  - { id: allow-all, effect: allow, match: {} }
`;

/** A recogniser that reads one fixed line (no tesseract). */
export const fixedOcr: TextRecognizer = {
  async recognize() {
    return { words: [{ text: 'Total', bounds: { x: 300, y: 40, width: 60, height: 20 }, confidence: 0.9 }], lines: [{ text: 'Total 42', bounds: { x: 300, y: 40, width: 120, height: 20 } }] };
  },
};

/** A calculator-like fake desktop. */
export function fakeDesktop(): FakePlatform {
  return createFakePlatform({
    tree: [
      axNode('application', 'calc', null, {
        children: [
          axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 400 }, {
            children: [
              axNode('button', '7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' }),
              axNode('textbox', 'Name', { x: 10, y: 200, width: 200, height: 30 }, { handle: 'hn', states: ['editable'] }),
            ],
          }),
        ],
      }),
    ],
    windows: [{ id: '0xa', app: 'calc', pid: 42, wmClass: 'Calc', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 400 } }],
    focused: { app: 'calc', pid: 42, window: 'Calculator' },
  });
}

/**
 * The real app (guards, auth, lease, policy gate, audit log in a temp dir, executor, observer) on the fake
 * platform, for the hardening, property and load tests.
 */
export async function buildHardenedApp(opts: { platform?: FakePlatform; policy?: string; ocr?: TextRecognizer | null; logger?: Logger; extra?: Partial<AppDeps>; auditPath?: string; tasks?: (d: { observer: Observer; executor: Executor; approvals: ApprovalManager; halt: HaltSwitch }) => TaskRunner } = {}) {
  const platform = opts.platform ?? fakeDesktop();
  const dir = await mkdtemp(join(tmpdir(), 'deskd-hard-'));
  const policy = parsePolicy(opts.policy ?? ALLOW_ALL, 'test-policy.yaml');
  const audit = await AuditLog.open({ path: opts.auditPath ?? join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  const approvals = new ApprovalManager({ timeoutMs: policy.approvals.timeoutMs });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit, screenLocked: () => platform.locked });
  gate.wireHalt();
  const store = new ObservationStore();
  const ocr = opts.ocr === undefined ? fixedOcr : opts.ocr;
  const observer = new Observer(platform, ocr, store, DEFAULT_AX_BUDGET, (windows) => perceptionMask(windows, policy));
  const executor = new Executor({ platform, store, policy: gate, verifyElement: createElementVerifier(platform, ocr), agentCapture: async (id) => (await observer.agentCapture.capture(id)).image });
  const app: FastifyInstance = await buildApp({
    platform, observer, executor, token: AGENT, operatorToken: OPERATOR, version: 't',
    policy: { approvals, halt, audit },
    ...(opts.tasks ? { tasks: opts.tasks({ observer, executor, approvals, halt }) } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...opts.extra,
  });
  return {
    app, platform, audit, approvals, halt, dir, observer, executor,
    auditPath: join(dir, 'audit.jsonl'),
    async close() {
      await app.close();
      approvals.cancelAll('test');
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
