/**
 * find, wait, element actions and targets by text / role+name, through the HTTP app on the fake platform
 * (with a fake OCR that "reads" whatever lines the test sets).
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { allowAllGate } from '../helpers/allowAllGate.js';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { createFakePlatform, axNode, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import { DEFAULT_AX_BUDGET, ObservationStore, Observer, type TextRecognizer } from '../../src/perception/observer.js';
import { Executor } from '../../src/actuation/executor.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import type { OcrLine } from '../../src/perception/elements.js';
import { MARK_COLORS } from '../../src/perception/annotate.js';
import { buildPolicyApp, AGENT_TOKEN } from '../helpers/testApp.js';

const TOKEN = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

let platform: FakePlatform;
let app: FastifyInstance;
let store: ObservationStore;
let ocrLines: OcrLine[];

const ocr: TextRecognizer = {
  async recognize() {
    return { words: ocrLines.flatMap((l) => l.words ?? []), lines: ocrLines.map((l) => ({ ...l })) };
  },
};

/** A page: a "Run build" button (with an action), a "Details" button without actions, a text field, a password field, a heading. */
function tree() {
  return [
    axNode('application', 'ci', null, {
      children: [
        axNode('window', 'CI', { x: 0, y: 0, width: 1280, height: 800 }, {
          children: [
            axNode('heading', 'Run build history', { x: 20, y: 20, width: 400, height: 40 }, { handle: 'hh' }),
            axNode('button', 'Run build', { x: 100, y: 100, width: 120, height: 40 }, { handle: 'hb', actions: ['click'] }),
            axNode('button', 'Details', { x: 300, y: 100, width: 100, height: 40 }, { handle: 'hd', actions: [] }),
            axNode('textbox', 'Branch', { x: 100, y: 200, width: 300, height: 30 }, { handle: 'ht', states: ['enabled', 'editable', 'focusable'], value: 'main' }),
            axNode('textbox', 'Password', { x: 100, y: 260, width: 300, height: 30 }, { handle: 'hp', states: ['enabled', 'editable', 'password'] }),
            axNode('label', 'Status', { x: 100, y: 320, width: 80, height: 20 }, { handle: 'hl' }),
          ],
        }),
      ],
    }),
  ];
}

async function build(storeCapacity = 32) {
  store = new ObservationStore(storeCapacity);
  // The fake world changes its tree and OCR text without changing pixels: read everything every time
  // (no incremental OCR, no accessibility cache), as a real screen's changed pixels would make them do.
  const observer = new Observer(platform, ocr, store, DEFAULT_AX_BUDGET, null, { incremental: false, axCache: false, settle: false });
  const executor = new Executor({ platform, store, policy: await allowAllGate(), verifyElement: createElementVerifier(platform, ocr) });
  app = await buildApp({ platform, observer, executor, token: TOKEN, version: 't' });
}

beforeEach(async () => {
  ocrLines = [{ text: 'Pipeline deploy: queued', bounds: { x: 600, y: 400, width: 240, height: 20 } }];
  platform = createFakePlatform({ tree: tree(), focused: { app: 'ci', pid: 1, window: 'CI' } });
  await build();
});
afterEach(async () => app.close());

const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, headers: auth, payload: payload as object });

describe('POST /v1/find', () => {
  it('ranks an exact button above a heading that starts with the text, with refs of a stored observation', async () => {
    const r = await post('/v1/find', { text: 'run build' });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.matches.map((m: { name: string; match: string }) => [m.name, m.match])).toEqual([
      ['Run build', 'exact'],
      ['Run build history', 'prefix'],
    ]);
    const [best] = body.matches;
    expect(best).toMatchObject({ role: 'button', observationId: body.observationId, bounds: { x: 100, y: 100, width: 120, height: 40 }, score: 1 });
    expect(body.timings.observeMs).toBeGreaterThanOrEqual(0);
    // The ref is usable with that observation.
    const a = await post('/v1/actions', { type: 'click', target: { ref: best.ref, observationId: body.observationId } });
    expect(a.statusCode, a.body).toBe(200);
  });

  it('filters by role and name, finds OCR text by a fuzzy word, searches a given observation, and answers [] for no match', async () => {
    const rn = (await post('/v1/find', { role: 'textbox', name: 'branch' })).json();
    expect(rn.matches).toHaveLength(1);
    expect(rn.matches[0]).toMatchObject({ role: 'textbox', name: 'Branch' });
    const fuzzy = (await post('/v1/find', { text: 'dep1oy' })).json(); // OCR-style 1 for l
    expect(fuzzy.matches[0]).toMatchObject({ role: 'text', name: 'Pipeline deploy: queued', match: 'contains' });
    const o = (await post('/v1/observe', {})).json();
    const inObs = (await post('/v1/find', { text: 'Details', observationId: o.observationId })).json();
    expect(inObs.observationId).toBe(o.observationId);
    expect(inObs.matches[0].role).toBe('button');
    const none = await post('/v1/find', { text: 'Launch rockets' });
    expect(none.statusCode).toBe(200);
    expect(none.json().matches).toEqual([]);
  });

  it('refuses an empty query and an unknown observation', async () => {
    const r = await post('/v1/find', { exact: true });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('VALIDATION_FAILED');
    const u = await post('/v1/find', { text: 'x', observationId: 'obs_nope' });
    expect(u.statusCode).toBe(404);
    expect(u.json().error.code).toBe('OBSERVATION_NOT_FOUND');
  });
});

describe('targets by text and by role + name', () => {
  it('click target {text} clicks the centre of the best match', async () => {
    const r = await post('/v1/actions', { type: 'click', target: { text: 'Run build' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(platform.events).toEqual([{ kind: 'move', x: 160, y: 120 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }]);
  });

  it('press target {role, name} runs the accessibility action and reports the element', async () => {
    const r = await post('/v1/actions', { type: 'press', target: { role: 'button', name: 'Run build' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(platform.events).toEqual([{ kind: 'action', handle: 'hb', action: 'press' }]);
    expect(r.json().results[0]).toMatchObject({ type: 'press', via: 'accessibility', target: { role: 'button', name: 'Run build', bounds: { x: 100, y: 100, width: 120, height: 40 } } });
    expect(r.json().results[0].target.observationId).toMatch(/^obs_/);
  });

  it('press falls back to a pointer click: no press action, the action refused, or OCR-only text', async () => {
    let r = await post('/v1/actions', { type: 'press', target: { text: 'Details' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().results[0].via).toBe('pointer');
    expect(platform.events).toEqual([{ kind: 'move', x: 350, y: 120 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }]);

    platform.events.length = 0;
    platform.refuseActions.add('hb');
    r = await post('/v1/actions', { type: 'press', target: { text: 'Run build', exact: true } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().results[0].via).toBe('pointer');
    expect(platform.events).toEqual([{ kind: 'action', handle: 'hb', action: 'press' }, { kind: 'move', x: 160, y: 120 }, { kind: 'down', button: 'left' }, { kind: 'up', button: 'left' }]);

    platform.events.length = 0;
    r = await post('/v1/actions', { type: 'press', target: { text: 'queued' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(platform.events.filter((e) => e.kind === 'action')).toEqual([]);
    expect(platform.events[0]).toEqual({ kind: 'move', x: 720, y: 410 });
  });

  it('a target by text inside a long OCR line aims at the matching words', async () => {
    ocrLines = [
      {
        text: 'Pipeline deploy Retry',
        bounds: { x: 600, y: 400, width: 300, height: 20 },
        words: [
          { text: 'Pipeline', bounds: { x: 600, y: 400, width: 80, height: 20 }, confidence: 0.9 },
          { text: 'deploy', bounds: { x: 690, y: 400, width: 60, height: 20 }, confidence: 0.9 },
          { text: 'Retry', bounds: { x: 850, y: 400, width: 50, height: 20 }, confidence: 0.9 },
        ],
      },
    ];
    const r = await post('/v1/actions', { type: 'click', target: { text: 'Retry' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(platform.events[0]).toEqual({ kind: 'move', x: 875, y: 410 });
  });

  it('no match → 404 TARGET_NOT_FOUND and nothing of the batch is dispatched', async () => {
    for (const body of [
      { type: 'press', target: { text: 'Launch rockets' } },
      { type: 'click', target: { role: 'button', name: 'Branch' } },
      { actions: [{ type: 'click', x: 5, y: 5 }, { type: 'type', text: 'x' }, { type: 'set_value', target: { role: 'textbox', name: 'Nope' }, value: 'v' }] },
    ]) {
      const r = await post('/v1/actions', body);
      expect(r.statusCode, r.body).toBe(404);
      expect(r.json().error.code).toBe('TARGET_NOT_FOUND');
    }
    expect(platform.events).toEqual([]);
  });

  it('a malformed target is a validation error', async () => {
    for (const target of [{}, { ref: 'e1' }, { text: '' }, { text: 'x', bogus: 1 }]) {
      const r = await post('/v1/actions', { type: 'press', target });
      expect(r.statusCode, JSON.stringify(target)).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION_FAILED');
    }
    expect(platform.events).toEqual([]);
  });
});

describe('set_value and focus', () => {
  it('set_value replaces the text of an editable element', async () => {
    const r = await post('/v1/actions', { type: 'set_value', target: { role: 'textbox', name: 'Branch' }, value: 'release/1.2' });
    expect(r.statusCode, r.body).toBe(200);
    expect(platform.events).toEqual([{ kind: 'setValue', handle: 'ht', value: 'release/1.2' }]);
    const o = (await post('/v1/observe', { ocr: false })).json();
    expect(o.elements.find((e: { name: string }) => e.name === 'Branch').value).toBe('release/1.2');
  });

  it('set_value is refused for password fields (POLICY_DENIED) and non-editable elements (ELEMENT_NOT_ACTIONABLE); nothing dispatched', async () => {
    let r = await post('/v1/actions', { type: 'set_value', target: { role: 'textbox', name: 'Password' }, value: 'hunter2' });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('POLICY_DENIED');
    expect(r.body).not.toContain('hunter2');
    r = await post('/v1/actions', { type: 'set_value', target: { text: 'Run build', exact: true }, value: 'x' });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('ELEMENT_NOT_ACTIONABLE');
    r = await post('/v1/actions', { type: 'set_value', target: { text: 'queued' }, value: 'x' });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(platform.events).toEqual([]);
  });

  it('without editable text, set_value focuses the field, checks the focus, selects all and types', async () => {
    platform.noEditableText.add('ht');
    // The fake's focus lives in the tree: the field already holds the focus here.
    platform.tree[0]!.children[0]!.children[3]!.states.push('focused');
    const r = await post('/v1/actions', { type: 'set_value', target: { role: 'textbox', name: 'Branch' }, value: 'dev' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().results[0].via).toBe('keyboard');
    expect(platform.events).toEqual([
      { kind: 'setValue', handle: 'ht', value: 'dev' },
      { kind: 'action', handle: 'ht', action: 'focus' },
      { kind: 'keydown', key: 'ctrl' },
      { kind: 'keydown', key: 'a' },
      { kind: 'keyup', key: 'a' },
      { kind: 'keyup', key: 'ctrl' },
      { kind: 'type', text: 'dev' },
    ]);
  });

  it('without editable text, set_value types nothing when the focus does not reach the field', async () => {
    platform.noEditableText.add('ht');
    const r = await post('/v1/actions', { type: 'set_value', target: { role: 'textbox', name: 'Branch' }, value: 'dev' });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(r.json().error.message).toMatch(/focus did not reach/);
    expect(platform.events.filter((e) => e.kind === 'keydown' || e.kind === 'type')).toEqual([]);
  });

  it('focus grabs focus through the accessibility backend; OCR text cannot be focused', async () => {
    const r = await post('/v1/actions', { type: 'focus', target: { role: 'textbox', name: 'Branch' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(platform.events).toEqual([{ kind: 'action', handle: 'ht', action: 'focus' }]);
    const bad = await post('/v1/actions', { type: 'focus', target: { text: 'queued' } });
    expect(bad.statusCode).toBe(409);
    expect(bad.json().error.code).toBe('ELEMENT_NOT_ACTIONABLE');
  });

  it('element actions by ref verify the ref first (STALE_REF when the element moved)', async () => {
    const o = (await post('/v1/observe', {})).json();
    const b = o.elements.find((e: { name: string }) => e.name === 'Run build');
    platform.tree = tree();
    platform.tree[0]!.children[0]!.children[1]!.bounds = { x: 500, y: 500, width: 120, height: 40 };
    const r = await post('/v1/actions', { type: 'press', target: { ref: b.ref, observationId: o.observationId } });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('STALE_REF');
    expect(platform.events).toEqual([]);
  });
});

describe('POST /v1/wait', () => {
  it('returns the observation once the text appears after the tree changes', async () => {
    setTimeout(() => {
      platform.tree = tree();
      platform.tree[0]!.children[0]!.children.push(axNode('text', 'Build #42 passed', { x: 100, y: 400, width: 200, height: 20 }, { handle: 'hs' }));
    }, 300);
    const r = await post('/v1/wait', { until: { text: 'Build #42 passed' }, timeoutMs: 10_000, intervalMs: 50 });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.polls).toBeGreaterThan(1);
    expect(body.matches[0]).toMatchObject({ name: 'Build #42 passed', match: 'exact', observationId: body.observation.observationId });
    expect(body.observation.elements.some((e: { name: string }) => e.name === 'Build #42 passed')).toBe(true);
    // The answer's observation is stored: its refs work.
    const a = await post('/v1/actions', { type: 'click', target: { ref: body.matches[0].ref, observationId: body.observation.observationId } });
    expect(a.statusCode, a.body).toBe(200);
  });

  it('waits for text to go and for an element by role and name (OCR text changing)', async () => {
    setTimeout(() => {
      ocrLines = [{ text: 'Pipeline deploy: done', bounds: { x: 600, y: 400, width: 240, height: 20 } }];
    }, 200);
    const gone = await post('/v1/wait', { until: { textGone: 'queued' }, timeoutMs: 10_000, intervalMs: 50 });
    expect(gone.statusCode, gone.body).toBe(200);
    expect(gone.json().observation.lines.map((l: { text: string }) => l.text)).toEqual(['Pipeline deploy: done']);
    const el = await post('/v1/wait', { until: { element: { role: 'button', name: 'Details' } }, timeoutMs: 1000 });
    expect(el.statusCode, el.body).toBe(200);
    expect(el.json().polls).toBe(1);
  });

  it('times out with 504 TIMEOUT, and its polls do not evict the observations an agent holds', async () => {
    await app.close();
    await build(4);
    const o = (await post('/v1/observe', {})).json();
    const r = await post('/v1/wait', { until: { text: 'Never shown anywhere' }, timeoutMs: 1500, intervalMs: 50 });
    expect(r.statusCode).toBe(504);
    const err = r.json().error;
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toMatch(/Never shown anywhere/);
    expect(err.details.polls).toBeGreaterThan(4); // more polls than the store holds
    const still = await post('/v1/find', { text: 'Run build', observationId: o.observationId });
    expect(still.statusCode, still.body).toBe(200);
  });

  it('validates the body: a condition is required and timeoutMs is at most 60000', async () => {
    for (const body of [{ until: {} }, { until: { text: 'x' }, timeoutMs: 60_001 }, { until: { element: {} } }, { until: { text: 'x' }, intervalMs: 1 }]) {
      const r = await post('/v1/wait', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION_FAILED');
    }
  });
});

describe('Set-of-Marks observe', () => {
  it('annotate: true returns a PNG in points with a box on each element ref', async () => {
    const r = await post('/v1/observe', { annotate: true, ocr: false });
    expect(r.statusCode, r.body).toBe(200);
    const o = r.json();
    expect(o.screenshot).toMatchObject({ format: 'png', width: 1280, height: 800, scale: 1, annotated: true });
    const { data, info } = await sharp(Buffer.from(o.screenshot.data, 'base64')).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    const button = o.elements.find((e: { name: string }) => e.name === 'Run build');
    expect(px(button.bounds.x, button.bounds.y + 20)).toEqual([...MARK_COLORS.interactive]);
    expect(px(button.bounds.x + 60, button.bounds.y + 20)).toEqual([255, 255, 255]);
    // Without annotate the screenshot is plain.
    const plain = (await post('/v1/observe', { screenshot: 'png', ocr: false })).json();
    expect(plain.screenshot.annotated).toBeUndefined();
    const p = await sharp(Buffer.from(plain.screenshot.data, 'base64')).raw().toBuffer();
    expect([...p.subarray((120 * 1280 + 100) * 4, (120 * 1280 + 100) * 4 + 3)]).toEqual([255, 255, 255]);
  });
});

describe('element actions under the permission policy', () => {
  const POLICY = `
version: 1
defaults: { unmatched: deny }
rules:
  - { id: allow-readonly, effect: allow, match: { actions: ["@readonly"] } }
  - { id: allow-pointer, effect: allow, match: { app: ["fakeapp"], actions: ["@pointer"] } }
  - { id: allow-set-value, effect: allow, match: { app: ["fakeapp"], actions: ["set_value"] } }
`;
  it('press is decided as press (denied here, nothing dispatched); set_value into a password field hits the invariant', async () => {
    const t = await buildPolicyApp(platform, POLICY, ocr);
    try {
      const h = { authorization: `Bearer ${AGENT_TOKEN}` };
      let r = await t.app.inject({ method: 'POST', url: '/v1/actions', headers: h, payload: { type: 'press', target: { role: 'button', name: 'Run build' } } });
      expect(r.statusCode).toBe(403);
      expect(r.json().error.message).toMatch(/default:unmatched/);
      r = await t.app.inject({ method: 'POST', url: '/v1/actions', headers: h, payload: { type: 'set_value', target: { role: 'textbox', name: 'Password' }, value: 'hunter2' } });
      expect(r.statusCode).toBe(403);
      expect(r.json().error.message).toMatch(/invariant:password-field/);
      expect(platform.events).toEqual([]);
      r = await t.app.inject({ method: 'POST', url: '/v1/actions', headers: h, payload: { type: 'set_value', target: { role: 'textbox', name: 'Branch' }, value: 'dev' } });
      expect(r.statusCode, r.body).toBe(200);
      r = await t.app.inject({ method: 'POST', url: '/v1/actions', headers: h, payload: { type: 'click', target: { text: 'Run build' } } });
      expect(r.statusCode, r.body).toBe(200);
      expect(platform.events.map((e) => e.kind)).toEqual(['setValue', 'move', 'down', 'up']);
    } finally {
      await t.close();
    }
  });
});
