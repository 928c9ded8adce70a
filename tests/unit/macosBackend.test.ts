/**
 * The macOS TypeScript backend over recorded helper transcripts, through a real child process (the fake
 * helper): the shared conformance expectations, then macOS specifics (Retina scale, negative origins,
 * permission refusals, element actions).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMacPlatformParts, type MacPlatformParts } from '../../src/platform/macos/index.js';
import type { AXBudget } from '../../src/platform/types.js';
import { describeRawAccessibilityConformance, describeRawCaptureConformance, findNode, walk } from '../helpers/conformance.js';
import { fakeHelperClient } from '../helpers/macosFakeHelper.js';

const noNmp = { loadNodeMacPermissions: async () => null };

async function parts(transcript: string, extra: Parameters<typeof createMacPlatformParts>[0] = {}): Promise<MacPlatformParts> {
  return createMacPlatformParts({ client: fakeHelperClient(transcript), permissions: noNmp, ...extra });
}

const budget = (maxNodes: number): AXBudget => ({ maxDepth: 12, maxNodes, timeMs: 2000 });

describeRawCaptureConformance('macOS helper (recorded transcripts)', {
  async make() {
    const p = await parts('displays-retina-negative.jsonl');
    return { backend: p.capture, close: () => p.close() };
  },
  fullCaptures: [3],
  regions: [
    { displayId: 1, region: { x: 100, y: 50, width: 40, height: 20 } },
    { displayId: 3, region: { x: -1900, y: -240, width: 30, height: 10 } },
  ],
});

describeRawAccessibilityConformance('macOS helper (recorded transcripts)', {
  async truncation() {
    const p = await parts('ax-tree-truncated.jsonl');
    return { backend: p.accessibility, close: () => p.close(), budget: budget(14) };
  },
  async password() {
    const p = await parts('ax-password.jsonl');
    return { backend: p.accessibility, close: () => p.close(), budget: budget(400), fieldName: 'Password' };
  },
  async action() {
    const p = await parts('ax-tree-truncated.jsonl');
    return { backend: p.accessibility, close: () => p.close(), budget: budget(14), buttonName: 'More information...' };
  },
});

describe('macOS capture specifics', () => {
  let p: MacPlatformParts | null = null;
  afterEach(async () => {
    await p?.close();
    p = null;
  });

  it('keeps the Retina scale and the negative origin of the left display', async () => {
    p = await parts('displays-retina-negative.jsonl');
    const displays = await p.capture.displays();
    expect(displays).toEqual([
      { id: 1, x: 0, y: 0, width: 1512, height: 982, scaleFactor: 2, primary: true },
      { id: 3, x: -1920, y: -248, width: 1920, height: 1080, scaleFactor: 1, primary: false },
    ]);
  });

  it('returns a Retina region at 2 px per point and decodes the PNG into RGBA', async () => {
    p = await parts('displays-retina-negative.jsonl');
    const img = await p.capture.capture(1, { x: 100, y: 50, width: 40, height: 20 });
    expect([img.width, img.height, img.scale, img.channels]).toEqual([80, 40, 2, 4]);
    expect(img.origin).toEqual({ x: 100, y: 50 });
    // The recorded PNG is red on its left half, blue on its right half.
    expect([...img.data.subarray(0, 4)]).toEqual([255, 0, 0, 255]);
    const last = (img.width * img.height - 1) * 4;
    expect([...img.data.subarray(last, last + 4)]).toEqual([0, 0, 255, 255]);
    // A pixel maps back to points: pixel (60, 10) is at (100 + 60/2, 50 + 10/2) = (130, 55) on screen.
    expect({ x: img.origin.x + 60 / img.scale, y: img.origin.y + 10 / img.scale }).toEqual({ x: 130, y: 55 });
  });

  it('asks for points when configured and gets scale 1', async () => {
    p = await parts('displays-retina-negative.jsonl', { capture: { scale: 'points' } });
    const img = await p.capture.capture(1, { x: 100, y: 50, width: 40, height: 20 });
    expect([img.width, img.height, img.scale]).toEqual([40, 20, 1]);
  });

  it('captures on the display at negative coordinates with a negative origin', async () => {
    p = await parts('displays-retina-negative.jsonl');
    const img = await p.capture.capture(3, { x: -1900, y: -240, width: 30, height: 10 });
    expect(img.origin).toEqual({ x: -1900, y: -240 });
    expect([img.width, img.height, img.scale]).toEqual([30, 10, 1]);
    expect([...img.data.subarray(0, 4)]).toEqual([0, 160, 0, 255]);
  });

  it('turns a Screen Recording refusal into PERMISSION_DENIED_SCREEN_RECORDING, naming the responsible app', async () => {
    p = await parts('permission-denied.jsonl');
    expect(await p.capture.displays()).toHaveLength(1);
    const err = await p.capture.capture(1).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'DeskdError', code: 'PERMISSION_DENIED_SCREEN_RECORDING', status: 403 });
    expect((err as Error).message).toContain('Terminal.app');
  });
});

describe('macOS accessibility specifics', () => {
  let p: MacPlatformParts | null = null;
  afterEach(async () => {
    await p?.close();
    p = null;
  });

  it('maps the recorded Safari tree into deskd roles, states and global bounds', async () => {
    p = await parts('ax-tree-truncated.jsonl');
    const snap = await p.accessibility.snapshot({ scope: 'focused', budget: budget(14) });
    expect(snap).toMatchObject({ truncated: true, nodeCount: 14 });
    const roots = snap.roots;
    expect(roots[0]).toMatchObject({ role: 'application', name: 'Safari', handle: 's7:0' });
    const byHandle = (h: string) => findNode(roots, (n) => n.handle === h)!;
    expect(byHandle('s7:1')).toMatchObject({ role: 'window', platformRole: 'AXWindow/AXStandardWindow', bounds: { x: -1800, y: -200, width: 1200, height: 800 } });
    expect(byHandle('s7:2')).toMatchObject({ role: 'button', actions: ['press'] });
    expect(byHandle('s7:4')).toMatchObject({ role: 'button', name: 'Back' });
    expect(byHandle('s7:4').states).not.toContain('enabled');
    expect(byHandle('s7:5')).toMatchObject({ role: 'textbox', name: 'Smart Search Field', value: 'example.com' });
    expect(byHandle('s7:5').states).toEqual(expect.arrayContaining(['focused', 'editable', 'enabled']));
    expect(byHandle('s7:6').role).toBe('tablist');
    expect(byHandle('s7:7')).toMatchObject({ role: 'tab', name: 'Example Domain' });
    expect(byHandle('s7:7').states).toEqual(expect.arrayContaining(['selected', 'checked']));
    expect(byHandle('s7:9').role).toBe('document');
    expect(byHandle('s7:10')).toMatchObject({ role: 'heading', name: 'Example Domain' });
    expect(byHandle('s7:10').value).toBeUndefined();
    expect(byHandle('s7:11')).toMatchObject({ role: 'text', name: 'This domain is for use in illustrative examples in documents.' });
    expect(byHandle('s7:12')).toMatchObject({ role: 'link', actions: ['press', 'showmenu'] });
    expect(byHandle('s7:13').states).toContain('checked');
  });

  it('maps both password field shapes (role and subrole) to textbox + password without a value', async () => {
    p = await parts('ax-password.jsonl');
    const snap = await p.accessibility.snapshot({ scope: 'focused', budget: budget(400) });
    const secure = [...walk(snap.roots)].filter((n) => n.states.includes('password'));
    expect(secure.map((n) => [n.name, n.role, n.platformRole, n.value])).toEqual([
      ['Password', 'textbox', 'AXSecureTextField', undefined],
      ['PIN', 'textbox', 'AXTextField/AXSecureTextField', undefined],
    ]);
    expect(findNode(snap.roots, (n) => n.name === 'Username')!.value).toBe('alice');
  });

  it('reports an expired element as STALE_REF and an unsupported action as false', async () => {
    p = await parts('ax-tree-truncated.jsonl');
    await expect(p.accessibility.doAction('s6:4', 'press')).rejects.toMatchObject({ code: 'STALE_REF' });
    expect(await p.accessibility.doAction('s7:11', 'click')).toBe(false);
    expect(await p.accessibility.doAction('s7:12', 'AXShowMenu')).toBe(true);
    expect(await p.accessibility.doAction('s7:5', 'focus')).toBe(true);
    await expect(p.accessibility.setValue!('s7:5', 'deskd.dev')).resolves.toBe(true);
  });

  it('reads the focused app and window, and the lock state', async () => {
    p = await parts('ax-tree-truncated.jsonl');
    expect(await p.accessibility.focused()).toEqual({ app: 'Safari', pid: 812, window: 'Example Domain', windowBounds: { x: -1800, y: -200, width: 1200, height: 800 } });
    expect(await p.screenLocked()).toBe(false);
  });

  it('turns an Accessibility refusal into PERMISSION_DENIED_ACCESSIBILITY; focus still names the app', async () => {
    p = await parts('accessibility-denied.jsonl');
    await expect(p.accessibility.snapshot({ scope: 'focused', budget: budget(14) })).rejects.toMatchObject({ code: 'PERMISSION_DENIED_ACCESSIBILITY' });
    expect(await p.accessibility.focused()).toEqual({ app: 'Finder', pid: 402, window: null, windowBounds: null });
    expect(await p.screenLocked()).toBe(true);
  });
});

describe('macOS permissions', () => {
  let p: MacPlatformParts | null = null;
  afterEach(async () => {
    await p?.close();
    p = null;
  });

  it('reports Screen Recording denied and Accessibility granted from the helper probes', async () => {
    p = await parts('permission-denied.jsonl');
    expect(await p.permissions.check()).toEqual({ accessibility: 'granted', screenRecording: 'denied' });
  });

  it('refines a denial to not-determined when node-mac-permissions says the user was never asked', async () => {
    p = await parts('accessibility-denied.jsonl', {
      permissions: { loadNodeMacPermissions: async () => ({ getAuthStatus: (t) => (t === 'accessibility' ? 'not determined' : 'authorized') }) },
    });
    expect(await p.permissions.check()).toEqual({ accessibility: 'not-determined', screenRecording: 'granted' });
  });

  it('falls back to node-mac-permissions, or unknown, when the helper is missing', async () => {
    p = await createMacPlatformParts({ helper: { command: '/nonexistent/deskd-helper' }, permissions: noNmp });
    expect(await p.permissions.check()).toEqual({ accessibility: 'unknown', screenRecording: 'unknown' });
    await p.close();
    p = await createMacPlatformParts({
      helper: { command: '/nonexistent/deskd-helper' },
      permissions: { loadNodeMacPermissions: async () => ({ getAuthStatus: () => 'denied' }) },
    });
    expect(await p.permissions.check()).toEqual({ accessibility: 'denied', screenRecording: 'denied' });
  });
});

describe('macOS windows', () => {
  let p: MacPlatformParts | null = null;
  afterEach(async () => {
    await p?.close();
    p = null;
  });

  it('lists ordinary windows (layer 0) front to back', async () => {
    p = await parts('windows.jsonl');
    const list = await p.windows.list();
    expect(list.map((w) => [w.id, w.app, w.title])).toEqual([
      ['9012', 'Safari', 'Example Domain'],
      ['8807', 'Terminal', 'deskd — zsh — 80×24'],
      ['211', 'Finder', null],
    ]);
  });

  it('finds the window under a point, including on the display at negative coordinates', async () => {
    p = await parts('windows.jsonl');
    expect((await p.windows.windowAt({ x: -1000, y: 0 }))?.app).toBe('Safari');
  });

  it('skips the menu bar layer when finding the window under a point', async () => {
    p = await parts('windows.jsonl');
    expect(await p.windows.windowAt({ x: 200, y: 10 })).toBeNull();
    expect((await p.windows.windowAt({ x: 1400, y: 40 }))?.app).toBe('Finder');
    expect((await p.windows.windowAt({ x: 200, y: 150 }))?.app).toBe('Terminal');
  });

  it('reports the front-most window of the frontmost app as focused', async () => {
    p = await parts('windows.jsonl');
    expect(await p.windows.focused()).toEqual({
      id: '8807',
      app: 'Terminal',
      pid: 733,
      bundleId: 'com.apple.Terminal',
      title: 'deskd — zsh — 80×24',
      bounds: { x: 100, y: 100, width: 800, height: 500 },
    });
  });
});
