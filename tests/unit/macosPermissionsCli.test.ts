/**
 * `deskd permissions` on macOS (src/cli/permissions.ts): per grant, which identity holds it (deskd Helper vs the
 * terminal/node) and how to fix it; `--prompt` opens the System Settings panes of missing grants only. The helper
 * is queried over a real Unix socket in one test. Also: the Linux report no longer asks for xprop/xwininfo.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAC_HELPER_BUNDLE_ID, MAC_HELPER_SOCKET_NAME, MAC_SETTINGS_URLS, linuxPermissionChecks, macPermissionChecks, queryHelperOverSocket, type HelperPermissionsAnswer } from '../../src/cli/permissions.js';
import { HELPER_BUNDLE_ID, HELPER_SOCKET_NAME } from '../../src/platform/macos/helperClient.js';

const APP = '/Applications/deskd Helper.app';
const iterm = { __CFBundleIdentifier: 'com.googlecode.iterm2', TERM_PROGRAM: 'iTerm.app' };
const authorized = { getAuthStatus: () => 'authorized' };
const answer = (ax: boolean, sr: boolean): HelperPermissionsAnswer => ({
  accessibility: { trusted: ax, probe: ax ? 'ok' : 'denied' },
  screenRecording: { preflight: sr, probe: sr ? 'ok' : 'denied' },
});

describe('deskd permissions (macOS)', () => {
  it('attributes helper grants to deskd Helper and nut-js input to the terminal, with a fix per failing grant', async () => {
    const checks = await macPermissionChecks(iterm, { helperApp: () => APP, queryHelper: async () => answer(true, false), load: () => authorized, openUrl: () => expect.fail('no --prompt') });
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
    expect(byId['accessibility-helper']).toMatchObject({ status: 'ok', detail: expect.stringContaining(`deskd Helper (${MAC_HELPER_BUNDLE_ID}`) });
    expect(byId['screen-recording-helper']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/not granted; the grant belongs to deskd Helper .*not to your terminal or node/) });
    expect(byId['screen-recording-helper']!.fix).toMatch(/Screen & System Audio Recording: enable deskd Helper .*tccutil reset ScreenCapture dev\.deskd\.helper$/);
    expect(byId.accessibility).toMatchObject({ status: 'ok', detail: expect.stringMatching(/nut-js.*belongs to the app deskd was started from \(com\.googlecode\.iterm2\)/) });
    // With the app, Screen Recording is not asked of the terminal.
    expect(byId['screen-recording']).toBeUndefined();
  });

  it('--prompt asks the helper to prompt and opens only the panes of missing grants', async () => {
    const opened: string[] = [];
    let prompted: boolean | null = null;
    const denied = { getAuthStatus: (t: string) => (t === 'accessibility' ? 'denied' : 'authorized') };
    const checks = await macPermissionChecks(iterm, {
      prompt: true,
      helperApp: () => APP,
      queryHelper: async (p) => {
        prompted = p;
        return answer(true, false);
      },
      load: () => denied,
      openUrl: (u) => opened.push(u),
    });
    expect(prompted).toBe(true);
    expect(opened.sort()).toEqual([MAC_SETTINGS_URLS.accessibility, MAC_SETTINGS_URLS['screen-recording']].sort());
    expect(MAC_SETTINGS_URLS['screen-recording']).toBe('x-apple.systempreferences:com.apple.preference.security?Privacy_ScreenCapture');
    expect(checks.find((c) => c.id === 'accessibility')).toMatchObject({ status: 'fail', fix: expect.stringContaining('tccutil reset Accessibility com.googlecode.iterm2') });

    const none: string[] = [];
    const all = await macPermissionChecks(iterm, { prompt: true, helperApp: () => APP, queryHelper: async () => answer(true, true), load: () => authorized, openUrl: (u) => none.push(u) });
    expect(none).toEqual([]);
    expect(all.at(-1)).toMatchObject({ id: 'prompt', detail: expect.stringMatching(/nothing is missing/) });
  });

  it('without the app, every grant belongs to the terminal (or node under the launchd agent) and the build is advised', async () => {
    const checks = await macPermissionChecks(iterm, { helperApp: () => null, load: () => ({ getAuthStatus: () => 'not determined' }) });
    expect(checks.map((c) => [c.id, c.status])).toEqual([
      ['helper-app', 'warn'],
      ['accessibility', 'fail'],
      ['screen-recording', 'fail'],
    ]);
    expect(checks[0]!.fix).toMatch(/npm run build:macos-helper/);
    const agent = await macPermissionChecks({ XPC_SERVICE_NAME: 'dev.deskd.agent' }, { helperApp: () => null, load: () => null });
    expect(agent[1]).toMatchObject({ status: 'warn', detail: expect.stringMatching(/belongs to node \(.*\), as the launchd agent starts it/) });
  });

  it('a helper that does not answer gives warnings naming deskd Helper, never ok', async () => {
    const checks = await macPermissionChecks(iterm, { helperApp: () => APP, queryHelper: async () => Promise.reject(new Error('no answer within 8000 ms')), load: () => authorized });
    expect(checks.filter((c) => c.id.endsWith('-helper')).map((c) => [c.status, /unknown.*no answer within 8000 ms.*deskd Helper/.test(c.detail)])).toEqual([
      ['warn', true],
      ['warn', true],
    ]);
  });

  it('queries the helper over a 0600 socket: hello, one permissions request (with prompt), EOF', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deskd-permcli-'));
    chmodSync(dir, 0o700);
    const path = join(dir, MAC_HELPER_SOCKET_NAME);
    const got: unknown[] = [];
    let ended!: () => void;
    const eof = new Promise<void>((r) => (ended = r));
    const server = createServer((s) => {
      s.write(`${JSON.stringify({ type: 'hello', protocol: 1, version: '0.2.0', operations: [{ name: 'permissions', permissions: [] }] })}\n`);
      s.on('data', (d) => {
        for (const l of d.toString().split('\n').filter(Boolean)) {
          const req = JSON.parse(l) as { id: number };
          got.push(req);
          s.write(`${JSON.stringify({ id: req.id, ok: true, result: answer(false, true) })}\n`);
        }
      });
      s.on('end', () => {
        ended();
        s.end();
      });
    });
    await new Promise<void>((r) => server.listen(path, () => r()));
    chmodSync(path, 0o600);
    try {
      expect(await queryHelperOverSocket(path, true, undefined, 3000)).toEqual(answer(false, true));
      expect(got).toEqual([{ id: 1, op: 'permissions', params: { prompt: true } }]);
      await eof;
      chmodSync(path, 0o644);
      await expect(queryHelperOverSocket(path, false, undefined, 3000)).rejects.toThrow(/refusing the helper socket/);
    } finally {
      server.close();
    }
  });

  it('the CLI constants agree with the helper client and the bundle build script', async () => {
    const script = (await import('../../scripts/build-macos-helper.mjs' as string)) as { BUNDLE_ID: string };
    expect([MAC_HELPER_BUNDLE_ID, HELPER_BUNDLE_ID, script.BUNDLE_ID]).toEqual(['dev.deskd.helper', 'dev.deskd.helper', 'dev.deskd.helper']);
    expect(MAC_HELPER_SOCKET_NAME).toBe(HELPER_SOCKET_NAME);
  });
});

describe('deskd permissions (Linux)', () => {
  it('no longer asks for xprop/xwininfo; only xdotool (typing) is checked', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'deskd-nopath-'));
    const checks = await linuxPermissionChecks({ PATH: empty });
    const tools = checks.find((c) => c.id === 'x11-tools')!;
    expect(tools).toMatchObject({ status: 'warn', fix: 'apt-get install xdotool' });
    expect(JSON.stringify(checks)).not.toMatch(/xprop|xwininfo|x11-utils/);
  });
});
