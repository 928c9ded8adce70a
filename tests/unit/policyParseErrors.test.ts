import { describe, expect, it } from 'vitest';
import { thrown } from '../helpers/rejection.js';
import { parsePolicy, validatePolicy } from '../../src/policy/parse.js';

// How a bad policy is refused (src/policy/parse.ts): always POLICY_INVALID, the source named, every
// failing field by its path (indexes in brackets), at most five in the message, all in details.issues;
// a valid policy comes back deep-frozen, so nothing can widen it after validation.

const refusal = (f: () => unknown) => thrown(f, 'expected POLICY_INVALID');

describe('POLICY_INVALID messages', () => {
  it('an empty document (YAML or value) names the source', () => {
    for (const f of [() => parsePolicy('', 'a.yaml'), () => parsePolicy('# only a comment\n', 'a.yaml'), () => validatePolicy(null, 'a.yaml'), () => validatePolicy(undefined, 'a.yaml')]) {
      const e = refusal(f);
      expect(e.code).toBe('POLICY_INVALID');
      expect(e.message).toBe('a.yaml: the policy is empty');
      expect(e.details).toEqual({ issues: [{ path: '', message: 'empty document' }] });
    }
  });

  it('not YAML: the first error on one line, without a trailing colon; every error in issues', () => {
    const e = refusal(() => parsePolicy('version: 1\nrules: [\n', 'p.yaml'));
    expect(e.message).toMatch(/^p\.yaml: not valid YAML: \S/);
    expect(e.message).not.toContain('\n');
    expect(e.message.endsWith(':')).toBe(false);
    const issues = (e.details as { issues: { path: string; message: string }[] }).issues;
    expect(issues.length).toBeGreaterThan(0);
    for (const i of issues) {
      expect(i.path).toBe('');
      expect(i.message).not.toContain('\n');
    }
  });

  it('the default source is "policy"', () => {
    expect(refusal(() => validatePolicy(null)).message).toBe('policy: the policy is empty');
    expect(refusal(() => parsePolicy('version: 2\n')).message).toMatch(/^policy: version: /);
  });

  it('a field path: names with dots, indexes in brackets; the root when the value itself is wrong', () => {
    const e = refusal(() => validatePolicy({ version: 1, rules: [{ id: 'ok', effect: 'allow' }, { id: 'x', effect: 'allow', match: { keys: ['ctrl+nope'] } }] }, 'p.yaml'));
    expect(e.message).toMatch(/^p\.yaml: rules\[1\]\.match\.keys\[0\]: not a key chord: /);
    expect((e.details as { issues: { path: string }[] }).issues[0]!.path).toBe('rules[1].match.keys[0]');
    const root = refusal(() => validatePolicy(42, 'p.yaml'));
    expect(root.message).toMatch(/^p\.yaml: \(root\): /);
  });

  it('at most five issues in the message, then how many more; all of them in details', () => {
    const rules = Array.from({ length: 7 }, (_, i) => ({ id: `r${i}`, effect: 'maybe' }));
    const e = refusal(() => validatePolicy({ version: 1, rules }, 'p.yaml'));
    const issues = (e.details as { issues: { path: string }[] }).issues;
    expect(issues.map((i) => i.path)).toEqual(rules.map((_, i) => `rules[${i}].effect`));
    expect(e.message.split('; ').filter((s) => /rules\[\d\]\.effect/.test(s))).toHaveLength(5);
    expect(e.message.endsWith('; and 2 more')).toBe(true);
    const five = refusal(() => validatePolicy({ version: 1, rules: rules.slice(0, 5) }, 'p.yaml'));
    expect(five.message).not.toContain('more');
    const six = refusal(() => validatePolicy({ version: 1, rules: rules.slice(0, 6) }, 'p.yaml'));
    expect(six.message.endsWith('; and 1 more')).toBe(true);
  });
});

describe('a valid policy is deep-frozen', () => {
  it('rules, matchers and lists cannot be changed after validation', () => {
    const p = parsePolicy('version: 1\nrules:\n  - { id: a, effect: deny, match: { app: [xterm, "gnome-terminal"], keys: ["ctrl+alt+t"] } }\n', 'p.yaml');
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.rules)).toBe(true);
    expect(Object.isFrozen(p.rules[0])).toBe(true);
    expect(Object.isFrozen(p.rules[0]!.match)).toBe(true);
    expect(Object.isFrozen(p.rules[0]!.match.app)).toBe(true);
    expect(Object.isFrozen(p.defaults)).toBe(true);
    expect(() => (p.rules as unknown as unknown[]).push({ id: 'b', effect: 'allow' })).toThrow(TypeError);
    expect(() => ((p.rules[0]!.match.app as string[])[0] = 'gedit')).toThrow(TypeError);
  });
});
