/**
 * The replay harness of tests/integration/replay.test.ts and tests/e2e/consoleReplay.test.ts (issue 18):
 * the HTTP app on the fake platform with the real executor, policy gate, approvals, audit log and replay
 * service. The fake "calculator" reacts to clicks: the display shows what was pressed, and `=` shows the
 * product; it can be moved, its buttons renamed or stuck, and its "Scientific" box opens a second window.
 */
import { expect } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { ObservationStore, Observer, DEFAULT_AX_BUDGET } from '../../src/perception/observer.js';
import { perceptionMask } from '../../src/policy/perception.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { parsePolicy } from '../../src/policy/parse.js';
import type { Policy } from '../../src/policy/schema.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { createReplayService, type ReplayService } from '../../src/replay/index.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createMcpServer } from '../../src/mcp/server.js';
import type { Point, Rect, RawAXNode } from '../../src/platform/types.js';

export const AGENT = 'agent-token-0123456789abcdef';
export const OPERATOR = 'operator-token-0123456789abcdef';

export const ALLOW = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-fakeapp, effect: allow, match: { app: ["fakeapp"] } }
perception:
  mask: [{ name: "secretapp" }]
`;
export const DENY_FAKEAPP = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: deny-fakeapp, effect: deny, match: { app: ["fakeapp"] } }
`;
export const MASK_FAKEAPP = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
perception:
  mask: [{ name: "fakeapp" }]
`;

export interface Calc {
  origin: Point;
  names: Record<string, string>;
  display: string;
  /** The "Scientific" checkbox: checked, and its "Scientific keys" window open. */
  scientific: boolean;
  /** Keys (and `sci`) whose clicks do nothing (a stuck button). */
  stuck: Set<string>;
}

/** The calculator's tree at its origin, with its button names (renames change `names`). */
export function calcTree(c: Calc): RawAXNode[] {
  const o = c.origin;
  const b = (key: string, i: number) => axNode('button', c.names[key] ?? key, { x: o.x + 10 + i * 60, y: o.y + 100, width: 50, height: 40 }, { handle: `h${i}`, actions: ['press'] });
  return [
    axNode('application', 'fakeapp', null, {
      handle: 'app',
      children: [
        axNode('frame', 'Calculator', { x: o.x, y: o.y, width: 400, height: 300 }, {
          handle: 'win',
          children: [
            axNode('textbox', 'Result', { x: o.x + 10, y: o.y + 20, width: 300, height: 40 }, { handle: 'display', value: c.display }),
            ...['7', '×', '6', '='].map(b),
            axNode('checkbox', 'Scientific', { x: o.x + 10, y: o.y + 200, width: 100, height: 30 }, { handle: 'sci', actions: ['click'], states: ['enabled', 'visible', 'showing', ...(c.scientific ? ['checked'] : [])] }),
          ],
        }),
      ],
    }),
  ];
}

export interface Harness {
  app: FastifyInstance;
  replay: ReplayService;
  mcp(): Promise<Client>;
  platform: FakePlatform;
  calc: Calc;
  audit: AuditLog;
  dir: string;
  setPolicy(yaml: string): void;
  /** Move the calculator (tree and window). */
  moveTo(p: Point): void;
  clicks(): string[];
  close(): Promise<void>;
}

/** Build the harness (see the module comment); close it with {@link Harness.close}. */
export async function makeReplayHarness(extraWindows: { app: string; bounds: Rect }[] = [], tasks?: Parameters<typeof createReplayService>[0]['tasks'], limits?: Parameters<typeof createReplayService>[0]['limits']): Promise<Harness> {
  const calc: Calc = { origin: { x: 0, y: 0 }, names: {}, display: '0', scientific: false, stuck: new Set() };
  const win = () => ({ id: '0x100', app: 'fakeapp', pid: 4242, title: 'Calculator', bounds: { x: calc.origin.x, y: calc.origin.y, width: 400, height: 300 } });
  const others = extraWindows.map((w, i) => ({ id: `0x20${i}`, app: w.app, pid: 5000 + i, title: w.app, bounds: w.bounds }));
  const platform = createFakePlatform({ tree: calcTree(calc), windows: [...others, win()], fill: [200, 60, 60, 255] });
  const refresh = () => {
    platform.tree = calcTree(calc);
    platform.windowList = [...others, win(), ...(calc.scientific ? [{ id: '0x300', app: 'fakeapp', pid: 4242, title: 'Scientific keys', bounds: { x: calc.origin.x + 420, y: calc.origin.y, width: 200, height: 200 } }] : [])];
  };
  // The calculator: a click on a key updates the display.
  const pressed: string[] = [];
  const up = platform.mouse.up.bind(platform.mouse);
  platform.mouse.up = async (button) => {
    await up(button);
    const p = await platform.mouse.position();
    if (p.x >= calc.origin.x + 10 && p.x <= calc.origin.x + 110 && p.y >= calc.origin.y + 200 && p.y <= calc.origin.y + 230) {
      pressed.push('sci');
      if (!calc.stuck.has('sci')) calc.scientific = !calc.scientific;
      return refresh();
    }
    const keys = ['7', '×', '6', '='];
    const i = keys.findIndex((_, k) => p.x >= calc.origin.x + 10 + k * 60 && p.x <= calc.origin.x + 60 + k * 60 && p.y >= calc.origin.y + 100 && p.y <= calc.origin.y + 140);
    if (i < 0) return;
    const key = keys[i]!;
    pressed.push(key);
    if (calc.stuck.has(key)) return;
    if (key === '=') {
      const m = /^(\d+)×(\d+)$/.exec(calc.display);
      calc.display = m ? String(Number(m[1]) * Number(m[2])) : 'Error';
    } else calc.display = calc.display === '0' || /^\d+$/.test(calc.display) && pressed.length > 1 && pressed[pressed.length - 2] === '=' ? key : calc.display + key;
    refresh();
  };
  const dir = await mkdtemp(join(tmpdir(), 'deskd-replay-test-'));
  let policy: Policy = parsePolicy(ALLOW, 'p.yaml');
  const audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  const approvals = new ApprovalManager({ timeoutMs: 10000 });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit });
  gate.wireHalt();
  const store = new ObservationStore();
  const observer = new Observer(platform, null, store, DEFAULT_AX_BUDGET, (windows) => perceptionMask(windows, policy), { axCache: false, settle: false });
  const executor = new Executor({ platform, store, policy: gate, halt, verifyElement: createElementVerifier(platform, null), observe: () => observer.observe({ ocr: false }) });
  const replay = createReplayService({ configDir: dir, observer, executor, ocr: false, postconditionTimeoutMs: 500, ...(tasks ? { tasks } : {}), ...(limits ? { limits } : {}) });
  const app = await buildApp({ platform, observer, executor, token: AGENT, operatorToken: OPERATOR, version: 't', policy: { approvals, halt, audit }, replay });
  const h: Harness = {
    app, platform, calc, audit, dir, replay,
    async mcp() {
      const [ct, st] = InMemoryTransport.createLinkedPair();
      await createMcpServer({ platform, observer, executor, version: 't', actor: 'mcp:agent/default', replay }).connect(st);
      const client = new Client({ name: 'test', version: '1' });
      await client.connect(ct);
      return client;
    },
    setPolicy: (y) => void (policy = parsePolicy(y, 'p.yaml')),
    moveTo(p) {
      calc.origin = p;
      refresh();
    },
    clicks: () => [...pressed],
    async close() {
      await replay.replayer.close();
      await app.close();
      approvals.cancelAll('test');
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** One request to the harness's app (agent token unless `token`): status, parsed JSON ({} when not JSON), raw body, content type. */
export async function call<T = Record<string, unknown>>(h: Harness, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, token = AGENT): Promise<{ status: number; json: T; raw: Buffer; type: string }> {
  const r = await h.app.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
  let json: T;
  try {
    json = r.json() as T;
  } catch {
    json = {} as T;
  }
  return { status: r.statusCode, json, raw: r.rawPayload, type: String(r.headers['content-type'] ?? '') };
}

export interface Obs { observationId: string; elements: { ref: string; role: string; name: string; value?: string }[] }

/** Record 7 × 6 = as four batches of one click on refs, then stop. */
export async function record7x6(h: Harness, opts: object = {}): Promise<string> {
  const start = await call<{ id: string }>(h, 'POST', '/v1/recordings', { name: '7x6', goal: 'compute 7×6', ...opts });
  expect(start.status, JSON.stringify(start.json)).toBe(201);
  for (const key of ['7', '×', '6', '=']) {
    const obs = (await call<Obs>(h, 'POST', '/v1/observe', { ocr: false })).json;
    const el = obs.elements.find((e) => e.role === 'button' && e.name === key)!;
    const r = await call(h, 'POST', '/v1/actions', { type: 'click', target: { ref: el.ref, observationId: obs.observationId } });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
  }
  expect(h.calc.display).toBe('42');
  const stop = await call<{ steps: number }>(h, 'POST', `/v1/recordings/${start.json.id}/stop`);
  expect(stop.status).toBe(200);
  expect(stop.json.steps).toBe(4);
  return start.json.id;
}
