/**
 * A real daemon for e2e tests: its own virtual display (no window manager), a policy file, a private config
 * dir, and an authenticated JSON client; the shapes of the HTTP API's answers these tests read, and
 * {@link deskClient} for observing and listing windows through it; the policy, page server, Chromium launch and
 * teardown these tests have in common. Used by tests/e2e/movedWindows.test.ts,
 * windowManager.test.ts and acting.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type DaemonConfig } from '../../src/config.js';
import { startDaemon, type Daemon } from '../../src/main.js';
import { launchChromium, launchUntilReady, type AppHandle } from './desktop.js';

/** A started daemon, its temp dir, and a client sending the agent token. */
export interface E2eDaemon {
  daemon: Daemon;
  dir: string;
  /** One request: JSON body in (when given), status and parsed JSON out (null for an empty body). */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
  /** Close the daemon and remove the temp dir. */
  close(): Promise<void>;
}

/**
 * The configuration of an e2e daemon (`loadConfig` with this process's environment): any free port, log level
 * warn, its own virtual display of `screen`, the policy file at `policyPath`, config dir `configDir`, the linux
 * platform, and tokens generated at start (DESKD_TOKEN and DESKD_OPERATOR_TOKEN empty).
 * @param screen the virtual display's size, e.g. `1280x800`
 * @param env more environment variables for the daemon (e.g. `{ DESKD_CORNER_HALT: '0' }`)
 */
export function e2eDaemonConfig(policyPath: string, configDir: string, screen: string, env: Record<string, string> = {}): DaemonConfig {
  return loadConfig(['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', screen, '--policy', policyPath], {
    ...process.env,
    DESKD_CONFIG_DIR: configDir,
    DESKD_PLATFORM: 'linux',
    DESKD_TOKEN: '',
    DESKD_OPERATOR_TOKEN: '',
    ...env,
  });
}

/**
 * One request to `daemon`'s HTTP API with bearer `token` (default: the agent token): JSON body in when given,
 * status and parsed JSON out (null for an empty body).
 */
export async function daemonRequest<T = unknown>(daemon: Daemon, method: string, path: string, body?: unknown, token = daemon.token): Promise<{ status: number; json: T }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: (text ? JSON.parse(text) : null) as T };
}

/**
 * Start a daemon on its own 1280x800 virtual display with `policy` (YAML) as its policy file.
 * @param prefix the temp dir's name prefix (e.g. `deskd-e2e-moved-`)
 */
export async function startE2eDaemon(prefix: string, policy: string, screen = '1280x800'): Promise<E2eDaemon> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, 'policy.yaml'), policy);
  const daemon = await startDaemon(e2eDaemonConfig(join(dir, 'policy.yaml'), join(dir, 'config'), screen));
  return {
    daemon,
    dir,
    api: <T = unknown>(method: string, path: string, body?: unknown) => daemonRequest<T>(daemon, method, path, body),
    async close() {
      await daemon.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A rectangle in screen points (the daemon's `bounds`). */
export interface Rect { x: number; y: number; width: number; height: number }
/** An element of `POST /v1/observe`, as these tests read it. */
export interface El { ref: string; role: string; name: string; bounds: Rect; value?: string; states: string[] }
/** The answer of `POST /v1/observe`: the elements and the id their refs belong to. */
export interface Obs { observationId: string; elements: El[] }
/** A window of `GET /v1/windows` (its id is X11 hex, e.g. `0x1a00003`). */
export interface Win { id: string; app: string | null; title: string | null; bounds: Rect; focused: boolean }
/** The 200 answer of `POST /v1/actions`: what each action hit. */
export interface Done { status: 'done'; results: Array<{ type: string; hit?: { app: string | null; element: { role: string; name: string } | null } }> }
/** An error answer (`{ error }`): its stable code and, for policy denials, the rule; for a missed locator, the near misses. */
export interface ErrBody { error: { code: string; message: string; details?: { ruleId?: string; candidates?: Array<{ name: string; score: number }> } } }

/** The centre of `b`, rounded to whole points (where a click at an element goes). */
export const centre = (b: Rect): { x: number; y: number } => ({ x: Math.round(b.x + b.width / 2), y: Math.round(b.y + b.height / 2) });
/** True when `r` lies wholly inside `outer` (edges included). */
export const within = (r: Rect, outer: Rect): boolean => r.x >= outer.x && r.y >= outer.y && r.x + r.width <= outer.x + outer.width && r.y + r.height <= outer.y + outer.height;

/** The calls a test makes through its daemon: see {@link deskClient}. */
export interface DeskClient {
  /** One request to the daemon ({@link E2eDaemon.api}). */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
  /** `POST /v1/observe` with the accessibility tree only (no OCR, no screenshot); the parsed answer. */
  observe(): Promise<Obs>;
  /** `GET /v1/windows`: the windows listed. */
  windows(): Promise<Win[]>;
}

/**
 * A client of the daemon `daemon()` returns at each call (a test's `let d`, assigned in `beforeAll` after this
 * is made at module level).
 */
export function deskClient(daemon: () => E2eDaemon): DeskClient {
  const api = <T = unknown>(method: string, path: string, body?: unknown) => daemon().api<T>(method, path, body);
  return {
    api,
    observe: async () => (await api<Obs>('POST', '/v1/observe', { ocr: false, accessibility: true, screenshot: 'none' })).json,
    windows: async () => (await api<{ windows: Win[] }>('GET', '/v1/windows')).json.windows,
  };
}

/**
 * The policy of the moved-window tests: unmatched actions denied, reads allowed, input denied in windows titled
 * `secret-*` (rule `deny-secret`), other input allowed (`allow-rest`), 200 actions a second (burst 1000).
 * @param extraRules more rules (YAML flow mappings, one a line), placed before `allow-rest`
 */
export function denySecretPolicy(extraRules: string[] = []): string {
  return `version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 200, burst: 1000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: deny-secret, effect: deny, match: { actions: ["@input"], window: "secret-*" } }
${extraRules.map((r) => `  - ${r}\n`).join('')}  - { id: allow-rest, effect: allow, match: { actions: ["@input"] } }
`;
}

/**
 * An HTTP server on 127.0.0.1 (a free port: `server.address().port`) for the pages a test opens in Chromium.
 * @param page the HTML every request is answered with (200, text/html; charset=utf-8), or a handler of the test's own
 */
export async function servePage(page: string | RequestListener): Promise<Server> {
  const server = createServer(typeof page === 'string' ? (_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page) : page);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/**
 * After the tests: kill `apps` in order, close the daemon (removing its temp dir), close the page server.
 * What `beforeAll` did not get to start (undefined) is skipped.
 */
export async function stopE2e(apps: AppHandle[], daemon: E2eDaemon | undefined, server: Server | undefined): Promise<void> {
  for (const a of apps) await a.kill();
  await daemon?.close();
  if (server) await new Promise<void>((r) => server.close(() => r()));
}

/**
 * Launch Chromium at `url` in an 800x500 window and wait until an observation shows its button named `button`
 * (relaunched if it dies or stalls, {@link launchUntilReady}; at most 100 s in all).
 * @throws Error naming every failed launch when it is not ready in time
 */
export async function launchChromiumShowing(desk: Pick<DeskClient, 'observe'>, url: string, button: string): Promise<AppHandle> {
  const { app } = await launchUntilReady(
    () => launchChromium(url, { width: 800, height: 500 }),
    async () => ((await desk.observe()).elements.some((e) => e.role === 'button' && e.name === button) ? true : null),
    { timeoutMs: 100_000, what: 'Chromium on the accessibility bus' },
  );
  return app;
}
