/**
 * Issue 22 end to end, through the HTTP API of a real daemon on its own virtual display:
 *
 * - two named agents each create a workspace (its own Xvfb, session bus, AT-SPI bus) and launch
 *   gnome-calculator into it through `POST /v1/workspaces/:id/apps`;
 * - at the same time, each clicks its own calculation (7 × 6 and 9 × 9) and reads its own result (42 / 81):
 *   no lease between them, no click lands in the other's calculator;
 * - agent A's observe of B's workspace is 403 `WORKSPACE_FORBIDDEN`; an app not in `launch` (and an
 *   argument no rule allows) is 403 `POLICY_DENIED`; apps get only allowlisted variables (no DESKD_* secret);
 * - deleting a workspace leaves no X server, bus or app process (every pid's /proc entry gone);
 * - the daemon's own display is untouched (no window appeared there; its screenshot is the same).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/main.js';
import { loadConfig } from '../../src/config.js';
import { waitFor } from '../helpers/desktop.js';

interface El { ref: string; role: string; name: string; value?: string }
interface Obs { observationId: string; elements: El[] }
interface Ws { id: string; display: string; size: string; owner: string }
interface WsDetail extends Ws { pids: { xvfb: number; dbus: number; atspi: number }; apps: Array<{ pid: number; app: string }>; usage: { processes: number; pids: number[]; rssBytes: number; cpuSeconds: number } }
interface ErrBody { error: { code: string; message: string } }

const POLICY = `version: 1
limits: { actionsPerSecond: 200, burst: 1000, maxTypeChars: 2000 }
rules:
  - { id: allow-all, effect: allow, match: {} }
launch:
  - app: gnome-calculator
workspaces: { max: 4, perAgent: 1, maxApps: 4 }
`;

let daemon: Daemon;
let dir: string;

async function call<T = unknown>(token: string, method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<{ status: number; json: T; text: string; bytes: Buffer }> {
  const r = await fetch(daemon.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extra },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const bytes = Buffer.from(await r.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: r.status, json: json as T, text, bytes };
}

async function addAgent(id: string): Promise<string> {
  const r = await call<{ token: string }>(daemon.operatorToken, 'POST', '/v1/agents', { id, role: 'actor' });
  expect(r.status, r.text).toBe(200);
  return r.json.token;
}

/**
 * A process that is gone: no /proc entry, or a zombie whose parent is PID 1 — it runs nothing and holds no
 * memory; it was re-parented to init when its parent died first, and only waits for init to reap it (the
 * sandbox these tests run in has a PID 1 that does not reap, so such entries stay; under systemd or tini they
 * vanish). A zombie of any other parent, or a live process, is not gone.
 */
function gone(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return state === 'Z' && ppid === '1';
  } catch {
    return true;
  }
}

const shown = (o: Obs) => {
  const d = o.elements.find((e) => e.role === 'textbox' || e.role === 'editbar' || e.role === 'text');
  return `${d?.value ?? ''} ${d?.name ?? ''}`;
};
const button = (o: Obs, name: string) => o.elements.find((e) => e.role === 'button' && e.name === name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-e2e-ws-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  const config = loadConfig(['--port', '0', '--log-level', 'warn', '--virtual-display', '--screen', '1024x768', '--policy', join(dir, 'policy.yaml')], {
    ...process.env,
    DESKD_CONFIG_DIR: join(dir, 'config'),
    DESKD_PLATFORM: 'linux',
    DESKD_TOKEN: '',
    DESKD_OPERATOR_TOKEN: '',
    DESKD_MANAGED_POLICY: join(dir, 'no-managed-policy.yaml'),
  });
  daemon = await startDaemon(config);
}, 180_000);

afterAll(async () => {
  await daemon?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('sandboxed workspaces (issue 22)', () => {
  it('two agents compute 7×6 and 9×9 at once, each in its own workspace; isolation, launch policy and clean deletion', async () => {
    const op = daemon.operatorToken;
    // The daemon's own display before: no window, and its screenshot.
    const ownBefore = await call(op, 'GET', '/v1/screenshot?format=png');
    expect(ownBefore.status).toBe(200);
    expect((await call<{ windows: unknown[] }>(op, 'GET', '/v1/windows')).json.windows).toEqual([]);

    const alpha = await addAgent('alpha');
    const beta = await addAgent('beta');
    const [ca, cb] = await Promise.all([
      call<Ws>(alpha, 'POST', '/v1/workspaces', { size: '1024x768', name: 'alpha-calc' }),
      call<Ws>(beta, 'POST', '/v1/workspaces', { size: '1024x768' }),
    ]);
    expect(ca.status, ca.text).toBe(200);
    expect(cb.status, cb.text).toBe(200);
    const wa = ca.json;
    const wb = cb.json;
    expect(wa).toMatchObject({ size: '1024x768', owner: 'agent:alpha' });
    expect(wb.owner).toBe('agent:beta');
    expect(new Set([wa.display, wb.display, daemon.desktop!.display]).size).toBe(3);
    // perAgent: 1 — a second one for alpha is refused.
    const again = await call<ErrBody>(alpha, 'POST', '/v1/workspaces', {});
    expect(again.status).toBe(429);
    expect(again.json.error.code).toBe('WORKSPACE_LIMIT');

    // The operator binds workspaces to registered agents only.
    const nobody = await call<ErrBody>(op, 'POST', '/v1/workspaces', { agent: 'nobody' });
    expect(nobody.status).toBe(400);
    expect(nobody.json.error.code).toBe('VALIDATION_FAILED');

    // Launch policy: deny by default, arguments must match.
    const xterm = await call<ErrBody>(alpha, 'POST', `/v1/workspaces/${wa.id}/apps`, { app: 'xterm' });
    expect(xterm.status, xterm.text).toBe(403);
    expect(xterm.json.error.code).toBe('POLICY_DENIED');
    const withArgs = await call<ErrBody>(alpha, 'POST', `/v1/workspaces/${wa.id}/apps`, { app: 'gnome-calculator', args: ['--mode=advanced'] });
    expect(withArgs.status).toBe(403);
    expect(withArgs.json.error.code).toBe('POLICY_DENIED');
    // Beta may not launch into alpha's workspace.
    const intrude = await call<ErrBody>(beta, 'POST', `/v1/workspaces/${wa.id}/apps`, { app: 'gnome-calculator' });
    expect(intrude.status).toBe(403);
    expect(intrude.json.error.code).toBe('WORKSPACE_FORBIDDEN');

    const [la, lb] = await Promise.all([
      call<{ pid: number }>(alpha, 'POST', `/v1/workspaces/${wa.id}/apps`, { app: 'gnome-calculator' }),
      call<{ pid: number }>(beta, 'POST', `/v1/workspaces/${wb.id}/apps`, { app: 'gnome-calculator' }),
    ]);
    expect(la.status, la.text).toBe(200);
    expect(lb.status, lb.text).toBe(200);
    // The app's environment: the workspace's display and bus, no daemon secret.
    const env = readFileSync(`/proc/${la.json.pid}/environ`, 'utf8').split('\0').filter(Boolean);
    expect(env).toContain(`DISPLAY=${wa.display}`);
    expect(env.some((v) => v.startsWith('DBUS_SESSION_BUS_ADDRESS='))).toBe(true);
    expect(env.filter((v) => /^(DESKD_|OPENAI_|ANTHROPIC_|AT_SPI_BUS_ADDRESS=|NO_AT_BRIDGE=)/.test(v))).toEqual([]);

    // Each agent observes its own workspace: alpha by being bound to it (names none), beta by naming it.
    const ready = (token: string, extra: Record<string, string>) =>
      waitFor(async () => {
        const o = (await call<Obs>(token, 'POST', '/v1/observe', { ocr: false }, extra)).json;
        return button(o, '7') && button(o, '9') && button(o, '×') && button(o, '=') ? o : null;
      }, 120_000, 'the calculator buttons in the workspace', 300);
    const [oa, ob] = await Promise.all([ready(alpha, {}), ready(beta, { 'x-deskd-workspace': wb.id })]);

    // A's observe of B's workspace is refused, whichever way it names it.
    const peek = await call<ErrBody>(alpha, 'POST', '/v1/observe', { ocr: false, workspace: wb.id });
    expect(peek.status).toBe(403);
    expect(peek.json.error.code).toBe('WORKSPACE_FORBIDDEN');
    const peekShot = await call<ErrBody>(alpha, 'GET', `/v1/screenshot?workspace=${wb.id}`);
    expect(peekShot.status).toBe(403);
    expect(peekShot.json.error.code).toBe('WORKSPACE_FORBIDDEN');

    // Both calculations at the same time, each a batch of clicks on its own calculator's buttons.
    const clicks = (o: Obs, keys: string[]) => ({ actions: keys.map((k) => ({ type: 'click', target: { ref: button(o, k)!.ref, observationId: o.observationId } })), reason: 'compute' });
    const [ra, rb] = await Promise.all([
      call(alpha, 'POST', '/v1/actions', clicks(oa, ['7', '×', '6', '='])),
      call(beta, 'POST', '/v1/actions', { ...clicks(ob, ['9', '×', '9', '=']), workspace: wb.id }),
    ]);
    expect(ra.status, ra.text).toBe(200);
    expect(rb.status, rb.text).toBe(200);
    const resultA = await waitFor(async () => {
      const s = shown((await call<Obs>(alpha, 'POST', '/v1/observe', { ocr: false })).json);
      return /\b42\b/.test(s) ? s : null;
    }, 30_000, 'alpha reading 42');
    const resultB = await waitFor(async () => {
      const s = shown((await call<Obs>(beta, 'POST', '/v1/observe', { ocr: false }, { 'x-deskd-workspace': wb.id })).json);
      return /\b81\b/.test(s) ? s : null;
    }, 30_000, 'beta reading 81');
    // OCR works in a workspace too (the shared engine, through the workspace's own queue).
    const withOcr = await call<Obs & { words: Array<{ text: string }> }>(alpha, 'POST', '/v1/observe', { ocr: true, accessibility: false });
    expect(withOcr.status, withOcr.text).toBe(200);
    expect(withOcr.json.words.some((w) => /\d/.test(w.text)), JSON.stringify(withOcr.json.words.map((w) => w.text))).toBe(true);
    expect(resultA).not.toMatch(/\b81\b/);
    expect(resultB).not.toMatch(/\b42\b/);
    // Each workspace has its own lease: both agents hold one at once.
    expect((await call<{ lease: { holder: string } }>(alpha, 'GET', '/v1/lease')).json.lease.holder).toBe('agent:alpha/default');
    expect((await call<{ lease: { holder: string } }>(beta, 'GET', '/v1/lease', undefined, { 'x-deskd-workspace': wb.id })).json.lease.holder).toBe('agent:beta/default');

    // Usage from /proc; the list shows each agent its own.
    const detail = await call<WsDetail>(alpha, 'GET', `/v1/workspaces/${wa.id}`);
    expect(detail.status).toBe(200);
    expect(detail.json.usage.rssBytes).toBeGreaterThan(0);
    expect(detail.json.usage.pids).toEqual(expect.arrayContaining([detail.json.pids.xvfb, detail.json.pids.dbus, la.json.pid]));
    console.info(`[workspaces e2e] alpha: ${detail.json.usage.processes} processes, RSS ${(detail.json.usage.rssBytes / 1048576).toFixed(1)} MiB, CPU ${detail.json.usage.cpuSeconds.toFixed(2)} s`);
    expect((await call<{ workspaces: Ws[] }>(alpha, 'GET', '/v1/workspaces')).json.workspaces.map((w) => w.id)).toEqual([wa.id]);
    expect((await call<{ workspaces: Ws[] }>(op, 'GET', '/v1/workspaces')).json.workspaces.map((w) => w.id).sort()).toEqual([wa.id, wb.id].sort());
    expect((await call<ErrBody>(beta, 'DELETE', `/v1/workspaces/${wa.id}`)).json.error.code).toBe('WORKSPACE_FORBIDDEN');

    // Delete both: no X server, bus or app process is left.
    for (const [token, id] of [[alpha, wa.id], [beta, wb.id]] as const) {
      const before = (await call<WsDetail>(token, 'GET', `/v1/workspaces/${id}`)).json;
      const pids = [...new Set([...before.usage.pids, before.pids.xvfb, before.pids.dbus, before.pids.atspi, ...before.apps.map((a) => a.pid)])];
      const del = await call<{ deleted: boolean }>(token, 'DELETE', `/v1/workspaces/${id}`);
      expect(del.status, del.text).toBe(200);
      expect(del.json.deleted).toBe(true);
      expect(pids.filter((p) => !gone(p))).toEqual([]);
      expect(existsSync(`/tmp/.X11-unix/X${before.display.slice(1)}`)).toBe(false);
      expect((await call<ErrBody>(token, 'GET', `/v1/workspaces/${id}`)).json.error.code).toBe('WORKSPACE_NOT_FOUND');
    }

    // The daemon's own display is untouched.
    expect((await call<{ windows: unknown[] }>(op, 'GET', '/v1/windows')).json.windows).toEqual([]);
    const ownAfter = await call(op, 'GET', '/v1/screenshot?format=png');
    expect(ownAfter.bytes.equals(ownBefore.bytes)).toBe(true);
  });
});
