/**
 * Issue 13, finding 12, end to end: a real daemon on its own virtual display (Xvfb + session bus +
 * AT-SPI bus) with a real xterm, driven over MCP (Streamable HTTP) and HTTP:
 *
 * - an MCP action's audit record names the credential and client that sent it (`mcp:agent/<client>`),
 *   an HTTP action's too (`agent/<client>`); pressed keys are recorded with their chord, typed text masked;
 * - policy reloads (a good edit and a refused one) and the daemon's start and stop are audit records;
 * - a line with a duplicated key, whose MAC still verifies because `JSON.parse` keeps the last
 *   occurrence, is rejected by `deskd audit verify` (the built CLI: run `npm run build` first), which
 *   accepts the untouched log.
 *
 * On the code before issue 13 every one of these fails: actions over MCP were all `mcp`, HTTP ones
 * `agent`, there were no `daemon`/`policy` records, and verify accepted the duplicated key.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startDaemon, type Daemon } from '../../src/main.js';
import { e2eDaemonConfig } from '../helpers/e2eDaemon.js';
import { loadAuditKey, verifyAuditLog, type AuditRecord } from '../../src/policy/audit.js';
import type { WindowInfo } from '../../src/platform/types.js';
import { launchApp, waitFor, type AppHandle } from '../helpers/desktop.js';

const execFileP = promisify(execFile);
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

const POLICY = `version: 1
defaults: { unmatched: deny }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-xterm, effect: allow, match: { app: ["xterm"] } }
`;

let daemon: Daemon;
let dir: string;
let policyPath: string;
let logPath: string;
let keyPath: string;
let term: WindowInfo;
const apps: AppHandle[] = [];

const readRecords = async (): Promise<AuditRecord[]> =>
  (await readFile(logPath, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditRecord);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-e2e-audit-'));
  policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, POLICY);
  const config = e2eDaemonConfig(policyPath, join(dir, 'config'), '1280x800');
  daemon = await startDaemon(config);
  ({ log: logPath, key: keyPath } = daemon.runtime.auditPaths);
  // An xterm whose keystrokes go nowhere (cat to /dev/null), so nothing typed can run.
  apps.push(launchApp('xterm', ['-T', 'deskd-audit-term', '-geometry', '60x10+100+100', '-e', 'sh', '-c', 'exec cat > /dev/null']));
  term = await waitFor(async () => (await daemon.platform.windows.list()).find((w) => w.title === 'deskd-audit-term'), 30_000, 'the xterm');
});

afterAll(async () => {
  for (const a of apps) await a.kill();
  await daemon?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('audit records (issue 13, finding 12)', () => {
  it('the first record is the daemon start, naming the policy in force', async () => {
    const [first] = await readRecords();
    expect(first).toMatchObject({ seq: 1, kind: 'daemon', event: 'start', pid: process.pid, policy: { source: policyPath } });
  });

  it("an MCP action's record names its credential and client; an HTTP action's too; keys as a chord, text masked", async () => {
    const cx = Math.round(term.bounds.x + term.bounds.width / 2);
    const cy = Math.round(term.bounds.y + term.bounds.height / 2);
    const client = new Client({ name: 'e2e-audit', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${daemon.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${daemon.token}`, 'x-deskd-client': 'e2e-mcp' } } }),
    );
    try {
      const c = (await client.callTool({ name: 'click', arguments: { x: cx, y: cy } })) as CallToolResult;
      expect(c.isError, JSON.stringify(c.content)).toBeFalsy();
      const k = (await client.callTool({ name: 'keypress', arguments: { keys: ['SHIFT', 'ctrl'] } })) as CallToolResult;
      expect(k.isError, JSON.stringify(k.content)).toBeFalsy();
    } finally {
      await client.close();
    }
    // The lease is held by the MCP client for a while; the operator frees it for the next client.
    await fetch(`${daemon.url}/v1/lease`, { method: 'DELETE', headers: { authorization: `Bearer ${daemon.operatorToken}` } });
    const r = await fetch(`${daemon.url}/v1/actions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json', 'x-deskd-client': 'e2e-http' },
      body: JSON.stringify({ type: 'type', text: 'hunter2' }),
    });
    expect(r.status, await r.clone().text()).toBe(200);

    const decisions = (await readRecords()).filter((x) => x.kind === 'decision');
    const byActor = (a: string) => decisions.filter((d) => d.actor === a);
    expect(byActor('mcp:agent/e2e-mcp').map((d) => (d.action as { type: string }).type)).toEqual(['click', 'keypress']);
    expect(byActor('mcp:agent/e2e-mcp')[1]!.action).toMatchObject({ type: 'keypress', chord: 'ctrl+shift' });
    expect(byActor('agent/e2e-http')).toHaveLength(1);
    expect(byActor('agent/e2e-http')[0]!.action).toMatchObject({ type: 'type', text: '***', textLength: 7 });
    expect(decisions.some((d) => d.actor === 'mcp' || d.actor === 'agent')).toBe(false);
    expect(await readFile(logPath, 'utf8')).not.toContain('hunter2');
  });

  it('a policy reload is recorded, and so is a refused one (the last good policy stays)', async () => {
    const seen = (await readRecords()).length;
    await writeFile(policyPath, `${POLICY}  - { id: deny-bank, effect: deny, match: { window: ["*bank*"] } }\n`);
    const good = await waitFor(async () => (await readRecords()).slice(seen).find((x) => x.kind === 'policy' && x.ok === true && x.changed === true), 15_000, 'a policy reload record');
    expect(good).toMatchObject({ event: 'reload', source: policyPath, hash: daemon.runtime.policy.hash });
    await writeFile(policyPath, 'version: 1\nrules: [ { id: x, effect: maybe } ]\n');
    const bad = await waitFor(async () => (await readRecords()).slice(seen).find((x) => x.kind === 'policy' && x.ok === false), 15_000, 'a refused reload record');
    expect(bad).toMatchObject({ event: 'reload', source: policyPath, keptHash: good.hash, error: { code: 'POLICY_INVALID' } });
  });

  it('the daemon stop is the last record; the chain verifies; a duplicated key is rejected by `deskd audit verify`', async () => {
    await daemon.close();
    const records = await readRecords();
    expect(records.at(-1)).toMatchObject({ kind: 'daemon', event: 'stop', pid: process.pid });
    const key = await loadAuditKey(keyPath, { create: false });
    expect(await verifyAuditLog(logPath, key)).toMatchObject({ ok: true, records: records.length });

    // Forge the MCP click's line: a first "actor" that a first-wins JSON reader would believe. JSON.parse
    // keeps the last occurrence, so the value and its MAC are unchanged.
    const lines = (await readFile(logPath, 'utf8')).split('\n');
    const n = lines.findIndex((l) => l.includes('"actor":"mcp:agent/e2e-mcp"'));
    expect(n).toBeGreaterThanOrEqual(0);
    const forged = lines[n]!.replace('"actor":"mcp:agent/e2e-mcp"', '"actor":"operator/default","actor":"mcp:agent/e2e-mcp"');
    expect(JSON.parse(forged)).toEqual(JSON.parse(lines[n]!));
    const copy = join(dir, 'audit-forged.jsonl');
    await writeFile(copy, [...lines.slice(0, n), forged, ...lines.slice(n + 1)].join('\n'));

    expect(existsSync(CLI), `${CLI} is missing: run npm run build`).toBe(true);
    const cli = (args: string[]) =>
      execFileP(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir } }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? '' }),
      );
    const ok = await cli(['audit', 'verify', logPath, '--key', keyPath]);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain(`${records.length} records`);
    const bad = await cli(['audit', 'verify', copy, '--key', keyPath]);
    expect(bad.code, bad.out).toBe(1);
    expect(bad.out).toContain(`BROKEN at line ${n + 1}`);
    expect(bad.out).toContain('canonical');
  });
});
