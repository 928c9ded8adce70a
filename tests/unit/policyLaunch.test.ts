/** Issue 22: the policy's `launch` list (deny by default, argument globs, every layer narrows) and `workspaces` caps. */
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/parse.js';
import { assertLaunchAllowed, DEFAULT_WORKSPACE_LIMITS, globToRegExp, workspaceLimits } from '../../src/policy/launch.js';
import { appEnv } from '../../src/workspaces/env.js';
import { parseSize } from '../../src/workspaces/manager.js';

const user = parsePolicy(`version: 1
launch:
  - app: gnome-calculator
  - app: chromium
    args: { allow: ["--app=https://ci.example.com/*", "--window-size=?*,?*"] }
workspaces: { max: 6, perAgent: 2 }
`, 'user.yaml');
const code = (f: () => void) => {
  try {
    f();
    return 'allowed';
  } catch (e) {
    return (e as { code: string; message: string }).code + ': ' + (e as Error).message;
  }
};

describe('launch policy', () => {
  it('allows a listed app without arguments, and arguments only when each matches a glob', () => {
    const layers = { managed: null, user };
    expect(code(() => assertLaunchAllowed(layers, 'gnome-calculator', []))).toBe('allowed');
    expect(code(() => assertLaunchAllowed(layers, 'gnome-calculator', ['--mode=advanced']))).toMatch(/^POLICY_DENIED: .*argument "--mode=advanced"/);
    expect(code(() => assertLaunchAllowed(layers, 'chromium', ['--app=https://ci.example.com/build/7', '--window-size=800,600']))).toBe('allowed');
    expect(code(() => assertLaunchAllowed(layers, 'chromium', ['--app=https://evil.example.com/?ci.example.com/']))).toMatch(/^POLICY_DENIED/);
    expect(code(() => assertLaunchAllowed(layers, 'xterm', []))).toMatch(/^POLICY_DENIED: .*"xterm" is not in its launch list/);
    expect(code(() => assertLaunchAllowed(layers, '/usr/bin/gnome-calculator', []))).toMatch(/^POLICY_DENIED/);
  });

  it('denies everything without a launch section, and a managed or agent list narrows the user list', () => {
    expect(code(() => assertLaunchAllowed({ managed: null, user: parsePolicy('version: 1\n', 'u') }, 'gnome-calculator', []))).toMatch(/^POLICY_DENIED: .*no launch section/);
    const managed = parsePolicy('version: 1\nlaunch: [{ app: chromium, args: { allow: ["--app=https://ci.example.com/*"] } }]\n', 'm');
    expect(code(() => assertLaunchAllowed({ managed, user }, 'gnome-calculator', []))).toMatch(/^POLICY_DENIED: .*managed/);
    expect(code(() => assertLaunchAllowed({ managed, user }, 'chromium', ['--app=https://ci.example.com/x']))).toBe('allowed');
    const agent = { id: 'a1', policy: parsePolicy('version: 1\nlaunch: []\n', 'a') };
    expect(code(() => assertLaunchAllowed({ managed: null, user, agent }, 'gnome-calculator', []))).toMatch(/^POLICY_DENIED: .*agent:a1/);
    // A managed list cannot widen: the user layer must still allow.
    const wide = parsePolicy('version: 1\nlaunch: [{ app: xterm }]\n', 'm');
    expect(code(() => assertLaunchAllowed({ managed: wide, user }, 'xterm', []))).toMatch(/^POLICY_DENIED: .*user/);
  });

  it('refuses commands with shell syntax or relative paths at load time', () => {
    expect(() => parsePolicy('version: 1\nlaunch: [{ app: "sh -c x" }]\n', 'p')).toThrow(/app is a command name/);
    expect(() => parsePolicy('version: 1\nlaunch: [{ app: "../bin/x" }]\n', 'p')).toThrow(/app is a command name/);
    expect(() => parsePolicy('version: 1\nlaunch: [{ app: x, argz: {} }]\n', 'p')).toThrow();
  });

  it('globs are whole-argument and case-sensitive', () => {
    expect(globToRegExp('--app=https://ci.example.com/*').test('--app=https://ci.example.com/a/b')).toBe(true);
    expect(globToRegExp('--app=https://ci.example.com/*').test('x--app=https://ci.example.com/')).toBe(false);
    expect(globToRegExp('a?c').test('abc')).toBe(true);
    expect(globToRegExp('a?c').test('ABC')).toBe(false);
    expect(globToRegExp('a.c').test('abc')).toBe(false);
  });

  it('workspace caps: the smallest over the layers that set them, else the defaults', () => {
    expect(workspaceLimits({ managed: null, user: parsePolicy('version: 1\n', 'u') })).toEqual(DEFAULT_WORKSPACE_LIMITS);
    const managed = parsePolicy('version: 1\nworkspaces: { max: 2, maxApps: 3 }\n', 'm');
    expect(workspaceLimits({ managed, user })).toEqual({ max: 2, perAgent: 2, maxApps: 3 });
  });
});

describe('workspace app environment and size', () => {
  it('keeps only allowlisted variables and sets the workspace ones', () => {
    const env = appEnv({ PATH: '/bin', LANG: 'C.UTF-8', LC_TIME: 'C', DESKD_TOKEN: 's', DESKD_OPERATOR_TOKEN: 's', OPENAI_API_KEY: 's', AWS_SECRET_ACCESS_KEY: 's', SSH_AUTH_SOCK: '/x', DISPLAY: ':0', NO_AT_BRIDGE: '1', HOME: '/root' }, { DISPLAY: ':91', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/b', HOME: '/ws/home' });
    expect(env).toEqual({ PATH: '/bin', LANG: 'C.UTF-8', LC_TIME: 'C', ACCESSIBILITY_ENABLED: '1', DISPLAY: ':91', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/b', HOME: '/ws/home' });
  });

  it('parses WxH within 64..8192', () => {
    expect(parseSize('1024x768')).toEqual({ width: 1024, height: 768 });
    expect(() => parseSize('10x10')).toThrow(/64-8192/);
    expect(() => parseSize('9000x100')).toThrow(/64-8192/);
  });
});
