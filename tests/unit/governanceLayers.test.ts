/**
 * Issue 17, layered policy semantics (src/governance/layers.ts): a deny or ask in any layer holds; allow
 * only when the user layer and the agent overlay allow and no managed rule denies or asks; managed limits
 * are maxima; `lock: {unmatched: deny}`; managed allow rules grant nothing; a missing overlay denies.
 */
import { describe, it, expect } from 'vitest';
import { parsePolicy } from '../../src/policy/parse.js';
import { evaluate } from '../../src/policy/engine.js';
import { constrained, effectivePolicy, evaluateLayered, evaluateLayeredEffects, reasonRequired } from '../../src/governance/layers.js';
import { LayeredPolicyStore } from '../../src/governance/policyStore.js';
import { generatePolicyKeys, signPolicyBytes, verifyPolicyBytes } from '../../src/governance/signing.js';

const P = (y: string) => parsePolicy(y, 't');
const ALLOW_ALL = P(`version: 1\nrules:\n  - { id: all, effect: allow, match: {} }\n`);
const USER_ASK_DEFAULT = P(`version: 1\ndefaults: { unmatched: ask }\nrules:\n  - { id: xterm, effect: allow, match: { app: xterm } }\n`);
const MANAGED = P(`
version: 1
limits: { actionsPerSecond: 2, burst: 3, maxTypeChars: 10 }
approvals: { timeoutMs: 5000 }
rules:
  - { id: no-calc, effect: deny, match: { app: gnome-calculator } }
  - { id: ask-enter, effect: ask, match: { actions: [keypress], keys: enter } }
  - { id: grant-everything, effect: allow, match: {} }
`);
const LOCKED = P(`version: 1\nlock: { unmatched: deny }\nrequireReason: true\n`);
const click = { type: 'click', x: 10, y: 10 };
const calc = { app: 'gnome-calculator', window: 'Calculator' };
const xterm = { app: 'xterm', window: 'x' };
const req = (action: object, target: object) => ({ kind: 'action' as const, action: action as { type: string }, target });

describe('layered decisions', () => {
  it('with only a user layer the answer is the single-policy engine\'s', () => {
    for (const [a, t] of [[click, calc], [{ type: 'type', text: 'abc' }, xterm], [{ type: 'keypress', keys: ['ENTER'] }, calc]] as const) {
      const d = evaluateLayered(req(a, t), { managed: null, user: USER_ASK_DEFAULT });
      const e = evaluate(req(a, t), USER_ASK_DEFAULT);
      expect({ effect: d.effect, ruleId: d.ruleId, matched: d.matched }).toEqual({ effect: e.effect, ruleId: e.ruleId, matched: e.matched });
    }
  });

  it('a managed deny holds against a user policy that allows everything', () => {
    const d = evaluateLayered(req(click, calc), { managed: MANAGED, user: ALLOW_ALL });
    expect(d.effect).toBe('deny');
    expect(d.ruleId).toBe('managed:no-calc');
    expect(evaluateLayered(req(click, xterm), { managed: MANAGED, user: ALLOW_ALL }).effect).toBe('allow');
  });

  it('a managed ask holds; a user deny beats a managed ask', () => {
    expect(evaluateLayered(req({ type: 'keypress', keys: ['Return'] }, xterm), { managed: MANAGED, user: ALLOW_ALL })).toMatchObject({ effect: 'ask', ruleId: 'managed:ask-enter' });
    const userDeny = P(`version: 1\nrules:\n  - { id: no-keys, effect: deny, match: { actions: [keypress] } }\n`);
    expect(evaluateLayered(req({ type: 'keypress', keys: ['enter'] }, xterm), { managed: MANAGED, user: userDeny })).toMatchObject({ effect: 'deny', ruleId: 'no-keys' });
  });

  it('a managed allow grants nothing: the user layer still has to allow', () => {
    const userNothing = P(`version: 1\n`);
    expect(evaluateLayered(req(click, xterm), { managed: MANAGED, user: userNothing })).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
  });

  it('managed limits are maxima the user layer cannot raise (maxTypeChars, rate, approvals timeout)', () => {
    const d = evaluateLayered(req({ type: 'type', text: 'x'.repeat(11) }, xterm), { managed: MANAGED, user: ALLOW_ALL });
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'limit:maxTypeChars' });
    expect(evaluateLayered(req({ type: 'type', text: 'x'.repeat(10) }, xterm), { managed: MANAGED, user: ALLOW_ALL }).effect).toBe('allow');
    const eff = effectivePolicy({ managed: MANAGED, user: ALLOW_ALL });
    expect(eff.limits).toEqual({ actionsPerSecond: 2, burst: 3, maxTypeChars: 10 });
    expect(eff.approvals.timeoutMs).toBe(5000);
    // A stricter user limit stays.
    const strict = P(`version: 1\nlimits: { actionsPerSecond: 1, burst: 1, maxTypeChars: 5 }\n`);
    expect(constrained(strict, MANAGED).limits).toEqual({ actionsPerSecond: 1, burst: 1, maxTypeChars: 5 });
  });

  it('lock {unmatched: deny}: a user default of ask becomes deny; without the lock it stays ask', () => {
    expect(evaluateLayered(req(click, calc), { managed: null, user: USER_ASK_DEFAULT }).effect).toBe('ask');
    expect(evaluateLayered(req(click, calc), { managed: LOCKED, user: USER_ASK_DEFAULT })).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
    expect(evaluateLayered(req(click, xterm), { managed: LOCKED, user: USER_ASK_DEFAULT }).effect).toBe('allow');
  });

  it('the agent overlay must allow too; its rules are named agent:<id>:<rule>', () => {
    const overlay = P(`version: 1\nrules:\n  - { id: only-xterm, effect: allow, match: { app: xterm } }\n`);
    const layers = { managed: null, user: ALLOW_ALL, agent: { id: 'reader', policy: overlay } };
    expect(evaluateLayered(req(click, xterm), layers)).toMatchObject({ effect: 'allow' });
    expect(evaluateLayered(req(click, calc), layers)).toMatchObject({ effect: 'deny', ruleId: 'default:unmatched' });
    const askOverlay = P(`version: 1\nrules:\n  - { id: careful, effect: ask, match: {} }\n`);
    expect(evaluateLayered(req(click, xterm), { managed: null, user: ALLOW_ALL, agent: { id: 'r', policy: askOverlay } })).toMatchObject({ effect: 'ask', ruleId: 'agent:r:careful' });
  });

  it('invariants come first whatever the layers say (halted)', () => {
    const d = evaluateLayered({ ...req(click, xterm), state: { halted: true } }, { managed: MANAGED, user: ALLOW_ALL });
    expect(d.ruleId).toBe('invariant:halted');
  });

  it('effects: the worst effect under the layers decides', () => {
    const d = evaluateLayeredEffects({ type: 'click', x: 1, y: 1 }, [{ kind: 'pointer', target: xterm }, { kind: 'keys', target: calc }], { managed: MANAGED, user: ALLOW_ALL });
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'managed:no-calc', deciding: 1 });
    expect(d.effects.map((e) => e.decision.effect)).toEqual(['allow', 'deny']);
  });

  it('perception: managed masks are applied with the user\'s', () => {
    const m = P(`version: 1\nperception: { mask: [keepassxc] }\n`);
    const u = P(`version: 1\nperception: { mask: [signal] }\n`);
    expect(effectivePolicy({ managed: m, user: u }).perception.mask).toEqual(['keepassxc', 'signal']);
  });

  it('requireReason in any layer', () => {
    expect(reasonRequired({ managed: null, user: ALLOW_ALL })).toBe(false);
    expect(reasonRequired({ managed: LOCKED, user: ALLOW_ALL })).toBe(true);
    expect(reasonRequired({ managed: null, user: ALLOW_ALL, agent: { id: 'a', policy: P('version: 1\nrequireReason: true\n') } })).toBe(true);
  });

  it('an agent whose overlay is not loaded gets a deny-everything overlay (fail closed)', () => {
    const s = LayeredPolicyStore.fromPolicies(ALLOW_ALL);
    const l = s.layersFor({ id: 'ghost', policy: '/nonexistent/overlay.yaml' });
    expect(evaluateLayered(req(click, xterm), l).effect).toBe('deny');
    expect(evaluateLayered(req(click, xterm), s.layersFor({ id: 'plain' })).effect).toBe('allow');
  });
});

describe('Ed25519 signatures', () => {
  it('verify the exact bytes; any change, another key or a truncated signature fails', () => {
    const k = generatePolicyKeys();
    const other = generatePolicyKeys();
    const text = 'version: 1\nrules: []\n';
    const sig = signPolicyBytes(text, k.privateKeyPem);
    expect(verifyPolicyBytes(text, sig, k.publicKeyPem)).toBe(true);
    expect(verifyPolicyBytes(text + ' ', sig, k.publicKeyPem)).toBe(false);
    expect(verifyPolicyBytes(text, sig, other.publicKeyPem)).toBe(false);
    expect(verifyPolicyBytes(text, sig.slice(0, 40), k.publicKeyPem)).toBe(false);
    expect(verifyPolicyBytes(text, 'not base64 at all!', k.publicKeyPem)).toBe(false);
    expect(verifyPolicyBytes(text, sig, 'not a key')).toBe(false);
  });
});
