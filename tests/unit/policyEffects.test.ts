import { describe, it, expect } from 'vitest';
import { evaluate, evaluateEffects, targetIdentity, type PolicyEffect, type PolicyTarget } from '../../src/policy/engine.js';
import { validatePolicy } from '../../src/policy/parse.js';

/**
 * Effect-based decisions (issue 13): `evaluateEffects` judges every effect for its own receiver and the
 * action takes the worst. Written against the survivors of a StrykerJS run on src/policy/engine.ts.
 */
const calc: PolicyTarget = { app: 'gnome-calculator', pid: 42, window: 'Calculator', element: null, url: null, unknown: [] };
const term: PolicyTarget = { app: 'xterm', pid: 7, window: 'secret', element: null, url: null, unknown: [] };
const policy = validatePolicy({
  version: 1,
  defaults: { unmatched: 'ask' },
  rules: [
    { id: 'allow-calc', effect: 'allow', match: { app: 'gnome-calculator' } },
    { id: 'deny-term', effect: 'deny', match: { app: 'xterm' } },
    { id: 'corner', effect: 'allow', match: { actions: ['move'], region: { x: 0, y: 0, width: 10, height: 10 } } },
  ],
});
const pointer = (t: PolicyTarget): PolicyEffect => ({ kind: 'pointer', target: t });
const keys = (t: PolicyTarget): PolicyEffect => ({ kind: 'keys', target: t });
const click = { type: 'click', x: 5, y: 5, keys: ['shift'] };

describe('evaluateEffects', () => {
  it('takes the worst effect, whichever position it has, and names it in the reason', () => {
    for (const effects of [[pointer(calc), keys(term)], [keys(term), pointer(calc)]]) {
      const d = evaluateEffects(click, effects, policy);
      expect(d).toMatchObject({ effect: 'deny', ruleId: 'deny-term' });
      expect(d.deciding).toBe(effects.findIndex((e) => e.target === term));
      expect(d.reason).toContain(`effect ${d.deciding + 1} of 2`);
      expect(d.effects.map((e) => e.decision.effect)).toEqual(effects.map((e) => (e.target === term ? 'deny' : 'allow')));
      expect(d.matched.sort()).toEqual(['allow-calc', 'deny-term']);
    }
    // ask beats allow; between equals the first effect decides.
    const unknownApp: PolicyTarget = { app: 'gedit', pid: 1, window: 'w', element: null, url: null, unknown: [] };
    expect(evaluateEffects(click, [pointer(calc), keys(unknownApp)], policy)).toMatchObject({ effect: 'ask', deciding: 1, ruleId: 'default:unmatched' });
    expect(evaluateEffects(click, [pointer(unknownApp), keys({ ...unknownApp, pid: 2 })], policy).deciding).toBe(0);
    expect(evaluateEffects(click, [pointer(calc), keys(calc)], policy)).toMatchObject({ effect: 'allow', deciding: 0 });
  });

  it('one effect: exactly evaluate(), reason unchanged; no effects: judged once with an empty target', () => {
    const one = evaluateEffects(click, [pointer(term)], policy);
    const plain = evaluate({ kind: 'action', action: click, target: term }, policy);
    expect(one).toMatchObject({ effect: plain.effect, ruleId: plain.ruleId, reason: plain.reason, matched: plain.matched, deciding: 0 });
    const none = evaluateEffects({ type: 'wait' }, [], policy);
    expect(none).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched', effects: [], deciding: -1 });
    expect(evaluateEffects({ type: 'wait' }, [], policy, { halted: true })).toMatchObject({ effect: 'deny', ruleId: 'invariant:halted' });
  });

  it('effects sharing a receiver are judged alike; different receivers each for their own', () => {
    const d = evaluateEffects(click, [pointer(calc), pointer({ ...calc }), pointer(term), pointer({ ...term })], policy);
    expect(d.effects.map((e) => e.decision.ruleId)).toEqual(['allow-calc', 'allow-calc', 'deny-term', 'deny-term']);
    expect(d.deciding).toBe(2);
  });

  it('a password field takes only the navigation chords; held keys and text limits apply per effect', () => {
    const allowAll = validatePolicy({ version: 1, limits: { maxTypeChars: 3 }, rules: [{ id: 'all', effect: 'allow', match: {} }] });
    const pw: PolicyTarget = { app: 'firefox', element: { role: 'textbox', name: 'Password', states: ['password'] } };
    expect(evaluateEffects({ type: 'keypress', keys: ['tab'] }, [keys(pw)], allowAll).effect).toBe('allow');
    expect(evaluateEffects({ type: 'keypress', keys: ['ctrl', 'v'] }, [keys(pw)], allowAll).ruleId).toBe('invariant:password-field');
    expect(evaluateEffects({ type: 'keypress' }, [keys(pw)], allowAll).ruleId).toBe('invariant:password-field');
    expect(evaluateEffects({ type: 'type', text: 'abcd' }, [keys(calc)], allowAll).ruleId).toBe('limit:maxTypeChars');
    expect(evaluateEffects({ type: 'click', x: 1, y: 1, text: 'abcd' }, [pointer(calc)], allowAll).effect).toBe('allow');
    expect(evaluateEffects({ type: 'type', text: 'abc' }, [keys(calc)], allowAll).effect).toBe('allow');
  });
});

describe('region edges and element centres', () => {
  it('the rectangle holds its left/top edge, not its right/bottom edge; a ref action is judged at its element centre', () => {
    const at = (x: number, y: number) => evaluate({ kind: 'action', action: { type: 'move', x, y }, target: {} }, policy).ruleId;
    expect(at(0, 0)).toBe('corner');
    expect(at(9, 9)).toBe('corner');
    expect(at(10, 5)).toBe('default:unmatched');
    expect(at(5, 10)).toBe('default:unmatched');
    expect(at(-1, 5)).toBe('default:unmatched');
    expect(at(5, -1)).toBe('default:unmatched');
    const el = (x: number, y: number, w: number, h: number): PolicyTarget => ({ element: { role: 'button', states: [], bounds: { x, y, width: w, height: h } } });
    // No coordinates: the centre of the bounds. (0,0,10,10) → (5,5) inside; (0,0,19,19) → (9.5,9.5) inside; (0,0,21,21) → (10.5,10.5) outside.
    const moveAt = (t: PolicyTarget) => evaluate({ kind: 'action', action: { type: 'move' }, target: t }, policy).ruleId;
    expect(moveAt(el(0, 0, 10, 10))).toBe('corner');
    expect(moveAt(el(0, 0, 19, 19))).toBe('corner');
    expect(moveAt(el(0, 0, 21, 21))).toBe('default:unmatched');
    expect(moveAt(el(0, 0, 4, 30))).toBe('default:unmatched');
    // An action with only x (no y) has no point: judged at the element's centre.
    expect(evaluate({ kind: 'action', action: { type: 'move', x: 500 }, target: el(0, 0, 10, 10) }, policy).ruleId).toBe('corner');
  });
});

describe('target identity', () => {
  it('every identity field counts; unknown is order-free; an empty unknown list equals none', () => {
    const base: PolicyTarget = { app: 'a', pid: 1, bundleId: 'b', wmClass: 'c', window: 'w', windowId: '0x1', url: 'http://x.test/', element: { role: 'button', name: 'OK', states: [] } };
    const id = JSON.stringify(targetIdentity(base));
    for (const change of [{ app: 'z' }, { bundleId: 'z' }, { wmClass: 'z' }, { windowId: '0x2' }, { url: 'http://y.test/' }, { unknown: ['element' as const] }]) {
      expect(JSON.stringify(targetIdentity({ ...base, ...change })), JSON.stringify(change)).not.toBe(id);
    }
    expect(targetIdentity({ ...base, unknown: [] }).unknown).toBeNull();
    expect(targetIdentity({ ...base, unknown: ['url', 'app'] }).unknown).toEqual(['app', 'url']);
    expect(targetIdentity({}).app).toBeNull();
    expect(targetIdentity({}).url).toBeNull();
  });
});
