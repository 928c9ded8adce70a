/**
 * Issue 14 item 16: the README's route table cannot drift from the API. Every route the README's
 * "HTTP API v1" table names exists in the OpenAPI document of a full `buildApp` (policy, task, replay and
 * workspace routes registered), every route of that document is in the table, and every action type of
 * `ACTION_TYPES` and every result field of `ActionsResponseSchema` is documented. The hidden routes
 * (`/mcp`, the console, `/openapi.json`) are checked against the app's own routing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createFakePlatform, axNode } from '../../src/platform/fake/fakePlatform.js';
import { ACTION_TYPES } from '../../src/actuation/schema.js';
import { ActionsResponseSchema } from '../../src/http/schemas.js';
import { createReplayService } from '../../src/replay/index.js';
import { buildApp } from '../../src/app.js';
import { TaskRunner } from '../../src/agent/loop.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObservationStore, Observer } from '../../src/perception/observer.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { AGENT_TOKEN, OPERATOR_TOKEN, buildPolicyApp } from '../helpers/testApp.js';
import { WorkspaceManager } from '../../src/workspaces/manager.js';
import type { WorkspaceBackend } from '../../src/workspaces/wiring.js';
import { DEFAULT_WORKSPACE_LIMITS } from '../../src/policy/launch.js';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** The "HTTP API v1" section of the README: from its heading to the next `## ` heading. */
function apiSection(md: string): string {
  const start = md.indexOf('## HTTP API v1');
  if (start < 0) throw new Error('README has no "## HTTP API v1" section');
  const end = md.indexOf('\n## ', start + 5);
  return md.slice(start, end < 0 ? undefined : end);
}

/**
 * `METHOD /path` pairs of the route table: first column of each row, e.g.
 * "`GET /v1/approvals`, `POST /v1/approvals/:id`" → two routes; a "?query" and a `{body}` are dropped,
 * `:param` becomes `{param}` (OpenAPI's form).
 */
export function documentedRoutes(md: string): Set<string> {
  const routes = new Set<string>();
  for (const line of apiSection(md).split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.split(' | ')[0]!;
    for (const m of first.matchAll(/`([A-Z]+) (\/[^`\s?]*)[^`]*`/g)) {
      if (!(METHODS as readonly string[]).includes(m[1]!)) continue;
      routes.add(`${m[1]} ${m[2]!.replace(/:(\w+)/g, '{$1}')}`);
    }
  }
  return routes;
}

let app: FastifyInstance;
let dir: string;
let audit: AuditLog;

beforeAll(async () => {
  // A full app: policy routes (approvals, halt, audit), task routes and replay routes registered.
  const platform = createFakePlatform();
  dir = await mkdtemp(join(tmpdir(), 'deskd-readme-'));
  const policy = parsePolicy('version: 1\ndefaults: { unmatched: deny }\nrules: []\n', 'test.yaml');
  audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  const approvals = new ApprovalManager({ timeoutMs: policy.approvals.timeoutMs });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit });
  const store = new ObservationStore();
  const observer = new Observer(platform, null, store);
  const executor = new Executor({ platform, store, policy: gate, verifyElement: createElementVerifier(platform, null) });
  const tasks = new TaskRunner({ observer, actions: executor, config: loadAgentConfig({}, { apiKey: 'sk-unused', baseURL: 'http://127.0.0.1:9/v1' }) });
  // Recordings and replays (issue 18): their routes are in the table too.
  const replay = createReplayService({ configDir: dir, observer, executor, ocr: false });
  // Workspaces (issue 22): registered with a manager whose desktops never start (only the routes are read here).
  const workspaces = new WorkspaceManager<WorkspaceBackend>({
    startDesktop: async () => {
      throw new Error('no desktops in this test');
    },
    createBackend: async () => {
      throw new Error('no backends in this test');
    },
    killProcessGroup: async () => undefined,
    limits: () => DEFAULT_WORKSPACE_LIMITS,
    assertLaunch: () => undefined,
  });
  app = await buildApp({ platform, observer, executor, token: AGENT_TOKEN, operatorToken: OPERATOR_TOKEN, version: 't', policy: { approvals, halt, audit }, tasks, replay, workspaces });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await audit?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('README route table vs the OpenAPI document (issue 14 item 16)', () => {
  it('every documented route exists and every route of the OpenAPI document is documented', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const api = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) for (const m of Object.keys(ops)) if ((METHODS as readonly string[]).includes(m.toUpperCase())) api.add(`${m.toUpperCase()} ${path}`);
    expect(api.size).toBeGreaterThan(15);
    const readme = documentedRoutes(README);
    const hidden = new Set(['POST /mcp', 'GET /', 'GET /openapi.json']);
    const undocumented = [...api].filter((r) => !readme.has(r));
    const unknown = [...readme].filter((r) => !api.has(r) && !hidden.has(r));
    expect(undocumented, `routes missing from the README table: ${undocumented.join(', ')}`).toEqual([]);
    expect(unknown, `README routes the API does not have: ${unknown.join(', ')}`).toEqual([]);
    for (const r of ['POST /v1/find', 'POST /v1/wait', 'POST /v1/lease', 'GET /v1/windows', 'GET /v1/health']) expect(readme.has(r), r).toBe(true);
  });

  it('the hidden routes the README names are served (MCP, console, OpenAPI)', async () => {
    const readme = documentedRoutes(README);
    for (const r of ['POST /mcp', 'GET /', 'GET /openapi.json']) expect(readme.has(r), r).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/' })).headers['content-type']).toMatch(/text\/html/);
    const mcp = await app.inject({ method: 'POST', url: '/mcp', payload: {} });
    expect(mcp.statusCode).toBe(401); // exists, and needs the token like every route
  });

  it('every action type and every result field is documented, and observe documents annotate', () => {
    const api = apiSection(README);
    for (const a of ACTION_TYPES) expect(api, a).toMatch(new RegExp('`' + a + '[ `]'));
    const fields = Object.keys((ActionsResponseSchema.shape.results.element as unknown as { shape: Record<string, unknown> }).shape).filter((f) => !['type', 'durationMs'].includes(f));
    for (const f of fields) expect(api, f).toMatch(new RegExp('`' + f + '`'));
    expect(api).toMatch(/annotate/);
  });
});

describe('the README agent loop (observe → pick a ref → act → wait) runs against the daemon', () => {
  it('clicks 7 × 6 = by refs on a calculator, reports what each click hit, and waits for 42', async () => {
    // A calculator on the fake platform: a click on a button appends its name to the display; = evaluates.
    const names = ['7', '×', '6', '='];
    const buttons = names.map((n, i) => axNode('button', n, { x: 20 + i * 60, y: 200, width: 50, height: 40 }, { handle: `b${i}` }));
    const display = axNode('textbox', '', { x: 20, y: 100, width: 230, height: 40 }, { handle: 'disp', value: '' });
    const platform = createFakePlatform({
      tree: [axNode('application', 'gnome-calculator', null, { children: [axNode('window', 'Calculator', { x: 0, y: 0, width: 400, height: 400 }, { children: [display, ...buttons] })] })],
      windows: [{ id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 400, height: 400 } }],
    });
    const up = platform.mouse.up.bind(platform.mouse);
    platform.mouse.up = async (button) => {
      await up(button);
      const p = await platform.mouse.position();
      const b = buttons.find((n) => p.x >= n.bounds!.x && p.x < n.bounds!.x + n.bounds!.width && p.y >= n.bounds!.y && p.y < n.bounds!.y + n.bounds!.height);
      if (!b) return;
      const cur = platform.tree[0]!.children[0]!.children[0]!;
      cur.value = b.name === '=' ? String(Function(`return (${(cur.value ?? '').replace(/×/g, '*')})`)()) : `${cur.value ?? ''}${b.name}`;
      platform.fill = [cur.value.length * 10, 200, 200, 255]; // the screen changes with the display
    };
    const t = await buildPolicyApp(platform, 'version: 1\ndefaults: { unmatched: deny }\nrules:\n  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }\n  - { id: allow-calc, effect: allow, match: { app: ["gnome-calculator"] } }\n');
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const url = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
      const block = /### An agent loop[^\n]*\n[\s\S]*?```js\n([\s\S]*?)```/.exec(README);
      expect(block, 'README has an "### An agent loop" section with a ```js block').not.toBeNull();
      const file = join(await mkdtemp(join(tmpdir(), 'deskd-readme-loop-')), 'agent-loop.mjs');
      await writeFile(file, block![1]!);
      const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, [file], { env: { PATH: process.env.PATH ?? '', DESKD_URL: url, DESKD_TOKEN: AGENT_TOKEN }, timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
      await rm(dirname(file), { recursive: true, force: true });
      expect(out.code, out.stderr).toBe(0);
      const lines = out.stdout.trim().split('\n');
      expect(lines.slice(0, 4)).toEqual(names.map((n) => expect.stringMatching(new RegExp(`^click "${n}" hit gnome-calculator: button "${n}"$`))));
      expect(lines[4]).toMatch(/^42 shown by e\d+ \(textbox\) after \d+ observation\(s\)$/);
      expect(platform.tree[0]!.children[0]!.children[0]!.value).toBe('42');
    } finally {
      await t.close();
    }
  });
});
