import { describe, expect, it } from 'vitest';
import { denialError, evaluate, targetIdentityHash, type PolicyAction, type PolicyRequest, type PolicyTarget } from '../../src/policy/engine.js';
import { validatePolicy } from '../../src/policy/parse.js';
import type { Match, PolicyInput, RuleInput } from '../../src/policy/schema.js';

/** A policy with one allow rule `r` for the given match (unmatched → deny). */
function onlyRule(match: Match | Record<string, unknown>, effect: 'allow' | 'ask' | 'deny' = 'allow', extra: Partial<PolicyInput> = {}) {
  return validatePolicy({ version: 1, rules: [{ id: 'r', effect, match }], ...extra });
}

function act(action: PolicyAction, target: PolicyTarget = {}): PolicyRequest {
  return { kind: 'action', action, target };
}

const calc: PolicyTarget = { app: 'gnome-calculator', pid: 42, wmClass: 'gnome-calculator', window: 'Calculator' };

interface Case {
  name: string;
  match: Record<string, unknown>;
  req: PolicyRequest;
  matches: boolean;
  effect?: 'allow' | 'ask' | 'deny';
}

const cases: Case[] = [
  // actions
  { name: 'actions: listed type', match: { actions: ['click'] }, req: act({ type: 'click', x: 1, y: 1 }), matches: true },
  { name: 'actions: unlisted type', match: { actions: ['click'] }, req: act({ type: 'type', text: 'x' }), matches: false },
  { name: 'actions: @pointer has drag', match: { actions: ['@pointer'] }, req: act({ type: 'drag', path: [{ x: 0, y: 0 }, { x: 5, y: 5 }] }), matches: true },
  { name: 'actions: @pointer lacks type', match: { actions: ['@pointer'] }, req: act({ type: 'type', text: 'x' }), matches: false },
  { name: 'actions: @readonly has observe', match: { actions: ['@readonly'] }, req: act({ type: 'observe' }), matches: true },
  { name: 'actions: @input has set_value', match: { actions: ['@input'] }, req: act({ type: 'set_value', text: 'v' }), matches: true },
  { name: 'actions: @input lacks screenshot', match: { actions: ['@input'] }, req: act({ type: 'screenshot' }), matches: false },
  // app
  { name: 'app: exact name, case-insensitive', match: { app: 'XTERM' }, req: act({ type: 'click' }, { app: 'xterm' }), matches: true },
  { name: 'app: string matches wmClass', match: { app: 'xterm' }, req: act({ type: 'click' }, { app: 'bash', wmClass: 'XTerm' }), matches: true },
  { name: 'app: string matches bundleId', match: { app: 'com.apple.Terminal' }, req: act({ type: 'click' }, { app: 'Terminal2', bundleId: 'com.apple.Terminal' }), matches: true },
  { name: 'app: exact is not a prefix', match: { app: 'xterm' }, req: act({ type: 'click' }, { app: 'xterm-256' }), matches: false },
  { name: 'app: glob *', match: { app: 'gnome-terminal*' }, req: act({ type: 'click' }, { app: 'gnome-terminal-server' }), matches: true },
  { name: 'app: glob * no match', match: { app: 'gnome-terminal*' }, req: act({ type: 'click' }, calc), matches: false },
  { name: 'app: glob ?', match: { app: 'kitt?' }, req: act({ type: 'click' }, { app: 'kitty' }), matches: true },
  { name: 'app: glob dot is literal', match: { app: 'com.apple.*' }, req: act({ type: 'click' }, { bundleId: 'comXapple.Terminal' }), matches: false },
  { name: 'app: object fields are AND-ed (both match)', match: { app: { name: 'Terminal', bundleId: 'com.apple.*' } }, req: act({ type: 'click' }, { app: 'Terminal', bundleId: 'com.apple.Terminal' }), matches: true },
  { name: 'app: object fields are AND-ed (one missing)', match: { app: { name: 'Terminal', bundleId: 'com.apple.*' } }, req: act({ type: 'click' }, { app: 'Terminal' }), matches: false },
  { name: 'app: object wmClass only', match: { app: { wmClass: 'Gnome-calculator' } }, req: act({ type: 'click' }, calc), matches: true },
  { name: 'app: object name regex', match: { app: { name: { regex: '^kee', flags: 'i' } } }, req: act({ type: 'click' }, { app: 'KeePassXC' }), matches: true },
  { name: 'app: list is OR-ed', match: { app: ['foo', 'gnome-calc*'] }, req: act({ type: 'click' }, calc), matches: true },
  { name: 'app: unknown target app', match: { app: '*' }, req: act({ type: 'click' }, { app: null }), matches: false },
  // window
  { name: 'window: glob', match: { window: '*bank*' }, req: act({ type: 'click' }, { window: 'My Bank — Chromium' }), matches: true },
  { name: 'window: glob no match', match: { window: '*bank*' }, req: act({ type: 'click' }, calc), matches: false },
  { name: 'window: regex', match: { window: { regex: '^Calc' } }, req: act({ type: 'click' }, calc), matches: true },
  { name: 'window: regex is case-sensitive without i', match: { window: { regex: '^calc' } }, req: act({ type: 'click' }, calc), matches: false },
  { name: 'window: no title', match: { window: '*' }, req: act({ type: 'click' }, { app: 'x' }), matches: false },
  // element
  { name: 'element: role', match: { element: { role: 'button' } }, req: act({ type: 'press' }, { element: { role: 'button', name: '7', states: [] } }), matches: true },
  { name: 'element: role list', match: { element: { role: ['link', 'button'] } }, req: act({ type: 'press' }, { element: { role: 'button', states: [] } }), matches: true },
  { name: 'element: role mismatch', match: { element: { role: 'link' } }, req: act({ type: 'press' }, { element: { role: 'button', states: [] } }), matches: false },
  { name: 'element: states all present', match: { element: { states: ['password', 'editable'] } }, req: act({ type: 'click', x: 1, y: 1 }, { element: { role: 'textbox', states: ['editable', 'focused', 'password'] } }), matches: true },
  { name: 'element: a state missing', match: { element: { states: ['password', 'editable'] } }, req: act({ type: 'click', x: 1, y: 1 }, { element: { role: 'textbox', states: ['editable'] } }), matches: false },
  { name: 'element: name glob', match: { element: { name: 'Delete*' } }, req: act({ type: 'press' }, { element: { role: 'button', name: 'Delete account', states: [] } }), matches: true },
  { name: 'element: no element', match: { element: { role: 'button' } }, req: act({ type: 'press' }, calc), matches: false },
  // keys
  { name: 'keys: same chord, other order and case', match: { keys: 'ctrl+alt+delete' }, req: act({ type: 'keypress', keys: ['DELETE', 'ALT', 'CTRL'] }), matches: true },
  { name: 'keys: synonyms del/control', match: { keys: 'ctrl+alt+delete' }, req: act({ type: 'keypress', keys: ['control', 'alt', 'del'] }), matches: true },
  { name: 'keys: cmd = meta', match: { keys: 'cmd+q' }, req: act({ type: 'keypress', keys: ['META', 'Q'] }), matches: true },
  { name: 'keys: cmd = super', match: { keys: 'cmd+q' }, req: act({ type: 'keypress', keys: ['super', 'q'] }), matches: true },
  { name: 'keys: cmd = command', match: { keys: 'cmd+q' }, req: act({ type: 'keypress', keys: ['Command', 'Q'] }), matches: true },
  { name: 'keys: option = alt, esc = escape', match: { keys: 'cmd+option+esc' }, req: act({ type: 'keypress', keys: ['CMD', 'ALT', 'ESCAPE'] }), matches: true },
  { name: 'keys: a request element written as a chord', match: { keys: 'ctrl+alt+backspace' }, req: act({ type: 'keypress', keys: ['ctrl+alt+BackSpace'] }), matches: true },
  { name: 'keys: subset is not the chord', match: { keys: 'ctrl+alt+delete' }, req: act({ type: 'keypress', keys: ['ctrl', 'alt'] }), matches: false },
  { name: 'keys: superset is not the chord', match: { keys: 'cmd+q' }, req: act({ type: 'keypress', keys: ['cmd', 'shift', 'q'] }), matches: false },
  { name: 'keys: list is OR-ed', match: { keys: ['cmd+q', 'alt+f4'] }, req: act({ type: 'keypress', keys: ['ALT', 'F4'] }), matches: true },
  { name: 'keys: keys held during a click', match: { keys: 'ctrl' }, req: act({ type: 'click', x: 1, y: 1, keys: ['CTRL'] }), matches: true },
  { name: 'keys: plus key', match: { keys: 'ctrl++' }, req: act({ type: 'keypress', keys: ['ctrl', '+'] }), matches: true },
  { name: 'keys: no keys', match: { keys: 'cmd+q' }, req: act({ type: 'type', text: 'q' }), matches: false },
  // text
  { name: 'text: regex source', match: { text: 'rm\\s+-rf' }, req: act({ type: 'type', text: 'sudo rm  -rf /' }), matches: true },
  { name: 'text: no match', match: { text: 'rm\\s+-rf' }, req: act({ type: 'type', text: 'hello' }), matches: false },
  { name: 'text: case-sensitive by default', match: { text: 'SECRET' }, req: act({ type: 'type', text: 'my secret' }), matches: false },
  { name: 'text: {regex, flags}', match: { text: { regex: 'SECRET', flags: 'i' } }, req: act({ type: 'type', text: 'my secret' }), matches: true },
  { name: 'text: set_value text', match: { text: '^42$' }, req: act({ type: 'set_value', text: '42' }), matches: true },
  { name: 'text: action without text', match: { text: '.*' }, req: act({ type: 'keypress', keys: ['a'] }), matches: false },
  // region
  { name: 'region: click inside', match: { region: { x: 100, y: 100, width: 50, height: 50 } }, req: act({ type: 'click', x: 120, y: 149 }), matches: true },
  { name: 'region: right edge is outside', match: { region: { x: 100, y: 100, width: 50, height: 50 } }, req: act({ type: 'click', x: 150, y: 120 }), matches: false },
  { name: 'region: left/top edge is inside', match: { region: { x: 100, y: 100, width: 50, height: 50 } }, req: act({ type: 'move', x: 100, y: 100 }), matches: true },
  { name: 'region: list is OR-ed', match: { region: [{ x: 0, y: 0, width: 10, height: 10 }, { x: 500, y: 500, width: 10, height: 10 }] }, req: act({ type: 'scroll', x: 505, y: 505 }), matches: true },
  { name: 'region: negative origin (macOS second display)', match: { region: { x: -1440, y: 0, width: 1440, height: 900 } }, req: act({ type: 'click', x: -10, y: 10 }), matches: true },
  { name: 'region: element action falls back to the element centre', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, req: act({ type: 'press' }, { element: { role: 'button', states: [], bounds: { x: 40, y: 40, width: 20, height: 20 } } }), matches: true },
  { name: 'region: click on a ref outside the region', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, req: act({ type: 'click' }, { element: { role: 'button', states: [], bounds: { x: 140, y: 40, width: 20, height: 20 } } }), matches: false },
  { name: 'region: keyboard actions have no point even with element bounds', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, req: act({ type: 'type', text: 'x' }, { element: { role: 'textbox', states: [], bounds: { x: 40, y: 40, width: 20, height: 20 } } }), matches: false },
  { name: 'region: action without a point', match: { region: { x: 0, y: 0, width: 9999, height: 9999 } }, req: act({ type: 'type', text: 'x' }), matches: false },
  { name: 'region: allow needs every drag point inside', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, req: act({ type: 'drag', path: [{ x: 10, y: 10 }, { x: 200, y: 10 }] }), matches: false, effect: 'allow' },
  { name: 'region: allow with the whole drag inside', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, req: act({ type: 'drag', path: [{ x: 10, y: 10 }, { x: 90, y: 10 }] }), matches: true, effect: 'allow' },
  { name: 'region: deny catches any drag point inside', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, req: act({ type: 'drag', path: [{ x: 500, y: 10 }, { x: 50, y: 10 }] }), matches: true, effect: 'deny' },
  { name: 'region: ask catches any drag point inside', match: { region: { x: 0, y: 0, width: 100, height: 100 } }, req: act({ type: 'drag', path: [{ x: 500, y: 10 }, { x: 50, y: 10 }] }), matches: true, effect: 'ask' },
  // url
  { name: 'url: origin glob', match: { url: 'https://*.example.com' }, req: act({ type: 'click' }, { url: 'https://shop.example.com/cart?x=1' }), matches: true },
  { name: 'url: apex not covered by *.', match: { url: 'https://*.example.com' }, req: act({ type: 'click' }, { url: 'https://example.com/' }), matches: false },
  { name: 'url: scheme differs', match: { url: 'https://*.example.com' }, req: act({ type: 'click' }, { url: 'http://shop.example.com/' }), matches: false },
  { name: 'url: suffix attack', match: { url: 'https://*.example.com' }, req: act({ type: 'click' }, { url: 'https://a.example.com.evil.org/' }), matches: false },
  { name: 'url: path is not part of the origin', match: { url: 'https://*.example.com' }, req: act({ type: 'click' }, { url: 'https://evil.org/a.example.com' }), matches: false },
  { name: 'url: explicit port', match: { url: 'http://localhost:*' }, req: act({ type: 'click' }, { url: 'http://localhost:8080/app' }), matches: true },
  { name: 'url: default port dropped', match: { url: 'https://bank.test' }, req: act({ type: 'click' }, { url: 'https://BANK.test:443/login' }), matches: true },
  { name: 'url: not a URL', match: { url: '*' }, req: act({ type: 'click' }, { url: 'not a url' }), matches: false },
  { name: 'url: no URL', match: { url: '*' }, req: act({ type: 'click' }, calc), matches: false },
  // combinations and empty match
  { name: 'AND: app and actions both match', match: { app: 'gnome-calculator', actions: ['click'] }, req: act({ type: 'click', x: 1, y: 1 }, calc), matches: true },
  { name: 'AND: app matches, action does not', match: { app: 'gnome-calculator', actions: ['click'] }, req: act({ type: 'type', text: '1' }, calc), matches: false },
  { name: 'empty match matches every action', match: {}, req: act({ type: 'scroll', x: 1, y: 1 }, {}), matches: true },
];

describe('engine matchers (table)', () => {
  it.each(cases)('$name', ({ match, req, matches, effect = 'allow' }) => {
    const d = evaluate(req, onlyRule(match, effect));
    if (matches) {
      expect(d).toMatchObject({ effect, ruleId: 'r' });
      expect(d.matched).toEqual(['r']);
    } else {
      expect(d).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched', matched: [] });
    }
  });
});

describe('precedence: deny > ask > allow', () => {
  const all = (id: string, effect: 'allow' | 'ask' | 'deny'): RuleInput => ({ id, effect, match: {} });
  const table: Array<{ rules: RuleInput[]; effect: string; ruleId: string }> = [
    { rules: [all('a', 'allow')], effect: 'allow', ruleId: 'a' },
    { rules: [all('a', 'allow'), all('q', 'ask')], effect: 'ask', ruleId: 'q' },
    { rules: [all('q', 'ask'), all('a', 'allow')], effect: 'ask', ruleId: 'q' },
    { rules: [all('a', 'allow'), all('d', 'deny')], effect: 'deny', ruleId: 'd' },
    { rules: [all('d', 'deny'), all('a', 'allow')], effect: 'deny', ruleId: 'd' },
    { rules: [all('q', 'ask'), all('d', 'deny'), all('a', 'allow')], effect: 'deny', ruleId: 'd' },
    { rules: [all('d1', 'deny'), all('d2', 'deny')], effect: 'deny', ruleId: 'd1' },
    { rules: [all('q1', 'ask'), all('a', 'allow'), all('q2', 'ask')], effect: 'ask', ruleId: 'q1' },
  ];
  it.each(table)('$rules.length rules → $effect by $ruleId', ({ rules, effect, ruleId }) => {
    const d = evaluate(act({ type: 'click', x: 1, y: 1 }), validatePolicy({ version: 1, rules }));
    expect(d.effect).toBe(effect);
    expect(d.ruleId).toBe(ruleId);
    expect(d.matched).toEqual(rules.map((r) => r.id));
  });

  it('a non-matching deny does not outrank a matching allow', () => {
    const p = validatePolicy({
      version: 1,
      rules: [
        { id: 'deny-xterm', effect: 'deny', match: { app: 'xterm' } },
        { id: 'allow-calc', effect: 'allow', match: { app: 'gnome-calculator' } },
      ],
    });
    expect(evaluate(act({ type: 'click', x: 1, y: 1 }, calc), p)).toMatchObject({ effect: 'allow', ruleId: 'allow-calc', matched: ['allow-calc'] });
    expect(evaluate(act({ type: 'click', x: 1, y: 1 }, { app: 'xterm' }), p)).toMatchObject({ effect: 'deny', ruleId: 'deny-xterm' });
  });

  it('nothing matching is not allowed: deny by default, ask when defaults.unmatched is ask', () => {
    const rules = [{ id: 'allow-calc', effect: 'allow' as const, match: { app: 'gnome-calculator' } }];
    expect(evaluate(act({ type: 'click' }, { app: 'gedit' }), validatePolicy({ version: 1, rules }))).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
    expect(evaluate(act({ type: 'click' }, { app: 'gedit' }), validatePolicy({ version: 1, defaults: { unmatched: 'ask' }, rules }))).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched' });
    expect(evaluate(act({ type: 'click' }, {}), validatePolicy({ version: 1 }))).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
  });

  it('the reason names the rule and its description', () => {
    const p = validatePolicy({ version: 1, rules: [{ id: 'deny-xterm', effect: 'deny', description: 'no shells', match: { app: 'xterm' } }] });
    const d = evaluate(act({ type: 'type', text: 'ls' }, { app: 'xterm' }), p);
    expect(d.reason).toContain('deny-xterm');
    expect(d.reason).toContain('no shells');
  });
});

describe('invariants no policy can lift', () => {
  const allowAll = validatePolicy({ version: 1, limits: { maxTypeChars: 10 }, rules: [{ id: 'everything', effect: 'allow', match: {} }] });
  const pw: PolicyTarget = { app: 'firefox', element: { role: 'textbox', name: 'Password', states: ['editable', 'focused', 'password'] } };
  const table: Array<{ name: string; req: PolicyRequest; ruleId: string }> = [
    { name: 'halted', req: { ...act({ type: 'click', x: 1, y: 1 }, calc), state: { halted: true } }, ruleId: 'invariant:halted' },
    { name: 'halted blocks even wait', req: { ...act({ type: 'wait' }), state: { halted: true } }, ruleId: 'invariant:halted' },
    { name: 'screen locked', req: { ...act({ type: 'type', text: 'a' }, calc), state: { screenLocked: true } }, ruleId: 'invariant:screen-locked' },
    { name: 'typing into a password field', req: act({ type: 'type', text: 'hunter2' }, pw), ruleId: 'invariant:password-field' },
    { name: 'set_value on a password field', req: act({ type: 'set_value', text: 'hunter2' }, pw), ruleId: 'invariant:password-field' },
    { name: 'keypress into a password field', req: act({ type: 'keypress', keys: ['ctrl', 'v'] }, pw), ruleId: 'invariant:password-field' },
    { name: 'PASSWORD state in any case', req: act({ type: 'type', text: 'x' }, { element: { role: 'textbox', states: ['PASSWORD'] } }), ruleId: 'invariant:password-field' },
    { name: 'text longer than maxTypeChars', req: act({ type: 'type', text: '12345678901' }, calc), ruleId: 'limit:maxTypeChars' },
    { name: 'action request without action', req: { kind: 'action', target: calc }, ruleId: 'invariant:malformed' },
  ];
  it.each(table)('$name → deny $ruleId', ({ req, ruleId }) => {
    expect(evaluate(req, allowAll)).toMatchObject({ effect: 'deny', ruleId });
  });

  it('a password field can be left or submitted: Tab, Shift+Tab, Escape, Enter pass the invariant; characters and other chords do not', () => {
    for (const keys of [['Tab'], ['SHIFT', 'TAB'], ['esc'], ['Return'], ['ENTER']]) {
      expect(evaluate(act({ type: 'keypress', keys }, pw), allowAll), keys.join('+')).toMatchObject({ effect: 'allow', ruleId: 'everything' });
    }
    for (const keys of [['a'], ['space'], ['ctrl', 'tab'], ['shift', 'a'], ['tab', 'a'], ['backspace']]) {
      expect(evaluate(act({ type: 'keypress', keys }, pw), allowAll), keys.join('+')).toMatchObject({ effect: 'deny', ruleId: 'invariant:password-field' });
    }
    expect(evaluate(act({ type: 'type', text: '\t' }, pw), allowAll).ruleId).toBe('invariant:password-field');
  });

  it('clicking a password field is not an invariant (the policy decides)', () => {
    expect(evaluate(act({ type: 'click', x: 1, y: 1 }, pw), allowAll)).toMatchObject({ effect: 'allow', ruleId: 'everything' });
  });
  it('text at exactly maxTypeChars passes', () => {
    expect(evaluate(act({ type: 'type', text: '1234567890' }, calc), allowAll).effect).toBe('allow');
  });
  it('running and unlocked state changes nothing', () => {
    expect(evaluate({ ...act({ type: 'click', x: 1, y: 1 }, calc), state: { halted: false, screenLocked: false } }, allowAll).effect).toBe('allow');
  });
});

describe('perception', () => {
  const p = validatePolicy({
    version: 1,
    perception: { mask: ['1Password*', { bundleId: 'com.apple.keychainaccess' }] },
    rules: [
      { id: 'see-everything', effect: 'allow', on: 'perceive', match: {} },
      { id: 'hide-bank', effect: 'deny', on: 'perceive', match: { window: '*bank*' } },
      { id: 'deny-all-actions', effect: 'deny', match: {} },
    ],
  });
  const table: Array<{ name: string; target: PolicyTarget; effect: string; ruleId: string }> = [
    { name: 'masked app by name glob', target: { app: '1Password 7' }, effect: 'deny', ruleId: 'perception.mask[0]' },
    { name: 'masked app by bundle id', target: { app: 'Keychain', bundleId: 'com.apple.keychainaccess' }, effect: 'deny', ruleId: 'perception.mask[1]' },
    { name: 'perceive deny rule by window', target: { app: 'firefox', window: 'My Bank' }, effect: 'deny', ruleId: 'hide-bank' },
    { name: 'perceive allow rule', target: calc, effect: 'allow', ruleId: 'see-everything' },
    { name: 'password element value never read', target: { app: 'firefox', element: { role: 'textbox', states: ['password'] } }, effect: 'deny', ruleId: 'invariant:password-field' },
  ];
  it.each(table)('$name → $effect by $ruleId', ({ target, effect, ruleId }) => {
    expect(evaluate({ kind: 'perceive', target }, p)).toMatchObject({ effect, ruleId });
  });

  it('an allow perceive rule does not lift a mask (deny > allow)', () => {
    expect(evaluate({ kind: 'perceive', target: { app: '1Password' } }, p).matched).toEqual(['perception.mask[0]', 'see-everything']);
  });
  it('action rules do not apply to perception, perception rules not to actions', () => {
    const q = validatePolicy({ version: 1, rules: [{ id: 'deny-all-actions', effect: 'deny', match: {} }, { id: 'hide-all', effect: 'deny', on: 'perceive', match: {} }] });
    expect(evaluate({ kind: 'perceive', target: calc }, validatePolicy({ version: 1, rules: [{ id: 'deny-all-actions', effect: 'deny', match: {} }] }))).toMatchObject({ effect: 'allow', ruleId: 'default:perceive' });
    expect(evaluate(act({ type: 'wait' }), q)).toMatchObject({ ruleId: 'deny-all-actions', matched: ['deny-all-actions'] });
  });
  it('defaults.perceive: deny hides what no rule allows', () => {
    const q = validatePolicy({ version: 1, defaults: { perceive: 'deny' }, rules: [{ id: 'see-calc', effect: 'allow', on: 'perceive', match: { app: 'gnome-calculator' } }] });
    expect(evaluate({ kind: 'perceive', target: { app: 'gedit' } }, q)).toMatchObject({ effect: 'deny', ruleId: 'default:perceive' });
    expect(evaluate({ kind: 'perceive', target: calc }, q)).toMatchObject({ effect: 'allow', ruleId: 'see-calc' });
  });
  it('halt does not stop perception', () => {
    expect(evaluate({ kind: 'perceive', target: calc, state: { halted: true, screenLocked: true } }, p).effect).toBe('allow');
  });
});

describe('denialError and target identity', () => {
  it.each([
    ['invariant:halted', 'HALTED', 423],
    ['invariant:screen-locked', 'SCREEN_LOCKED', 423],
    ['deny-xterm', 'POLICY_DENIED', 403],
    ['default:unmatched', 'POLICY_DENIED', 403],
  ])('%s → %s', (ruleId, code, status) => {
    const e = denialError({ effect: 'deny', ruleId, reason: 'because', matched: [] });
    expect(e.code).toBe(code);
    expect(e.status).toBe(status);
    expect(e.message).toContain(ruleId === 'deny-xterm' || ruleId === 'default:unmatched' ? ruleId : 'because');
    expect(e.details).toEqual({ ruleId, reason: 'because' });
  });

  it('identity ignores element states but not pid, window title or id, URL, element name or unknown fields', () => {
    const base: PolicyTarget = { app: 'a', pid: 1, window: 'w', element: { role: 'button', name: 'OK', states: ['focused'] } };
    const h = targetIdentityHash(base);
    expect(targetIdentityHash({ ...base, element: { role: 'button', name: 'OK', states: [] } })).toBe(h);
    expect(targetIdentityHash({ ...base, url: 'https://x.test' })).not.toBe(h);
    expect(targetIdentityHash({ ...base, windowId: '0x2' })).not.toBe(h);
    expect(targetIdentityHash({ ...base, unknown: ['element'] })).not.toBe(h);
    expect(targetIdentityHash({ ...base, pid: 2 })).not.toBe(h);
    expect(targetIdentityHash({ ...base, window: 'w2' })).not.toBe(h);
    expect(targetIdentityHash({ ...base, element: { role: 'button', name: 'Cancel', states: [] } })).not.toBe(h);
  });
});
