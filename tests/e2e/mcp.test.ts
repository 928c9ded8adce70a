/**
 * MCP on a real desktop: a private Xvfb with gnome-calculator, the daemon's real runtime (Linux backend:
 * AT-SPI, XTest input, X11 capture; the e2e policy; audit log), driven by the MCP SDK client
 * - over Streamable HTTP at `/mcp` of a daemon started with `startDaemon`, and
 * - over stdio, spawning `node dist/src/cli.js mcp` pointed at the same desktop.
 * Also `deskd permissions` on that desktop (X display and AT-SPI bus reachable).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startDaemon, type Daemon } from '../../src/main.js';
import { launchCalculator, startDesktop, waitFor, type AppHandle, type VirtualDesktop } from '../helpers/desktop.js';

const WIDTH = 1280;
const HEIGHT = 800;
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const POLICY = fileURLToPath(new URL('../../examples/policy-e2e.yaml', import.meta.url));

let desktop: VirtualDesktop;
let calc: AppHandle;
let daemon: Daemon;
let dir: string;

const textOf = (r: CallToolResult) => r.content.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('\n');
const call = async (c: Client, name: string, args: Record<string, unknown> = {}) => {
  const r = (await c.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name}: ${textOf(r)}`).toBeFalsy();
  return textOf(r);
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
  daemon = await startDaemon(
    { host: '127.0.0.1', port: 0, virtualDisplay: false, screen: { width: WIDTH, height: HEIGHT }, platform: 'linux', ocrWorkers: 1, configDir: dir, logLevel: 'warn', policyPath: POLICY, auditLogPath: null },
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
      expect((await client.listTools()).tools.length).toBe(11);
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
