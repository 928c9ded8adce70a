/**
 * `POST/GET /v1/anthropic/computer` on the fake platform with the real app (auth, lease), executor,
 * policy engine, approvals and audit log: Claude's computer tool inputs become deskd actions with
 * coordinates mapped back from the scaled screenshot, answers are `tool_result` blocks, and every refusal
 * (policy, validation, off-screen, lease) dispatches nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { DisplayInfo, WindowInfo } from '../../src/platform/types.js';
import { AGENT_TOKEN, OPERATOR_TOKEN, buildPolicyApp } from '../helpers/testApp.js';
import { SCROLL_POINTS_PER_STEP } from '../../src/actuation/plan.js';
import { ModelSpace } from '../../src/agent/anthropic/scaling.js';

const POLICY = `
version: 1
defaults: { unmatched: deny }
limits: { actionsPerSecond: 1000, burst: 1000 }
approvals: { timeoutMs: 5000 }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: deny-terminal, effect: deny, match: { app: ["xterm"] } }
  - { id: ask-escape, effect: ask, match: { app: ["fakeapp"], keys: ["escape"] } }
  - { id: allow-fakeapp, effect: allow, match: { app: ["fakeapp"] } }
`;

const auth = { authorization: `Bearer ${AGENT_TOKEN}` };
type Harness = Awaited<ReturnType<typeof buildPolicyApp>> & { platform: FakePlatform };
let open: Harness[] = [];
afterEach(async () => {
  for (const h of open) await h.close();
  open = [];
});

function display(width: number, height: number): DisplayInfo {
  return { id: 0, x: 0, y: 0, width, height, scaleFactor: 1, primary: true };
}

/** A calculator-like app on the left, a terminal (denied by the policy) on the right. */
function windows(width: number, height: number): WindowInfo[] {
  const half = Math.round(width / 2);
  return [
    { id: '0x2', app: 'xterm', pid: 7, wmClass: 'XTerm', instance: 'xterm', title: 'bash', bounds: { x: half, y: 0, width: width - half, height } },
    { id: '0x1', app: 'fakeapp', pid: 4242, wmClass: 'FakeApp', instance: 'fakeapp', title: 'Calculator', bounds: { x: 0, y: 0, width: half, height } },
  ];
}

async function harness(width = 1920, height = 1080): Promise<Harness> {
  const platform = createFakePlatform({ displays: [display(width, height)], windows: windows(width, height), focused: { app: 'fakeapp', pid: 4242, window: 'Calculator' } });
  platform.focusedWindowId = '0x1';
  const h = Object.assign(await buildPolicyApp(platform, POLICY), { platform });
  open.push(h);
  return h;
}

async function call(h: Harness, body: unknown, headers: Record<string, string> = {}) {
  const r = await h.app.inject({ method: 'POST', url: '/v1/anthropic/computer', headers: { ...auth, ...headers }, payload: body as object });
  return { status: r.statusCode, body: r.json() as { type: string; tool_use_id?: string; content: ({ type: 'text'; text: string } | { type: 'image'; source: { data: string; media_type: string } })[]; is_error?: boolean; error?: { code: string } } };
}

const inputEvents = (h: Harness) => h.platform.events.filter((e) => e.kind !== 'activate');

async function imageSize(b64: string) {
  const m = await sharp(Buffer.from(b64, 'base64')).metadata();
  return { width: m.width, height: m.height };
}

describe('GET /v1/anthropic/computer: the tool definition', () => {
  it.each([
    [1920, 1080, 1429, 804],
    [2560, 1440, 1429, 804],
    [1280, 800, 1280, 800],
  ])('%dx%d points → display_width_px x display_height_px = %dx%d (1568 px long edge, 1.15 MP)', async (w, hgt, ew, eh) => {
    const h = await harness(w, hgt);
    const r = await h.app.inject({ method: 'GET', url: '/v1/anthropic/computer', headers: auth });
    expect(r.statusCode).toBe(200);
    const b = r.json();
    expect(b.tool).toEqual({ type: 'computer_20251124', name: 'computer', display_width_px: ew, display_height_px: eh, enable_zoom: true });
    expect(b.beta).toBe('computer-use-2025-11-24');
    expect(ew * eh).toBeLessThanOrEqual(1_150_000);
    expect(Math.max(ew, eh)).toBeLessThanOrEqual(1568);
    const old = await h.app.inject({ method: 'GET', url: '/v1/anthropic/computer?version=computer_20250124', headers: auth });
    expect(old.json().tool).toEqual({ type: 'computer_20250124', name: 'computer', display_width_px: ew, display_height_px: eh });
    expect(old.json().beta).toBe('computer-use-2025-01-24');
  });
});

describe('POST /v1/anthropic/computer', () => {
  it('screenshot answers a tool_result with text and a PNG of the declared size; nothing is dispatched', async () => {
    for (const [w, hh] of [[1920, 1080], [2560, 1440]] as const) {
      const h = await harness(w, hh);
      const r = await call(h, { action: 'screenshot' });
      expect(r.status).toBe(200);
      expect(r.body.type).toBe('tool_result');
      expect(r.body.is_error).toBeUndefined();
      const img = r.body.content.find((c) => c.type === 'image');
      expect(img && img.type === 'image' && img.source.media_type).toBe('image/png');
      expect(await imageSize((img as { source: { data: string } }).source.data)).toEqual({ width: 1429, height: 804 });
      expect(inputEvents(h)).toEqual([]);
    }
  });

  it.each([
    [1920, 1080],
    [2560, 1440],
  ])('on %dx%d, left_click at a screenshot pixel lands on the point the image was scaled from (per-axis ratio)', async (w, hh) => {
    const h = await harness(w, hh);
    const r = await call(h, { action: 'left_click', coordinate: [100, 700] });
    expect(r.body.content[0]).toMatchObject({ type: 'text' });
    expect(r.body.is_error, JSON.stringify(r.body.content[0])).toBeUndefined();
    const move = h.platform.events.find((e) => e.kind === 'move') as { x: number; y: number };
    expect(move.x).toBeCloseTo((100 * w) / 1429, 6);
    expect(move.y).toBeCloseTo((700 * hh) / 804, 6);
    expect(h.platform.events.filter((e) => e.kind === 'down' || e.kind === 'up').map((e) => e.kind)).toEqual(['down', 'up']);
    // The last pixel row is still on the display (bottom-left: the calculator's side).
    const edge = await call(h, { action: 'mouse_move', coordinate: [0, 803] });
    expect(edge.body.is_error, JSON.stringify(edge.body.content[0])).toBeUndefined();
    const last = h.platform.events.filter((e) => e.kind === 'move').at(-1) as { x: number; y: number };
    expect(last.y).toBeCloseTo((803 * hh) / 804, 6);
    expect(last.y).toBeLessThan(hh);
    // The last pixel column maps inside the display, one past it is off the screenshot.
    const space = ModelSpace.forDisplay({ x: 0, y: 0 }, { width: w, height: hh }, { width: w, height: hh });
    expect(space.toPoint(1428, 803).x).toBeLessThan(w);
    expect(space.contains(1429, 0)).toBe(false);
    expect(space.fromPoint(space.toPoint(1000, 500))).toEqual({ x: 1000, y: 500 });
  });

  it('the tool_use block form echoes the id; a toolset member (name = action) works the same', async () => {
    const h = await harness();
    const a = await call(h, { type: 'tool_use', id: 'toolu_01', name: 'computer', input: { action: 'right_click', coordinate: [10, 10] } });
    expect(a.body.tool_use_id).toBe('toolu_01');
    expect(a.body.is_error).toBeUndefined();
    const b = await call(h, { type: 'tool_use', id: 'toolu_02', name: 'middle_click', toolset_name: 'computer', input: { coordinate: [10, 10] } });
    expect(b.body.tool_use_id).toBe('toolu_02');
    expect(b.body.is_error).toBeUndefined();
    expect(h.platform.events.filter((e) => e.kind === 'down').map((e) => (e as { button: string }).button)).toEqual(['right', 'middle']);
  });

  it('double_click, triple_click (three presses), key ctrl+a / "ctrl+a Delete" / repeat, type, scroll, wait, cursor_position', async () => {
    const h = await harness(1280, 800);
    expect((await call(h, { action: 'triple_click', coordinate: [20, 20] })).body.is_error).toBeUndefined();
    expect(h.platform.events.filter((e) => e.kind === 'down')).toHaveLength(3);
    h.platform.events.length = 0;
    expect((await call(h, { action: 'key', text: 'ctrl+a' })).body.is_error).toBeUndefined();
    expect(h.platform.events.map((e) => `${e.kind}:${(e as { key?: string }).key}`)).toEqual(['keydown:ctrl', 'keydown:a', 'keyup:a', 'keyup:ctrl']);
    h.platform.events.length = 0;
    expect((await call(h, { action: 'key', text: 'ctrl+a Delete', repeat: 2 })).body.is_error).toBeUndefined();
    expect(h.platform.events.filter((e) => e.kind === 'keydown').map((e) => (e as { key: string }).key)).toEqual(['ctrl', 'a', 'delete', 'ctrl', 'a', 'delete']);
    h.platform.events.length = 0;
    expect((await call(h, { action: 'type', text: '7*6=' })).body.is_error).toBeUndefined();
    expect(h.platform.events.filter((e) => e.kind === 'type').map((e) => (e as { text: string }).text).join('')).toBe('7*6=');
    h.platform.events.length = 0;
    const s = await call(h, { action: 'scroll', coordinate: [30, 40], scroll_direction: 'down', scroll_amount: 3 });
    expect(s.body.is_error).toBeUndefined();
    const wheel = h.platform.events.filter((e) => e.kind === 'wheel') as { dy: number; dx: number }[];
    expect(wheel.reduce((n, e) => n + e.dy, 0)).toBe((3 * SCROLL_POINTS_PER_STEP) / SCROLL_POINTS_PER_STEP);
    const up = await call(h, { action: 'scroll', coordinate: [30, 40], scroll_direction: 'left', scroll_amount: 2 });
    expect(up.body.is_error).toBeUndefined();
    expect((h.platform.events.filter((e) => e.kind === 'wheel').at(-1) as { dx: number }).dx).toBeLessThan(0);
    const t0 = Date.now();
    expect((await call(h, { action: 'wait', duration: 0.2 })).body.is_error).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    await call(h, { action: 'mouse_move', coordinate: [321, 123] });
    const pos = await call(h, { action: 'cursor_position' });
    expect(pos.body.content[0]).toEqual({ type: 'text', text: 'X=321,Y=123' });
  });

  it('left_click_drag (both shapes) and left_mouse_down / mouse_move / left_mouse_up become one drag', async () => {
    const h = await harness(1280, 800);
    expect((await call(h, { action: 'left_click_drag', start_coordinate: [10, 10], coordinate: [200, 50] })).body.is_error).toBeUndefined();
    const ev = h.platform.events;
    expect(ev.find((e) => e.kind === 'down')).toBeDefined();
    const moves = ev.filter((e) => e.kind === 'move') as { x: number; y: number }[];
    expect(moves[0]).toMatchObject({ x: 10, y: 10 });
    expect(moves.at(-1)).toMatchObject({ x: 200, y: 50 });
    ev.length = 0;
    expect((await call(h, { action: 'left_mouse_down', coordinate: [50, 60] })).body.is_error).toBeUndefined();
    expect((await call(h, { action: 'mouse_move', coordinate: [80, 90] })).body.is_error).toBeUndefined();
    expect(inputEvents(h)).toEqual([]); // nothing yet: the gesture is judged whole at the release
    expect((await call(h, { action: 'left_mouse_up', coordinate: [120, 100] })).body.is_error).toBeUndefined();
    const m2 = ev.filter((e) => e.kind === 'move') as { x: number; y: number }[];
    expect(m2[0]).toMatchObject({ x: 50, y: 60 });
    expect(m2.some((p) => p.x === 80 && p.y === 90)).toBe(true);
    expect(m2.at(-1)).toMatchObject({ x: 120, y: 100 });
    expect(ev.filter((e) => e.kind === 'down' || e.kind === 'up').map((e) => e.kind)).toEqual(['down', 'up']);
    const stray = await call(h, { action: 'left_mouse_up' });
    expect(stray.body.is_error).toBe(true);
    expect((stray.body.content[0] as { text: string }).text).toMatch(/^VALIDATION_FAILED: /);
  });

  it('zoom answers the region at native resolution (more pixels than the scaled screenshot shows)', async () => {
    const h = await harness(1920, 1080);
    const r = await call(h, { action: 'zoom', region: [0, 0, 143, 80] });
    expect(r.body.is_error).toBeUndefined();
    const img = r.body.content.find((c) => c.type === 'image') as { source: { data: string } };
    const size = await imageSize(img.source.data);
    expect(size.width).toBe(Math.ceil((143 * 1920) / 1429));
    expect(size.height).toBe(Math.ceil((80 * 1080) / 804));
    const bad = await call(h, { action: 'zoom', region: [100, 100, 50, 200] });
    expect(bad.body.is_error).toBe(true);
    expect(inputEvents(h)).toEqual([]);
  });

  describe('refusals: is_error with the deskd code, nothing dispatched', () => {
    it.each([
      ['a click on the denied terminal', { action: 'left_click', coordinate: [1200, 400] }, 'POLICY_DENIED'],
      ['a drag that ends in the denied terminal', { action: 'left_click_drag', start_coordinate: [100, 100], coordinate: [1200, 400] }, 'POLICY_DENIED'],
      ['a press/move/release gesture that ends in the denied terminal', null, 'POLICY_DENIED'],
      ['coordinates outside the screenshot', { action: 'left_click', coordinate: [1429, 10] }, 'POINT_OFF_SCREEN'],
      ['negative coordinates', { action: 'mouse_move', coordinate: [-1, 10] }, 'POINT_OFF_SCREEN'],
      ['a drag that starts outside the display', { action: 'left_click_drag', start_coordinate: [5000, 5], coordinate: [10, 10] }, 'POINT_OFF_SCREEN'],
      ['an unknown action', { action: 'launch_rocket' }, 'UNKNOWN_ACTION'],
      ['a missing parameter', { action: 'scroll', coordinate: [1, 1], scroll_direction: 'down' }, 'VALIDATION_FAILED'],
      ['an extra field', { action: 'left_click', coordinate: [1, 1], button: 'left' }, 'VALIDATION_FAILED'],
      ['an unknown key name', { action: 'key', text: 'ctrl+XF86LaunchRocket' }, 'UNKNOWN_KEY'],
      ['a wait over 30 s', { action: 'wait', duration: 31 }, 'VALIDATION_FAILED'],
    ])('%s', async (_what, input, code) => {
      const h = await harness();
      let r;
      if (input === null) {
        await call(h, { action: 'left_mouse_down', coordinate: [100, 100] });
        await call(h, { action: 'mouse_move', coordinate: [600, 300] });
        r = await call(h, { action: 'left_mouse_up', coordinate: [1200, 400] });
      } else r = await call(h, input);
      expect(r.status).toBe(200);
      expect(r.body.is_error).toBe(true);
      expect(r.body.content).toHaveLength(1);
      expect((r.body.content[0] as { text: string }).text.startsWith(`${code}: `)).toBe(true);
      expect(inputEvents(h)).toEqual([]);
    });

    it('keys held via hold_key (and key, type) into a focused denied terminal are refused; nothing is pressed', async () => {
      const h = await harness();
      h.platform.focusedWindowId = '0x2';
      h.platform.focusInfo = { app: 'xterm', pid: 7, window: 'bash' };
      for (const input of [{ action: 'hold_key', text: 'ctrl+c', duration: 1 }, { action: 'key', text: 'Return' }, { action: 'type', text: 'rm -rf ~\n' }]) {
        const r = await call(h, input);
        expect(r.body.is_error).toBe(true);
        expect((r.body.content[0] as { text: string }).text).toMatch(/^POLICY_DENIED: .*deny-terminal/);
      }
      expect(inputEvents(h)).toEqual([]);
      const audit = await readFile(h.auditPath, 'utf8');
      expect(audit).toContain('deny-terminal');
    });

    it('the route needs the controller lease like /v1/actions (also through an encoded path); 401 without a token', async () => {
      const h = await harness();
      const lease = await h.app.inject({ method: 'POST', url: '/v1/lease', headers: { ...auth, 'x-deskd-client': 'other' }, payload: {} });
      expect(lease.statusCode).toBe(200);
      for (const url of ['/v1/anthropic/computer', '/v1/%61nthropic/computer', '/v1/anthropic/%63omputer']) {
        const r = await h.app.inject({ method: 'POST', url, headers: auth, payload: { action: 'left_click', coordinate: [10, 10] } });
        expect(r.statusCode).toBe(409);
        expect(r.json().error.code).toBe('LEASE_HELD');
      }
      const anon = await h.app.inject({ method: 'POST', url: '/v1/anthropic/computer', payload: { action: 'left_click', coordinate: [10, 10] } });
      expect(anon.statusCode).toBe(401);
      expect(inputEvents(h)).toEqual([]);
    });
  });

  it('a policy ask waits for the operator: approved → done; denied → is_error and nothing pressed', async () => {
    const h = await harness();
    const pending = call(h, { action: 'key', text: 'Escape' });
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      await new Promise((r) => setTimeout(r, 20));
      id = (await h.app.inject({ method: 'GET', url: '/v1/approvals', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).json().approvals?.[0]?.id;
    }
    expect(id).toBeDefined();
    expect(h.platform.events.filter((e) => e.kind === 'keydown')).toEqual([]);
    const d = await h.app.inject({ method: 'POST', url: `/v1/approvals/${id}`, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` }, payload: { decision: 'approve' } });
    expect(d.statusCode).toBe(200);
    const r = await pending;
    expect(r.body.is_error).toBeUndefined();
    expect(h.platform.events.filter((e) => e.kind === 'keydown').map((e) => (e as { key: string }).key)).toEqual(['escape']);

    h.platform.events.length = 0;
    const pending2 = call(h, { action: 'key', text: 'Escape' });
    let id2: string | undefined;
    for (let i = 0; i < 100 && !id2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      id2 = (await h.app.inject({ method: 'GET', url: '/v1/approvals', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).json().approvals?.find((a: { id: string; status?: string }) => a.id !== id)?.id;
    }
    await h.app.inject({ method: 'POST', url: `/v1/approvals/${id2}`, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` }, payload: { decision: 'deny' } });
    const r2 = await pending2;
    expect(r2.body.is_error).toBe(true);
    expect((r2.body.content[0] as { text: string }).text).toMatch(/^POLICY_DENIED: /);
    expect(h.platform.events.filter((e) => e.kind === 'keydown')).toEqual([]);
  });
});

describe('masking: what the perception policy hides stays hidden in Claude screenshots and zooms', () => {
  it('the masked terminal is black in the screenshot and in a zoom on it; the calculator side is not', async () => {
    const platform = createFakePlatform({ displays: [display(1920, 1080)], windows: windows(1920, 1080), fill: [255, 255, 255, 255] });
    const h = Object.assign(await buildPolicyApp(platform, `${POLICY}perception:\n  mask: ["xterm"]\n`), { platform });
    open.push(h);
    const px = async (b64: string, x: number, y: number) => {
      const { data, info } = await sharp(Buffer.from(b64, 'base64')).raw().toBuffer({ resolveWithObject: true });
      const i = (y * info.width + x) * info.channels;
      return [data[i], data[i + 1], data[i + 2]];
    };
    const shot = await call(h, { action: 'screenshot' });
    const img = (shot.body.content.find((c) => c.type === 'image') as { source: { data: string } }).source.data;
    expect(await px(img, 1300, 400)).toEqual([0, 0, 0]); // terminal side (x ≥ 960 points → ≥ 715 px)
    expect(await px(img, 100, 400)).toEqual([255, 255, 255]);
    const zoom = await call(h, { action: 'zoom', region: [1000, 300, 1100, 400] });
    const zimg = (zoom.body.content.find((c) => c.type === 'image') as { source: { data: string } }).source.data;
    expect(await px(zimg, 50, 50)).toEqual([0, 0, 0]);
  });
});
