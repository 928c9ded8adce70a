/**
 * macOS effect targets through the helper protocol (axElementAt, axOwner, axUrl), replayed from an
 * authored transcript (tests/fixtures/macos/ax-targets.jsonl: never recorded on a Mac) by the fake helper,
 * a real child process; then `pointerTarget` / `elementOwnerTarget` over those answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMacPlatformParts, type MacPlatformParts } from '../../src/platform/macos/index.js';
import { createFakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { Platform, WindowInfo } from '../../src/platform/types.js';
import { elementOwnerTarget, pointerTarget } from '../../src/actuation/targets.js';
import { fakeHelperClient } from '../helpers/macosFakeHelper.js';

const noNmp = { loadNodeMacPermissions: async () => null };
const login: WindowInfo = { id: '88', app: 'Login Demo', pid: 4242, bundleId: 'com.example.logindemo', title: 'Sign in', bounds: { x: 200, y: 120, width: 480, height: 360 } };
const chrome: WindowInfo = { id: '99', app: 'Google Chrome', pid: 5151, bundleId: 'com.google.Chrome', title: 'Cart – Google Chrome', bounds: { x: 560, y: 80, width: 700, height: 600 } };

let parts: MacPlatformParts | null = null;
afterEach(async () => {
  await parts?.close();
  parts = null;
});

async function open(transcript = 'ax-targets.jsonl'): Promise<MacPlatformParts> {
  parts = await createMacPlatformParts({ client: fakeHelperClient(transcript), permissions: noNmp });
  return parts;
}

/** A platform whose windows are fake and whose accessibility is the macOS backend over the transcript. */
function withMacAccessibility(p: MacPlatformParts, windows: WindowInfo[]): Platform {
  const fp = createFakePlatform({ windows });
  return { ...fp, accessibility: p.accessibility };
}

describe('macOS helper: elementAt, ownerOf, urlOf', () => {
  it('elementAt maps the hit-tested AX element (children empty), null where nothing is', async () => {
    const p = await open();
    const hit = await p.accessibility.elementAt!({ x: 300, y: 216 }, login);
    expect(hit).toMatchObject({ handle: 's5:0', role: 'button', name: 'Sign In', bounds: { x: 240, y: 200, width: 120, height: 32 }, children: [] });
    expect(await p.accessibility.elementAt!({ x: 900, y: 900 }, login)).toBeNull();
  });

  it('elementAt refuses an element of another process than the window on top (unknown, not that element)', async () => {
    const p = await open();
    await expect(p.accessibility.elementAt!({ x: 300, y: 216 }, { ...login, pid: 777 })).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
  });

  it('ownerOf names the app and window; an expired element is null', async () => {
    const p = await open();
    expect(await p.accessibility.ownerOf!('s5:0')).toEqual({ app: 'Login Demo', pid: 4242, windowTitle: 'Sign in', windowBounds: { x: 200, y: 120, width: 480, height: 360 } });
    expect(await p.accessibility.ownerOf!('s1:9')).toBeNull();
  });

  it('urlOf returns the web area URL of the window, null when there is none', async () => {
    const p = await open();
    expect(await p.accessibility.urlOf!(chrome)).toBe('https://shop.example.com/cart');
    expect(await p.accessibility.urlOf!({ ...chrome, title: 'New Tab – Google Chrome' })).toBeNull();
    expect(await p.accessibility.urlOf!({ ...chrome, pid: null })).toBeNull();
  });

  it('a helper built before these operations: HELPER_UNAVAILABLE, which targets treat as unknown', async () => {
    const p = await open('ax-password.jsonl');
    await expect(p.accessibility.elementAt!({ x: 300, y: 216 }, login)).rejects.toMatchObject({ code: 'HELPER_UNAVAILABLE' });
    const t = await pointerTarget(withMacAccessibility(p, [login]), { x: 300, y: 216 });
    expect(t.target).toMatchObject({ app: 'Login Demo', element: null, unknown: ['element'] });
  });
});

describe('targets over the macOS backend', () => {
  it('pointerTarget: the element at the point and, in Chrome, the URL', async () => {
    const p = await open();
    const platform = withMacAccessibility(p, [chrome, login]);
    const t = await pointerTarget(platform, { x: 300, y: 216 });
    expect(t.target).toMatchObject({ app: 'Login Demo', bundleId: 'com.example.logindemo', element: { role: 'button', name: 'Sign In' }, url: null, unknown: [] });
    const c = await pointerTarget(platform, { x: 665, y: 310 });
    expect(c.target).toMatchObject({ app: 'Google Chrome', element: { role: 'link', name: 'Checkout' }, url: 'https://shop.example.com/cart', unknown: [] });
  });

  it('elementOwnerTarget: the owning window even when another window is listed on top of it', async () => {
    const p = await open();
    const cover: WindowInfo = { id: '77', app: 'Terminal', pid: 31, bundleId: 'com.apple.Terminal', title: 'zsh', bounds: { x: 0, y: 0, width: 1000, height: 800 } };
    const platform = withMacAccessibility(p, [cover, login]);
    const el = { ref: 'e1', role: 'button', name: 'Sign In', bounds: { x: 240, y: 200, width: 120, height: 32 }, states: ['enabled'], actions: ['press'], source: 'accessibility' as const, handle: 's5:0' };
    const t = await elementOwnerTarget(platform, el);
    expect(t.window?.id).toBe('88');
    expect(t.target).toMatchObject({ app: 'Login Demo', window: 'Sign in', unknown: [] });
  });
});
