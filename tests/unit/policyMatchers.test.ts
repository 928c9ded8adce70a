/**
 * Every matcher the policy schema accepts can match AND can fail to match through `evaluate` (issue 13,
 * finding 5: no matcher may be accepted at load and then never evaluated). Each case loads a policy with
 * one allow rule using the matcher (through `validatePolicy`, as a file is loaded) and `defaults.unmatched:
 * deny`, then shows a request the rule allows and one it does not. The list of matchers is checked
 * against `MatchSchema`'s keys, so a matcher added to the schema without a case here fails this file.
 * Also: perception masks and `on: perceive` rules, and the unknown-field rule (an allow rule never
 * matches on an unknown field; a deny rule does).
 */
import { describe, expect, it } from 'vitest';
import { evaluate, type PolicyAction, type PolicyTarget } from '../../src/policy/engine.js';
import { validatePolicy } from '../../src/policy/parse.js';
import { MatchSchema } from '../../src/policy/schema.js';

type Req = { action: PolicyAction; target: PolicyTarget };
interface Case {
  /** The matcher key in MatchSchema. */
  key: string;
  /** A description of the form (e.g. "app (object, wmClass)"). */
  form: string;
  match: Record<string, unknown>;
  yes: Req;
  no: Req;
}

const calc: PolicyTarget = { app: 'gnome-calculator', pid: 10, wmClass: 'gnome-calculator', bundleId: null, window: 'Calculator', element: { role: 'button', name: '7', states: ['enabled', 'focused'], bounds: { x: 10, y: 10, width: 40, height: 30 } }, url: null };
const term: PolicyTarget = { app: 'xterm', pid: 11, wmClass: 'XTerm', bundleId: null, window: 'bash', element: null, url: null };
const mac: PolicyTarget = { app: 'Calculator', pid: 12, wmClass: null, bundleId: 'com.apple.calculator', window: 'Calculator', element: null, url: null };
const shop: PolicyTarget = { app: 'chromium', pid: 13, wmClass: 'Chromium', window: 'Cart - Chromium', element: { role: 'link', name: 'Checkout', states: ['enabled'] }, url: 'https://shop.example.com/cart' };
const click: PolicyAction = { type: 'click', x: 20, y: 20, button: 'left', keys: [] };

const CASES: Case[] = [
  { key: 'actions', form: 'actions (types)', match: { actions: ['click'] }, yes: { action: click, target: calc }, no: { action: { type: 'scroll', x: 20, y: 20 }, target: calc } },
  { key: 'actions', form: 'actions (@group)', match: { actions: ['@keyboard'] }, yes: { action: { type: 'keypress', keys: ['ctrl', 'c'] }, target: calc }, no: { action: click, target: calc } },
  { key: 'app', form: 'app (string: process name)', match: { app: 'gnome-calc*' }, yes: { action: click, target: calc }, no: { action: click, target: term } },
  { key: 'app', form: 'app (string: WM_CLASS)', match: { app: 'xterm' }, yes: { action: click, target: { ...term, app: 'bash-wrapper' } }, no: { action: click, target: calc } },
  { key: 'app', form: 'app (string: bundle id)', match: { app: 'com.apple.calculator' }, yes: { action: click, target: mac }, no: { action: click, target: calc } },
  { key: 'app', form: 'app (object: name)', match: { app: { name: { regex: '^gnome-' } } }, yes: { action: click, target: calc }, no: { action: click, target: term } },
  { key: 'app', form: 'app (object: bundleId)', match: { app: { bundleId: 'com.apple.*' } }, yes: { action: click, target: mac }, no: { action: click, target: calc } },
  { key: 'app', form: 'app (object: wmClass)', match: { app: { wmClass: 'XTerm' } }, yes: { action: click, target: term }, no: { action: click, target: calc } },
  { key: 'app', form: 'app (object: all fields must match)', match: { app: { name: 'xterm', wmClass: 'XTerm' } }, yes: { action: click, target: term }, no: { action: click, target: { ...term, wmClass: 'UXTerm' } } },
  { key: 'app', form: 'app (list)', match: { app: ['nothing', 'xterm'] }, yes: { action: click, target: term }, no: { action: click, target: calc } },
  { key: 'window', form: 'window (glob)', match: { window: 'calc*' }, yes: { action: click, target: calc }, no: { action: click, target: term } },
  { key: 'window', form: 'window (regex)', match: { window: { regex: '^Cart - ' } }, yes: { action: click, target: shop }, no: { action: click, target: calc } },
  { key: 'window', form: 'window (no title known)', match: { window: '*' }, yes: { action: click, target: calc }, no: { action: click, target: { ...calc, window: null } } },
  { key: 'element', form: 'element (role)', match: { element: { role: 'button' } }, yes: { action: click, target: calc }, no: { action: click, target: shop } },
  { key: 'element', form: 'element (states)', match: { element: { states: ['focused', 'enabled'] } }, yes: { action: click, target: calc }, no: { action: click, target: shop } },
  { key: 'element', form: 'element (name)', match: { element: { name: 'check*' } }, yes: { action: click, target: shop }, no: { action: click, target: calc } },
  { key: 'element', form: 'element (no element)', match: { element: { role: ['button', 'link'] } }, yes: { action: click, target: shop }, no: { action: click, target: term } },
  { key: 'keys', form: 'keys (keypress chord)', match: { keys: 'ctrl+c' }, yes: { action: { type: 'keypress', keys: ['C', 'CTRL'] }, target: calc }, no: { action: { type: 'keypress', keys: ['ctrl', 'shift', 'c'] }, target: calc } },
  { key: 'keys', form: 'keys (held during a click)', match: { keys: ['shift'] }, yes: { action: { ...click, keys: ['shift'] }, target: calc }, no: { action: click, target: calc } },
  { key: 'text', form: 'text (regex source)', match: { text: '^[0-9]+$' }, yes: { action: { type: 'type', text: '42' }, target: calc }, no: { action: { type: 'type', text: 'rm -rf' }, target: calc } },
  { key: 'text', form: 'text ({regex, flags})', match: { text: { regex: 'hello', flags: 'i' } }, yes: { action: { type: 'set_value', x: 1, y: 1, text: 'HELLO there' }, target: calc }, no: { action: { type: 'type', text: 'bye' }, target: calc } },
  { key: 'region', form: 'region (point)', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, yes: { action: click, target: calc }, no: { action: { ...click, x: 100, y: 50 }, target: calc } },
  { key: 'region', form: 'region (drag: every point for allow)', match: { region: [{ x: 0, y: 0, width: 100, height: 100 }] }, yes: { action: { type: 'drag', path: [{ x: 1, y: 1 }, { x: 99, y: 99 }] }, target: calc }, no: { action: { type: 'drag', path: [{ x: 1, y: 1 }, { x: 150, y: 99 }] }, target: calc } },
  { key: 'region', form: 'region (element centre without a point)', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, yes: { action: { type: 'press' }, target: calc }, no: { action: { type: 'press' }, target: { ...calc, element: { ...calc.element!, bounds: { x: 200, y: 200, width: 10, height: 10 } } } } },
  { key: 'url', form: 'url (origin glob)', match: { url: 'https://*.example.com' }, yes: { action: click, target: shop }, no: { action: click, target: { ...shop, url: 'https://shop.example.com.evil.org/cart' } } },
  { key: 'url', form: 'url (default port dropped; no URL never matches)', match: { url: ['http://127.0.0.1:8080', 'https://shop.example.com'] }, yes: { action: click, target: { ...shop, url: 'https://shop.example.com:443/x' } }, no: { action: click, target: calc } },
];

const policyWith = (match: Record<string, unknown>, effect: 'allow' | 'deny' = 'allow') =>
  validatePolicy({ version: 1, defaults: { unmatched: 'deny' }, rules: [{ id: 'r', effect, match }] });

describe('every matcher of the schema can match and can fail to match', () => {
  it('the cases cover every key of MatchSchema', () => {
    const keys = Object.keys(MatchSchema.shape).sort();
    expect([...new Set(CASES.map((c) => c.key))].sort()).toEqual(keys);
  });

  for (const c of CASES) {
    it(c.form, () => {
      const policy = policyWith(c.match);
      const yes = evaluate({ kind: 'action', ...c.yes }, policy);
      expect(yes, 'matches').toMatchObject({ effect: 'allow', ruleId: 'r' });
      const no = evaluate({ kind: 'action', ...c.no }, policy);
      expect(no, 'does not match').toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
    });
  }

  it('an empty match matches every action', () => {
    expect(evaluate({ kind: 'action', action: click, target: {} }, policyWith({})).effect).toBe('allow');
  });
});

describe('perception matchers', () => {
  it('perception.mask (string and object app matchers) masks the app and only it', () => {
    const policy = validatePolicy({ version: 1, perception: { mask: ['xterm', { bundleId: 'com.apple.*' }] } });
    expect(evaluate({ kind: 'perceive', target: term }, policy)).toMatchObject({ effect: 'deny', ruleId: 'perception.mask[0]' });
    expect(evaluate({ kind: 'perceive', target: mac }, policy)).toMatchObject({ effect: 'deny', ruleId: 'perception.mask[1]' });
    expect(evaluate({ kind: 'perceive', target: calc }, policy)).toMatchObject({ effect: 'allow', ruleId: 'default:perceive' });
  });

  it('an on: perceive rule matches perception only, never actions', () => {
    const policy = validatePolicy({ version: 1, defaults: { unmatched: 'ask' }, rules: [{ id: 'hide-bank', on: 'perceive', effect: 'deny', match: { window: '*bank*' } }] });
    expect(evaluate({ kind: 'perceive', target: { ...calc, window: 'My bank' } }, policy)).toMatchObject({ effect: 'deny', ruleId: 'hide-bank' });
    expect(evaluate({ kind: 'perceive', target: calc }, policy)).toMatchObject({ effect: 'allow', ruleId: 'default:perceive' });
    expect(evaluate({ kind: 'action', action: click, target: { ...calc, window: 'My bank' } }, policy)).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched' });
  });
});

describe('unknown fields: an allow rule never matches on them, a deny rule does', () => {
  const unknownCases: Array<{ field: 'app' | 'window' | 'element' | 'url'; match: Record<string, unknown> }> = [
    { field: 'app', match: { app: '*' } },
    { field: 'window', match: { window: '*' } },
    { field: 'element', match: { element: { role: 'button' } } },
    { field: 'url', match: { url: 'https://*' } },
  ];
  for (const u of unknownCases) {
    it(u.field, () => {
      const target: PolicyTarget = { ...shop, element: { role: 'button', name: 'x', states: [] }, unknown: [u.field] };
      expect(evaluate({ kind: 'action', action: click, target }, policyWith(u.match, 'allow'))).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
      expect(evaluate({ kind: 'action', action: click, target }, policyWith(u.match, 'deny'))).toMatchObject({ effect: 'deny', ruleId: 'r' });
      // The same target with the field known: the allow rule matches.
      expect(evaluate({ kind: 'action', action: click, target: { ...target, unknown: [] } }, policyWith(u.match, 'allow'))).toMatchObject({ effect: 'allow', ruleId: 'r' });
    });
  }

  it('not applicable is not unknown: a url deny rule does not match a non-browser app (url null)', () => {
    expect(evaluate({ kind: 'action', action: click, target: calc }, validatePolicy({ version: 1, defaults: { unmatched: 'ask' }, rules: [{ id: 'r', effect: 'deny', match: { url: 'https://*' } }] }))).toMatchObject({ effect: 'ask' });
  });
});
