/**
 * The `deskd` CLI subcommands (spawned: `node dist/src/cli.js …`) against a daemon app on a real socket
 * (fake platform, real policy engine, approvals and audit log): status, observe, act + approve, audit
 * verify, service --dry-run, and the exit codes (0 ok, 1 failure, 2 usage, 3 no daemon).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { buildPolicyApp, AGENT_TOKEN, OPERATOR_TOKEN } from '../helpers/testApp.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const POLICY = `
version: 1
defaults: { unmatched: deny }
approvals: { timeoutMs: 20000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: ask-calc, effect: ask, match: { app: ["gnome-calculator"] } }
`;

let platform: FakePlatform;
let t: Awaited<ReturnType<typeof buildPolicyApp>>;
let port: number;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function deskd(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: t.dir, DESKD_CONFIG_DIR: t.dir, DESKD_PORT: String(port), ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A port nothing listens on (bound then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

beforeAll(async () => {
  expect(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`).toBe(true);
  platform = createFakePlatform({
    tree: [axNode('application', 'gnome-calculator', null, { children: [axNode('button', '7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' })] })],
    windows: [{ id: '0xa', app: 'gnome-calculator', pid: 10, wmClass: 'Gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 800 } }],
  });
  t = await buildPolicyApp(platform, POLICY);
  writeFileSync(join(t.dir, 'token'), AGENT_TOKEN + '\n', { mode: 0o600 });
  writeFileSync(join(t.dir, 'operator-token'), OPERATOR_TOKEN + '\n', { mode: 0o600 });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(async () => t?.close());

// Each spawned CLI loads node + deskd's modules (≈1–2 s on a loaded 2-core machine): generous per-test timeouts.
describe('deskd CLI', { timeout: 120_000 }, () => {
  it('status: running daemon → 0 with version, platform and token files; nothing listening → 3', async () => {
    const r = await deskd(['status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^deskd t running at http://127\\.0\\.0\\.1:${port} \\(platform fake\\)`));
    expect(r.stdout).toContain(`agent token: ${join(t.dir, 'token')}`);
    expect(r.stdout).toContain('kill switch: running');
    const j = JSON.parse((await deskd(['status', '--json'])).stdout);
    expect(j).toMatchObject({ running: true, health: { platform: 'fake' }, tokens: { operator: { present: true } } });
    const free = await freePort();
    const down = await deskd(['status', '--port', String(free)]);
    expect(down.code, down.stderr).toBe(3);
    expect(down.stderr).toContain(`deskd is not running: no deskd daemon answers at http://127.0.0.1:${free}`);
  });

  it('observe: compact lines, or --json', async () => {
    const r = await deskd(['observe', '--no-ocr']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^e\d+ button "7" \(10,100 40x30\)$/m);
    const j = JSON.parse((await deskd(['observe', '--no-ocr', '--json'])).stdout);
    expect(j.elements.some((e: { name: string }) => e.name === '7')).toBe(true);
  });

  it('act waits for the operator; approve lists and approves; the click happens once', async () => {
    const acting = deskd(['act', '{"type":"click","x":100,"y":100}']);
    let id: string | undefined;
    for (let i = 0; i < 200 && !id; i++) {
      const list = await deskd(['approve', '--json']);
      expect(list.code, list.stderr).toBe(0);
      id = (JSON.parse(list.stdout) as { id: string }[])[0]?.id;
      if (!id) await new Promise((r) => setTimeout(r, 50));
    }
    expect(id).toMatch(/^apr_/);
    expect(platform.events).toEqual([]);
    const human = await deskd(['approve']);
    expect(human.stdout).toMatch(new RegExp(`^${id} +click at \\(100,100\\) +in gnome-calculator "Calculator"`, 'm'));
    const ok = await deskd(['approve', id!]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe(`${id}: approved`);
    const r = await acting;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/waiting for the operator: approval apr_/);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'done' });
    expect(platform.events.filter((e) => e.kind === 'down')).toHaveLength(1);
    const again = await deskd(['approve', id!, '--deny']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/APPROVAL_ALREADY_DECIDED/);
  });

  it('approve needs the operator token; act refuses bad JSON with exit 2', async () => {
    const noOp = await deskd(['approve'], { DESKD_OPERATOR_TOKEN: 'wrong-operator-token-xxxxxxxx' });
    expect(noOp.code).toBe(1);
    expect(noOp.stderr).toMatch(/UNAUTHORIZED/);
    const bad = await deskd(['act', '{nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not valid JSON/);
    const unknown = await deskd(['act', '{"type":"fly"}']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/UNKNOWN_ACTION/);
    const flag = await deskd(['observe', '--bogus']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/usage: deskd observe/);
  });

  it('audit verify: intact chain → 0; an edited record → 1 naming the line', async () => {
    const ok = await deskd(['audit', 'verify', t.auditPath, '--key', t.keyPath]);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/^ok: \d+ records, chain intact up to seq \d+/);
    const lines = readFileSync(t.auditPath, 'utf8').split('\n');
    lines[0] = lines[0]!.replace('"click"', '"double_click"');
    const copy = join(t.dir, 'tampered.jsonl');
    writeFileSync(copy, lines.join('\n'));
    const bad = await deskd(['audit', 'verify', copy, '--key', t.keyPath]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^BROKEN at line 1 \(seq 1\): mac does not verify/);
    const usage = await deskd(['audit', 'check']);
    expect(usage.code).toBe(2);
  });

  it('service install --dry-run prints the unit and the commands without touching anything', async () => {
    const r = await deskd(['service', 'install', '--dry-run', '--port', '7830']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`# ${join(t.dir, '.config', 'systemd', 'user', 'deskd.service')}`);
    expect(r.stdout).toMatch(/^ExecStart=\S+ \S+cli\.js start$/m);
    expect(r.stdout).toContain('Environment=DESKD_PORT=7830');
    expect(r.stderr).toContain('systemctl --user enable --now deskd.service');
    expect(existsSync(join(t.dir, '.config', 'systemd'))).toBe(false);
  });

  it('unknown commands are usage errors (2)', async () => {
    const r = await deskd(['frobnicate']);
    expect(r.code).toBe(2);
  });
});
