/**
 * The daemon app with workspaces on the fake platform (issue 22), as tests/integration/workspaces.test.ts
 * builds it: the real app, routing, policy gate (allow-all), agent registry and WorkspaceManager, each
 * "desktop" three sleeping process groups standing in for Xvfb and its buses, each workspace a fake backend
 * with its own tree (`ws<N>`, a button `ws<N>-button`), observer, executor, lease and policy gate. The
 * user's own desktop is the fake platform `own` (button `own-button`). Screens differ by colour: the own
 * desktop is white, workspace N is {@link WORKSPACE_FILLS}[N].
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { axNode, createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { killProcessGroup } from '../../src/platform/index.js';
import { ObservationStore, Observer, type TextRecognizer } from '../../src/perception/observer.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { AgentRegistry, agentOfActor } from '../../src/governance/agents.js';
import { LayeredPolicyStore } from '../../src/governance/policyStore.js';
import { ControllerLease } from '../../src/http/lease.js';
import { assertLaunchAllowed, workspaceLimits } from '../../src/policy/launch.js';
import { WorkspaceManager, type WorkspaceDesktop } from '../../src/workspaces/manager.js';
import { workspaceGate, type WorkspaceBackend } from '../../src/workspaces/wiring.js';
import { tagAuditWithWorkspace } from '../../src/http/workspaceRouting.js';
import type { ReplayService } from '../../src/replay/index.js';
import type { TaskRunner } from '../../src/agent/loop.js';

export const WS_AGENT_TOKEN = 'agent-token-0123456789abcdef';
export const WS_OPERATOR_TOKEN = 'operator-token-0123456789abcdef';

/** Screen colours (RGBA) of the workspaces' fake displays, by creation order. */
export const WORKSPACE_FILLS: Array<[number, number, number, number]> = [
  [200, 40, 40, 255],
  [40, 160, 60, 255],
  [40, 60, 200, 255],
];

/** OCR that reads no words (observations with OCR on still work). */
const noOcr: TextRecognizer = {
  async recognize() {
    return { words: [], lines: [] };
  },
};

const POLICY = (extraRules: string) => `version: 1
limits: { actionsPerSecond: 1000, burst: 1000, maxTypeChars: 2000 }
approvals: { timeoutMs: 60000 }
rules:
  - { id: allow-all, effect: allow, match: {} }
${extraRules}
workspaces: { max: 3, perAgent: 1 }
`;

/** A fake platform with one app `label`: a window and a button `<label>-button` at (10,10 50x30). */
export function labelledPlatform(label: string, fill?: [number, number, number, number]): FakePlatform {
  return createFakePlatform({
    displays: [{ id: 0, x: 0, y: 0, width: 400, height: 300, scaleFactor: 1, primary: true }],
    ...(fill ? { fill } : {}),
    tree: [axNode('application', label, null, { children: [axNode('window', label, { x: 0, y: 0, width: 400, height: 300 }, { children: [axNode('button', `${label}-button`, { x: 10, y: 10, width: 50, height: 30 }, { handle: `${label}-b` })] })] })],
    windows: [{ id: '0xa', app: label, pid: 10, wmClass: label, title: label, bounds: { x: 0, y: 0, width: 400, height: 300 } }],
    focused: { app: label, pid: 10, window: label },
  });
}

/**
 * A "desktop" of three sleeping process groups (standing in for Xvfb, dbus-daemon, at-spi-bus-launcher) on
 * display `:<display>` with a session bus address (`/tmp/fake-bus-<index>`) that leads nowhere.
 */
async function sleepingDesktop(display: number, index: number): Promise<WorkspaceDesktop> {
  const start = () => new Promise<number>((r) => {
    const c = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    c.once('spawn', () => {
      c.unref();
      r(c.pid!);
    });
  });
  const [xvfb, dbus, atspi] = await Promise.all([start(), start(), start()]);
  return {
    display: `:${display}`,
    env: { DISPLAY: `:${display}`, DBUS_SESSION_BUS_ADDRESS: `unix:path=/tmp/fake-bus-${index}` },
    width: 400,
    height: 300,
    pids: { xvfb, dbus, atspi },
    a11yBusAddress: 'unix:path=/nonexistent',
    async stop() {
      await Promise.all([xvfb, dbus, atspi].map((p) => killProcessGroup(p, 500)));
    },
  };
}

/** The app and what tests look at. */
export interface FakeWorkspacesApp {
  app: FastifyInstance;
  audit: AuditLog;
  agents: AgentRegistry;
  manager: WorkspaceManager<WorkspaceBackend>;
  own: FakePlatform;
  /** The user's desktop's observer and executor (allow-all gate). */
  ownObserver: Observer;
  ownExecutor: Executor;
  /** The workspaces' fake platforms, by creation order. */
  wsPlatforms: FakePlatform[];
  close(): Promise<void>;
}

/** How {@link buildFakeWorkspacesApp} differs from its defaults. */
export interface FakeWorkspacesOptions {
  /** The app's replay service (a stub is enough for the MCP tools). */
  replay?: ReplayService;
  /** Policy rule lines (YAML list items, indented two spaces) after the allow-all rule, e.g. an `ask` for one app. */
  rules?: string;
  /** The whole policy YAML instead of the default one (then `rules` is not used). */
  policy?: string;
  /** The OS the workspace manager acts for (default linux). */
  platform?: NodeJS.Platform;
  /** The environment apps started in a workspace inherit from (default PATH and LANG). */
  baseEnv?: Record<string, string | undefined>;
  /** Approvals time out after this many ms (default 60000). */
  approvalsTimeoutMs?: number;
  /** The first workspace's display number (default 750; the next ones count up). */
  firstDisplay?: number;
  /** The recognizer of every observer (default: one that reads no words; null: no OCR at all). */
  recognizer?: TextRecognizer | null;
  /** A task runner over the user's desktop's observer and executor, given to the app and closed with it. */
  tasks?: (own: { observer: Observer; executor: Executor }) => TaskRunner;
}

/** Build the app (see the module comment); close it with {@link FakeWorkspacesApp.close}. */
export async function buildFakeWorkspacesApp(opts: FakeWorkspacesOptions = {}): Promise<FakeWorkspacesApp> {
  const dir = await mkdtemp(join(tmpdir(), 'deskd-fake-ws-'));
  await writeFile(join(dir, 'policy.yaml'), opts.policy ?? POLICY(opts.rules ?? ''));
  const store = await LayeredPolicyStore.open({ userPath: join(dir, 'policy.yaml'), managedPath: null, watch: false });
  const agents = await AgentRegistry.open(null);
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  const approvals = new ApprovalManager({ timeoutMs: opts.approvalsTimeoutMs ?? 60000 });
  const agentOf = (actor: string) => {
    const id = agentOfActor(actor);
    return id && id !== 'operator' ? { id } : null;
  };
  const own = labelledPlatform('own');
  const ownGate = new PolicyGate({ policy: () => store.policy, layers: store, agentOf, halt, bucket: new TokenBucket(store.policy.limits), approvals, audit, screenLocked: () => own.locked });
  const pipeline = (p: FakePlatform, gate: PolicyGate) => {
    const s = new ObservationStore();
    const observer = new Observer(p, opts.recognizer === undefined ? noOcr : opts.recognizer, s);
    const executor = new Executor({ platform: p, store: s, policy: gate, verifyElement: createElementVerifier(p, null) });
    return { observer, executor };
  };
  const mine = pipeline(own, ownGate);
  const wsPlatforms: FakePlatform[] = [];
  let n = 0;
  const layers = (owner: string) => store.layersFor(owner.startsWith('agent:') ? { id: owner.slice(6) } : null);
  const manager = new WorkspaceManager<WorkspaceBackend>({
    startDesktop: () => {
      const index = n++;
      return sleepingDesktop((opts.firstDisplay ?? 750) + index, index);
    },
    killProcessGroup,
    limits: (o) => workspaceLimits(layers(o)),
    assertLaunch: (o, a, args) => assertLaunchAllowed(layers(o), a, args),
    baseEnv: opts.baseEnv ?? { PATH: process.env.PATH, LANG: 'C.UTF-8' },
    platform: opts.platform ?? 'linux',
    createBackend: async () => {
      const i = wsPlatforms.length;
      const p = labelledPlatform(`ws${i}`, WORKSPACE_FILLS[i % WORKSPACE_FILLS.length]);
      wsPlatforms.push(p);
      const { gate, dispose } = workspaceGate({ policy: store, halt, approvals, audit, agentOf }, p);
      const { observer, executor } = pipeline(p, gate);
      return {
        platform: p, observer, executor, lease: new ControllerLease(),
        close: async () => {
          dispose();
          observer.close();
        },
      };
    },
  });
  tagAuditWithWorkspace(audit);
  const tasks = opts.tasks?.(mine);
  const app = await buildApp({ platform: own, ...mine, token: WS_AGENT_TOKEN, operatorToken: WS_OPERATOR_TOKEN, version: 't', policy: { approvals, halt, audit }, governance: { agents }, workspaces: manager, ...(opts.replay ? { replay: opts.replay } : {}), ...(tasks ? { tasks } : {}) });
  return {
    app, audit, agents, manager, own, wsPlatforms, ownObserver: mine.observer, ownExecutor: mine.executor,
    async close() {
      await tasks?.close();
      approvals.cancelAll('test over');
      await manager.close();
      await app.close();
      store.close();
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
