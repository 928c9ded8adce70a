import { readFileSync } from 'node:fs';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { DeskdError } from './errors.js';
import { LOG_REDACT_PATHS } from './http/guards.js';
import { resolveOperatorToken, resolveToken, type DaemonConfig } from './config.js';
import type { VirtualDesktopHandle } from './platform/index.js';
import type { Platform } from './platform/types.js';
import { createRuntime, type Runtime } from './runtime.js';
import { createWorkspaceManager } from './workspaces/wiring.js';
import { TaskRunner } from './agent/loop.js';
import { createReplayService } from './replay/index.js';
import { loadAgentConfig } from './agent/config.js';
import { approvalDenier, approvalManagerApprover } from './agent/approvals.js';
import { resolveServerLimits, type ServerLimits } from './http/limits.js';
import { explainAction } from './governance/explain.js';
import { Telemetry, ocrQueueDepthOf } from './telemetry/telemetry.js';
import { instrumentExecutor, instrumentGate, instrumentObserver, instrumentTasks } from './telemetry/instrument.js';

/** deskd's version, from package.json. */
export const VERSION: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      dir = dirname(dir);
    }
  }
  return '0.0.0';
})();

/** What {@link startHeapPacer} did so far. */
export interface HeapPacer {
  /** Full collections it asked for. */
  readonly collections: number;
  /** Stop checking (idempotent). */
  stop(): void;
}

/**
 * Ask V8 for a full garbage collection whenever the JavaScript heap plus off-heap memory (`external_memory`:
 * Buffers, image frames) has grown by more than `budgetBytes` since the last full collection (V8's own or
 * this pacer's), checked every `intervalMs` on an unref'd timer; one collection at a time, run as a task of
 * its own (`gc({type: 'major', execution: 'async'})`, V8's gc extension, exposed at run time with
 * `--expose-gc`). Defaults: 24 MiB, every 250 ms (16 MiB cost 1.6x the daemon's CPU time over 200 observes, 8 MiB 3x).
 *
 * Why (issue 15, daemon RSS; figures in docs/perception-incremental.md, "RSS"): an observe with
 * accessibility allocates ≈ 27 MB of short-lived objects, mostly D-Bus messages (dbus-next marshalling;
 * sampling heap profile over 40 observes), and with the daemon's 2 MB semi-spaces ≈ 2.4 MB of it per observe
 * is promoted to the old generation. V8's default heap growth (up to 4x the live heap on a machine with
 * gigabytes free) let that garbage and the frames it holds pile up: the daemon's RSS swung between ≈ 300
 * and 400 MB while its live heap stayed ≈ 50 MB. A full collection of that live heap is cheap next to an
 * observe, and the pacer asks for one only after `budgetBytes` of growth, so the daemon's CPU time over
 * 200 observes stayed the same. V8's memory saver mode (`--memory-saver-mode`) bounded it too but tripled
 * the CPU time; `--optimize-for-size` slowed observes 6x; neither is used.
 */
export function startHeapPacer(opts: { budgetBytes?: number; intervalMs?: number } = {}): HeapPacer {
  const budget = opts.budgetBytes ?? 24 * 1024 * 1024;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (o: { type: 'major'; execution: 'async' }) => Promise<void>;
  const size = () => {
    const h = getHeapStatistics();
    return h.used_heap_size + h.external_memory;
  };
  let floor = size();
  let running = false;
  let collections = 0;
  // A full collection V8 ran by itself resets the floor too.
  const obs = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)) floor = size();
  });
  obs.observe({ entryTypes: ['gc'] });
  const timer = setInterval(() => {
    if (running || size() - floor <= budget) return;
    running = true;
    collections++;
    gc({ type: 'major', execution: 'async' }).then(
      () => {
        floor = size();
        running = false;
      },
      () => {
        running = false;
      },
    );
  }, opts.intervalMs ?? 250);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    stop() {
      clearInterval(timer);
      obs.disconnect();
    },
  };
}

/**
 * {@link startHeapPacer} as `deskd start` runs it: off with `DESKD_HEAP_PACER=0`; `DESKD_HEAP_PACER_MB`
 * sets the budget in MiB (a positive number; default 24).
 * @returns the pacer, or null when turned off.
 * @throws DeskdError `VALIDATION_FAILED` when `DESKD_HEAP_PACER_MB` is not a positive number.
 */
export function startHeapPacerFromEnv(env: NodeJS.ProcessEnv = process.env): HeapPacer | null {
  if (env.DESKD_HEAP_PACER === '0') return null;
  const raw = env.DESKD_HEAP_PACER_MB;
  if (raw === undefined || raw === '') return startHeapPacer();
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb <= 0) throw new DeskdError('VALIDATION_FAILED', `DESKD_HEAP_PACER_MB must be a positive number of MiB, not "${raw}"`);
  return startHeapPacer({ budgetBytes: Math.round(mb * 1024 * 1024) });
}

/** A running daemon. */
export interface Daemon {
  /** Base URL, e.g. `http://127.0.0.1:7820`. */
  url: string;
  port: number;
  token: string;
  /** Where the token came from: `DESKD_TOKEN` or the token file's path. */
  tokenSource: string;
  /** The operator token (approvals, resume, audit) and where it came from. */
  operatorToken: string;
  operatorTokenSource: string;
  runtime: Runtime;
  app: FastifyInstance;
  platform: Platform;
  /** The virtual desktop deskd started, if any. */
  desktop: VirtualDesktopHandle | null;
  /** Stop listening and release everything (OCR workers, D-Bus, helper, virtual display). Idempotent. */
  close(): Promise<void>;
}

/**
 * Start the daemon: virtual display (if configured) → platform → OCR → app → listen on loopback.
 * Pattern from fastify's demo: `buildApp` builds, this listens and closes gracefully.
 * `opts.limits` overrides the server limits (timeouts, connection cap, concurrent observes per credential;
 * defaults in `src/http/limits.ts`).
 * @throws DeskdError on bad configuration or when the virtual display cannot start.
 */
export async function startDaemon(config: DaemonConfig, opts: { logger?: Logger; limits?: Partial<ServerLimits> } = {}): Promise<Daemon> {
  const limits = resolveServerLimits(opts.limits);
  const logger = opts.logger ?? pino({ level: config.logLevel, redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } });
  const runtime = await createRuntime(config, logger);
  // OpenTelemetry (issue 17): OTLP traces when OTEL_EXPORTER_OTLP_ENDPOINT is set, Prometheus metrics at GET /metrics.
  const ocrQueue = ocrQueueDepthOf(runtime.ocr);
  const telemetry = Telemetry.create({
    version: VERSION,
    pendingApprovals: () => runtime.approvals.list().length,
    ...(runtime.auditShipping ? { auditShipping: () => runtime.auditShipping!.stats() } : {}),
    ...(ocrQueue ? { ocrQueueDepth: ocrQueue } : {}),
  });
  instrumentObserver(runtime.observer, telemetry);
  instrumentExecutor(runtime.executor, telemetry);
  instrumentGate(runtime.gate, telemetry);
  instrumentTasks(telemetry);
  let app: FastifyInstance | null = null;
  // Recordings and replays (issue 18): every task's actions go through the recorder's tap; a diverged replay
  // may hand over to a task.
  const taskRef: { current: TaskRunner | null } = { current: null };
  const runner = () => {
    if (!taskRef.current) throw new Error('the task runner is not ready');
    return taskRef.current;
  };
  const replay = createReplayService({
    configDir: config.configDir,
    observer: runtime.observer,
    executor: runtime.executor,
    ocr: runtime.ocr !== null,
    tasks: { start: (r) => runner().start(r), get: (id) => runner().get(id), wait: (id) => runner().wait(id) },
    logger: logger.child({ component: 'replay' }),
  });
  const tasks = new TaskRunner({
    observer: runtime.observer,
    actions: replay.recorder.tap(runtime.executor),
    config: loadAgentConfig(process.env),
    approve: approvalManagerApprover(runtime.approvals, () => runtime.halt.signal),
    denyApproval: approvalDenier(runtime.approvals),
    logger: logger.child({ component: 'agent' }),
  });
  taskRef.current = tasks;
  // Sandboxed workspaces (issue 22): each its own Xvfb, buses and backend; all stopped before the runtime.
  const workspaces = createWorkspaceManager(runtime);
  try {
    const [tok, op] = await Promise.all([resolveToken(config.configDir), resolveOperatorToken(config.configDir)]);
    // Named agent credentials (issue 17): token hashes in <config dir>/agents.json (0600), loaded by the runtime.
    const agents = runtime.agents;
    app = await buildApp({
      workspaces,
      platform: runtime.platform,
      observer: runtime.observer,
      executor: runtime.executor,
      token: tok.token,
      operatorToken: op.token,
      policy: { approvals: runtime.approvals, halt: runtime.halt, audit: runtime.audit },
      tasks,
      replay,
      version: VERSION,
      logger,
      warnings: runtime.warnings,
      limits,
      telemetry,
      governance: {
        agents,
        taskAgents: runtime.taskAgents,
        explain: (q) => explainAction(runtime.policy, q, agents),
        checkOverlay: async (file) => void (await runtime.policy.loadOverlay(file)),
      },
    });
    // A short accept queue: the connection cap (limits.maxConnections) makes room for the operator, and a
    // backlog far below it keeps one burst of queued connections from pushing the operator's out.
    await app.listen({ host: config.host, port: config.port, backlog: limits.backlog });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    const onHup = () => void runtime.policy.reload();
    process.on('SIGHUP', onHup);
    let closed = false;
    const a = app;
    return {
      url: `http://${config.host}:${port}`,
      port,
      token: tok.token,
      tokenSource: tok.source,
      operatorToken: op.token,
      operatorTokenSource: op.source,
      runtime,
      app: a,
      platform: runtime.platform,
      desktop: runtime.desktop,
      async close() {
        if (closed) return;
        closed = true;
        process.off('SIGHUP', onHup);
        await replay.replayer.close();
        await tasks.close();
        await a.close().catch((e) => logger.warn({ err: e }, 'closing the HTTP server failed'));
        await workspaces.close().catch((e) => logger.warn({ err: e }, 'stopping the workspaces failed'));
        await runtime.close();
        await telemetry.close();
      },
    };
  } catch (e) {
    await tasks.close();
    await app?.close().catch(() => undefined);
    await workspaces.close().catch(() => undefined);
    await runtime.close();
    throw e;
  }
}
