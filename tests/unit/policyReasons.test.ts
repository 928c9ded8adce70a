import { describe, expect, it } from 'vitest';
import { denialError, evaluate, evaluateEffects } from '../../src/policy/engine.js';
import { validatePolicy } from '../../src/policy/parse.js';

// The sentence each decision carries (src/policy/engine.ts): it is what the operator reads in an approval,
// what a refused client gets in its error message and what the audit record keeps, so each invariant,
// default and rule states its own. Invariants and defaults name no matched rule.

const policy = validatePolicy({
  version: 1,
  defaults: { unmatched: 'ask', perceive: 'deny' },
  limits: { maxTypeChars: 5 },
  perception: { mask: ['keepassxc'] },
  rules: [
    { id: 'allow-calc', effect: 'allow', match: { app: 'gnome-calculator' }, description: 'the calculator is harmless' },
    { id: 'deny-term', effect: 'deny', match: { app: 'xterm' } },
    { id: 'see-calc', effect: 'allow', on: 'perceive', match: { app: 'gnome-calculator' } },
  ],
});
const calc = { app: 'gnome-calculator', pid: 1, window: 'Calculator' };
const password = { ...calc, element: { role: 'password text', name: 'pin', states: ['password'] } };

describe('invariants: a sentence of their own, no matched rule', () => {
  it('halted, screen locked, malformed', () => {
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 1, y: 1 }, target: calc, state: { halted: true } }, policy)).toEqual({
      effect: 'deny',
      ruleId: 'invariant:halted',
      reason: 'the kill switch is engaged; nothing runs until the operator resumes',
      matched: [],
    });
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 1, y: 1 }, target: calc, state: { screenLocked: true } }, policy)).toEqual({
      effect: 'deny',
      ruleId: 'invariant:screen-locked',
      reason: 'the screen is locked; nothing runs until it is unlocked',
      matched: [],
    });
    expect(evaluate({ kind: 'action', target: calc }, policy)).toEqual({ effect: 'deny', ruleId: 'invariant:malformed', reason: 'an action request carries no action', matched: [] });
  });

  it('password fields: typing refused with the keys that are allowed there; reading refused', () => {
    expect(evaluate({ kind: 'action', action: { type: 'type', text: 'x' }, target: password }, policy)).toEqual({
      effect: 'deny',
      ruleId: 'invariant:password-field',
      reason: 'type into a password field is never allowed (only Tab, Shift+Tab, Escape and Enter may be pressed there)',
      matched: [],
    });
    expect(evaluate({ kind: 'action', action: { type: 'keypress', keys: ['ctrl', 'v'] }, target: password }, policy).reason).toBe(
      'keypress into a password field is never allowed (only Tab, Shift+Tab, Escape and Enter may be pressed there)',
    );
    expect(evaluate({ kind: 'perceive', target: password }, policy)).toEqual({ effect: 'deny', ruleId: 'invariant:password-field', reason: 'password field values are never read', matched: [] });
  });

  it('the length limit names the length and the limit', () => {
    expect(evaluate({ kind: 'action', action: { type: 'type', text: '123456' }, target: calc }, policy)).toEqual({
      effect: 'deny',
      ruleId: 'limit:maxTypeChars',
      reason: 'text of 6 characters exceeds limits.maxTypeChars (5)',
      matched: [],
    });
    expect(evaluate({ kind: 'action', action: { type: 'type', text: '12345' }, target: calc }, policy).ruleId).toBe('allow-calc');
    expect(evaluate({ kind: 'action', action: { type: 'set_value', text: '123456' }, target: calc }, policy).ruleId).toBe('limit:maxTypeChars');
    // Only typed text counts: a keypress or a click carries none.
    expect(evaluate({ kind: 'action', action: { type: 'keypress', keys: ['a'], text: '123456' }, target: calc }, policy).ruleId).toBe('allow-calc');
  });
});

describe('defaults and rules', () => {
  it('no rule matched: the action type and the default in force', () => {
    expect(evaluate({ kind: 'action', action: { type: 'scroll', x: 1, y: 1 }, target: { app: 'gimp' } }, policy)).toEqual({
      effect: 'ask',
      ruleId: 'default:unmatched',
      reason: 'no rule matched scroll; defaults.unmatched is ask',
      matched: [],
    });
    expect(evaluate({ kind: 'perceive', target: { app: 'gimp' } }, policy)).toEqual({
      effect: 'deny',
      ruleId: 'default:perceive',
      reason: 'no perception rule or mask matched; defaults.perceive is deny',
      matched: [],
    });
  });

  it('a rule: its description when it has one, else that it matched', () => {
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 1, y: 1 }, target: calc }, policy).reason).toBe('rule "allow-calc" (allow): the calculator is harmless');
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 1, y: 1 }, target: { app: 'xterm' } }, policy).reason).toBe('rule "deny-term" (deny) matched');
  });

  it('a perception mask names the matcher', () => {
    expect(evaluate({ kind: 'perceive', target: { app: 'keepassxc' } }, policy)).toEqual({
      effect: 'deny',
      ruleId: 'perception.mask[0]',
      reason: 'app matches perception mask "keepassxc"',
      matched: ['perception.mask[0]'],
    });
  });

  it('an action without effects is decided like one on an empty target, with its own reason', () => {
    const d = evaluateEffects({ type: 'wait' }, [], policy);
    expect(d).toEqual({ effect: 'ask', ruleId: 'default:unmatched', reason: 'no rule matched wait; defaults.unmatched is ask', matched: [], effects: [], deciding: -1 });
    expect(evaluateEffects({ type: 'wait' }, [], policy, { halted: true }).ruleId).toBe('invariant:halted');
  });

  it('the halt and screen-lock state reach every effect\'s decision, one effect or several', () => {
    const fx = [{ kind: 'pointer' as const, target: calc }, { kind: 'keys' as const, target: { ...calc, window: 'Other' } }];
    for (const effects of [fx, fx.slice(0, 1)]) {
      const halted = evaluateEffects({ type: 'click', x: 1, y: 1 }, effects, policy, { halted: true });
      expect(halted.ruleId).toBe('invariant:halted');
      expect(halted.effects.every((e) => e.decision.ruleId === 'invariant:halted')).toBe(true);
      expect(evaluateEffects({ type: 'click', x: 1, y: 1 }, effects, policy, { screenLocked: true }).ruleId).toBe('invariant:screen-locked');
      expect(evaluateEffects({ type: 'click', x: 1, y: 1 }, effects, policy).effect).toBe('allow');
    }
  });

  it('several effects: the reason says which effect decided', () => {
    const d = evaluateEffects({ type: 'click', x: 1, y: 1, keys: ['shift'] }, [{ kind: 'pointer', target: calc }, { kind: 'keys', target: { app: 'xterm' } }], policy);
    expect(d.reason).toBe('rule "deny-term" (deny) matched (for the keys effect 2 of 2)');
    const one = evaluateEffects({ type: 'click', x: 1, y: 1 }, [{ kind: 'pointer', target: { app: 'xterm' } }], policy);
    expect(one.reason).toBe('rule "deny-term" (deny) matched');
  });
});

describe('denialError', () => {
  it('the code by rule, the message and details carry rule and reason', () => {
    const halted = denialError({ effect: 'deny', ruleId: 'invariant:halted', reason: 'r1', matched: [] });
    expect([halted.code, halted.message, halted.details]).toEqual(['HALTED', 'Halted: r1', { ruleId: 'invariant:halted', reason: 'r1' }]);
    const locked = denialError({ effect: 'deny', ruleId: 'invariant:screen-locked', reason: 'r2', matched: [] });
    expect([locked.code, locked.message]).toEqual(['SCREEN_LOCKED', 'Screen locked: r2']);
    const denied = denialError({ effect: 'deny', ruleId: 'deny-term', reason: 'r3', matched: ['deny-term'] });
    expect([denied.code, denied.message, denied.details]).toEqual(['POLICY_DENIED', 'Denied by deny-term: r3', { ruleId: 'deny-term', reason: 'r3' }]);
  });
});
