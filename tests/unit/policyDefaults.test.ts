import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_YAML, defaultPolicy } from '../../src/policy/defaults.js';
import { evaluate, type PolicyAction, type PolicyTarget } from '../../src/policy/engine.js';

const p = defaultPolicy();
const decide = (action: PolicyAction, target: PolicyTarget) => evaluate({ kind: 'action', action, target }, p);
const see = (target: PolicyTarget) => evaluate({ kind: 'perceive', target }, p);

describe('embedded default policy', () => {
  it('is valid YAML that parses to a frozen policy', () => {
    expect(DEFAULT_POLICY_YAML).toContain('version: 1');
    expect(p.defaults.unmatched).toBe('ask');
    expect(Object.isFrozen(p)).toBe(true);
  });

  it.each<[string, PolicyTarget]>([
    ['xterm by name', { app: 'xterm', wmClass: 'XTerm' }],
    ['xterm by WM_CLASS only', { app: 'bash', wmClass: 'xterm' }],
    ['gnome-terminal', { app: 'gnome-terminal-server', wmClass: 'Gnome-terminal' }],
    ['macOS Terminal', { app: 'Terminal', bundleId: 'com.apple.Terminal' }],
    ['iTerm2', { app: 'iTerm2', bundleId: 'com.googlecode.iterm2' }],
    ['konsole', { app: 'konsole' }],
    ['alacritty', { app: 'Alacritty' }],
    ['kitty', { app: 'kitty' }],
    ['wezterm', { app: 'wezterm-gui' }],
  ])('terminal %s: input denied by deny-terminals', (_n, target) => {
    for (const action of [{ type: 'type', text: 'ls' }, { type: 'click', x: 5, y: 5 }, { type: 'keypress', keys: ['ENTER'] }]) {
      expect(decide(action, target)).toMatchObject({ effect: 'deny', ruleId: 'deny-terminals' });
    }
  });

  it.each<[string, PolicyTarget]>([
    ['1Password', { app: '1Password', bundleId: 'com.1password.1password' }],
    ['Bitwarden', { app: 'Bitwarden' }],
    ['KeePassXC', { app: 'keepassxc', wmClass: 'KeePassXC' }],
    ['Keychain Access', { app: 'Keychain Access', bundleId: 'com.apple.keychainaccess' }],
    ['System Settings', { app: 'System Settings', bundleId: 'com.apple.systempreferences' }],
    ['System Preferences', { app: 'System Preferences' }],
    ['gnome-control-center', { app: 'gnome-control-center' }],
  ])('sensitive app %s: input denied and perception masked', (_n, target) => {
    expect(decide({ type: 'click', x: 5, y: 5 }, target)).toMatchObject({ effect: 'deny', ruleId: 'deny-sensitive-apps' });
    expect(see(target).effect).toBe('deny');
    expect(see(target).ruleId).toMatch(/^perception\.mask\[\d+\]$/);
  });

  it('typing into a password field is denied even in an app the user would allow', () => {
    const target: PolicyTarget = { app: 'firefox', element: { role: 'textbox', name: 'Password', states: ['password', 'focused'] } };
    expect(decide({ type: 'type', text: 'hunter2' }, target)).toMatchObject({ effect: 'deny', ruleId: 'invariant:password-field' });
    expect(see(target)).toMatchObject({ effect: 'deny', ruleId: 'invariant:password-field' });
  });

  it.each([
    [['CMD', 'Q']],
    [['meta', 'q']],
    [['cmd', 'option', 'esc']],
    [['CTRL', 'ALT', 'BACKSPACE']],
    [['ctrl', 'alt', 'delete']],
    [['ALT', 'CTRL', 'DEL']],
  ])('dangerous chord %j asks', (keys) => {
    expect(decide({ type: 'keypress', keys }, { app: 'gnome-calculator' })).toMatchObject({ effect: 'ask', ruleId: 'ask-dangerous-chords' });
  });

  it('a dangerous chord aimed at a terminal is denied (deny > ask)', () => {
    expect(decide({ type: 'keypress', keys: ['ctrl', 'alt', 'delete'] }, { app: 'xterm' })).toMatchObject({ effect: 'deny', ruleId: 'deny-terminals' });
  });

  it('input into an app no rule lists asks', () => {
    expect(decide({ type: 'click', x: 10, y: 10 }, { app: 'gnome-calculator', wmClass: 'gnome-calculator' })).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched' });
    expect(decide({ type: 'type', text: '2+2' }, { app: 'gedit' })).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched' });
    expect(decide({ type: 'scroll', x: 1, y: 1 }, {})).toMatchObject({ effect: 'ask', ruleId: 'default:unmatched' });
  });

  it.each(['wait', 'screenshot', 'observe'])('%s is allowed everywhere, terminals included', (type) => {
    expect(decide({ type }, { app: 'gnome-calculator' })).toMatchObject({ effect: 'allow', ruleId: 'allow-readonly' });
    expect(decide({ type }, { app: 'xterm' })).toMatchObject({ effect: 'allow', ruleId: 'allow-readonly' });
  });

  it('ordinary apps and terminals are perceivable', () => {
    expect(see({ app: 'gnome-calculator' })).toMatchObject({ effect: 'allow', ruleId: 'default:perceive' });
    expect(see({ app: 'xterm' })).toMatchObject({ effect: 'allow', ruleId: 'default:perceive' });
  });
});
