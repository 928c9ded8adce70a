/**
 * MCP on a real desktop: a private Xvfb with gnome-calculator, the daemon's real runtime (Linux backend:
 * AT-SPI, XTest input, X11 capture; the e2e policy; audit log), driven by the MCP SDK client
 * - over Streamable HTTP at `/mcp` of a daemon started with `startDaemon`, and
 * - over stdio, spawning `node dist/src/cli.js mcp` pointed at the same desktop.
 * Also `deskd permissions` on that desktop (X display and AT-SPI bus reachable), and (issue 14 item 15)
 * the tools HTTP has: press, set_value, focus, list_windows, focus_window and Set-of-Marks observe, over
 * HTTP MCP, through the policy, the audit log and the controller lease.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import sharp from 'sharp';
import { startDaemon, type Daemon } from '../../src/main.js';
import { MCP_TOOL_NAMES } from '../../src/mcp/server.js';
import { MCP_REPLAY_TOOL_NAMES } from '../../src/replay/mcp.js';
import { MARK_COLORS } from '../../src/perception/annotate.js';
import { launchApp, launchCalculator, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const POLICY = fileURLToPath(new URL('../../examples/policy-e2e.yaml', import.meta.url));

let desktop: VirtualDesktop;
let calc: AppHandle;
let daemon: Daemon;
let dir: string;
let DAEMON_POLICY: string;

const textOf = (r: CallToolResult) => r.content.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('\n');
const call = async (c: Client, name: string, args: Record<string, unknown> = {}) => {
  const r = (await c.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name}: ${textOf(r)}`).toBeFalsy();
  return textOf(r);
};
/**
 * `call`, retried while the answer is `TARGET_NOT_FOUND`: a locator is resolved in a fresh observation,
 * whose accessibility read may be cut by its time budget on a loaded 2-core machine.
 */
const callLocating = async (c: Client, name: string, args: Record<string, unknown>, timeoutMs = 60_000) => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = (await c.callTool({ name, arguments: args })) as CallToolResult;
    if (!r.isError || !/^TARGET_NOT_FOUND: /.test(textOf(r)) || Date.now() > end) {
      expect(r.isError, `${name}: ${textOf(r)}`).toBeFalsy();
      return textOf(r);
    }
    await new Promise((res) => setTimeout(res, 500));
  }
};
/** The ref of the first `role "name"` line of a tool's text. */
const refOf = (text: string, role: string, name: string) => {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^(e\\d+) ${esc(role)} ${esc(JSON.stringify(name))} `, 'm').exec(text);
  if (!m) throw new Error(`no ${role} "${name}" in:\n${text.slice(0, 3000)}`);
  return m[1]!;
};
/** The calculator display: the textbox value shown by observe. */
async function displayValue(c: Client): Promise<string | null> {
  const t = await call(c, 'observe', { ocr: false, scope: 'all' });
  const m = /^e\d+ textbox "(?:[^"\\]|\\.)*" value=("(?:[^"\\]|\\.)*")/m.exec(t);
  return m ? (JSON.parse(m[1]!) as string) : null;
}

beforeAll(async () => {
  expect(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`).toBe(true);
  desktop = await startDesktop({ width: WIDTH, height: HEIGHT });
  calc = launchCalculator();
  dir = mkdtempSync(join(tmpdir(), 'deskd-mcp-e2e-'));
  // The e2e policy plus Chromium allowed (item 15's text field is in a Chromium page at the right).
  DAEMON_POLICY = join(dir, 'policy.yaml');
  writeFileSync(DAEMON_POLICY, `${readFileSync(POLICY, 'utf8')}\n  - id: allow-chromium\n    effect: allow\n    match: { app: ["chromium"] }\n`);
  daemon = await startDaemon(
    { host: '127.0.0.1', port: 0, virtualDisplay: false, screen: { width: WIDTH, height: HEIGHT }, platform: 'linux', ocrWorkers: 1, configDir: dir, logLevel: 'warn', policyPath: DAEMON_POLICY, auditLogPath: null },
    { logger: pino({ level: 'warn' }) },
  );
  await waitFor(async () => (await daemon.runtime.observer.observe({ ocr: false })).elements.some((e) => e.role === 'button' && e.name === '='), 30_000, 'the calculator on the accessibility bus');
});

afterAll(async () => {
  await daemon?.close();
  await calc?.kill();
  await desktop?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('MCP over Streamable HTTP on gnome-calculator', () => {
  it('lists tools, finds the buttons and computes 7 × 6 = 42 by clicking refs', async () => {
    const client = new Client({ name: 'e2e-http', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${daemon.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${daemon.token}` } } }));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual([...MCP_TOOL_NAMES, ...MCP_REPLAY_TOOL_NAMES]); // the daemon has a replay service
      const apps = await call(client, 'list_apps');
      expect(apps).toMatch(/gnome-calculator/);
      const obs = await call(client, 'observe', { ocr: false });
      for (const n of ['7', '×', '6', '=']) await call(client, 'click', { ref: refOf(obs, 'button', n) });
      const shown = await waitFor(async () => ((await displayValue(client)) === '42' ? '42' : null), 10_000, 'the display to show 42');
      expect(shown).toBe('42');
      const found = await call(client, 'wait_for', { text: '42', role: 'textbox', timeoutMs: 5000, ocr: false });
      expect(found).toMatch(/^found "42"/);
      // Every click was decided by the policy and audited with the credential that sent it.
      const decisions = (await daemon.runtime.audit.read({ limit: 100 })).filter((r) => r.kind === 'decision' && r.actor === 'mcp:agent/default');
      expect(decisions.length).toBe(4);
      expect(decisions.every((d) => (d as { decision?: { ruleId?: string } }).decision?.ruleId === 'allow-calculator')).toBe(true);
    } finally {
      await client.close();
    }
  });
});

describe('deskd mcp over stdio on the same desktop', () => {
  it('clicks "+" and "1" by ref and presses enter through the policy; the display shows 43 (42 + 1)', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'mcp', '--no-virtual-display'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        DISPLAY: desktop.display,
        DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS ?? '',
        DESKD_PLATFORM: 'linux',
        DESKD_CONFIG_DIR: join(dir, 'stdio'),
        DESKD_POLICY: POLICY,
        DESKD_OCR_WORKERS: '1',
        DESKD_LOG_LEVEL: 'warn',
      },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name: 'e2e-stdio', version: '1' });
    await client.connect(transport);
    try {
      const obs = await call(client, 'observe', { ocr: false });
      await call(client, 'click', { ref: refOf(obs, 'button', '+') });
      await call(client, 'click', { ref: refOf(obs, 'button', '1') });
      await call(client, 'keypress', { keys: ['enter'] });
      const shown = await waitFor(async () => ((await displayValue(client)) === '43' ? '43' : null), 10_000, 'the display to show 43');
      expect(shown).toBe('43');
      // The xterm-style deny path: nothing outside the calculator is allowed by the e2e policy.
      const r = (await client.callTool({ name: 'click', arguments: { x: WIDTH - 5, y: HEIGHT - 5 } })) as CallToolResult;
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/^POLICY_DENIED: /);
    } finally {
      await client.close();
    }
    expect(stderr).not.toMatch(/"level":(50|60)/);
  });
});

describe('deskd permissions on this desktop', () => {
  it('finds the X display and the AT-SPI bus with the calculator registered', async () => {
    const out = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'permissions', '--json'], { env: { ...process.env }, timeout: 60_000 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout })),
    );
    const r = JSON.parse(out.stdout) as { ok: boolean; checks: { id: string; status: string; detail: string }[] };
    const byId = Object.fromEntries(r.checks.map((c) => [c.id, c]));
    expect(byId['x11-display']).toMatchObject({ status: 'ok' });
    expect(byId['atspi-bus']?.status).toBe('ok');
    expect(byId['atspi-bus']?.detail).toMatch(/[1-9]\d* application\(s\) registered/);
    expect(r.ok).toBe(true);
    expect(out.code).toBe(0);
    const bare = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'permissions', '--json'], { env: { PATH: process.env.PATH ?? '', HOME: dir }, timeout: 60_000 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout })),
    );
    const b = JSON.parse(bare.stdout) as { ok: boolean; checks: { id: string; status: string }[] };
    expect(b.ok).toBe(false);
    expect(b.checks.find((c) => c.id === 'session-bus')?.status).toBe('fail');
    expect(bare.code).toBe(1);
  });
});

describe('issue 14 item 15: MCP offers what HTTP offers (press, set_value, focus, windows, Set-of-Marks) on gnome-calculator and Chromium', () => {
  it('focuses the calculator window, presses a button, sets and focuses a Chromium text field, draws marks; each action audited, the lease enforced', async () => {
    // A Chromium page with a text field, at the right of the calculator (no window manager: it stays there).
    const profile = mkdtempSync(join(tmpdir(), 'deskd-chromium-'));
    mkdirSync(join(profile, 'tmp'));
    const page = 'data:text/html,<title>Notes</title><label>Note <input id="note" aria-label="Note" value="old text"></label>';
    const chromium = launchApp(
      'chromium',
      ['--force-renderer-accessibility', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--password-store=basic', `--user-data-dir=${profile}`, '--window-position=700,0', '--window-size=560,400', page],
      { ACCESSIBILITY_ENABLED: '1', TMPDIR: join(profile, 'tmp') },
      [profile],
    );
    const connect = async (clientId?: string) => {
      const c = new Client({ name: `e2e-parity-${clientId ?? 'default'}`, version: '1' });
      const headers: Record<string, string> = { authorization: `Bearer ${daemon.token}`, ...(clientId ? { 'x-deskd-client': clientId } : {}) };
      await c.connect(new StreamableHTTPClientTransport(new URL(`${daemon.url}/mcp`), { requestInit: { headers } }));
      return c;
    };
    const client = await connect();
    const other = await connect('other');
    try {
      // A whole observation with both apps (on a busy machine the first AT-SPI reads may be cut by their budget).
      const full = await waitFor(async () => {
        const t = await call(client, 'observe', { ocr: false, fresh: true });
        return /^e\d+ button "=" /m.test(t) && /^e\d+ button "1" /m.test(t) && /^e\d+ textbox "Note" /m.test(t) ? t : null;
      }, 90_000, 'an observation with the calculator buttons and the Note field');
      const fullId = /^observation (obs_\S+)/m.exec(full)![1]!;
      const before = (await daemon.runtime.audit.read({ limit: 1000 })).length;

      // Windows: the calculator's id from list_windows, then focus_window on it (allowed by allow-calculator).
      const wins = await call(client, 'list_windows');
      expect(wins).toMatch(/^0x[0-9a-f]+ chromium .*"Notes/m);
      const calcId = /^(0x[0-9a-f]+) gnome-calculator /m.exec(wins)?.[1];
      expect(calcId, wins).toBeDefined();
      const fw = await call(client, 'focus_window', { window: calcId });
      expect(fw).toMatch(new RegExp(`^focus_window ${calcId} done`));
      expect(fw).toMatch(/\nfocused$/);
      expect(await call(client, 'list_windows')).toMatch(new RegExp(`^${calcId} gnome-calculator .*\\[focused\\]$`, 'm'));

      // press runs the button's accessible action; the answer names the element and what it hit.
      const shown = await displayValue(client);
      const press = await call(client, 'press', { ref: refOf(full, 'button', '1'), observationId: fullId });
      expect(press).toMatch(/^press done/);
      expect(press).toMatch(/via (accessibility|pointer)/);
      expect(press).toMatch(/target e\d+ button "1"/);
      expect(press).toMatch(/hit gnome-calculator button "1"/);
      await waitFor(async () => ((await displayValue(client)) !== shown ? true : null), 10_000, 'the display to change after pressing 1');

      // set_value replaces the field's text (accessibility EditableText, or focus + select all + type), by locator.
      const set = await callLocating(client, 'set_value', { role: 'textbox', name: 'Note', value: 'set over MCP' });
      expect(set).toMatch(/^set_value \(12 characters\) done/);
      expect(set).toMatch(/via (accessibility|keyboard)/);
      expect(set).toMatch(/hit chromium /);
      await waitFor(async () => (/^e\d+ textbox "Note" value="set over MCP"/m.test(await call(client, 'observe', { ocr: false, fresh: true })) ? true : null), 15_000, 'the Note field to hold the new text');

      // focus gives it the keyboard focus.
      const focus = await callLocating(client, 'focus', { role: 'textbox', name: 'Note' });
      expect(focus).toMatch(/^focus done/);
      await waitFor(async () => (/^e\d+ textbox "Note" .*\[[^\]]*focused/m.test(await call(client, 'observe', { ocr: false, fresh: true })) ? true : null), 15_000, 'the Note field focused');

      // Set-of-Marks: the image has each element's box in its mark colour on its bounds.
      const marked = (await client.callTool({ name: 'observe', arguments: { ocr: false, annotate: true } })) as CallToolResult;
      expect(marked.isError, textOf(marked)).toBeFalsy();
      const eq = /^(e\d+) button "=" \((\d+),(\d+) (\d+)x(\d+)\)/m.exec(textOf(marked));
      expect(eq, textOf(marked).slice(0, 2000)).not.toBeNull();
      const img = marked.content.find((c) => c.type === 'image') as { data: string; mimeType: string };
      expect(img.mimeType).toBe('image/png');
      const { data, info } = await sharp(Buffer.from(img.data, 'base64')).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([WIDTH, HEIGHT]);
      const [x, y, w, h] = eq!.slice(2, 6).map(Number) as [number, number, number, number];
      const at = (px: number, py: number) => [...data.subarray((py * info.width + px) * info.channels, (py * info.width + px) * info.channels + 3)];
      expect(at(x, y + Math.floor(h / 2))).toEqual([...MARK_COLORS.interactive]);
      expect(at(x + w - 1, y + Math.floor(h / 2))).toEqual([...MARK_COLORS.interactive]);

      // Every action went through the policy and the audit log with the MCP credential as actor.
      const recs = (await daemon.runtime.audit.read({ limit: 1000 })).slice(before);
      const decided = recs.filter((r) => r.kind === 'decision' && r.actor === 'mcp:agent/default') as unknown as { decision?: { ruleId?: string }; action?: { type?: string } }[];
      expect(decided.map((d) => d.action?.type)).toEqual(['focus_window', 'press', 'set_value', 'focus']);
      expect(decided.map((d) => d.decision?.ruleId)).toEqual(['allow-calculator', 'allow-calculator', 'allow-chromium', 'allow-chromium']);

      // The controller lease: agent/default holds it after acting; another client may observe and list
      // windows, but its press is refused (409 LEASE_HELD) before the policy sees it.
      expect(await call(other, 'list_windows')).toMatch(/gnome-calculator/);
      const refused = await other.callTool({ name: 'press', arguments: { ref: refOf(full, 'button', '1'), observationId: fullId } }).then(
        (r) => textOf(r as CallToolResult),
        (e: Error) => e.message,
      );
      expect(refused).toMatch(/LEASE_HELD|409/);
      expect((await daemon.runtime.audit.read({ limit: 1000 })).slice(before).length).toBe(recs.length);
    } finally {
      await fetch(`${daemon.url}/v1/lease`, { method: 'DELETE', headers: { authorization: `Bearer ${daemon.token}` } }).catch(() => undefined);
      await client.close();
      await other.close();
      await chromium.kill();
    }
  });
});
