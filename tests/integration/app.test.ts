import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { allowAllGate } from '../helpers/allowAllGate.js';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { ObservationStore, Observer, type TextRecognizer } from '../../src/perception/observer.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';

const TOKEN = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

/** A recogniser that "reads" fixed lines, so the HTTP layer is tested without tesseract. */
const fakeOcr: TextRecognizer = {
  async recognize() {
    const bounds = { x: 300, y: 40, width: 120, height: 20 };
    return { words: [{ text: 'Result:', bounds, confidence: 0.93 }], lines: [{ text: 'Result: 42', bounds: { x: 300, y: 40, width: 200, height: 20 } }] };
  },
};

let platform: FakePlatform;
let app: FastifyInstance;

beforeEach(async () => {
  platform = createFakePlatform({
    tree: [
      axNode('application', 'calc', null, {
        children: [
          axNode('window', 'Calculator', { x: 0, y: 0, width: 600, height: 400 }, {
            children: [
              axNode('button', '7 7', { x: 10, y: 100, width: 40, height: 30 }, { handle: 'h7' }),
              axNode('button', '×', { x: 60, y: 100, width: 40, height: 30 }, { handle: 'hx' }),
              axNode('textbox', 'Password', { x: 10, y: 200, width: 200, height: 30 }, { handle: 'hp', states: ['editable', 'password'], value: 'hunter2' }),
            ],
          }),
        ],
      }),
    ],
    focused: { app: 'calc', pid: 42, window: 'Calculator' },
  });
  const store = new ObservationStore();
  const observer = new Observer(platform, fakeOcr, store);
  const executor = new Executor({ platform, store, policy: await allowAllGate(), verifyElement: createElementVerifier(platform, fakeOcr), agentCapture: async (id) => (await observer.agentCapture.capture(id)).image });
  app = await buildApp({ platform, observer, executor, token: TOKEN, version: '0.0.0-test' });
});
afterEach(async () => {
  await app.close();
});

async function observe(body: object = {}) {
  const r = await app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: body });
  expect(r.statusCode).toBe(200);
  return r.json();
}

describe('auth', () => {
  it('health needs no token and lists displays in points', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/health' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ status: 'ok', platform: 'fake', displays: [{ id: 0, x: 0, y: 0, width: 1280, height: 800, scaleFactor: 1, primary: true }] });
  });
  it.each([
    ['missing', {}],
    ['wrong', { authorization: 'Bearer nope-nope-nope-nope' }],
    ['not bearer', { authorization: `Basic ${TOKEN}` }],
  ])('%s token → 401 UNAUTHORIZED and nothing dispatched', async (_n, headers) => {
    const r = await app.inject({ method: 'POST', url: '/v1/actions', headers, payload: { type: 'click', x: 1, y: 1 } });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('UNAUTHORIZED');
    expect(platform.events).toEqual([]);
  });
  it('the OpenAPI document is served and lists the v1 routes', async () => {
    const r = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(r.statusCode).toBe(200);
    const doc = r.json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/health', '/v1/screenshot', '/v1/observe', '/v1/actions']));
    expect(doc.paths['/v1/observe'].post.requestBody).toBeDefined();
  });
  it('unknown routes → 404 NOT_FOUND', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/nope', headers: auth });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('NOT_FOUND');
  });
});

describe('observe', () => {
  it('returns fused elements with refs, words, lines, timings and focus', async () => {
    const o = await observe();
    expect(o.observationId).toMatch(/^obs_/);
    expect(o.focused).toEqual({ app: 'calc', pid: 42, window: 'Calculator' });
    const names = o.elements.map((e: { name: string }) => e.name);
    expect(names).toContain('7'); // "7 7" normalised
    expect(names).toContain('Result: 42'); // OCR text outside any element
    const seven = o.elements.find((e: { name: string }) => e.name === '7');
    expect(seven).toMatchObject({ role: 'button', bounds: { x: 10, y: 100, width: 40, height: 30 }, source: 'accessibility' });
    expect(seven.handle).toBeUndefined();
    expect(o.words[0]).toMatchObject({ text: 'Result:', confidence: 0.93 });
    expect(Object.keys(o.timings).sort()).toEqual(['accessibilityMs', 'captureMs', 'ocrMs', 'settleMs', 'totalMs']);
    expect(o.ocrStats.mode).toBe('full');
  });
  it('never returns a password field value', async () => {
    const o = await observe();
    const pw = o.elements.find((e: { states: string[] }) => e.states.includes('password'));
    expect(pw).toBeDefined();
    expect(pw.value).toBeUndefined();
    expect(JSON.stringify(o)).not.toContain('hunter2');
  });
  it('can include a PNG screenshot', async () => {
    const o = await observe({ screenshot: 'png', accessibility: false, ocr: false });
    expect(o.screenshot.format).toBe('png');
    expect(Buffer.from(o.screenshot.data, 'base64').subarray(1, 4).toString()).toBe('PNG');
    expect(o.elements).toEqual([]);
  });
  it('rejects unknown fields with VALIDATION_FAILED', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/observe', headers: auth, payload: { ocr: 'yes' } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('VALIDATION_FAILED');
  });
});

describe('screenshot', () => {
  it('serves a PNG in logical points on a Retina-like display, with the scale header', async () => {
    platform = createFakePlatform({ displays: [{ id: 1, x: -1440, y: 0, width: 1440, height: 900, scaleFactor: 2, primary: true }] });
    const store = new ObservationStore();
    const a = await buildApp({ platform, observer: new Observer(platform, null, store), executor: new Executor({ platform, store, policy: await allowAllGate() }), token: TOKEN, version: 't' });
    const r = await a.inject({ method: 'GET', url: '/v1/screenshot?format=png', headers: auth });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['x-deskd-scale']).toBe('1');
    expect(r.headers['x-deskd-origin']).toBe('-1440,0');
    expect(r.rawPayload.readUInt32BE(16)).toBe(1440); // PNG IHDR width
    const native = await a.inject({ method: 'GET', url: '/v1/screenshot?scale=native&format=jpeg', headers: auth });
    expect(native.headers['x-deskd-scale']).toBe('2');
    expect(native.headers['content-type']).toBe('image/jpeg');
    const missing = await a.inject({ method: 'GET', url: '/v1/screenshot?display=9', headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('DISPLAY_NOT_FOUND');
    await a.close();
  });
});

describe('actions', () => {
  async function act(payload: unknown, headers: Record<string, string> = {}) {
    return app.inject({ method: 'POST', url: '/v1/actions', headers: { ...auth, 'content-type': 'application/json', ...headers }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
  }

  it('click dispatches move, down, up at the point', async () => {
    const r = await act({ type: 'click', x: 100, y: 200, button: 'left' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ status: 'done', results: [{ type: 'click', point: { x: 100, y: 200 } }] });
    expect(r.json().actionId).toMatch(/^act_/);
    expect(platform.events).toEqual([{ kind: 'move', x: 100, y: 200 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }]);
  });

  it('results name what the action hit (app and accessible element under the point) and say double_click', async () => {
    const r = await act({ actions: [{ type: 'click', x: 30, y: 115, button: 'left' }, { type: 'double_click', x: 80, y: 115 }, { type: 'click', x: 500, y: 350, button: 'left' }] });
    expect(r.statusCode, r.body).toBe(200);
    const [a, b, c] = r.json().results;
    expect(a).toMatchObject({ type: 'click', hit: { app: 'fakeapp', element: { role: 'button', name: '7' } } });
    expect(b).toMatchObject({ type: 'double_click', hit: { element: { role: 'button', name: '×' } } });
    expect(c).toMatchObject({ type: 'click', hit: { app: 'fakeapp', element: null } });
  });

  it('a batch runs in order: double_click, type, keypress, scroll, drag', async () => {
    const r = await act({
      actions: [
        { type: 'double_click', x: 5, y: 5 },
        { type: 'type', text: 'hi\n' },
        { type: 'keypress', keys: ['CTRL', 'A'] },
        { type: 'scroll', x: 10, y: 10, scroll_x: 0, scroll_y: 120 },
        { type: 'drag', path: [{ x: 1, y: 1 }, { x: 50, y: 60 }], keys: ['shift'] },
        { type: 'wait', ms: 1 },
        { type: 'move', x: 3, y: 4 },
      ],
    });
    expect(r.statusCode).toBe(200);
    expect(platform.events).toEqual([
      { kind: 'move', x: 5, y: 5 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' },
      { kind: 'type', text: 'hi' }, { kind: 'keydown', key: 'enter' }, { kind: 'keyup', key: 'enter' },
      { kind: 'keydown', key: 'ctrl' }, { kind: 'keydown', key: 'a' }, { kind: 'keyup', key: 'a' }, { kind: 'keyup', key: 'ctrl' },
      { kind: 'move', x: 10, y: 10 }, { kind: 'wheel', dx: 0, dy: 2 },
      // The drag moves through interpolated points at most 20 points apart (dragPoints), then releases.
      { kind: 'keydown', key: 'shift' }, { kind: 'move', x: 1, y: 1 }, { kind: 'down', button: 'left' },
      { kind: 'move', x: 13, y: 16 }, { kind: 'move', x: 26, y: 31 }, { kind: 'move', x: 38, y: 45 }, { kind: 'move', x: 50, y: 60 },
      { kind: 'up', button: 'left' }, { kind: 'keyup', key: 'shift' },
      { kind: 'move', x: 3, y: 4 },
    ]);
  });

  it('clicks the centre of an element targeted by ref', async () => {
    const o = await observe();
    const seven = o.elements.find((e: { name: string }) => e.name === '7');
    const r = await act({ type: 'click', target: { ref: seven.ref, observationId: o.observationId } });
    expect(r.statusCode).toBe(200);
    expect(platform.events[0]).toEqual({ kind: 'move', x: 30, y: 115 });
  });

  it('a ref whose element moved, vanished or was renamed → 409 STALE_REF, nothing dispatched', async () => {
    const o = await observe();
    const seven = o.elements.find((e: { name: string }) => e.name === '7');
    const times = o.elements.find((e: { name: string }) => e.name === '×');
    const win = platform.tree[0]!.children[0]!;
    win.children[0]!.bounds = { x: 300, y: 300, width: 40, height: 30 }; // moved
    win.children[1]!.name = '÷'; // renamed
    for (const el of [seven, times]) {
      const r = await act({ type: 'click', target: { ref: el.ref, observationId: o.observationId } });
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('STALE_REF');
    }
    win.children.splice(0, 2); // vanished
    const r = await act({ type: 'click', target: { ref: seven.ref, observationId: o.observationId } });
    expect(r.json().error.code).toBe('STALE_REF');
    expect(r.json().error.message).toMatch(/vanished/);
    expect(platform.events).toEqual([]);
  });

  it.each([
    { name: 'unknown action type', payload: { type: 'teleport', x: 1, y: 1 }, status: 400, code: 'UNKNOWN_ACTION' },
    { name: 'missing type', payload: { x: 1, y: 1 }, status: 400, code: 'UNKNOWN_ACTION' },
    { name: 'missing coordinates', payload: { type: 'click' }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'mistyped field', payload: { type: 'click', x: 'ten', y: 1 }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'unknown field', payload: { type: 'type', text: 'a', speed: 3 }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'point off every display', payload: { type: 'click', x: 5000, y: 10 }, status: 400, code: 'POINT_OFF_SCREEN' },
    { name: 'negative point', payload: { type: 'move', x: -1, y: 10 }, status: 400, code: 'POINT_OFF_SCREEN' },
    { name: 'unknown key', payload: { type: 'keypress', keys: ['HYPERDRIVE'] }, status: 400, code: 'UNKNOWN_KEY' },
    { name: 'control character in type', payload: { type: 'type', text: 'a\u0007b' }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'unknown observation', payload: { type: 'click', target: { ref: 'e1', observationId: 'obs_nope' } }, status: 404, code: 'OBSERVATION_NOT_FOUND' },
    { name: 'both point and target', payload: { type: 'click', x: 1, y: 1, target: { ref: 'e1', observationId: 'x' } }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'empty batch', payload: { actions: [] }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'a bad action late in a batch', payload: { actions: [{ type: 'click', x: 1, y: 1 }, { type: 'type', text: 'ok' }, { type: 'nope' }] }, status: 400, code: 'UNKNOWN_ACTION' },
    { name: 'an off-screen point late in a batch', payload: { actions: [{ type: 'click', x: 1, y: 1 }, { type: 'drag', path: [{ x: 1, y: 1 }, { x: 1, y: 9999 }] }] }, status: 400, code: 'POINT_OFF_SCREEN' },
    { name: 'not an object', payload: [1, 2], status: 400, code: 'VALIDATION_FAILED' },
  ])('$name → $status $code, nothing dispatched', async ({ payload, status, code }) => {
    const r = await act(payload);
    expect(r.statusCode).toBe(status);
    expect(r.json().error.code).toBe(code);
    expect(typeof r.json().error.message).toBe('string');
    expect(platform.events).toEqual([]);
  });

  it('a ref missing from its observation → 404 REF_NOT_FOUND', async () => {
    const o = await observe();
    const r = await act({ type: 'click', target: { ref: 'e999', observationId: o.observationId } });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('REF_NOT_FOUND');
  });

  it('a body that is not JSON → 400 INVALID_JSON', async () => {
    const r = await act('{"type": "click", x: }');
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('INVALID_JSON');
    expect(platform.events).toEqual([]);
  });

  it('a body that is not application/json → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const r = await act('type=click', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.statusCode).toBe(415);
    expect(r.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
