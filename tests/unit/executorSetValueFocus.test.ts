/**
 * `set_value` on a field without an editable-text interface (Chromium's web fields over AT-SPI): the
 * executor gives the element's own window the keyboard focus, focuses the element through accessibility,
 * and types only once the focused element is that field and its window holds the keyboard focus
 * (src/actuation/executor.ts `focusForTyping`). Otherwise nothing is typed (`ELEMENT_NOT_ACTIONABLE`).
 * Fake platform, real gate (allow-all), real observer so refs are real.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Executor } from '../../src/actuation/executor.js';
import { DeskdError } from '../../src/errors.js';
import { axNode, createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { RawAXNode, WindowInfo } from '../../src/platform/types.js';
import { DEFAULT_AX_BUDGET, ObservationStore, Observer } from '../../src/perception/observer.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { HaltSwitch } from '../../src/policy/halt.js';
import { allowAllGate } from '../helpers/allowAllGate.js';

const FORM: WindowInfo = { id: '0xf', app: 'chromium', pid: 30, wmClass: 'Chromium', title: 'Form', bounds: { x: 0, y: 0, width: 800, height: 600 } };
const NOTES: WindowInfo = { id: '0xn', app: 'gedit', pid: 31, wmClass: 'Gedit', title: 'notes', bounds: { x: 800, y: 0, width: 400, height: 600 } };

let platform: FakePlatform;
let observer: Observer;
let store: ObservationStore;
let field: RawAXNode;
let other: RawAXNode;

beforeEach(() => {
  field = axNode('entry', 'Email', { x: 100, y: 100, width: 300, height: 30 }, { states: ['editable', 'focusable'] });
  other = axNode('entry', 'Name', { x: 100, y: 200, width: 300, height: 30 }, { states: ['editable', 'focusable'] });
  platform = createFakePlatform({
    tree: [axNode('application', 'chromium', null, { children: [axNode('window', 'Form', FORM.bounds, { children: [field, other] })] })],
    windows: [{ ...FORM }, { ...NOTES }],
  });
  platform.appOwners.set(platform.tree[0]!.handle, { app: 'chromium', pid: 30 });
  platform.noEditableText.add(field.handle);
  platform.noEditableText.add(other.handle);
  platform.focusedWindowId = NOTES.id; // the keyboard focus starts elsewhere
  store = new ObservationStore();
  observer = new Observer(platform, null, store, DEFAULT_AX_BUDGET);
});
afterEach(() => observer.close());

/** The accessibility focus follows `doAction(focus)` onto `to(handle)` (default: the element itself). */
function focusGoesTo(to: (handle: string) => RawAXNode | null = (h) => (h === field.handle ? field : h === other.handle ? other : null)) {
  const doAction = platform.accessibility.doAction.bind(platform.accessibility);
  platform.accessibility.doAction = async (handle, action) => {
    const ok = await doAction(handle, action);
    if (action === 'focus') {
      for (const n of [field, other]) n.states = n.states.filter((s) => s !== 'focused');
      const t = to(handle);
      if (t) t.states = [...t.states, 'focused'];
    }
    return ok;
  };
}

async function run(value = 'me@example.test') {
  const o = await observer.observe({ ocr: false, accessibility: true });
  const el = o.elements.find((e) => e.name === 'Email');
  if (!el) throw new Error(`no Email field in ${JSON.stringify(o.elements.map((e) => e.name))}`);
  const ex = new Executor({ platform, store, policy: await allowAllGate(), halt: new HaltSwitch(), verifyElement: createElementVerifier(platform, null) });
  return ex.run([{ type: 'set_value', target: { ref: el.ref, observationId: o.observationId }, value }]);
}
const typed = () => platform.events.filter((e) => e.kind === 'type').map((e) => (e as { text: string }).text).join('');

async function refusal(p: Promise<unknown>): Promise<DeskdError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e, 'expected a DeskdError').toBeInstanceOf(DeskdError);
  return e as DeskdError;
}

describe('set_value by keyboard', () => {
  it('activates the element\'s window, focuses the field, selects all and types the value', async () => {
    focusGoesTo();
    const r = await run();
    expect(r.results[0]).toMatchObject({ type: 'set_value', via: 'keyboard', target: { role: expect.any(String), name: 'Email' } });
    const kinds = platform.events.map((e) => (e.kind === 'action' ? `action:${e.action}` : e.kind));
    expect(kinds.indexOf('activate')).toBeLessThan(kinds.indexOf('action:focus'));
    expect(platform.events).toContainEqual({ kind: 'activate', id: FORM.id });
    expect(platform.events).toContainEqual({ kind: 'keydown', key: 'ctrl' });
    expect(platform.events).toContainEqual({ kind: 'keydown', key: 'a' });
    expect(typed()).toBe('me@example.test');
  });

  it('the window already focused is not activated again', async () => {
    platform.focusedWindowId = FORM.id;
    focusGoesTo();
    await run();
    expect(platform.events.some((e) => e.kind === 'activate')).toBe(false);
    expect(typed()).toBe('me@example.test');
  });

  it('the app refuses focus → ELEMENT_NOT_ACTIONABLE, nothing typed', async () => {
    platform.refuseActions.add(field.handle);
    const e = await refusal(run());
    expect(e.code).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(e.message).toContain('refused focus');
    expect(typed()).toBe('');
    expect(platform.events.some((x) => x.kind === 'keydown')).toBe(false);
  }, 10_000);

  it('the focus lands on another field → ELEMENT_NOT_ACTIONABLE naming where it went, nothing typed', async () => {
    focusGoesTo(() => other);
    const e = await refusal(run());
    expect(e.code).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(e.message).toContain('the keyboard focus did not reach it (focused: entry "Name")');
    expect(typed()).toBe('');
  }, 10_000);

  it('the focus goes nowhere → ELEMENT_NOT_ACTIONABLE (focused: nothing)', async () => {
    focusGoesTo(() => null);
    const e = await refusal(run());
    expect(e.code).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(e.message).toContain('(focused: nothing)');
    expect(typed()).toBe('');
  }, 10_000);

  it('the focus arrives late (a renderer round trip): polled until it does, then typed', async () => {
    const doAction = platform.accessibility.doAction.bind(platform.accessibility);
    platform.accessibility.doAction = async (handle, action) => {
      const ok = await doAction(handle, action);
      if (action === 'focus') setTimeout(() => (field.states = [...field.states, 'focused']), 250);
      return ok;
    };
    await run('late');
    expect(typed()).toBe('late');
  }, 10_000);

  it('a field that turns out to be a password field is never typed into', async () => {
    focusGoesTo((h) => {
      const n = h === field.handle ? field : null;
      if (n) n.states = [...n.states, 'password'];
      return n;
    });
    const e = await refusal(run());
    expect(e.code).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(typed()).toBe('');
  }, 10_000);

  it('its window does not get the keyboard focus → ELEMENT_NOT_ACTIONABLE ("click it, then type")', async () => {
    focusGoesTo();
    platform.windows.activate = async () => undefined; // the window system ignores the request
    const e = await refusal(run());
    expect(e.code).toBe('ELEMENT_NOT_ACTIONABLE');
    expect(e.message).toContain('its window does not have the keyboard focus');
    expect(typed()).toBe('');
  }, 10_000);

  it('a value with a character the keyboard cannot type → TEXT_NOT_TYPEABLE before the field is even focused', async () => {
    focusGoesTo();
    platform.keyboard.supportsText = (text: string) => (text.includes('€') ? '€' : null);
    const e = await refusal(run('5 €'));
    expect(e.code).toBe('TEXT_NOT_TYPEABLE');
    expect(platform.events.some((x) => x.kind === 'action' && x.action === 'focus')).toBe(false);
    expect(typed()).toBe('');
  }, 10_000);
});
