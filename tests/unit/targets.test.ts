/**
 * Effect targets (src/actuation/targets.ts) on the fake platform: who receives a pointer event, a key
 * event and an accessibility action, and which fields are unknown rather than not applicable.
 */
import { describe, expect, it } from 'vitest';
import { axNode, createFakePlatform, type FakePlatform } from '../../src/platform/fake/fakePlatform.js';
import type { Element } from '../../src/perception/elements.js';
import type { WindowInfo } from '../../src/platform/types.js';
import { elementOwnerTarget, focusedElement, isBrowserWindow, keyboardTarget, matchOwnerWindow, pointerTarget } from '../../src/actuation/targets.js';

const calcWin: WindowInfo = { id: '0x10', app: 'gnome-calculator', pid: 100, wmClass: 'gnome-calculator', instance: 'gnome-calculator', title: 'Calculator', bounds: { x: 0, y: 0, width: 400, height: 500 } };
const termWin: WindowInfo = { id: '0x20', app: 'xterm', pid: 200, wmClass: 'XTerm', instance: 'xterm', title: 'xterm', bounds: { x: 0, y: 0, width: 300, height: 300 } };
const webWin: WindowInfo = { id: '0x30', app: 'chromium', pid: 300, wmClass: 'Chromium', instance: 'chromium', title: 'Shop - Chromium', bounds: { x: 500, y: 0, width: 600, height: 600 } };

/** Calculator (two buttons, one focused) and Chromium (a link) on the bus; xterm is not. xterm covers the calculator's top-left. */
function desk(): { fp: FakePlatform; seven: ReturnType<typeof axNode>; eight: ReturnType<typeof axNode>; link: ReturnType<typeof axNode> } {
  const seven = axNode('button', '7 7', { x: 20, y: 20, width: 60, height: 40 }, { handle: 'calc|7' });
  const eight = axNode('button', '8', { x: 320, y: 400, width: 60, height: 40 }, { handle: 'calc|8', states: ['enabled', 'focused'] });
  const label = axNode('label', '8', { x: 330, y: 410, width: 20, height: 20 }, { handle: 'calc|8label' });
  eight.children = [label];
  const calcFrame = axNode('window', 'Calculator', calcWin.bounds, { handle: 'calc|frame', children: [seven, eight] });
  const calcApp = axNode('application', 'gnome-calculator', null, { handle: 'calc|root', children: [calcFrame] });
  const link = axNode('link', 'Cart', { x: 600, y: 100, width: 80, height: 20 }, { handle: 'web|link' });
  const doc = axNode('document', 'Shop', { x: 500, y: 80, width: 600, height: 520 }, { handle: 'web|doc', children: [link] });
  const webFrame = axNode('window', 'Shop - Chromium', webWin.bounds, { handle: 'web|frame', children: [doc] });
  const webApp = axNode('application', 'Chromium', null, { handle: 'web|root', children: [webFrame] });
  const fp = createFakePlatform({ windows: [termWin, calcWin, webWin], tree: [calcApp, webApp] });
  fp.appOwners.set('calc|root', { app: 'gnome-calculator', pid: 100 });
  fp.appOwners.set('web|root', { app: 'chromium', pid: 300 });
  return { fp, seven, eight, link };
}

const asElement = (n: ReturnType<typeof axNode>): Element => ({ ref: 'e1', role: n.role, name: n.name, bounds: n.bounds!, states: n.states, actions: n.actions, source: 'accessibility', handle: n.handle });

describe('pointerTarget', () => {
  it('names the window under the point and the element hit-tested there (the button around the label hit)', async () => {
    const { fp } = desk();
    const t = await pointerTarget(fp, { x: 340, y: 415 });
    expect(t.window?.id).toBe('0x10');
    expect(t.target).toMatchObject({ app: 'gnome-calculator', pid: 100, window: 'Calculator', windowId: '0x10', url: null, unknown: [] });
    expect(t.target.element).toMatchObject({ role: 'button', name: '8' });
    expect(t.handle).toBe('calc|8');
    // Inside the button but off its label: the button too.
    expect((await pointerTarget(fp, { x: 370, y: 435 })).handle).toBe('calc|8');
  });

  it('an app on the bus with no element at the point: element null, not unknown', async () => {
    const { fp } = desk();
    const t = await pointerTarget(fp, { x: 350, y: 100 });
    expect(t.window?.id).toBe('0x10');
    expect(t.target.element).toBeNull();
    expect(t.target.unknown).toEqual([]);
  });

  it('a window whose app is not on the accessibility bus (xterm covering a calculator button): element unknown, never the covered button', async () => {
    const { fp } = desk();
    const t = await pointerTarget(fp, { x: 50, y: 40 });
    expect(t.window?.id).toBe('0x20');
    expect(t.target.app).toBe('xterm');
    expect(t.target.element).toBeNull();
    expect(t.target.unknown).toEqual(['element']);
    expect(t.target.url).toBeNull();
  });

  it('no window at the point (the bare desktop, window list read): no app, nothing unknown', async () => {
    const { fp } = desk();
    const t = await pointerTarget(fp, { x: 1200, y: 700 });
    expect(t.window).toBeNull();
    expect(t.target).toMatchObject({ app: null, window: null, element: null, url: null, unknown: [] });
  });

  it('a window system that fails: app and window unknown', async () => {
    const { fp } = desk();
    fp.windows.windowAt = async () => {
      throw new Error('X server gone');
    };
    const t = await pointerTarget(fp, { x: 10, y: 10 });
    expect(t.target.unknown).toEqual(['app', 'window']);
  });

  it('accessibility that does not answer: element unknown; a browser URL unknown too', async () => {
    const { fp } = desk();
    fp.axUnavailable = true;
    const t = await pointerTarget(fp, { x: 340, y: 415 });
    expect(t.target.unknown).toEqual(['element']);
    const w = await pointerTarget(fp, { x: 610, y: 105 });
    expect(w.target.unknown).toEqual(['element', 'url']);
  });

  it('a window without a pid: the element is unknown (the hit-test could answer a covered app)', async () => {
    const { fp } = desk();
    fp.windowList = [{ ...termWin, pid: null }, calcWin, webWin];
    const t = await pointerTarget(fp, { x: 30, y: 30 });
    expect(t.target).toMatchObject({ app: 'xterm', element: null, unknown: ['element'] });
    fp.focusedWindowId = '0x20';
    expect((await keyboardTarget(fp)).target).toMatchObject({ element: null, unknown: ['element'] });
  });

  it('a backend without elementAt / urlOf: element (and a browser URL) unknown', async () => {
    const { fp } = desk();
    delete (fp.accessibility as { elementAt?: unknown }).elementAt;
    delete (fp.accessibility as { urlOf?: unknown }).urlOf;
    expect((await pointerTarget(fp, { x: 340, y: 415 })).target.unknown).toEqual(['element']);
    expect((await pointerTarget(fp, { x: 610, y: 105 })).target.unknown).toEqual(['element', 'url']);
  });

  it('a browser window: the URL it shows; none readable → url unknown', async () => {
    const { fp } = desk();
    fp.urls.set('0x30', 'https://shop.example.com/cart');
    const t = await pointerTarget(fp, { x: 610, y: 105 });
    expect(t.target).toMatchObject({ app: 'chromium', url: 'https://shop.example.com/cart', element: { role: 'link', name: 'Cart' }, unknown: [] });
    fp.urls.clear();
    const u = await pointerTarget(fp, { x: 610, y: 105 });
    expect(u.target.url).toBeNull();
    expect(u.target.unknown).toEqual(['url']);
  });
});

describe('keyboardTarget', () => {
  it('names the focused window and its focused element (name normalised)', async () => {
    const { fp } = desk();
    fp.focusedWindowId = '0x10';
    const t = await keyboardTarget(fp);
    expect(t.window?.id).toBe('0x10');
    expect(t.target).toMatchObject({ app: 'gnome-calculator', element: { role: 'button', name: '8', states: ['enabled', 'focused'] }, url: null, unknown: [] });
    expect(t.handle).toBe('calc|8');
  });

  it('a focused window whose app is not on the bus: the element focused in another app is not taken, it is unknown', async () => {
    const { fp } = desk();
    fp.focusedWindowId = '0x20';
    const t = await keyboardTarget(fp);
    expect(t.target.app).toBe('xterm');
    expect(t.target.element).toBeNull();
    expect(t.target.unknown).toEqual(['element']);
  });

  it('nothing focused in an app on the bus: element null (known); off the bus: unknown', async () => {
    const { fp, eight } = desk();
    eight.states = ['enabled'];
    fp.focusedWindowId = '0x10';
    expect((await keyboardTarget(fp)).target).toMatchObject({ element: null, unknown: [] });
    fp.focusedWindowId = '0x20';
    expect((await keyboardTarget(fp)).target).toMatchObject({ element: null, unknown: ['element'] });
  });

  it('no focused window: app and window unknown; an unreadable tree: element unknown', async () => {
    const { fp } = desk();
    fp.focusedWindowId = '0xdead';
    expect((await keyboardTarget(fp)).target.unknown).toEqual(['app', 'window']);
    fp.focusedWindowId = '0x10';
    fp.accessibility.snapshot = async () => {
      throw new Error('bus gone');
    };
    expect((await keyboardTarget(fp)).target.unknown).toEqual(['element']);
  });

  it('a focused browser window carries its URL', async () => {
    const { fp } = desk();
    fp.focusedWindowId = '0x30';
    fp.urls.set('0x30', 'https://shop.example.com/');
    const t = await keyboardTarget(fp);
    expect(t.target.url).toBe('https://shop.example.com/');
  });
});

describe('elementOwnerTarget', () => {
  it('an element of a covered window is judged for the app and window that own it, not the window on top', async () => {
    const { fp, seven } = desk();
    expect((await fp.windows.windowAt({ x: 50, y: 40 }))?.app).toBe('xterm');
    const t = await elementOwnerTarget(fp, asElement(seven));
    expect(t.window?.id).toBe('0x10');
    expect(t.target).toMatchObject({ app: 'gnome-calculator', pid: 100, window: 'Calculator', windowId: '0x10', element: { role: 'button', name: '7' }, unknown: [] });
  });

  it('owner known but its window not listed: app identity from the pid, window unknown', async () => {
    const { fp, seven } = desk();
    fp.windowList = [termWin, webWin];
    const t = await elementOwnerTarget(fp, asElement(seven));
    expect(t.window).toBeNull();
    expect(t.target).toMatchObject({ app: 'gnome-calculator', pid: 100, window: 'Calculator', unknown: ['window'] });
    // Another window of the same process lends its WM_CLASS.
    fp.windowList = [termWin, { ...calcWin, id: '0x11', title: 'Preferences', bounds: { x: 900, y: 0, width: 10, height: 10 } }];
    const u = await elementOwnerTarget(fp, asElement(seven));
    expect(u.target).toMatchObject({ app: 'gnome-calculator', wmClass: 'gnome-calculator', windowId: null, unknown: ['window'] });
  });

  it('an element that no longer exists or a backend without ownerOf: app and window unknown', async () => {
    const { fp, seven } = desk();
    const gone = { ...asElement(seven), handle: 'calc|gone' };
    expect((await elementOwnerTarget(fp, gone)).target.unknown).toEqual(['app', 'window']);
    delete (fp.accessibility as { ownerOf?: unknown }).ownerOf;
    expect((await elementOwnerTarget(fp, asElement(seven))).target.unknown).toEqual(['app', 'window']);
  });

  it('an element of a browser carries the URL; an OCR element (no handle) is the window under its centre', async () => {
    const { fp, link } = desk();
    fp.urls.set('0x30', 'https://shop.example.com/');
    const t = await elementOwnerTarget(fp, asElement(link));
    expect(t.target).toMatchObject({ app: 'chromium', url: 'https://shop.example.com/', unknown: [] });
    // OCR text over the xterm: a pointer click there, into the xterm, whose element is unknown.
    const ocr: Element = { ref: 'e9', role: 'text', name: 'hello', bounds: { x: 40, y: 30, width: 20, height: 10 }, states: [], actions: [], source: 'ocr' };
    const o = await elementOwnerTarget(fp, ocr);
    expect(o.window?.id).toBe('0x20');
    expect(o.target).toMatchObject({ app: 'xterm', element: null, unknown: ['element'] });
    // OCR text over a calculator button: the node hit-tested there.
    const over = await elementOwnerTarget(fp, { ...ocr, bounds: { x: 330, y: 405, width: 20, height: 10 } });
    expect(over.target).toMatchObject({ app: 'gnome-calculator', element: { role: 'button', name: '8' }, unknown: [] });
  });
});

describe('helpers', () => {
  it('matchOwnerWindow: pid + title, else pid + bounds within 2 points, else null', () => {
    const owner = { app: 'gnome-calculator', pid: 100, windowTitle: 'Calculator', windowBounds: calcWin.bounds };
    expect(matchOwnerWindow(owner, [termWin, calcWin])?.id).toBe('0x10');
    expect(matchOwnerWindow({ ...owner, windowTitle: 'Other', windowBounds: { x: 1, y: 2, width: 399, height: 501 } }, [calcWin])?.id).toBe('0x10');
    expect(matchOwnerWindow({ ...owner, windowTitle: 'Other', windowBounds: { x: 5, y: 0, width: 400, height: 500 } }, [calcWin])).toBeNull();
    expect(matchOwnerWindow({ ...owner, pid: 999 }, [calcWin])).toBeNull();
    expect(matchOwnerWindow({ ...owner, pid: null }, [calcWin])).toBeNull();
  });

  it('isBrowserWindow: by process name, WM_CLASS or bundle id', () => {
    expect(isBrowserWindow(webWin)).toBe(true);
    expect(isBrowserWindow({ ...calcWin, app: null, wmClass: 'Google-chrome' })).toBe(true);
    expect(isBrowserWindow({ ...calcWin, app: 'Safari', bundleId: 'com.apple.Safari' })).toBe(true);
    expect(isBrowserWindow(calcWin)).toBe(false);
    expect(isBrowserWindow(termWin)).toBe(false);
  });

  it('focusedElement: the deepest focused non-container, else null', async () => {
    const { fp } = desk();
    expect(await focusedElement(fp)).toMatchObject({ role: 'button', name: '8', handle: 'calc|8' });
    fp.tree = [];
    expect(await focusedElement(fp)).toBeNull();
  });

  it('focusedElement: several focused non-containers (Qt 5 keeps `focused` on a closed combo box list\'s item): a password field wins, then an editable node, then the deepest', async () => {
    const { fp } = desk();
    const item = axNode('listitem', 'Password', { x: 69, y: 68, width: 165, height: 20 }, { handle: 'qt|item', states: ['enabled', 'focused', 'selected', 'showing'] });
    const list = axNode('list', '', null, { handle: 'qt|list', children: [item] });
    const combo = axNode('combobox', 'Password', { x: 69, y: 43, width: 165, height: 25 }, { handle: 'qt|combo', children: [list] });
    const field = axNode('textbox', 'Echo', { x: 23, y: 74, width: 211, height: 25 }, { handle: 'qt|echo', states: ['enabled', 'editable', 'focused', 'password', 'showing'] });
    const frame = axNode('window', 'Line Edits', { x: 0, y: 0, width: 452, height: 334 }, { handle: 'qt|frame', children: [axNode('panel', 'Echo', null, { handle: 'qt|group', children: [combo, field] })] });
    fp.tree = [axNode('application', 'lineedits', null, { handle: 'qt|root', children: [frame] })];
    // Deeper, the stale list item; the password field wins (before: the list item, and typing was allowed).
    expect(await focusedElement(fp)).toMatchObject({ role: 'textbox', name: 'Echo', handle: 'qt|echo', states: expect.arrayContaining(['password']) });
    field.states = ['enabled', 'editable', 'focused', 'showing'];
    expect(await focusedElement(fp)).toMatchObject({ handle: 'qt|echo' });
    field.states = ['enabled', 'focused', 'showing'];
    expect(await focusedElement(fp)).toMatchObject({ handle: 'qt|item' });
  });
});
