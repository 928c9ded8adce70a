/**
 * Issue 14 item 15: MCP offers what HTTP offers. The element actions (`press`, `set_value`, `focus`),
 * windows (`list_windows` = `GET /v1/windows`, `focus_window`) and Set-of-Marks observations
 * (`observe {annotate: true}` = `POST /v1/observe {annotate: true}`) as MCP tools over an in-memory
 * transport (fake platform, real policy gate and audit log). Every acting tool goes through the
 * executor (policy decision, audit record) and is acting for the controller lease.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectInMemory, textOf } from '../helpers/mcpClient.js';
import { createMcpServer, describeActionResult, MCP_TOOL_NAMES } from '../../src/mcp/server.js';
import { MCP_READ_ONLY_TOOLS, isActingRequest } from '../../src/http/lease.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { DEFAULT_AX_BUDGET, ObservationStore, Observer, type TextRecognizer } from '../../src/perception/observer.js';
import { perceptionMask } from '../../src/policy/perception.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import { MARK_COLORS } from '../../src/perception/annotate.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
approvals: { timeoutMs: 5000 }
perception:
  mask: ["vault"]
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-calc, effect: allow, match: { app: ["calc"] } }
`;

const noOcr: TextRecognizer = {
  async recognize() {
    return { words: [], lines: [] };
  },
};

let platform: FakePlatform;
let client: Client;
let approvals: ApprovalManager;
let audit: AuditLog;
let dir: string;

beforeEach(async () => {
  platform = createFakePlatform({
    tree: [
      axNode('application', 'calc', null, {
        children: [
          axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 400 }, {
            children: [
              axNode('button', 'Times', { x: 60, y: 100, width: 40, height: 30 }, { handle: 'hx' }),
              axNode('textbox', 'Entry', { x: 10, y: 200, width: 200, height: 30 }, { handle: 'he', states: ['editable', 'enabled', 'visible', 'showing', 'focusable'], value: '12' }),
            ],
          }),
        ],
      }),
    ],
    focused: { app: 'calc', pid: 42, window: 'Calculator' },
    windows: [
      { id: '0xa', app: 'calc', pid: 42, wmClass: 'Calc', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 400 } },
      { id: '0xb', app: 'editor', pid: 43, wmClass: 'Editor', title: 'notes', bounds: { x: 600, y: 0, width: 680, height: 800 } },
      { id: '0xc', app: 'calc', pid: 42, wmClass: 'Calc', title: 'History', bounds: { x: 0, y: 420, width: 600, height: 300 } },
      { id: '0xd', app: 'vault', pid: 44, wmClass: 'Vault', title: 'secret vault', bounds: { x: 700, y: 500, width: 200, height: 200 } },
    ],
  });
  platform.focusedWindowId = '0xa';
  dir = await mkdtemp(join(tmpdir(), 'deskd-mcp-parity-'));
  const policy = parsePolicy(POLICY, 'test.yaml');
  audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  const halt = new HaltSwitch();
  approvals = new ApprovalManager({ timeoutMs: policy.approvals.timeoutMs });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit });
  gate.wireHalt();
  const store = new ObservationStore();
  const observer = new Observer(platform, noOcr, store, DEFAULT_AX_BUDGET, (windows) => perceptionMask(windows, policy));
  const executor = new Executor({ platform, store, policy: gate, verifyElement: createElementVerifier(platform, noOcr), agentCapture: async (id) => (await observer.agentCapture.capture(id)).image });
  executor.useObserver(() => observer.observe({}));
  const server = createMcpServer({ platform, observer, executor, version: '0.0.0-test', actor: 'mcp:agent/test' });
  client = await connectInMemory(server);
});
afterEach(async () => {
  await client.close();
  approvals.cancelAll('test');
  await audit.close();
  await rm(dir, { recursive: true, force: true });
});

const call = async (name: string, args: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult;
const refIn = (text: string, role: string, name: string) => new RegExp(`^(e\\d+) ${role} ${JSON.stringify(name)}`, 'm').exec(text)?.[1];
const decisions = async () => (await audit.read({ limit: 100 })).filter((r) => r.kind === 'decision') as unknown as { actor: string; decision: { effect: string; ruleId: string } }[];

describe('the tools HTTP has are MCP tools', () => {
  it('lists press, set_value, focus, list_windows, focus_window and observe.annotate with input schemas', async () => {
    const { tools } = await client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const n of ['press', 'set_value', 'focus', 'list_windows', 'focus_window']) {
      expect(byName[n], n).toBeDefined();
      expect(byName[n]!.inputSchema.type).toBe('object');
      expect(byName[n]!.description, n).toBeTruthy();
    }
    expect(Object.keys(byName.press!.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(['ref', 'observationId', 'text', 'role', 'name']));
    expect(byName.set_value!.inputSchema.required).toEqual(['value']);
    expect(byName.focus_window!.inputSchema.required).toEqual(['window']);
    expect(byName.observe!.inputSchema.properties).toHaveProperty('annotate');
    expect(tools.map((t) => t.name)).toEqual([...MCP_TOOL_NAMES]);
  });

  it('the lease and the annotations agree: read-only tools are exactly MCP_READ_ONLY_TOOLS, every other tool needs the lease', async () => {
    const { tools } = await client.listTools();
    for (const t of tools) {
      const body = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: t.name, arguments: {} } };
      expect(t.annotations?.readOnlyHint === true, t.name).toBe(MCP_READ_ONLY_TOOLS.has(t.name));
      // `read` is the one tool whose arguments decide: it acts (scrolls) only with `scroll: true`, so it is not
      // annotated read-only, yet a plain read needs no lease.
      expect(isActingRequest('POST', '/mcp', body), t.name).toBe(t.name === 'read' ? false : !MCP_READ_ONLY_TOOLS.has(t.name));
    }
    expect(isActingRequest('POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read', arguments: { scroll: true } } })).toBe(true);
    expect(MCP_READ_ONLY_TOOLS.has('list_windows')).toBe(true);
    for (const n of ['press', 'set_value', 'focus', 'focus_window']) expect(MCP_READ_ONLY_TOOLS.has(n), n).toBe(false);
  });
});

describe('element actions through the executor', () => {
  it('press by ref runs the accessibility action, says via and what it hit, and is audited with the MCP actor', async () => {
    const ref = refIn(textOf(await call('observe')), 'button', 'Times');
    expect(ref).toBeDefined();
    const r = await call('press', { ref });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(platform.events).toEqual([{ kind: 'action', handle: 'hx', action: 'press' }]);
    expect(textOf(r)).toMatch(/^press done/);
    expect(textOf(r)).toMatch(/via accessibility/);
    expect(textOf(r)).toMatch(new RegExp(`target ${ref} button "Times"`));
    expect(textOf(r)).toMatch(/hit calc button "Times"/);
    const d = await decisions();
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ actor: 'mcp:agent/test', decision: { effect: 'allow', ruleId: 'allow-calc' } });
  });

  it('set_value by locator (role + name) replaces the text through accessibility', async () => {
    const r = await call('set_value', { role: 'textbox', name: 'Entry', value: 'café 日本 😀' });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(platform.events).toEqual([{ kind: 'setValue', handle: 'he', value: 'café 日本 😀' }]);
    expect(textOf(r)).toMatch(/via accessibility/);
    const o = textOf(await call('observe', { fresh: true }));
    expect(o).toMatch(/textbox "Entry" value="café 日本 😀"/);
  });

  it('focus by text asks the element for the keyboard focus', async () => {
    const r = await call('focus', { text: 'Entry' });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(platform.events).toEqual([{ kind: 'action', handle: 'he', action: 'focus' }]);
  });

  it('element tools refuse a call without ref or locator, and a locator that matches nothing, before dispatch', async () => {
    const none = await call('press', {});
    expect(textOf(none)).toMatch(/^VALIDATION_FAILED: press: give a ref/);
    const missing = await call('press', { text: 'Launch the rockets', exact: true });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/^TARGET_NOT_FOUND: /);
    expect(platform.events).toEqual([]);
  });
});

describe('windows', () => {
  it('list_windows lists ids, apps and the focused window, as GET /v1/windows does', async () => {
    const t = textOf(await call('list_windows'));
    expect(t).toMatch(/^3 windows/); // the masked "vault" window is left out, and not named
    expect(t).not.toMatch(/vault|0xd/);
    expect(t).toMatch(/^0xa calc \(pid 42\) "Calculator" at 0,0 600x400 \[focused\]$/m);
    expect(t).toMatch(/^0xc calc \(pid 42\) "History" at 0,420 600x300$/m);
  });

  it('focus_window activates an allowed window; a window the policy denies is refused with nothing dispatched', async () => {
    const denied = await call('focus_window', { window: '0xb' });
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toMatch(/^POLICY_DENIED: /);
    expect(platform.events).toEqual([]);
    const r = await call('focus_window', { window: '0xc' });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(platform.events).toEqual([{ kind: 'activate', id: '0xc' }]);
    expect(textOf(r)).toMatch(/^focus_window 0xc done/);
    expect(textOf(r)).toMatch(/\nfocused$/);
    const gone = await call('focus_window', { window: '0x7ffff0' });
    expect(gone.isError).toBe(true);
    expect(textOf(gone)).toMatch(/^(WINDOW_NOT_FOUND|POLICY_DENIED): /);
    expect((await decisions()).map((d) => d.actor)).toEqual(expect.arrayContaining(['mcp:agent/test']));
  });
});

describe('Set-of-Marks observations', () => {
  it('observe {annotate: true} returns an image with each element boxed in its mark colour', async () => {
    const r = await call('observe', { annotate: true });
    expect(r.isError, textOf(r)).toBeFalsy();
    const img = r.content.find((c) => c.type === 'image') as { data: string; mimeType: string } | undefined;
    expect(img?.mimeType).toBe('image/png');
    const { data, info } = await sharp(Buffer.from(img!.data, 'base64')).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([1280, 800]);
    const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    // The left edge of the "Times" button (60,100 40x30), drawn inside its bounds: interactive magenta.
    expect(px(60, 115)).toEqual([...MARK_COLORS.interactive]);
    // The middle of the button is untouched.
    expect(px(80, 115)).not.toEqual([...MARK_COLORS.interactive]);
    expect(textOf(r)).toMatch(/box number N is element eN/);
    // Without annotate there is no image; with screenshot: true the plain one (no marks).
    expect((await call('observe')).content.some((c) => c.type === 'image')).toBe(false);
    const plain = (await call('observe', { screenshot: true })).content.find((c) => c.type === 'image') as { data: string };
    const p = await sharp(Buffer.from(plain.data, 'base64')).raw().toBuffer({ resolveWithObject: true });
    const i = (115 * p.info.width + 60) * p.info.channels;
    expect([...p.data.subarray(i, i + 3)]).not.toEqual([...MARK_COLORS.interactive]);
  });
});

describe('describeActionResult', () => {
  it('reports scrolled and dragged as the HTTP result does', () => {
    expect(describeActionResult({ type: 'drag', dragged: { points: 12 }, durationMs: 1 })).toBe('dragged through 12 points');
    expect(describeActionResult({ type: 'wait', durationMs: 1 })).toBe('');
  });
});
