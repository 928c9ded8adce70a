import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DaemonConfig } from './config.js';
import { createPlatform, startVirtualDesktop, type VirtualDesktopHandle } from './platform/index.js';
import type { Platform } from './platform/types.js';
import { DEFAULT_AX_BUDGET, ObservationStore, Observer, type TextRecognizer } from './perception/observer.js';
import { describeWindowForAgent, isMaskedWindow, perceptionMask } from './policy/perception.js';
import { OcrEngine } from './perception/ocr/index.js';
import { RecyclingRecognizer } from './perception/incrementalOcr.js';
import { createElementVerifier, recheckedTree, resetTreeAfterInput } from './perception/refs.js';
import { Executor } from './actuation/executor.js';
import { LayeredPolicyStore } from './governance/policyStore.js';
import { AgentRegistry, agentOfActor } from './governance/agents.js';
import { AuditLog } from './policy/audit.js';
import { startAuditShipping, type AuditShipping } from './telemetry/auditShip.js';
import { ApprovalManager } from './policy/approvals.js';
import { HaltSwitch } from './policy/halt.js';
import { TokenBucket } from './policy/rateLimit.js';
import { PolicyGate } from './policy/gate.js';
import { CornerHaltWatcher, cornerHaltFromEnv } from './policy/cornerHalt.js';
import type { Policy } from './policy/schema.js';

/**
 * Everything deskd runs on, independent of how it is served (HTTP daemon, MCP over stdio):
 * platform backend, OCR, observer, policy (store, gate, approvals, halt, audit) and executor.
 */
export interface Runtime {
  config: DaemonConfig;
  logger: Logger;
  platform: Platform;
  /** The virtual desktop deskd started, if any. */
  desktop: VirtualDesktopHandle | null;
  ocr: TextRecognizer | null;
  observer: Observer;
  executor: Executor;
  /** The policy layers: managed (signed when a key is configured), user, per-agent overlays (issue 17). */
  policy: LayeredPolicyStore;
  /** Named agent credentials (`<config dir>/agents.json`). */
  agents: AgentRegistry;
  /** Task id → the named agent that started it: a task acts under its agent's policy layers (filled by the app). */
  taskAgents: Map<string, string>;
  /** The agent an audit actor acts for (its id and overlay), as the gate decides it; null for the operator and unknown actors. */
  agentOf: (actor: string) => { id: string; policy?: string } | null;
  gate: PolicyGate;
  approvals: ApprovalManager;
  halt: HaltSwitch;
  audit: AuditLog;
  /** Path of the audit log and its HMAC key. */
  auditPaths: { log: string; key: string };
  /** Copies of the audit records to syslog / OTLP logs (`DESKD_AUDIT_SYSLOG`, `DESKD_AUDIT_OTLP`); null when off. */
  auditShipping: AuditShipping | null;
  /** The pointer-corner kill switch (null when `DESKD_CORNER_HALT=0`); the executor's mouse is tapped by it. */
  cornerHalt: CornerHaltWatcher | null;
  /** Non-fatal start-up problems (e.g. OCR unavailable). */
  warnings: string[];
  /** Release everything, in reverse order of creation. Idempotent. */
  close(): Promise<void>;
}

/** What {@link createPipeline} builds on: a backend, OCR, and the policy, gate and kill switch it shares. */
export interface PipelineOptions {
  platform: Platform;
  /** The platform the executor drives (default `platform`; the runtime's is tapped by the corner halt). */
  actingPlatform?: Platform;
  ocr: TextRecognizer | null;
  /** The effective policy now (masks, window descriptions). */
  policy: () => Policy;
  gate: PolicyGate;
  halt: HaltSwitch;
}

/**
 * One backend's observer and executor (started: AT-SPI change events invalidate the observer's cache).
 * The daemon's own desktop has one; each workspace (issue 22, `src/workspaces/`) another, over its own
 * backend, sharing OCR, policy, gate and kill switch. The caller closes the observer.
 */
export async function createPipeline(o: PipelineOptions): Promise<{ observer: Observer; executor: Executor }> {
  const { platform, ocr, gate, halt } = o;
  const store = new ObservationStore();
  const observer = new Observer(platform, ocr, store, DEFAULT_AX_BUDGET, (windows) => perceptionMask(windows, o.policy()));
  // Accessibility change events (AT-SPI) invalidate the observer's accessibility cache; every dispatched
  // input event does too, and makes the next observation wait for the screen to settle.
  await observer.start();
  const executor = new Executor({
    // After every input event the backend's kept tree is dropped: the observation after an action reads it whole.
    platform: observer.tapPlatform(resetTreeAfterInput(o.actingPlatform ?? platform, platform.accessibility)),
    store,
    policy: gate,
    halt,
    // Every image the agent gets (the screenshot action, a ref's OCR re-read) comes from the one masked
    // capture path; windows the policy masks are never named in its error messages.
    // The ref re-check reads the backend's kept tree (the observer's last read, updated by events) with every
    // object's extents read again (refs.ts recheckedTree), not a whole read of its own; safe only with the tree
    // reset above (tests/unit/replayFreshTree.test.ts, tests/e2e/movedWindows.test.ts).
    verifyElement: createElementVerifier(platform, ocr, async (id, region) => (await observer.agentCapture.capture(id, { region })).image, recheckedTree(observer.axCache, DEFAULT_AX_BUDGET)),
    describeWindow: (w) => describeWindowForAgent(w, o.policy()),
    isMasked: (w) => isMaskedWindow(w, o.policy()),
    agentCapture: async (displayId) => (await observer.agentCapture.capture(displayId)).image,
    navigationKeys: platform.name === 'macos' ? { back: ['meta', '['], forward: ['meta', ']'] } : { back: ['alt', 'left'], forward: ['alt', 'right'] },
  });
  return { observer, executor };
}

/**
 * Build the runtime: virtual display (if configured) → platform → OCR → policy → observer/executor.
 * On failure, whatever was started is stopped before the error is rethrown.
 * @throws DeskdError `POLICY_INVALID` (bad policy file), `AUDIT_WRITE_FAILED` (audit log unusable), or a
 *   virtual-display / platform error.
 */
export async function createRuntime(config: DaemonConfig, logger: Logger): Promise<Runtime> {
  const cleanups: (() => Promise<void>)[] = [];
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const c of cleanups.reverse()) await c().catch((e) => logger.warn({ err: e }, 'cleanup failed'));
  };
  try {
    let desktop: VirtualDesktopHandle | null = null;
    if (config.virtualDisplay) {
      desktop = await startVirtualDesktop({ width: config.screen.width, height: config.screen.height, logger });
      const d = desktop;
      cleanups.push(() => d.stop());
      logger.info({ display: desktop.display }, 'started virtual display');
    }
    const platform = await createPlatform({ kind: config.platform, logger });
    cleanups.push(() => platform.close());

    const warnings: string[] = [];
    let ocr: TextRecognizer | null = null;
    try {
      // The whole engine is replaced when the process's RSS goes over 400 MiB (workers are also recycled after N jobs).
      const ocrLog = logger.child({ component: 'ocr' });
      const engine = await RecyclingRecognizer.create(() => OcrEngine.create({ workers: config.ocrWorkers }), {
        onRecycle: (r) => (r.ok ? ocrLog.info({ rssBytes: r.rssBytes }, 'OCR engine replaced (RSS over the limit)') : ocrLog.warn({ err: r.error }, 'OCR engine replacement failed')),
      });
      cleanups.push(() => engine.close());
      ocr = engine;
    } catch (e) {
      warnings.push(`OCR unavailable: ${(e as Error).message}`);
      logger.warn({ err: e }, 'OCR unavailable');
    }

    const policy = await LayeredPolicyStore.open({ userPath: config.policyPath, ...(config.managedPolicyPath !== undefined ? { managedPath: config.managedPolicyPath } : {}), logger: logger.child({ component: 'policy' }) });
    cleanups.push(async () => policy.close());
    // Named agents and their policy overlays (an overlay that cannot be read denies everything for that agent).
    const agents = await AgentRegistry.open(join(config.configDir, 'agents.json'));
    for (const a of agents.list()) if (a.policy) await policy.loadOverlay(a.policy).catch((e) => logger.error({ err: e, agent: a.id }, 'agent policy overlay unreadable: the agent may do nothing'));
    agents.on('added', (a) => void (a.policy ? policy.loadOverlay(a.policy).catch((e) => logger.error({ err: e, agent: a.id }, 'agent policy overlay unreadable')) : undefined));
    const auditPaths = { log: config.auditLogPath ?? join(config.configDir, 'audit.jsonl'), key: join(config.configDir, 'audit.key') };
    // A checkpoint record every 100 records (DESKD_AUDIT_CHECKPOINT_EVERY) and at shutdown (issue 17).
    const checkpointEvery = Number(process.env.DESKD_AUDIT_CHECKPOINT_EVERY ?? 100);
    const audit = await AuditLog.open({ path: auditPaths.log, keyPath: auditPaths.key, checkpointEvery: Number.isInteger(checkpointEvery) && checkpointEvery >= 0 ? checkpointEvery : 100 });
    cleanups.push(() => audit.close());
    // Shipped copies (issue 17): closed after the stop record below is written, so it is shipped too.
    const auditShipping = await startAuditShipping(audit, { configDir: config.configDir, logger: logger.child({ component: 'audit-ship' }) });
    if (auditShipping) cleanups.push(() => auditShipping.close());
    // Start and stop are audit records (the stop record is written by the cleanup that runs just before
    // the log closes); so is every policy reload, good or refused.
    const startedAt = Date.now();
    await audit.append('daemon', { event: 'start', pid: process.pid, platform: config.platform, policy: { source: policy.source, hash: policy.hash, ...(policy.managedPolicy ? { managed: true } : {}) } });
    cleanups.push(async () => {
      // The shutdown checkpoint, then the stop record last (issue 17: a copy holding both shows a clean end).
      await audit.checkpoint().catch((e) => logger.warn({ err: e }, 'audit checkpoint failed on stop'));
      await audit.append('daemon', { event: 'stop', pid: process.pid, uptimeMs: Date.now() - startedAt }).catch((e) => logger.warn({ err: e }, 'audit write failed on stop'));
    });
    policy.on('reload', (r) => {
      const layer = { ...(r.layer ? { layer: r.layer } : {}), ...(r.trigger ? { trigger: r.trigger } : {}) };
      const rec = r.ok ? { event: 'reload', ...layer, ok: true, changed: r.changed, source: r.source, hash: r.hash, policyHash: policy.hash } : { event: 'reload', ...layer, ok: false, source: r.source, keptHash: policy.hash, error: { code: r.error.code, message: r.error.message } };
      audit.append('policy', rec).catch((e) => logger.error({ err: e }, 'audit write failed on policy reload'));
    });
    const halt = new HaltSwitch();
    const approvals = new ApprovalManager({ timeoutMs: policy.policy.approvals.timeoutMs });
    cleanups.push(async () => void approvals.cancelAll('shutdown'));
    const bucket = new TokenBucket(policy.policy.limits);
    policy.on('reload', (r) => {
      if (!r.ok) return;
      bucket.configure(policy.policy.limits);
      approvals.setTimeoutMs(policy.policy.approvals.timeoutMs);
    });
    const screenLocked = platform.windows.screenLocked?.bind(platform.windows);
    const taskAgents = new Map<string, string>();
    const agentOf = (actor: string) => {
      // A task's actions are decided for the agent that started it (its overlay), never for nobody.
      const id = agentOfActor(actor, (t) => taskAgents.get(t));
      if (!id || id === 'operator') return null;
      return agents.get(id) ?? { id };
    };
    const gate = new PolicyGate({ policy: () => policy.policy, layers: policy, agentOf, halt, bucket, approvals, audit, ...(screenLocked ? { screenLocked } : {}) });
    const unwire = gate.wireHalt((e) => logger.error({ err: e }, 'audit write failed on halt/resume'));
    cleanups.push(async () => unwire());

    // Kill switch by pointer: held in a display corner → halt (DESKD_CORNER_HALT=0 disables). The
    // executor gets a platform whose mouse tells the watcher where deskd itself put the pointer.
    let actingPlatform: Platform = platform;
    let cornerHalt: CornerHaltWatcher | null = null;
    const cornerEnv = cornerHaltFromEnv(process.env);
    if (cornerEnv.enabled) {
      const cornerLog = logger.child({ component: 'corner-halt' });
      const corner = new CornerHaltWatcher({
        mouse: platform.mouse,
        displays: () => platform.capture.displays(),
        halt,
        dwellMs: cornerEnv.dwellMs,
        onHalt: (h) => cornerLog.warn(h, 'pointer held in a screen corner: halted'),
        onError: (e) => cornerLog.warn({ err: e }, 'cannot read the pointer position; corner halt paused until it can'),
      });
      corner.start();
      cleanups.push(() => corner.stop());
      actingPlatform = corner.tapPlatform(platform);
      cornerHalt = corner;
    }

    const { observer, executor } = await createPipeline({ platform, actingPlatform, ocr, policy: () => policy.policy, gate, halt });
    cleanups.push(async () => observer.close());
    return { config, logger, platform, desktop, ocr, observer, executor, policy, agents, taskAgents, agentOf, gate, approvals, halt, audit, auditPaths, auditShipping, cornerHalt, warnings, close };
  } catch (e) {
    await close();
    throw e;
  }
}
