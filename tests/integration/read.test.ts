/**
 * `POST /v1/read`, `since`, `scroll: true` and the `cell`/`pair` predicates of `POST /v1/wait`, through
 * the HTTP app on the fake platform with the real policy engine and audit log (tests/helpers/testApp.ts).
 * Includes the attacker's side: a scrolling read of a window the policy denies input to is refused with
 * nothing scrolled, a masked app's table is never read, and the lease gates scrolling reads.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { readFile } from 'node:fs/promises';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { RawAXNode } from '../../src/platform/types.js';
import { buildPolicyApp, AGENT_TOKEN, OPERATOR_TOKEN } from '../helpers/testApp.js';

const ROW_H = 30;
const VIEW = { x: 100, y: 100, width: 600, height: 8 * ROW_H };

/** A grid of `n` rows (ID, Name, Status) of which only those inside the viewport are rendered (virtualised), scrolled by `offset` points. */
function grid(n: number, offset: number, status: (i: number) => string = () => 'Running', name = 'Builds'): RawAXNode {
  const rows: RawAXNode[] = [];
  const head = ['ID', 'Name', 'Status'].map((t, c) => axNode('columnheader', t, { x: VIEW.x + c * 200, y: VIEW.y, width: 200, height: ROW_H }));
  for (let i = 0; i < n; i++) {
    const y = VIEW.y + ROW_H * (i + 1) - offset;
    if (y < VIEW.y + ROW_H || y + ROW_H > VIEW.y + VIEW.height) continue;
    rows.push(axNode('row', '', { x: VIEW.x, y, width: 600, height: ROW_H }, {
      children: [`#${i + 1}`, `build ${i + 1}`, status(i)].map((t, c) => axNode('cell', t, { x: VIEW.x + c * 200, y, width: 200, height: ROW_H })),
    }));
  }
  return axNode('table', name, VIEW, { children: [axNode('row', '', { x: VIEW.x, y: VIEW.y, width: 600, height: ROW_H }, { children: head }), ...rows] });
}

const appRoot = (name: string, win: string, children: RawAXNode[], bounds = { x: 0, y: 0, width: 1280, height: 800 }) =>
  axNode('application', name, null, { children: [axNode('window', win, bounds, { children })] });

const ALLOW_ALL = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
rules:
  - id: allow-all
    effect: allow
    match: {}
`;

let ctx: Awaited<ReturnType<typeof buildPolicyApp>> | null = null;
afterEach(async () => {
  await ctx?.close();
  ctx = null;
});

async function setup(policy: string, tree: RawAXNode[], extra: (p: FakePlatform) => void = () => {}) {
  const platform = createFakePlatform({ tree });
  extra(platform);
  ctx = await buildPolicyApp(platform, policy);
  const post = (url: string, payload: object, token = AGENT_TOKEN, headers: Record<string, string> = {}) =>
    ctx!.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}`, ...headers }, payload });
  return { platform, post };
}

describe('POST /v1/read', () => {
  it('reads an accessibility table with headers and keyed rows, and since reports exactly the changed cell', async () => {
    const { platform, post } = await setup(ALLOW_ALL, [appRoot('ci', 'CI', [grid(5, 0)])]);
    const r = await post('/v1/read', { ocr: false });
    expect(r.statusCode, r.body).toBe(200);
    const a = r.json();
    expect(a.tables).toHaveLength(1);
    expect(a.tables[0]).toMatchObject({ id: 't1', title: 'Builds', headers: ['ID', 'Name', 'Status'], source: 'accessibility', keyColumn: 0 });
    expect(a.tables[0].rows.map((x: { key: string }) => x.key)).toEqual(['#1', '#2', '#3', '#4', '#5']);
    expect(a.tables[0].rows[0].cells[2]).toMatchObject({ text: 'Running', bounds: { x: 500, y: 130, width: 200, height: 30 } });

    platform.tree = [appRoot('ci', 'CI', [grid(5, 0, (i) => (i === 2 ? 'Passed' : 'Running'))])];
    platform.fill = [0, 128, 0, 255]; // the pixels change with the tree
    const b = (await post('/v1/read', { ocr: false, since: a.readId })).json();
    expect(b.changes.tables).toEqual([
      { table: 't1', title: 'Builds', added: [], removed: [], changed: [{ key: '#3', cells: [{ column: 'Status', columnIndex: 2, from: 'Running', to: 'Passed', bounds: { x: 500, y: 190, width: 200, height: 30 } }] }] },
    ]);
  });

  it('answers stable codes for an unknown since, a scroll with no table and a bad body, and scrolls nothing', async () => {
    const { platform, post } = await setup(ALLOW_ALL, [appRoot('ci', 'CI', [axNode('heading', 'No tables here', { x: 10, y: 10, width: 200, height: 30 })])]);
    expect((await post('/v1/read', { since: 'read_nope' })).json().error.code).toBe('READ_NOT_FOUND');
    const s = await post('/v1/read', { scroll: true, ocr: false });
    expect(s.statusCode).toBe(404);
    expect(s.json().error.code).toBe('TABLE_NOT_FOUND');
    expect((await post('/v1/read', { kind: 'tables' })).json().error.code).toBe('VALIDATION_FAILED');
    expect((await post('/v1/read', { region: { x: 0, y: 0, width: -1, height: 5 } })).json().error.code).toBe('VALIDATION_FAILED');
    expect(platform.events.filter((e) => e.kind === 'wheel')).toEqual([]);
  });

  it('scroll: true reads every row of a virtualised grid once, through policy-gated scrolls, and puts the position back', async () => {
    let offset = 0;
    const { platform, post } = await setup(ALLOW_ALL, [appRoot('ci', 'CI', [grid(40, 0)])], (p) => {
      const wheel = p.mouse.wheel.bind(p.mouse);
      p.mouse.wheel = async (dx, dy) => {
        await wheel(dx, dy);
        // 50 points per click (the default wheel step), clamped to the grid's scroll range.
        offset = Math.max(0, Math.min(40 * ROW_H - (VIEW.height - ROW_H), offset + dy * 50));
        p.tree = [appRoot('ci', 'CI', [grid(40, offset)])];
        // Scrolling changes the pixels (what tells the observer's accessibility cache the tree may have changed).
        p.fill = [offset % 256, 255, 255, 255];
      };
    });
    const r = await post('/v1/read', { ocr: false, scroll: true, kind: 'table' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().warnings).toEqual([]);
    const t = r.json().tables[0];
    expect(t.complete).toBe(true);
    expect(t.scrolled).toBeGreaterThan(3);
    expect(t.rows.map((x: { key: string }) => x.key)).toEqual(Array.from({ length: 40 }, (_, i) => `#${i + 1}`));
    expect(offset).toBe(0);
    expect(platform.events.some((e) => e.kind === 'wheel' && e.dy > 0)).toBe(true);
    // Each scroll was decided and audited like any action.
    const audit = (await readFile(ctx!.auditPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.filter((x) => x.kind === 'decision' && x.action?.type === 'scroll').length).toBe(platform.events.filter((e) => e.kind === 'wheel').length);
  });

  it('refuses a scrolling read of a window the policy denies input to, and nothing scrolls (HTTP and MCP)', async () => {
    const policy = `
version: 1
defaults: { unmatched: deny }
rules:
  - id: allow-readonly
    effect: allow
    match: { actions: ["@readonly"] }
  - id: deny-ci
    effect: deny
    match: { actions: ["@input"], app: ["fakeapp"] }
`;
    const { platform, post } = await setup(policy, [appRoot('ci', 'CI', [grid(40, 0)])]);
    const r = await post('/v1/read', { ocr: false, scroll: true });
    expect(r.statusCode, r.body).toBe(403);
    expect(r.json().error.code).toBe('POLICY_DENIED');
    // Encoded route variant: the same route, the same refusal.
    const enc = await post('/v1/%72ead', { ocr: false, scroll: true });
    expect(enc.json().error?.code).toBe('POLICY_DENIED');
    const mcp = await ctx!.app.inject({
      method: 'POST', url: '/mcp',
      headers: { authorization: `Bearer ${AGENT_TOKEN}`, accept: 'application/json, text/event-stream', host: '127.0.0.1' },
      payload: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read', arguments: { scroll: true, ocr: false } } },
    });
    expect(mcp.body).toContain('POLICY_DENIED');
    expect(platform.events.filter((e) => e.kind === 'wheel' || e.kind === 'move')).toEqual([]);
    // A read without scrolling stays allowed.
    expect((await post('/v1/read', { ocr: false })).json().tables[0].rows).toHaveLength(7);
  });

  it('never reads a masked app: its table is left out, its window is not found, and it cannot be scrolled', async () => {
    const policy = `${ALLOW_ALL}perception:\n  mask: ["vault"]\n`;
    const { platform, post } = await setup(policy, [appRoot('vault', 'Vault', [grid(3, 0, () => 'secret-42', 'Secrets')], { x: 0, y: 0, width: 1280, height: 800 })], (p) => {
      p.windowList = [{ id: '0x2', app: 'vault', pid: 7, title: 'Vault', bounds: { x: 0, y: 0, width: 1280, height: 800 } }];
      p.appOwners.set(p.tree[0]!.handle, { app: 'vault', pid: 7 });
    });
    const r = await post('/v1/read', { ocr: false });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.body).not.toContain('secret-42');
    expect(r.json().tables).toEqual([]);
    expect((await post('/v1/read', { ocr: false, window: 'Vault' })).json().error.code).toBe('WINDOW_NOT_FOUND');
    expect((await post('/v1/read', { ocr: false, scroll: true })).json().error.code).toBe('TABLE_NOT_FOUND');
    const w = await post('/v1/wait', { until: { cell: { row: { column: 'ID', equals: '#1' }, column: 'Status', matches: '.' } }, timeoutMs: 300, ocr: false });
    expect(w.json().error.code).toBe('TIMEOUT');
    expect(w.body).not.toContain('secret-42');
    expect(platform.events).toEqual([]);
  });

  it('a scrolling read needs the controller lease; a plain read does not', async () => {
    const { platform, post } = await setup(ALLOW_ALL, [appRoot('ci', 'CI', [grid(5, 0)])]);
    const lease = await ctx!.app.inject({ method: 'POST', url: '/v1/lease', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` }, payload: { ttlMs: 60000 } });
    expect(lease.statusCode, lease.body).toBe(200);
    const r = await post('/v1/read', { ocr: false, scroll: true });
    expect(r.json().error.code).toBe('LEASE_HELD');
    expect((await post('/v1/read', { ocr: false })).statusCode).toBe(200);
    expect(platform.events).toEqual([]);
  });
});

describe('POST /v1/wait on cells and pairs', () => {
  it('returns when the cell changes, with evidence, and the audit log records the predicate and the evidence', async () => {
    const { platform, post } = await setup(ALLOW_ALL, [appRoot('ci', 'CI', [grid(3, 0)])]);
    const t0 = Date.now();
    let changedAt = 0;
    setTimeout(() => {
      platform.tree = [appRoot('ci', 'CI', [grid(3, 0, (i) => (i === 1 ? 'Passed' : 'Running'))])];
      platform.fill = [0, 128, 0, 255]; // the badge turns green: the screen changes with the tree
      changedAt = Date.now();
    }, 400);
    const r = await post('/v1/wait', { until: { cell: { table: 'Builds', row: { column: 'ID', equals: '#2' }, column: 'Status', equals: 'Passed' } }, timeoutMs: 5000, ocr: false });
    expect(r.statusCode, r.body).toBe(200);
    // The wait returned after the change (a 400 ms timer may fire a millisecond early by Date.now()).
    expect(changedAt, 'the change happened before the wait returned').toBeGreaterThan(0);
    expect(changedAt).toBeGreaterThanOrEqual(t0 + 399);
    const b = r.json();
    expect(b.evidence).toMatchObject({ kind: 'cell', table: 't1', tableTitle: 'Builds', row: '#2', column: 'Status', text: 'Passed', bounds: { x: 500, y: 160, width: 200, height: 30 } });
    expect(b.evidence.readId).toMatch(/^read_/);
    expect(b.polls).toBeGreaterThan(1);
    const audit = (await readFile(ctx!.auditPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const rec = audit.find((x) => x.kind === 'wait');
    expect(rec).toMatchObject({ actor: 'agent/default', outcome: 'held', predicate: { cell: { row: { column: 'ID', equals: '#2' }, column: 'Status', equals: 'Passed' } }, evidence: { row: '#2', column: 'Status', bounds: { x: 500, y: 160 } } });
    // since against the wait's read: nothing changed since.
    const s = (await post('/v1/read', { ocr: false, since: b.evidence.readId })).json();
    expect(s.changes.tables).toEqual([]);
  });

  it('times out with the last evidence, audited; rejects a bad predicate before observing', async () => {
    const { platform, post } = await setup(ALLOW_ALL, [appRoot('ci', 'CI', [grid(3, 0), axNode('text', 'p95 latency', { x: 800, y: 100, width: 90, height: 14 }), axNode('text', '284ms', { x: 800, y: 118, width: 60, height: 30 })])]);
    const r = await post('/v1/wait', { until: { cell: { row: { column: 'ID', equals: '#1' }, column: 'Status', equals: 'Passed' } }, timeoutMs: 250, ocr: false });
    expect(r.statusCode).toBe(504);
    expect(r.json().error).toMatchObject({ code: 'TIMEOUT', details: { evidence: { text: 'Running' } } });
    const p = await post('/v1/wait', { until: { pair: { label: 'p95 latency', matches: '^\\d+ms$' } }, timeoutMs: 1000, ocr: false });
    expect(p.statusCode, p.body).toBe(200);
    expect(p.json().evidence).toMatchObject({ kind: 'pair', label: 'p95 latency', text: '284ms' });
    expect((await post('/v1/wait', { until: { pair: { label: 'x', equals: 'a', matches: 'b' } } })).json().error.code).toBe('VALIDATION_FAILED');
    expect((await post('/v1/wait', { until: { pair: { label: 'x', matches: '(' } }, timeoutMs: 100 })).json().error.code).toBe('VALIDATION_FAILED');
    const audit = (await readFile(ctx!.auditPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.filter((x) => x.kind === 'wait').map((x) => x.outcome)).toEqual(['timeout', 'held']);
    expect(platform.events).toEqual([]);
  });
});
