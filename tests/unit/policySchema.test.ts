import { describe, expect, it } from 'vitest';
import { DeskdError } from '../../src/errors.js';
import { parsePolicy, validatePolicy } from '../../src/policy/parse.js';

function invalid(text: string): DeskdError {
  try {
    parsePolicy(text, 'test.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(DeskdError);
    return e as DeskdError;
  }
  throw new Error('expected POLICY_INVALID');
}

describe('policy schema', () => {
  it('fills defaults for a minimal file and freezes the result', () => {
    const p = parsePolicy('version: 1\n');
    expect(p).toEqual({
      version: 1,
      defaults: { unmatched: 'deny', perceive: 'allow' },
      limits: { actionsPerSecond: 10, burst: 20, maxTypeChars: 2000 },
      approvals: { timeoutMs: 120000 },
      perception: { mask: [] },
      rules: [],
    });
    expect(Object.isFrozen(p.limits)).toBe(true);
  });

  it('parses a rule using every matcher', () => {
    const p = parsePolicy(`
version: 1
rules:
  - id: everything
    effect: ask
    description: all matchers at once
    match:
      actions: [click, "@keyboard"]
      app: [{name: "Safari", bundleId: "com.apple.*"}, "firefox"]
      window: {regex: "bank", flags: i}
      element: {role: [textbox], states: [editable], name: "Amount*"}
      keys: ["cmd+q"]
      text: "^\\\\d+$"
      region: {x: 0, y: 0, width: 100, height: 50}
      url: "https://*.bank.test"
`);
    expect(p.rules[0]).toMatchObject({ id: 'everything', effect: 'ask', on: 'action', match: { actions: ['click', '@keyboard'], keys: ['cmd+q'] } });
  });

  it.each([
    ['not YAML', 'version: 1\nrules: [\n', /not valid YAML/, ''],
    ['empty document', '', /empty/, ''],
    ['wrong version', 'version: 2\n', /version/, 'version'],
    ['unknown top-level key', 'version: 1\nrulez: []\n', /rulez/, ''],
    ['misspelt matcher key (would widen the rule)', 'version: 1\nrules: [{id: a, effect: deny, match: {ap: xterm}}]\n', /ap/, 'rules[0].match'],
    ['unknown effect', 'version: 1\nrules: [{id: a, effect: maybe}]\n', /effect|Invalid/, 'rules[0].effect'],
    ['unknown action type', 'version: 1\nrules: [{id: a, effect: deny, match: {actions: [explode]}}]\n', /Invalid/, 'rules[0].match.actions[0]'],
    ['bad regex in text', 'version: 1\nrules: [{id: a, effect: deny, match: {text: "(unclosed"}}]\n', /regular expression/, 'rules[0].match.text'],
    ['stateful regex flag', 'version: 1\nrules: [{id: a, effect: deny, match: {window: {regex: x, flags: g}}}]\n', /flags/, 'rules[0].match.window.flags'],
    ['unknown key in a chord', 'version: 1\nrules: [{id: a, effect: ask, match: {keys: ["ctrl+blorp"]}}]\n', /not a key chord/, 'rules[0].match.keys[0]'],
    ['empty app matcher object', 'version: 1\nrules: [{id: a, effect: deny, match: {app: {}}}]\n', /at least one/, 'rules[0].match.app'],
    ['zero-size region', 'version: 1\nrules: [{id: a, effect: deny, match: {region: {x: 0, y: 0, width: 0, height: 5}}}]\n', /Too small|>0|greater/i, 'rules[0].match.region.width'],
    ['duplicate rule ids', 'version: 1\nrules: [{id: a, effect: deny}, {id: a, effect: allow}]\n', /duplicate rule id "a"/, 'rules[1].id'],
    ['reserved characters in an id', 'version: 1\nrules: [{id: "default:unmatched", effect: allow}]\n', /rule ids/, 'rules[0].id'],
    ['perception rule that asks', 'version: 1\nrules: [{id: a, effect: ask, on: perceive}]\n', /cannot ask/, 'rules[0].effect'],
    ['unmatched: allow is not possible', 'version: 1\ndefaults: {unmatched: allow}\n', /Invalid/, 'defaults.unmatched'],
    ['duplicate YAML keys', 'version: 1\nversion: 1\n', /not valid YAML/, ''],
    ['negative rate', 'version: 1\nlimits: {actionsPerSecond: -1}\n', /Too small|greater/i, 'limits.actionsPerSecond'],
  ])('%s → POLICY_INVALID naming the field', (_name, text, message, path) => {
    const e = invalid(text);
    expect(e.code).toBe('POLICY_INVALID');
    expect(e.status).toBe(400);
    expect(e.message).toMatch(message);
    expect(e.message).toContain('test.yaml');
    if (path) expect((e.details as { issues: Array<{ path: string }> }).issues.map((i) => i.path)).toContain(path);
  });

  it('validatePolicy accepts objects built in code', () => {
    expect(validatePolicy({ version: 1, rules: [{ id: 'x', effect: 'allow' }] }).rules[0]).toEqual({ id: 'x', effect: 'allow', on: 'action', match: {} });
  });
});

describe('examples/policy*.yaml', async () => {
  const { readdir, readFile } = await import('node:fs/promises');
  const { evaluate } = await import('../../src/policy/engine.js');
  const dir = new URL('../../examples/', import.meta.url);
  const files = (await readdir(dir)).filter((f) => /^policy.*\.yaml$/.test(f));

  it('there are examples', () => {
    expect(files).toEqual(expect.arrayContaining(['policy.yaml', 'policy-e2e.yaml', 'policy-permissive.yaml']));
  });
  it.each(files)('%s is valid', async (f) => {
    const p = parsePolicy(await readFile(new URL(f, dir), 'utf8'), f);
    expect(p.rules.length).toBeGreaterThan(0);
  });

  it('policy-e2e.yaml: calculator allowed, xterm denied, escape in the calculator asks', async () => {
    const p = parsePolicy(await readFile(new URL('policy-e2e.yaml', dir), 'utf8'));
    const calc = { app: 'gnome-calculator', wmClass: 'gnome-calculator' };
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 1, y: 1 }, target: calc }, p)).toMatchObject({ effect: 'allow', ruleId: 'allow-calculator' });
    expect(evaluate({ kind: 'action', action: { type: 'type', text: 'echo hi' }, target: { app: 'xterm', wmClass: 'xterm' } }, p)).toMatchObject({ effect: 'deny', ruleId: 'deny-xterm' });
    expect(evaluate({ kind: 'action', action: { type: 'keypress', keys: ['ESC'] }, target: calc }, p)).toMatchObject({ effect: 'ask', ruleId: 'ask-calculator-clear' });
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 1, y: 1 }, target: { app: 'gedit' } }, p)).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
  });

  it('policy.yaml: docs site allowed by URL origin, destructive text denied, banking windows hidden', async () => {
    const p = parsePolicy(await readFile(new URL('policy.yaml', dir), 'utf8'));
    const browser = { app: 'chromium', url: 'https://api.docs.example.com/v2' };
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 500, y: 500 }, target: browser }, p)).toMatchObject({ effect: 'allow', ruleId: 'allow-docs-site' });
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 500, y: 500 }, target: { ...browser, url: 'https://evil.test' } }, p)).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched' });
    expect(evaluate({ kind: 'action', action: { type: 'type', text: 'sudo rm -rf /' }, target: { app: 'gedit' } }, p)).toMatchObject({ effect: 'deny', ruleId: 'deny-shell-commands-anywhere' });
    expect(evaluate({ kind: 'action', action: { type: 'click', x: 10, y: 10 }, target: { app: 'gedit' } }, p)).toMatchObject({ effect: 'deny', ruleId: 'deny-menu-bar-corner' });
    expect(evaluate({ kind: 'perceive', target: { app: 'firefox', window: 'My Bank - Firefox' } }, p)).toMatchObject({ effect: 'deny', ruleId: 'hide-banking-windows' });
  });
});
