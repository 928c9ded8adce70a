import { describe, expect, it } from 'vitest';
import type { WindowInfo } from '../../src/platform/types.js';
import { validatePolicy } from '../../src/policy/parse.js';
import { BORDER_POINTS, describeWindowForAgent, isMaskedWindow, perceptionMask } from '../../src/policy/perception.js';

// What the policy lets deskd perceive (src/policy/perception.ts): masked windows' regions (with their
// border), ids, apps and the rules that masked them; apps known only by their accessibility tree; and how
// a window may be named to the agent.

const policy = validatePolicy({
  version: 1,
  perception: { mask: ['keepassxc', { wmClass: 'Bitwarden' }] },
  rules: [
    { id: 'hide-bank', effect: 'deny', on: 'perceive', match: { window: '*bank*' } },
    { id: 'hide-settings', effect: 'deny', on: 'perceive', match: { app: 'gnome-control-center' } },
  ],
});
const win = (id: string, app: string | null, title: string | null, extra: Partial<WindowInfo> = {}): WindowInfo => ({ id, app, pid: 100, title, bounds: { x: 10, y: 20, width: 300, height: 200 }, ...extra }) as WindowInfo;

describe('perceptionMask', () => {
  it('masks each window the policy does not let deskd see: region with its border, id, app (lower-cased), rule once', () => {
    expect(BORDER_POINTS).toBe(2);
    const windows = [
      win('0x1', 'KeePassXC', 'Vault'),
      win('0x2', 'gedit', 'notes'),
      win('0x3', 'keepassxc', 'Vault 2', { bounds: { x: 500, y: 0, width: 100, height: 50 } }),
      win('0x4', 'firefox', 'My bank — Firefox'),
      win('0x5', 'electron', 'Vault', { wmClass: 'Bitwarden' }),
    ];
    const m = perceptionMask(windows, policy);
    expect(m.windowIds).toEqual(['0x1', '0x3', '0x4', '0x5']);
    expect(m.regions[0]).toEqual({ x: 8, y: 18, width: 304, height: 204 });
    expect(m.regions[1]).toEqual({ x: 498, y: -2, width: 104, height: 54 });
    expect(m.regions).toHaveLength(4);
    expect(m.apps).toEqual(['keepassxc', 'keepassxc', 'firefox', 'electron']);
    expect(m.ruleIds).toEqual(['perception.mask[0]', 'hide-bank', 'perception.mask[1]']);
  });

  it('nothing masked → an empty mask', () => {
    const m = perceptionMask([win('0x2', 'gedit', 'notes')], policy);
    expect(m).toMatchObject({ regions: [], apps: [], ruleIds: [], windowIds: [] });
  });

  it('a masked window without an app name masks its region and id only', () => {
    const m = perceptionMask([win('0x9', null, 'online bank')], policy);
    expect(m.windowIds).toEqual(['0x9']);
    expect(m.apps).toEqual([]);
    expect(m.ruleIds).toEqual(['hide-bank']);
  });
});

describe('hides (apps known by their accessibility tree)', () => {
  it('by accessible name; by window title; unknown apps follow defaults.perceive', () => {
    const m = perceptionMask([], policy);
    expect(m.hides!('KeePassXC')).toBe(true);
    expect(m.hides!('gnome-control-center')).toBe(true);
    expect(m.hides!('gedit')).toBe(false);
    expect(m.hides!('gedit', 'bank statement')).toBe(true);
    expect(m.hides!('gedit', 'notes')).toBe(false);
    expect(m.hides!('gedit', null)).toBe(false);
  });

  it('an app named by WM_CLASS in the policy is hidden by the identity of its visible window (class or instance)', () => {
    const byClass = perceptionMask([win('0x5', 'electron', 'Vault', { wmClass: 'Bitwarden', instance: 'bitwarden' })], policy);
    expect(byClass.hides!('electron')).toBe(true);
    expect(byClass.hides!('Bitwarden')).toBe(true);
    expect(byClass.hides!('bitwarden')).toBe(true);
    // Without a visible window the accessible name alone does not reveal the WM_CLASS.
    expect(perceptionMask([], policy).hides!('electron')).toBe(false);
  });

  it('the first visible window of a name gives the identity', () => {
    const m = perceptionMask([win('0x6', 'electron', 'Chat', { wmClass: 'Slack' }), win('0x5', 'electron', 'Vault', { wmClass: 'Bitwarden' })], policy);
    expect(m.hides!('electron')).toBe(false);
  });

  it('answers are cached per app and title, and stay consistent', () => {
    const m = perceptionMask([], policy);
    expect(m.hides!('gedit', 'bank')).toBe(true);
    expect(m.hides!('gedit')).toBe(false);
    expect(m.hides!('gedit', 'bank')).toBe(true);
    expect(m.hides!('gedit')).toBe(false);
  });
});

describe('naming windows to the agent', () => {
  it('a masked window is never named; others as app "title" (id); unknown parts shown as ? and empty', () => {
    expect(describeWindowForAgent(null, policy)).toBe('no window');
    expect(describeWindowForAgent(win('0x1', 'keepassxc', 'Vault'), policy)).toBe('a window masked by the policy');
    expect(describeWindowForAgent(win('0x4', 'firefox', 'my bank'), policy)).toBe('a window masked by the policy');
    expect(describeWindowForAgent(win('0x2', 'gedit', 'notes'), policy)).toBe('gedit "notes" (0x2)');
    expect(describeWindowForAgent(win('0x7', null, null), policy)).toBe('? "" (0x7)');
  });

  it('isMaskedWindow', () => {
    expect(isMaskedWindow(win('0x1', 'keepassxc', 'Vault'), policy)).toBe(true);
    expect(isMaskedWindow(win('0x5', 'electron', 'x', { wmClass: 'Bitwarden' }), policy)).toBe(true);
    expect(isMaskedWindow(win('0x2', 'gedit', 'notes'), policy)).toBe(false);
  });
});
