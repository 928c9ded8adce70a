/**
 * The daemon's workspace manager (issue 22): each workspace gets a private desktop
 * (`startPrivateDesktop`), a Linux backend bound to its display and buses (`createPlatform({desktop})`), an
 * observer and executor built like the daemon's own (`createPipeline`: the shared OCR engine through a queue
 * of its own ({@link FairOcr}); a gate of its own over the shared policy, kill switch, approvals and audit log
 * ({@link workspaceGate}); its own observation store and accessibility cache) and its own controller lease. Audit
 * records written while a request runs in a workspace name it.
 */
import { ControllerLease } from '../http/lease.js';
import { tagAuditWithWorkspace } from '../http/workspaceRouting.js';
import { createPlatform, killProcessGroup, startPrivateDesktop } from '../platform/index.js';
import type { Platform } from '../platform/types.js';
import type { Observer } from '../perception/observer.js';
import type { Executor } from '../actuation/executor.js';
import { assertLaunchAllowed, workspaceLimits } from '../policy/launch.js';
import { createPipeline, type Runtime } from '../runtime.js';
import { PolicyGate } from '../policy/gate.js';
import { TokenBucket } from '../policy/rateLimit.js';
import { WorkspaceManager, type WorkspaceDesktop } from './manager.js';
import { FairOcr } from './fairOcr.js';
import { DeskdError } from '../errors.js';

/** One workspace's backend: what the routes use when a request names it. */
export interface WorkspaceBackend {
  platform: Platform;
  observer: Observer;
  executor: Executor;
  /** The workspace's own controller lease: agents in different workspaces never wait for each other. */
  lease: ControllerLease;
  close(): Promise<void>;
}

/** What {@link workspaceGate} shares with the daemon's own gate. */
export type GateShared = Pick<Runtime, 'policy' | 'halt' | 'approvals' | 'audit' | 'agentOf'>;

/**
 * A workspace's policy gate: the daemon's policy layers, kill switch, approvals queue and audit log, with its
 * own rate-limit bucket (one workspace's actions never use up another's `limits.actionsPerSecond`; reconfigured
 * on every policy reload) and the screen lock of its own display (the user's locked screen does not stop a
 * workspace). `dispose()` stops following reloads.
 */
export function workspaceGate(rt: GateShared, platform: Pick<Platform, 'windows'>): { gate: PolicyGate; dispose(): void } {
  const bucket = new TokenBucket(rt.policy.policy.limits);
  const onReload = (r: { ok: boolean }) => {
    if (r.ok) bucket.configure(rt.policy.policy.limits);
  };
  rt.policy.on('reload', onReload);
  const screenLocked = platform.windows.screenLocked?.bind(platform.windows);
  const gate = new PolicyGate({ policy: () => rt.policy.policy, layers: rt.policy, agentOf: rt.agentOf, halt: rt.halt, bucket, approvals: rt.approvals, audit: rt.audit, ...(screenLocked ? { screenLocked } : {}) });
  return { gate, dispose: () => void rt.policy.off('reload', onReload) };
}

/** The agent identity behind an owner principal (`agent:<id>` → the registry's record), for its policy overlay. */
function agentOfOwner(rt: Pick<Runtime, 'agents'>, owner: string): { id: string; policy?: string } | null {
  if (!owner.startsWith('agent:')) return null;
  const id = owner.slice(6);
  return rt.agents.get(id) ?? { id };
}

/**
 * Build the daemon's workspace manager over a runtime (its OCR, policy layers, gate, kill switch, agents).
 * Revoking an agent deletes its workspaces. Close it (`close()`) before the runtime: it stops every workspace.
 */
export function createWorkspaceManager(rt: Pick<Runtime, 'ocr' | 'policy' | 'halt' | 'agents' | 'logger' | 'audit' | 'config' | 'approvals' | 'agentOf'>): WorkspaceManager<WorkspaceBackend> {
  const logger = rt.logger.child({ component: 'workspaces' });
  // One OCR engine for all: workspaces take turns (a queue each), so one busy workspace cannot starve another.
  const fair = rt.ocr ? new FairOcr(rt.ocr, rt.config.ocrWorkers) : null;
  // Decisions and results of actions in a workspace name it in the audit log.
  tagAuditWithWorkspace(rt.audit);
  const layers = (owner: string) => rt.policy.layersFor(agentOfOwner(rt, owner));
  const manager = new WorkspaceManager<WorkspaceBackend>({
    startDesktop: (size) => startPrivateDesktop({ ...size, logger }),
    killProcessGroup,
    limits: (owner) => workspaceLimits(layers(owner)),
    // The operator binds workspaces to registered agents only (a typo would create one nobody can use).
    assertOwner: (owner) => {
      if (owner.startsWith('agent:') && !rt.agents.get(owner.slice(6))) throw new DeskdError('VALIDATION_FAILED', `No agent "${owner.slice(6)}" is registered (POST /v1/agents first)`);
    },
    assertLaunch: (owner, app, args) => assertLaunchAllowed(layers(owner), app, args),
    logger,
    createBackend: async (d: WorkspaceDesktop) => {
      const ocrClient = `display${d.display}`;
      const platform = await createPlatform({ kind: 'linux', logger, desktop: { display: d.display, sessionBusAddress: d.env.DBUS_SESSION_BUS_ADDRESS!, a11yBusAddress: d.a11yBusAddress } });
      const { gate, dispose } = workspaceGate(rt, platform);
      try {
        const { observer, executor } = await createPipeline({ platform, ocr: fair ? fair.forClient(ocrClient) : null, policy: () => rt.policy.policy, gate, halt: rt.halt });
        executor.useObserver(() => observer.observe({}));
        return {
          platform,
          observer,
          executor,
          lease: new ControllerLease(),
          async close() {
            dispose();
            fair?.forget(ocrClient, new DeskdError('OCR_FAILED', 'the workspace was deleted'));
            observer.close();
            await platform.close();
          },
        };
      } catch (e) {
        dispose();
        await platform.close();
        throw e;
      }
    },
  });
  // A revoked agent's workspaces go with its credential (nobody else may use them).
  rt.agents.on('revoked', (a) => {
    for (const w of manager.ownedBy(`agent:${a.id}`)) void manager.delete(w.id).catch((e) => logger.warn({ err: String(e), workspace: w.id }, 'deleting a revoked agent\'s workspace failed'));
  });
  return manager;
}
