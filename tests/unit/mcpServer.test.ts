import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectInMemory, textOf } from '../helpers/mcpClient.js';
import { createMcpServer, findElements, focusPoint, formatElement, MCP_TOOL_NAMES } from '../../src/mcp/server.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { ObservationStore, Observer, type TextRecognizer } from '../../src/perception/observer.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { AuditLog } from '../../src/policy/audit.js';
import { ApprovalManager } from '../../src/policy/approvals.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { TokenBucket } from '../../src/policy/rateLimit.js';
import { PolicyGate } from '../../src/policy/gate.js';
import type { Element } from '../../src/perception/elements.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
approvals: { timeoutMs: 5000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-calc, effect: allow, match: { app: ["calc"] } }
  - { id: ask-escape, effect: ask, match: { app: ["calc"], keys: ["escape"] } }
`;

/** OCR that "reads" one line, so find/wait_for see OCR text without tesseract. */
let ocrText = 'Result: 42';
const fakeOcr: TextRecognizer = {
  async recognize() {
    const bounds = { x: 300, y: 40, width: 200, height: 20 };
    return { words: [{ text: ocrText, bounds, confidence: 0.9 }], lines: [{ text: ocrText, bounds }] };
  },
};

let platform: FakePlatform;
let client: Client;
let approvals: ApprovalManager;
let audit: AuditLog;
let halt: HaltSwitch;
let dir: string;

beforeEach(async () => {
  ocrText = 'Result: 42';
  platform = createFakePlatform({
    tree: [
      axNode('application', 'calc', null, {
        children: [
          axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 400 }, {
            children: [
              axNode('button', '7 7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' }),
              axNode('button', '×', { x: 60, y: 100, width: 40, height: 30 }, { handle: 'hx' }),
              axNode('textbox', 'Entry', { x: 10, y: 200, width: 200, height: 30 }, { handle: 'he', states: ['editable', 'enabled', 'visible', 'showing'], value: '12' }),
            ],
          }),
        ],
      }),
    ],
    focused: { app: 'calc', pid: 42, window: 'Calculator' },
    windows: [
      { id: '0xa', app: 'calc', pid: 42, wmClass: 'Calc', title: 'Calculator', bounds: { x: 0, y: 0, width: 600, height: 400 } },
      { id: '0xb', app: 'editor', pid: 43, wmClass: 'Editor', title: 'notes', bounds: { x: 600, y: 0, width: 680, height: 800 } },
    ],
  });
  platform.focusedWindowId = '0xa';
  dir = await mkdtemp(join(tmpdir(), 'deskd-mcp-'));
  const policy = parsePolicy(POLICY, 'test.yaml');
  audit = await AuditLog.open({ path: join(dir, 'audit.jsonl'), keyPath: join(dir, 'audit.key') });
  halt = new HaltSwitch();
  approvals = new ApprovalManager({ timeoutMs: policy.approvals.timeoutMs });
  const gate = new PolicyGate({ policy: () => policy, halt, bucket: new TokenBucket(policy.limits), approvals, audit });
  gate.wireHalt();
  const store = new ObservationStore();
  const observer = new Observer(platform, fakeOcr, store);
  const executor = new Executor({ platform, store, policy: gate, verifyElement: createElementVerifier(platform, fakeOcr), agentCapture: async (id) => (await observer.agentCapture.capture(id)).image });
  const server = createMcpServer({ platform, observer, executor, version: '0.0.0-test' });
  client = await connectInMemory(server);
});
afterEach(async () => {
  await client.close();
  approvals.cancelAll('test');
  await audit.close();
  await rm(dir, { recursive: true, force: true });
});

const call = async (name: string, args: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult;
const refIn = (text: string, name: string) => new RegExp(`^(e\\d+) \\w+ ${JSON.stringify(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm').exec(text)?.[1];

describe('tool listing', () => {
  it('lists the eleven tools with input schemas, descriptions and annotations', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual([...MCP_TOOL_NAMES]);
    for (const t of tools) {
      expect(t.description, t.name).toBeTruthy();
      expect(t.inputSchema.type).toBe('object');
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const n of ['observe', 'screenshot', 'find', 'list_apps', 'wait_for']) expect(byName[n]!.annotations?.readOnlyHint, n).toBe(true);
    for (const n of ['click', 'type', 'keypress', 'scroll', 'drag']) {
      expect(byName[n]!.annotations?.destructiveHint, n).toBe(true);
      expect(byName[n]!.annotations?.readOnlyHint, n).toBe(false);
    }
    expect(byName.click!.inputSchema.properties).toHaveProperty('ref');
    expect(byName.keypress!.inputSchema.required).toEqual(['keys']);
  });
});

describe('perception tools', () => {
  it('observe lists elements with refs, and find narrows them', async () => {
    const o = await call('observe');
    expect(o.isError).toBeFalsy();
    const t = textOf(o);
    expect(t).toMatch(/^observation obs_/);
    expect(t).toMatch(/^e\d+ button "7" \(10,100 40x30\)$/m);
    expect(t).toMatch(/textbox "Entry" value="12"/);
    expect(t).toMatch(/text "Result: 42"/);
    const f = textOf(await call('find', { role: 'button', text: '×' }));
    expect(f).toMatch(/^1 match in observation/);
    expect(f).toMatch(/button "×"/);
    const none = await call('find', {});
    expect(none.isError).toBe(true);
    expect(textOf(none)).toMatch(/^VALIDATION_FAILED: /);
  });
  it('screenshot returns an image in points', async () => {
    const r = await call('screenshot', { format: 'png' });
    const img = r.content.find((c) => c.type === 'image') as { data: string; mimeType: string };
    expect(img.mimeType).toBe('image/png');
    expect(Buffer.from(img.data, 'base64').subarray(1, 4).toString()).toBe('PNG');
    expect(textOf(r)).toMatch(/1280x800 px, origin \(0,0\), 1 px per point/);
  });
  it('wait_for finds text that appears, and times out with TIMEOUT', async () => {
    ocrText = 'Loading';
    // The screen changes with the text (incremental OCR re-reads only changed pixels).
    setTimeout(() => {
      ocrText = 'Done: 7';
      platform.fill = [240, 240, 240, 255];
    }, 150);
    const r = await call('wait_for', { text: 'done: 7', timeoutMs: 5000, intervalMs: 50 });
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toMatch(/^found "done: 7" after \d+ observations/);
    const t = await call('wait_for', { text: 'never there', timeoutMs: 100, intervalMs: 50 });
    expect(t.isError).toBe(true);
    expect(textOf(t)).toMatch(/^TIMEOUT: "never there" not found/);
  });
  it('list_apps lists windows and accessible applications', async () => {
    const t = textOf(await call('list_apps'));
    expect(t).toMatch(/^2 windows/);
    expect(t).toMatch(/0xa calc \(pid 42\) "Calculator" at 0,0 600x400/);
    expect(t).toMatch(/^calc: "Calculator"$/m);
  });
});

describe('action tools go through the executor and the policy', () => {
  it('click by ref presses the element centre; the audit log records the decision with actor mcp', async () => {
    const ref = refIn(textOf(await call('observe')), '7');
    expect(ref).toBeDefined();
    const r = await call('click', { ref });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(textOf(r)).toMatch(/^click done at \(30,115\)/);
    expect(platform.events).toEqual([{ kind: 'move', x: 30, y: 115 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }]);
    const recs = await audit.read({ limit: 10 });
    expect(recs.map((x) => x.kind)).toEqual(['decision', 'result']);
    expect(recs[0]).toMatchObject({ actor: 'mcp', decision: { effect: 'allow', ruleId: 'allow-calc' } });
  });
  it('type with a ref clicks the field then types', async () => {
    const ref = refIn(textOf(await call('observe')), 'Entry');
    const r = await call('type', { text: 'abc', ref });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(platform.events.map((e) => e.kind)).toEqual(['move', 'down', 'up', 'type']);
    expect(platform.events[3]).toEqual({ kind: 'type', text: 'abc' });
  });
  it('a click the policy denies is a tool error with POLICY_DENIED, and nothing is dispatched', async () => {
    const r = await call('click', { x: 700, y: 100 });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^POLICY_DENIED: /);
    expect(platform.events).toEqual([]);
  });
  it('an action the policy asks about waits for the operator, then runs', async () => {
    approvals.once('pending', (a) => setTimeout(() => approvals.decide(a.id, { decision: 'approve', scope: 'once' }, 'operator'), 20));
    const r = await call('keypress', { keys: ['escape'] });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(textOf(r)).toMatch(/^keypress escape done .*approved by the operator \(apr_/);
    expect(platform.events).toEqual([{ kind: 'keydown', key: 'escape' }, { kind: 'keyup', key: 'escape' }]);
  });
  it('a denied approval is a tool error and nothing is dispatched', async () => {
    approvals.once('pending', (a) => setTimeout(() => approvals.decide(a.id, { decision: 'deny', scope: 'once' }, 'operator'), 20));
    const r = await call('keypress', { keys: ['escape'] });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^POLICY_DENIED: /);
    expect(platform.events).toEqual([]);
  });
  it('halted: every action tool answers HALTED', async () => {
    halt.halt('operator', 'test');
    const r = await call('scroll', { x: 100, y: 100, scroll_y: 200 });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^HALTED: /);
    expect(platform.events).toEqual([]);
  });
  it('argument errors are tool errors with the DeskdError code', async () => {
    const off = await call('click', { x: 5000, y: 5000 });
    expect(textOf(off)).toMatch(/^POINT_OFF_SCREEN: /);
    const noTarget = await call('click', {});
    expect(textOf(noTarget)).toMatch(/^VALIDATION_FAILED: click: give a ref/);
    const noObs = await call('click', { ref: 'e1' });
    expect(textOf(noObs)).toMatch(/^OBSERVATION_NOT_FOUND: /);
    await call('observe');
    const badRef = await call('click', { ref: 'e999' });
    expect(textOf(badRef)).toMatch(/^REF_NOT_FOUND: /);
    const key = await call('keypress', { keys: ['nosuchkey'] });
    expect(textOf(key)).toMatch(/^UNKNOWN_KEY: /);
    expect(platform.events).toEqual([]);
  });
  it('drag and scroll reach the platform', async () => {
    expect((await call('drag', { path: [{ x: 10, y: 10 }, { x: 50, y: 60 }] })).isError).toBeFalsy();
    expect((await call('scroll', { x: 100, y: 100, scroll_y: 100 })).isError).toBeFalsy();
    const kinds = platform.events.map((e) => e.kind);
    expect(kinds.slice(0, 2)).toEqual(['move', 'down']);
    expect(kinds).toContain('wheel');
    expect(platform.events.find((e) => e.kind === 'wheel')).toEqual({ kind: 'wheel', dx: 0, dy: 2 });
  });
  it('focus_app clicks the top strip of an unfocused window; a focused one is left alone', async () => {
    const same = await call('focus_app', { app: 'calc' });
    expect(textOf(same)).toMatch(/already has focus/);
    expect(platform.events).toEqual([]);
    // The editor is denied by the policy (unmatched: deny): focusing it is refused like any click.
    const denied = await call('focus_app', { app: 'editor' });
    expect(textOf(denied)).toMatch(/^POLICY_DENIED: /);
    const missing = await call('focus_app', { app: 'nope' });
    expect(textOf(missing)).toMatch(/^REF_NOT_FOUND: No window for app "nope"/);
  });
});

describe('pure helpers', () => {
  const el = (ref: string, role: string, name: string, value?: string): Element => ({ ref, role, name, bounds: { x: 0, y: 0, width: 1, height: 1 }, states: [], actions: [], source: 'accessibility', ...(value !== undefined ? { value } : {}) });
  it('findElements: text matches name or value, exact names first; role and name filter', () => {
    const els = [el('e1', 'text', 'Total 42'), el('e2', 'button', '42'), el('e3', 'textbox', 'Entry', '42.5'), el('e4', 'button', 'Clear')];
    expect(findElements(els, { text: '42' }).map((e) => e.ref)).toEqual(['e2', 'e1', 'e3']);
    expect(findElements(els, { role: 'button' }).map((e) => e.ref)).toEqual(['e2', 'e4']);
    expect(findElements(els, { name: '  clear ' }).map((e) => e.ref)).toEqual(['e4']);
  });
  it('formatElement is one compact line', () => {
    expect(formatElement({ ...el('e9', 'checkbox', 'Bold'), states: ['checked', 'enabled'] })).toBe('e9 checkbox "Bold" (0,0 1x1) [checked]');
  });
  it('focusPoint is inside the window, near its top', () => {
    expect(focusPoint({ id: '1', app: null, pid: null, title: null, bounds: { x: 100, y: 50, width: 400, height: 300 } })).toEqual({ x: 300, y: 58 });
    expect(focusPoint({ id: '1', app: null, pid: null, title: null, bounds: { x: 0, y: 0, width: 10, height: 4 } })).toEqual({ x: 5, y: 2 });
  });
});
