/**
 * Recordings and replays through the HTTP app on the fake platform, with the real executor, policy gate,
 * approvals and audit log (issue 18). The fake "calculator" reacts to clicks: the display shows what was
 * pressed, and `=` shows the product. Windows are moved and buttons renamed between recording and replay.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { MCP_TOOL_NAMES } from '../../src/mcp/server.js';
import { MCP_REPLAY_TOOL_NAMES } from '../../src/replay/mcp.js';
import type { RawAXNode } from '../../src/platform/types.js';
import { axNode } from '../../src/platform/fake/fakePlatform.js';
import { AGENT, OPERATOR, DENY_FAKEAPP, MASK_FAKEAPP, calcTree, type Harness, makeReplayHarness, call, type Obs, record7x6 } from '../helpers/replayHarness.js';

let open: Harness[] = [];
afterEach(async () => {
  for (const h of open) await h.close();
  open = [];
});
/** A harness (tests/helpers/replayHarness.ts) closed after the test. */
async function harness(...args: Parameters<typeof makeReplayHarness>): Promise<Harness> {
  const h = await makeReplayHarness(...args);
  open.push(h);
  return h;
}

async function replayOf(h: Harness, body: object) {
  const r = await call<{ replayId: string }>(h, 'POST', '/v1/replays', body);
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  for (let i = 0; i < 200; i++) {
    const v = await call<{ status: string }>(h, 'GET', `/v1/replays/${r.json.replayId}`);
    if (!['queued', 'running'].includes(v.json.status)) return v.json as Record<string, any>;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('replay did not end');
}

describe('recordings (fake platform, real policy and audit)', () => {
  it('records fingerprints, postconditions and masked thumbnails; exports one JSON document', async () => {
    const h = await harness();
    const id = await record7x6(h);
    const rec = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${id}`)).json;
    expect(rec.format).toBe('deskd.recording/1');
    expect(rec.steps.map((s: any) => [s.action.type, s.fingerprint.role, s.fingerprint.name, s.fingerprint.app, s.fingerprint.windowTitle])).toEqual([
      ['click', 'button', '7', 'fakeapp', 'Calculator'],
      ['click', 'button', '×', 'fakeapp', 'Calculator'],
      ['click', 'button', '6', 'fakeapp', 'Calculator'],
      ['click', 'button', '=', 'fakeapp', 'Calculator'],
    ]);
    // Where to aim is the fingerprint, never the recorded coordinates.
    expect(rec.steps[0].action).toEqual({ type: 'click', button: 'left' });
    expect(rec.steps[0].fingerprint.relative.cx).toBeCloseTo(35 / 400, 3);
    expect(rec.steps[0].fingerprint.path).toContain('frame:Calculator');
    // What appeared, the named display's new value, and what went away (the display's previous text).
    expect(rec.steps[3].postconditions).toEqual([
      { kind: 'appears', text: '42', role: 'textbox', source: 'accessibility' },
      { kind: 'state', role: 'textbox', name: 'Result', has: [], lacks: [], value: '42' },
      { kind: 'gone', text: '7×6', role: 'textbox', source: 'accessibility' },
    ]);
    expect(rec.steps[0].postconditions).toEqual([
      { kind: 'appears', text: '7', role: 'textbox', source: 'accessibility' },
      { kind: 'state', role: 'textbox', name: 'Result', has: [], lacks: [], value: '7' },
      { kind: 'gone', text: '0', role: 'textbox', source: 'accessibility' },
    ]);
    expect(rec.steps[3].outcome).toEqual({ appeared: ['textbox "42"'], gone: ['textbox "7×6"'], states: ['textbox "Result": value "42"'], windows: [] });
    // Thumbnails: files in the folder, URLs in the export, PNGs when fetched.
    const name = rec.steps[0].thumbnails.before as string;
    expect(name).toBe('s1-before.png');
    expect(rec.images[name]).toBe(`/v1/recordings/${id}/images/${name}`);
    const img = await call(h, 'GET', rec.images[name]);
    expect(img.status).toBe(200);
    expect(img.type).toBe('image/png');
    expect((await sharp(img.raw).metadata()).width).toBeLessThanOrEqual(240);
    const inline = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${id}?images=inline`)).json;
    expect(inline.images[name]).toMatch(/^data:image\/png;base64,/);
    expect((await readdir(join(h.dir, 'recordings', id))).sort()).toEqual(expect.arrayContaining(['recording.json', 's1-before.png', 's4-after.png']));
    const list = (await call<{ recordings: { id: string; steps: number }[] }>(h, 'GET', '/v1/recordings')).json;
    expect(list.recordings).toEqual([expect.objectContaining({ id, steps: 4 })]);
  });

  it('stable errors: unknown ids, a second recording, bad image names, encoded traversal, delete', async () => {
    const h = await harness();
    const start = await call<{ id: string }>(h, 'POST', '/v1/recordings', {});
    const again = await call<{ error: { code: string; details: unknown } }>(h, 'POST', '/v1/recordings', {});
    expect(again.status).toBe(409);
    expect(again.json.error).toMatchObject({ code: 'RECORDING_ACTIVE', details: { recordingId: start.json.id } });
    // Another client (X-Deskd-Client) records on its own.
    const other = await h.app.inject({ method: 'POST', url: '/v1/recordings', headers: { authorization: `Bearer ${AGENT}`, 'x-deskd-client': 'planner-2', 'content-type': 'application/json' }, payload: '{}' });
    expect(other.statusCode).toBe(201);
    // Replaying a recording that is still recording is refused; nothing runs.
    expect((await call<{ error: { code: string } }>(h, 'POST', '/v1/replays', { recordingId: start.json.id })).json.error.code).toBe('VALIDATION_FAILED');
    for (const url of ['/v1/recordings/rec_00000000-0000-0000-0000-000000000000', '/v1/recordings/..%2F..%2Faudit.jsonl', `/v1/recordings/${start.json.id}/images/..%2Frecording.json`, `/v1/recordings/${start.json.id}/images/recording.json`, `/v1/recordings/${start.json.id}/images/s1-before.png`]) {
      const r = await call<{ error: { code: string } }>(h, 'GET', url);
      expect(r.status, url).toBe(404);
      expect(r.json.error.code, url).toBe('RECORDING_NOT_FOUND');
    }
    expect((await call<{ error: { code: string } }>(h, 'POST', '/v1/replays', { recordingId: 'rec_00000000-0000-0000-0000-000000000000' })).json.error.code).toBe('RECORDING_NOT_FOUND');
    expect((await call<{ error: { code: string } }>(h, 'GET', '/v1/replays/rpl_nope')).json.error.code).toBe('REPLAY_NOT_FOUND');
    expect((await call<{ error: { code: string } }>(h, 'POST', '/v1/replays', { recordingId: start.json.id, onDivergence: 'guess' })).json.error.code).toBe('VALIDATION_FAILED');
    expect((await call(h, 'DELETE', `/v1/recordings/${start.json.id}`)).status).toBe(200);
    expect((await call<{ error: { code: string } }>(h, 'GET', `/v1/recordings/${start.json.id}`)).json.error.code).toBe('RECORDING_NOT_FOUND');
    // A deleted recording stops recording: this client may start a new one.
    expect((await call(h, 'POST', '/v1/recordings', {})).status).toBe(201);
  });

  it('a tampered recording file that names another file as its image is refused', async () => {
    const h = await harness();
    const id = await record7x6(h);
    const path = join(h.dir, 'recordings', id, 'recording.json');
    const doc = JSON.parse(await (await import('node:fs/promises')).readFile(path, 'utf8'));
    doc.steps[0].thumbnails.before = '../../audit.key';
    await writeFile(path, JSON.stringify(doc));
    const r = await call<{ images?: Record<string, string> }>(h, 'GET', `/v1/recordings/${id}`);
    // The document no longer matches the format (image names are checked): it is not served at all.
    expect(r.status).toBe(404);
  });
});

describe('replays (fake platform)', () => {
  it('replays 7 × 6 = to 42 after the window moved, through the policy as replay:<id>', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.moveTo({ x: 500, y: 300 });
    h.calc.display = '0';
    h.moveTo({ x: 500, y: 300 });
    const before = h.platform.events.length;
    const v = await replayOf(h, { recordingId: id });
    expect(v.error).toBeNull();
    expect(v.status).toBe('succeeded');
    expect(h.calc.display).toBe('42');
    expect(v.steps.map((s: any) => [s.outcome, s.grounded.name])).toEqual([['done', '7'], ['done', '×'], ['done', '6'], ['done', '=']]);
    // Clicked where the buttons are now, not where they were.
    const moves = h.platform.events.slice(before).filter((e) => e.kind === 'move') as { x: number; y: number }[];
    expect(moves.every((m) => m.x >= 500 && m.y >= 400)).toBe(true);
    const audit = await h.audit.read({ limit: 200 });
    expect(audit.filter((r) => r.kind === 'decision' && r.actor === `replay:${id}`)).toHaveLength(4);
  });

  it('a renamed button is a divergence naming the candidates, and nothing after it is dispatched', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.calc.display = '0';
    h.calc.names['×'] = 'Multiply';
    h.moveTo({ x: 0, y: 0 });
    const v = await replayOf(h, { recordingId: id });
    expect(v.status).toBe('diverged');
    expect(v.error.code).toBe('REPLAY_DIVERGED');
    expect(v.divergence).toMatchObject({ step: 2, reason: 'weak_match', expected: { role: 'button', name: '×' } });
    expect(v.divergence.candidates.length).toBeGreaterThan(0);
    expect(v.divergence.candidates.map((c: any) => c.name)).toContain('Multiply');
    // Step 1 ran, step 2 diverged; 6 and = never happened.
    expect(h.clicks().slice(4)).toEqual(['7']);
    expect(v.steps.map((s: any) => s.outcome)).toEqual(['done', 'diverged']);
  });

  it('two equally good candidates are ambiguous, never a guess', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.calc.display = '0';
    // A second calculator window of the same app at the same relative place: two "7"s that score alike.
    const tree = calcTree(h.calc);
    const twin = structuredClone(tree[0]!);
    twin.handle = 'app2';
    const frame = twin.children[0]!;
    const shift = (n: RawAXNode) => {
      if (n.bounds) n.bounds = { ...n.bounds, x: n.bounds.x + 600 };
      n.handle = `${n.handle}-2`;
      n.children.forEach(shift);
    };
    shift(frame);
    h.platform.tree = [tree[0]!, twin];
    h.platform.windowList = [...h.platform.windowList, { id: '0x101', app: 'fakeapp', pid: 4242, title: 'Calculator', bounds: { x: 600, y: 0, width: 400, height: 300 } }];
    const before = h.platform.events.length;
    const v = await replayOf(h, { recordingId: id });
    expect(v.status).toBe('diverged');
    expect(v.divergence.reason).toBe('ambiguous');
    expect(v.divergence.candidates.slice(0, 2).map((c: any) => c.name)).toEqual(['7', '7']);
    expect(h.platform.events.length).toBe(before);
  });

  it('a recording whose app the policy now denies is refused by the policy; nothing is dispatched', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.calc.display = '0';
    h.setPolicy(DENY_FAKEAPP);
    const before = h.platform.events.length;
    const v = await replayOf(h, { recordingId: id });
    expect(v.status).toBe('failed');
    expect(v.error.code).toBe('POLICY_DENIED');
    expect(h.platform.events.length).toBe(before);
    const audit = await h.audit.read({ limit: 200 });
    expect(audit.some((r) => r.kind === 'decision' && r.actor === `replay:${id}` && (r as any).decision?.effect === 'deny')).toBe(true);
  });

  it('attack: a recording edited to target an app the policy denies is refused by the policy; nothing is dispatched', async () => {
    // A second app on screen that the policy does not allow (unmatched: deny), with a tempting button.
    const h = await harness([{ app: 'bankapp', bounds: { x: 600, y: 0, width: 300, height: 200 } }]);
    const bank = axNode('application', 'bankapp', null, { handle: 'bank', children: [axNode('frame', 'bankapp', { x: 600, y: 0, width: 300, height: 200 }, { handle: 'bankwin', children: [axNode('button', 'Transfer all', { x: 620, y: 50, width: 120, height: 40 }, { handle: 'transfer', actions: ['press'] })] })] });
    const tree = () => [...calcTree(h.calc), bank];
    h.platform.tree = tree();
    const id = await record7x6(h);
    h.platform.tree = tree();
    // The file on disk is edited: step 1 now aims at the other app's button.
    const path = join(h.dir, 'recordings', id, 'recording.json');
    const doc = JSON.parse(await readFile(path, 'utf8'));
    doc.steps[0].fingerprint = { ...doc.steps[0].fingerprint, app: 'bankapp', windowTitle: 'bankapp', name: 'Transfer all', labels: [], path: [], relative: { cx: 0.27, cy: 0.35, width: 0.4, height: 0.2 } };
    await writeFile(path, JSON.stringify(doc));
    const before = h.platform.events.length;
    const v = await replayOf(h, { recordingId: id });
    // It was found (the edit is well formed) and refused where every action is decided: the policy.
    expect(v.steps[0].grounded).toMatchObject({ role: 'button', name: 'Transfer all' });
    expect(v.status).toBe('failed');
    expect(v.error.code).toBe('POLICY_DENIED');
    expect(v.steps).toHaveLength(1);
    expect(h.platform.events.length).toBe(before);
    const audit = await h.audit.read({ limit: 200 });
    expect(audit.some((r) => r.kind === 'decision' && r.actor === `replay:${id}` && (r as any).decision?.effect === 'deny')).toBe(true);
  });

  it('a step whose postconditions never hold stops the replay with REPLAY_POSTCONDITION_FAILED; nothing after it is dispatched', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.calc.display = '0';
    h.moveTo({ x: 0, y: 0 });
    // The × key is stuck: it is clicked, but the display keeps "7".
    h.calc.stuck.add('×');
    const v = await replayOf(h, { recordingId: id });
    expect(v.status).toBe('diverged');
    expect(v.error.code).toBe('REPLAY_POSTCONDITION_FAILED');
    expect(v.error.message).toContain('appears textbox "7×"');
    expect(v.divergence).toMatchObject({ step: 2, reason: 'postcondition' });
    expect(v.divergence.expected.missing).toEqual([
      { kind: 'appears', text: '7×', role: 'textbox', source: 'accessibility' },
      { kind: 'state', role: 'textbox', name: 'Result', has: [], lacks: [], value: '7×' },
      { kind: 'gone', text: '7', role: 'textbox', source: 'accessibility' },
    ]);
    expect(v.divergence.seen.missing).toEqual([
      { postcondition: 'appears textbox "7×"', seen: null },
      { postcondition: 'state textbox "Result" value "7×"', seen: 'textbox "Result" states [enabled, visible, showing] value "7"' },
      { postcondition: 'gone textbox "7"', seen: 'textbox "7" is still shown' },
    ]);
    expect(v.divergence.seen.texts).toContain('textbox "7"');
    // 7 and × were clicked; 6 and = never were.
    expect(h.clicks().slice(4)).toEqual(['7', '×']);
    expect(v.steps.map((s: any) => s.outcome)).toEqual(['done', 'diverged']);
    const audit = await h.audit.read({ limit: 200 });
    expect(audit.filter((r) => r.kind === 'decision' && r.actor === `replay:${id}`)).toHaveLength(2);
  });

  it('a checkbox that becomes checked and the window it opens are recorded as state and window postconditions, and checked on replay', async () => {
    const h = await harness();
    const start = await call<{ id: string }>(h, 'POST', '/v1/recordings', { name: 'scientific' });
    const obs = (await call<Obs>(h, 'POST', '/v1/observe', { ocr: false })).json;
    const box = obs.elements.find((e) => e.role === 'checkbox')!;
    expect((await call(h, 'POST', '/v1/actions', { type: 'click', target: { ref: box.ref, observationId: obs.observationId } })).status).toBe(200);
    await call(h, 'POST', `/v1/recordings/${start.json.id}/stop`);
    const rec = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${start.json.id}`)).json;
    expect(rec.steps[0].postconditions).toEqual([
      { kind: 'state', role: 'checkbox', name: 'Scientific', has: ['checked'], lacks: [] },
      { kind: 'window', app: 'fakeapp', title: 'Scientific keys', present: true },
    ]);
    expect(rec.steps[0].outcome).toEqual({ appeared: [], gone: [], states: ['checkbox "Scientific": +checked'], windows: ['+fakeapp "Scientific keys"'] });

    // Unchecked again: the replay checks it, and both postconditions hold.
    h.calc.scientific = false;
    h.moveTo({ x: 100, y: 50 });
    const ok = await replayOf(h, { recordingId: start.json.id });
    expect(ok.error).toBeNull();
    expect(ok.status).toBe('succeeded');
    expect(h.calc.scientific).toBe(true);

    // Stuck: the click lands, nothing changes; the report names both and what the screen shows.
    h.calc.scientific = false;
    h.calc.stuck.add('sci');
    h.moveTo({ x: 100, y: 50 });
    const bad = await replayOf(h, { recordingId: start.json.id });
    expect(bad.status).toBe('diverged');
    expect(bad.error.code).toBe('REPLAY_POSTCONDITION_FAILED');
    expect(bad.divergence.seen.missing).toEqual([
      { postcondition: 'state checkbox "Scientific" +checked', seen: 'checkbox "Scientific" states [enabled, visible, showing]' },
      { postcondition: 'window fakeapp "Scientific keys" shown', seen: 'windows: fakeapp "Calculator"' },
    ]);
  });

  it('a recording cannot smuggle out what a mask hides: masked windows are black in thumbnails, and a later mask withholds images and texts', async () => {
    // A masked app's window lies over part of the 7 button's thumbnail region.
    const h = await harness([{ app: 'secretapp', bounds: { x: 0, y: 0, width: 30, height: 200 } }]);
    const id = await record7x6(h);
    const rec = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${id}`)).json;
    const png = (await call(h, 'GET', rec.images['s1-before.png'])).raw;
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    // The crop starts at x = 10 - 48 → 0 (clipped), y = 100 - 48 = 52: the masked window covers x < 30 (+1 border).
    const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    expect(px(5, 10)).toEqual([0, 0, 0]);
    expect(px(info.width - 5, 10)).toEqual([200, 60, 60]);
    // Nothing of the masked app is named anywhere in the document.
    expect(JSON.stringify(rec)).not.toContain('secretapp');
    // Later the policy masks the calculator itself: its steps lose images and texts.
    h.setPolicy(MASK_FAKEAPP);
    const now = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${id}`)).json;
    expect(now.images).toEqual({});
    expect(now.steps.every((s: any) => s.fingerprint.name === '' && s.fingerprint.labels.length === 0 && s.postconditions.length === 0 && s.thumbnails.before === null)).toBe(true);
    expect(JSON.stringify(now)).not.toContain('"42"');
    const img = await call<{ error: { code: string } }>(h, 'GET', `/v1/recordings/${id}/images/s1-before.png`);
    expect(img.status).toBe(404);
    const inline = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${id}?images=inline`)).json;
    expect(inline.images).toEqual({});
  });

  it('typed text is kept only with keepText; other text becomes a parameter that must be given', async () => {
    const h = await harness();
    const start = await call<{ id: string }>(h, 'POST', '/v1/recordings', {});
    expect((await call(h, 'POST', '/v1/actions', { type: 'type', text: 'secret-branch' })).status).toBe(200);
    await call(h, 'POST', `/v1/recordings/${start.json.id}/stop`);
    const rec = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${start.json.id}`)).json;
    expect(rec.steps[0].action).toEqual({ type: 'type', text: '{{text1}}' });
    expect(JSON.stringify(rec)).not.toContain('secret-branch');
    const missing = await call<{ error: { code: string; details: unknown } }>(h, 'POST', '/v1/replays', { recordingId: start.json.id });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatchObject({ code: 'REPLAY_PARAM_MISSING', details: { param: 'text1' } });
    const before = h.platform.events.length;
    const v = await replayOf(h, { recordingId: start.json.id, params: { text1: 'feature-x' } });
    expect(v.status).toBe('succeeded');
    expect(h.platform.events.slice(before).filter((e) => e.kind === 'type').map((e) => (e as { text: string }).text).join('')).toBe('feature-x');

    const kept = await call<{ id: string }>(h, 'POST', '/v1/recordings', { keepText: true, params: { branch: 'main' } });
    await call(h, 'POST', '/v1/actions', { type: 'type', text: 'deploy main now' });
    await call(h, 'POST', `/v1/recordings/${kept.json.id}/stop`);
    const rec2 = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${kept.json.id}`)).json;
    expect(rec2.steps[0].action.text).toBe('deploy {{branch}} now');
    const before2 = h.platform.events.length;
    expect((await replayOf(h, { recordingId: kept.json.id, params: { branch: 'release-2' } })).status).toBe('succeeded');
    expect(h.platform.events.slice(before2).filter((e) => e.kind === 'type').map((e) => (e as { text: string }).text).join('')).toBe('deploy release-2 now');

    // Typed text that reads as a parameter named like an Object.prototype member is a missing parameter before
    // anything runs (it passed the check before and stopped the replay half-way).
    const proto = await call<{ id: string }>(h, 'POST', '/v1/recordings', { keepText: true });
    await call(h, 'POST', '/v1/actions', { type: 'type', text: 'x {{constructor}}' });
    await call(h, 'POST', `/v1/recordings/${proto.json.id}/stop`);
    const before3 = h.platform.events.length;
    const refused = await call<{ error: { code: string; details: unknown } }>(h, 'POST', '/v1/replays', { recordingId: proto.json.id });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'REPLAY_PARAM_MISSING', details: { param: 'constructor' } });
    expect(h.platform.events.length).toBe(before3);
  });

  it('streams replay events as SSE like tasks (status, step, final)', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.calc.display = '0';
    h.moveTo({ x: 0, y: 0 });
    const r = await call<{ replayId: string }>(h, 'POST', '/v1/replays', { recordingId: id });
    const sse = await h.app.inject({ method: 'GET', url: `/v1/replays/${r.json.replayId}/events`, headers: { authorization: `Bearer ${AGENT}` } });
    expect(sse.headers['content-type']).toContain('text/event-stream');
    const types = [...sse.body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(types).toEqual(['status', 'status', 'step', 'step', 'step', 'step', 'final']);
    expect(sse.body).toContain('"status":"succeeded"');
  });

  it('MCP: list_recordings and replay (the same replayer, policy and divergence rules)', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.calc.display = '0';
    h.moveTo({ x: 300, y: 200 });
    const client = await h.mcp();
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual([...MCP_TOOL_NAMES, ...MCP_REPLAY_TOOL_NAMES]);
    const list = (await client.callTool({ name: 'list_recordings', arguments: {} })) as { content: { text: string }[] };
    expect(list.content[0]!.text).toContain(id);
    const r = (await client.callTool({ name: 'replay', arguments: { recordingId: id } })) as { isError?: boolean; content: { text: string }[] };
    expect(r.isError ?? false).toBe(false);
    expect(r.content[0]!.text).toMatch(/succeeded/);
    expect(h.calc.display).toBe('42');
    h.calc.names['='] = 'equals';
    h.calc.display = '0';
    h.moveTo({ x: 300, y: 200 });
    const d = (await client.callTool({ name: 'replay', arguments: { recordingId: id } })) as { isError?: boolean; content: { text: string }[] };
    expect(d.isError).toBe(true);
    expect(d.content[0]!.text).toMatch(/diverged at step 4 \(weak_match\)/);
    expect(d.content[0]!.text).toContain('candidate button "equals"');
    expect(h.calc.display).toBe('7×6');
    const bad = (await client.callTool({ name: 'replay', arguments: { recordingId: 'rec_00000000-0000-0000-0000-000000000000' } })) as { isError?: boolean; content: { text: string }[] };
    expect(bad.content[0]!.text).toMatch(/^RECORDING_NOT_FOUND/);
    await client.close();
  });

  it('the operator credential, which the console uses, lists the same recordings', async () => {
    const h = await harness();
    const id = await record7x6(h);
    const asOperator = await call<{ recordings: { id: string }[] }>(h, 'GET', '/v1/recordings', undefined, OPERATOR);
    expect(asOperator.json.recordings.map((r) => r.id)).toEqual([id]);
  });

  it('onDivergence "model" hands the remaining goal to a task; without a model the replay says so and stays diverged', async () => {
    const goals: string[] = [];
    const tasks = {
      start: (r: { goal: string }) => (goals.push(r.goal), 'task_handover'),
      get: () => ({ goal: '' }),
      wait: async () => undefined,
    };
    const h = await harness([], tasks);
    const id = await record7x6(h);
    h.calc.display = '0';
    h.calc.names['6'] = 'six';
    h.moveTo({ x: 0, y: 0 });
    const v = await replayOf(h, { recordingId: id, onDivergence: 'model' });
    expect(v.status).toBe('handed_over');
    expect(v.handoverTaskId).toBe('task_handover');
    expect(v.divergence.step).toBe(3);
    expect(goals).toHaveLength(1);
    expect(goals[0]).toContain('compute 7×6');
    expect(goals[0]).toContain('click on button "6"');
    expect(goals[0]).toContain('click on button "="');
    expect(h.clicks().slice(4)).toEqual(['7', '×']);

    const noModel = await harness([], { start: () => { throw Object.assign(new Error('No model is configured'), { code: 'MODEL_NOT_CONFIGURED' }); }, get: () => ({ goal: '' }), wait: async () => undefined });
    const id2 = await record7x6(noModel);
    noModel.calc.display = '0';
    noModel.calc.names['6'] = 'six';
    noModel.moveTo({ x: 0, y: 0 });
    const v2 = await replayOf(noModel, { recordingId: id2, onDivergence: 'model' });
    expect(v2.status).toBe('diverged');
    expect(v2.error.message).toContain('no model took over');
  });

  it('the controller lease applies to replays, also on an encoded path; nothing is dispatched', async () => {
    const h = await harness();
    const id = await record7x6(h);
    h.calc.display = '0';
    // The recording client (agent/default) holds the lease; another client tries to replay.
    const held = await h.app.inject({ method: 'POST', url: '/v1/lease', headers: { authorization: `Bearer ${AGENT}`, 'content-type': 'application/json' }, payload: '{}' });
    expect(held.statusCode).toBe(200);
    const before = h.platform.events.length;
    for (const url of ['/v1/replays', '/v1/%72eplays', '/v1//replays']) {
      const r = await h.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${AGENT}`, 'x-deskd-client': 'other', 'content-type': 'application/json' }, payload: JSON.stringify({ recordingId: id }) });
      expect([409, 404], url).toContain(r.statusCode);
      if (r.statusCode === 409) expect(r.json().error.code, url).toBe('LEASE_HELD');
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(h.platform.events.length).toBe(before);
    expect((await call<{ replays: unknown[] }>(h, 'GET', '/v1/replays')).json.replays).toEqual([]);
  });

  it('size caps: recordings beyond the count cap are refused, steps beyond the step cap are left out and noted', async () => {
    const h = await harness([], undefined, { maxRecordings: 1, maxSteps: 2 });
    const start = await call<{ id: string }>(h, 'POST', '/v1/recordings', {});
    for (let i = 0; i < 3; i++) expect((await call(h, 'POST', '/v1/actions', { type: 'keypress', keys: ['a'] })).status).toBe(200);
    await call(h, 'POST', `/v1/recordings/${start.json.id}/stop`);
    const rec = (await call<Record<string, any>>(h, 'GET', `/v1/recordings/${start.json.id}`)).json;
    expect(rec.steps).toHaveLength(2);
    expect(rec.notes).toEqual(['steps beyond 2 were not recorded (the cap)']);
    const second = await call<{ error: { code: string } }>(h, 'POST', '/v1/recordings', {});
    expect(second.status).toBe(413);
    expect(second.json.error.code).toBe('RECORDING_LIMIT');
  });
});

