/**
 * `deskd read [--json]` (src/cli/commands.ts readCommand) against a listening app on the fake platform:
 * a table printed as aligned text under its headers, `--json` the answer of POST /v1/read, a bad --kind a
 * usage error before anything is sent.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import type { AddressInfo } from 'node:net';
import { createFakePlatform, axNode } from '../../src/platform/fake/fakePlatform.js';
import { buildPolicyApp, AGENT_TOKEN } from '../helpers/testApp.js';
import { readCommand, type CliIO } from '../../src/cli/commands.js';

let ctx: Awaited<ReturnType<typeof buildPolicyApp>>;
let url: string;

beforeAll(async () => {
  const cells = [
    ['Run', 'Branch', 'Status'],
    ['#41', 'main', 'Passed'],
    ['#42', 'fix/login-timeout', ''],
  ];
  const rows = cells.map((r, i) =>
    axNode('row', '', { x: 10, y: 10 + i * 30, width: 450, height: 30 }, { children: r.map((t, c) => axNode(i === 0 ? 'columnheader' : 'cell', t, { x: 10 + c * 150, y: 10 + i * 30, width: 150, height: 30 })) }),
  );
  const platform = createFakePlatform({ tree: [axNode('application', 'ci', null, { children: [axNode('window', 'CI', { x: 0, y: 0, width: 1280, height: 800 }, { children: [axNode('table', 'Runs', { x: 10, y: 10, width: 450, height: 90 }, { children: rows })] })] })] });
  ctx = await buildPolicyApp(platform, 'version: 1\nrules: []\n');
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => ctx?.close());

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const x: CliIO = { out: (t) => void out.push(t), err: (t) => void err.push(t), env: { DESKD_TOKEN: AGENT_TOKEN }, version: 't' };
  return { x, out, err };
}

describe('deskd read', () => {
  it('prints tables as aligned text, empty cells as blanks in their column', async () => {
    const { x, out } = io();
    expect(await readCommand(['--url', url, '--no-ocr'], x)).toBe(0);
    const text = out.join('\n');
    expect(text).toContain('t1 "Runs": 2 rows × 3 columns, accessibility');
    const lines = text.split('\n');
    const head = lines.findIndex((l) => l.startsWith('Run'));
    expect(lines.slice(head, head + 4)).toEqual([
      'Run  Branch             Status',
      '---  -----------------  ------',
      '#41  main               Passed',
      '#42  fix/login-timeout',
    ]);
  });

  it('--json prints the answer of POST /v1/read; a bad --kind is a usage error', async () => {
    const { x, out } = io();
    expect(await readCommand(['--url', url, '--no-ocr', '--json', '--kind', 'table'], x)).toBe(0);
    const j = JSON.parse(out.join('\n'));
    expect(j.tables[0].headers).toEqual(['Run', 'Branch', 'Status']);
    expect(j.tables[0].rows[1].cells[2].text).toBe('');
    const bad = io();
    await expect(readCommand(['--url', url, '--kind', 'tables'], bad.x)).rejects.toMatchObject({ exitCode: 2 });
  });
});
