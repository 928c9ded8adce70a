import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import type { FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { DEFAULT_AX_BUDGET, ObservationStore, Observer } from '../../src/perception/observer.js';
import { perceptionMask } from '../../src/policy/perception.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { AgentRegistry, agentOfActor } from '../../src/governance/agents.js';
import { LayeredPolicyStore } from '../../src/governance/policyStore.js';
import { explainAction } from '../../src/governance/explain.js';
import { fakeDesktop, fixedOcr, AGENT, OPERATOR } from './hardeningApp.js';
import type { Telemetry } from '../../src/telemetry/telemetry.js';
import type { TaskRunner } from '../../src/agent/loop.js';
import { instrumentExecutor, instrumentGate, instrumentObserver } from '../../src/telemetry/instrument.js';

export { AGENT, OPERATOR };

/**
 * The real app on the fake platform with the governance pieces wired as `src/runtime.ts` and
 * `src/main.ts` wire them: a layered policy store (user + managed files, agent overlays), the gate deciding
 * under the layers for the acting agent, an agent registry, explain.
 */
export async function buildGovernanceApp(opts: { userPath: string; managedPath?: string | null; platform?: FakePlatform; telemetry?: Telemetry; tasks?: (d: { observer: Observer; executor: Executor }) => TaskRunner }) {
  const platform = opts.platform ?? fakeDesktop();
  const dir = await mkdtemp(join(tmpdir(), 'deskd-gov-'));
  const store = await LayeredPolicyStore.open({ userPath: opts.userPath, managedPath: opts.managedPath ?? null, watch: false });
  const agents = await AgentRegistry.open(join(dir, 'agents.json'));
  agents.on('added', (a) => void (a.policy ? store.loadOverlay(a.policy).catch(() => undefined) : undefined));
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  const approvals = new ApprovalManager({ timeoutMs: store.policy.approvals.timeoutMs });
  const taskAgents = new Map<string, string>();
  const agentOf = (actor: string) => {
    const id = agentOfActor(actor, (t) => taskAgents.get(t));
    if (!id || id === 'operator') return null;
    return agents.get(id) ?? { id };
  };
  const gate = new PolicyGate({ policy: () => store.policy, layers: store, agentOf, halt, bucket: new TokenBucket(store.policy.limits), approvals, audit, screenLocked: () => platform.locked });
  gate.wireHalt();
  const obsStore = new ObservationStore();
  const observer = new Observer(platform, fixedOcr, obsStore, DEFAULT_AX_BUDGET, (windows) => perceptionMask(windows, store.policy));
  const executor = new Executor({ platform, store: obsStore, policy: gate, verifyElement: createElementVerifier(platform, fixedOcr), agentCapture: async (id) => (await observer.agentCapture.capture(id)).image });
  const tasks = opts.tasks?.({ observer, executor });
  if (opts.telemetry) {
    instrumentObserver(observer, opts.telemetry);
    instrumentExecutor(executor, opts.telemetry);
    instrumentGate(gate, opts.telemetry);
  }
  const app: FastifyInstance = await buildApp({
    ...(opts.telemetry ? { telemetry: opts.telemetry } : {}),
    ...(tasks ? { tasks } : {}),
    platform, observer, executor, token: AGENT, operatorToken: OPERATOR, version: 't',
    policy: { approvals, halt, audit },
    governance: { agents, taskAgents, ...(tasks ? { cancelTask: (id: string) => void tasks.cancel(id) } : {}), explain: (q) => explainAction(store, q, agents), checkOverlay: async (f) => void (await store.loadOverlay(f)) },
  });
  return {
    app, platform, audit, approvals, halt, dir, store, agents, executor, gate,
    tasks,
    async close() {
      await tasks?.close();
      await app.close();
      approvals.cancelAll('test');
      store.close();
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
