/**
 * `deskd mcp` over stdio, spawned as a real process (`node dist/src/cli.js mcp`, built by `npm run build`)
 * on the fake platform, driven by the MCP SDK client: list tools, observe, click, policy denial.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MCP_TOOL_NAMES } from '../../src/mcp/server.js';
import { textOf } from '../helpers/mcpClient.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const POLICY = `
version: 1
defaults: { unmatched: deny }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-fake, effect: allow, match: { app: ["fakeapp"], actions: ["click"] } }
`;

let dir: string;
let client: Client;
let stderr = '';

beforeAll(async () => {
  expect(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`).toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'deskd-mcp-stdio-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      DESKD_PLATFORM: 'fake',
      DESKD_CONFIG_DIR: dir,
      DESKD_POLICY: join(dir, 'policy.yaml'),
      DESKD_OCR_WORKERS: '1',
      DESKD_LOG_LEVEL: 'info',
    },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  client = new Client({ name: 'stdio-test', version: '1' });
  await client.connect(transport);
});
afterAll(async () => {
  await client?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});


describe('deskd mcp (stdio)', () => {
  it('initializes as deskd and lists the tools', async () => {
    expect(client.getServerVersion()?.name).toBe('deskd');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual([...MCP_TOOL_NAMES]);
  });
  it('observes the fake display', async () => {
    const r = (await client.callTool({ name: 'observe', arguments: { ocr: false } })) as CallToolResult;
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(textOf(r)).toMatch(/^observation obs_\S+ display 0 \(1280x800 points\)/);
  });
  it('clicks through the policy (allowed in fakeapp) and reports where', async () => {
    const r = (await client.callTool({ name: 'click', arguments: { x: 100, y: 120 } })) as CallToolResult;
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(textOf(r)).toMatch(/^click done at \(100,120\)/);
  });
  it('refuses what the policy does not allow', async () => {
    const r = (await client.callTool({ name: 'type', arguments: { text: 'hello' } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^POLICY_DENIED: /);
  });
  it('logs go to stderr (stdout carries only JSON-RPC) and the actions are audited with actor mcp:stdio', () => {
    expect(stderr).toMatch(/deskd MCP server on stdio/);
    const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; actor?: string });
    const decisions = audit.filter((r) => r.kind === 'decision');
    expect(decisions.length).toBe(2);
    expect(decisions.every((d) => d.actor === 'mcp:stdio')).toBe(true);
  });
});
