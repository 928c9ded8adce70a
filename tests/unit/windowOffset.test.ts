/**
 * Where a top-level accessible window really is (src/platform/linux/atspi/windowOffset.ts): GTK 4 answers
 * window-relative extents for both coordinate types; the X client window of the same process says where
 * the window is. The e2e test with a moved gnome-calculator and Chromium: tests/e2e/movedWindows.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AtspiBus, type AtspiCall } from '../../src/platform/linux/atspi/bus.js';
import { NO_OFFSET, offsetFromWindow, popupsAt, shiftRect, subsurfaces, WindowOffsets, windowOfFrame, type FrameFacts } from '../../src/platform/linux/atspi/windowOffset.js';
import type { WindowInfo } from '../../src/platform/types.js';

const frame = (over: Partial<FrameFacts> = {}): FrameFacts => ({ ref: [':1.5', '/w'], pid: 42, name: 'Calculator', bounds: { x: 0, y: 0, width: 355, height: 486 }, ...over });
const win = (over: Partial<WindowInfo> = {}): WindowInfo => ({ id: '0x1', app: 'gnome-calculator', pid: 42, title: 'Calculator', bounds: { x: 400, y: 300, width: 365, height: 496 }, surface: { x: 400, y: 300, width: 365, height: 496 }, ...over });

/** A bus whose frames answer `screen` and `window` extents as given. */
function busOf(extents: Record<string, { screen: number[]; window: number[] }>) {
  const calls: AtspiCall[] = [];
  const transport = async (c: AtspiCall): Promise<unknown[]> => {
    calls.push(c);
    const e = extents[c.path];
    if (!e || c.member !== 'GetExtents') throw Object.assign(new Error('no such object'), { type: 'org.freedesktop.DBus.Error.UnknownObject' });
    return [(c.body[0] === 1 ? e.window : e.screen)];
  };
  return { bus: new AtspiBus({ transport }), calls };
}

describe('windowOfFrame', () => {
  it('takes the same process, titled like the frame first, else the nearest size; null when none fits', () => {
    const other = win({ id: '0x2', title: 'Other', surface: { x: 10, y: 10, width: 355, height: 486 } });
    expect(windowOfFrame(frame(), [other, win()])!.id).toBe('0x1');
    expect(windowOfFrame(frame({ name: 'untitled' }), [win(), other])!.id).toBe('0x2');
    expect(windowOfFrame(frame(), [win({ pid: 7 })])).toBeNull();
    expect(windowOfFrame(frame({ pid: null }), [win()])).toBeNull();
    // Smaller than the frame, or far larger (another window of the app): not this frame's.
    expect(windowOfFrame(frame(), [win({ surface: { x: 0, y: 0, width: 300, height: 496 } })])).toBeNull();
    expect(windowOfFrame(frame(), [win({ surface: { x: 0, y: 0, width: 1280, height: 496 } })])).toBeNull();
    expect(windowOfFrame(frame(), [win({ surface: undefined })])).toBeNull();
  });
});

describe('offsetFromWindow', () => {
  it('is the surface origin plus half the size difference, or _GTK_FRAME_EXTENTS left/top when set', () => {
    expect(offsetFromWindow(frame().bounds!, win())).toEqual({ dx: 405, dy: 305 });
    expect(offsetFromWindow(frame().bounds!, win({ frameExtents: { left: 3, right: 7, top: 2, bottom: 8 } }))).toEqual({ dx: 403, dy: 302 });
    // A toolkit reporting true coordinates sits where it says: 0.
    expect(offsetFromWindow({ x: 405, y: 305, width: 355, height: 486 }, win())).toEqual({ dx: 0, dy: 0 });
  });

  it('shiftRect moves a rect and keeps its size', () => {
    expect(shiftRect({ x: 16, y: 288, width: 55, height: 40 }, { dx: 405, dy: 305 })).toEqual({ x: 421, y: 593, width: 55, height: 40 });
  });
});

describe('WindowOffsets.of', () => {
  it('shifts a frame whose screen extents equal its window extents, not one whose differ (true screen coordinates)', async () => {
    const { bus } = busOf({ '/gtk4': { screen: [0, 0, 355, 486], window: [0, 0, 355, 486] }, '/chromium': { screen: [300, 150, 800, 500], window: [0, 0, 800, 500] } });
    const offsets = new WindowOffsets(bus, async () => [win(), win({ id: '0x3', pid: 43, app: 'chromium', title: 'Page', surface: { x: 300, y: 150, width: 800, height: 500 } })]);
    const got = await offsets.of([
      frame({ ref: [':1.5', '/gtk4'] }),
      { ref: [':1.6', '/chromium'], pid: 43, name: 'Page', bounds: { x: 300, y: 150, width: 800, height: 500 } },
    ]);
    expect(got).toEqual([{ dx: 405, dy: 305 }, NO_OFFSET]);
  });

  it('a toolkit answering screen coordinates for both types (Qt 5): each same-size window of one process stays where it says, placed by its own window', async () => {
    // Qt 5.15.8 (checked): three 256x192 windows of one process at 100, 120, 140 answer their own origin
    // for both coordinate types and have no accessible name. Before: all three were put on one X window.
    const at = (p: number) => ({ screen: [p, p, 256, 192], window: [p, p, 256, 192] });
    const { bus } = busOf({ '/a': at(100), '/b': at(120), '/c': at(140) });
    const xs = [100, 120, 140].map((p, i) => win({ id: `0x${i + 10}`, app: 'querymodel', pid: 50, title: `Model ${i}`, surface: { x: p, y: p, width: 256, height: 192 } }));
    const offsets = new WindowOffsets(bus, async () => [...xs].reverse());
    const placed = await offsets.place([100, 120, 140].map((p, i) => ({ ref: [':1.9', ['/a', '/b', '/c'][i]!] as [string, string], pid: 50, name: '', bounds: { x: p, y: p, width: 256, height: 192 } })));
    expect(placed.placements.map((p) => [p.dx, p.dy, p.window?.id])).toEqual([
      [0, 0, '0x10'],
      [0, 0, '0x11'],
      [0, 0, '0x12'],
    ]);
    // GTK 4 (window-relative 0,0) with its window elsewhere is still moved.
    const gtk = busOf({ '/gtk4': { screen: [0, 0, 355, 486], window: [0, 0, 355, 486] } });
    expect(await new WindowOffsets(gtk.bus, async () => [win()]).of([frame({ ref: [':1.5', '/gtk4'] })])).toEqual([{ dx: 405, dy: 305 }]);
  });

  it('gives 0 without a window list, when the window list fails, when the frame cannot be read, or without a matching window', async () => {
    const { bus, calls } = busOf({ '/gtk4': { screen: [0, 0, 355, 486], window: [0, 0, 355, 486] } });
    expect(await new WindowOffsets(bus).of([frame({ ref: [':1.5', '/gtk4'] })])).toEqual([NO_OFFSET]);
    expect(calls).toHaveLength(0);
    expect(await new WindowOffsets(bus, async () => Promise.reject(new Error('X is gone'))).of([frame({ ref: [':1.5', '/gtk4'] })])).toEqual([NO_OFFSET]);
    expect(await new WindowOffsets(bus, async () => [win()]).of([frame({ ref: [':1.5', '/gone'] })])).toEqual([NO_OFFSET]);
    expect(await new WindowOffsets(bus, async () => [win({ pid: 9 })]).of([frame({ ref: [':1.5', '/gtk4'] })])).toEqual([NO_OFFSET]);
  });
});

describe('subsurfaces', () => {
  interface N { name: string; bounds: { x: number; y: number; width: number; height: number } | null; children: N[] }
  const n = (name: string, x: number, y: number, width: number, height: number, children: N[] = []): N => ({ name, bounds: { x, y, width, height }, children });
  // As placed by the frame offset: GTK 4 put the popover where its menu button is (510,311), the popover window is at 411,324.
  const content = n('content', 534, 345, 229, 172, [n('Advanced', 552, 383, 193, 32)]);
  const popover = n('popover', 510, 311, 277, 232, [content]);
  const frameNode = n('Calculator', 405, 305, 355, 486, [n('header', 405, 305, 355, 46, [n('menu button', 510, 311, 78, 34, [popover])])]);
  const popupWin = win({ id: '0x9', title: 'gnome-calculator', bounds: { x: 411, y: 324, width: 277, height: 232 }, surface: { x: 411, y: 324, width: 277, height: 232 } });

  it('finds the shallowest object of the size of another window of the process, and the offset that puts it there', () => {
    const got = subsurfaces(frameNode, win(), 42, [popupWin, win()]);
    expect(got).toHaveLength(1);
    expect(got[0]!.node.name).toBe('popover');
    expect(got[0]!.window.id).toBe('0x9');
    expect(got[0]!.offset).toEqual({ dx: -99, dy: 13 });
  });

  it('takes the inside of a window with _GTK_FRAME_EXTENTS; ignores other processes and windows no object matches', () => {
    const shadowed = { ...popupWin, surface: { x: 401, y: 320, width: 297, height: 246 }, frameExtents: { left: 10, right: 10, top: 4, bottom: 10 } };
    expect(subsurfaces(frameNode, win(), 42, [shadowed])[0]!.offset).toEqual({ dx: -99, dy: 13 });
    expect(subsurfaces(frameNode, win(), 42, [{ ...popupWin, pid: 7 }])).toEqual([]);
    expect(subsurfaces(frameNode, win(), 42, [{ ...popupWin, surface: { x: 0, y: 0, width: 100, height: 100 } }])).toEqual([]);
  });
});

describe('popupsAt (true screen coordinates: Chromium)', () => {
  interface N { role: string; name: string; bounds: { x: number; y: number; width: number; height: number } | null; children: N[] }
  const n = (role: string, name: string, x: number, y: number, width: number, height: number, children: N[] = []): N => ({ role, name, bounds: { x, y, width, height }, children });
  const items = [n('menuitem', 'Alpha', 157, 218, 47, 24), n('menuitem', 'Bravo', 157, 242, 47, 24)];
  const under = n('button', 'Under the list', 160, 250, 40, 20);
  const page = n('frame', 'Moved page - Chromium', 0, 0, 800, 500, [n('document', 'page', 0, 0, 800, 480, [under, n('combobox', '', 156, 198, 66, 19, [n('menu', '', 156, 198, 66, 10, items)])])]);
  const popup = win({ id: '0xa00010', pid: 42, app: 'chromium', title: '', bounds: { x: 156, y: 217, width: 65, height: 74 }, surface: { x: 156, y: 217, width: 65, height: 74 }, overrideRedirect: true });

  it('puts the items of a menu or list inside an override-redirect window of the process in that window; page content under it stays out', () => {
    const got = popupsAt(page, 42, [popup, win({ id: '0x2', pid: 42, app: 'chromium', surface: { x: 0, y: 0, width: 800, height: 500 } })]);
    expect(got.map((g) => [g.node.name, g.window.id])).toEqual([
      ['Alpha', '0xa00010'],
      ['Bravo', '0xa00010'],
    ]);
    expect(got.some((g) => g.node === under)).toBe(false);
  });

  it('ignores windows that are not override-redirect, of another process, or that hold no item', () => {
    expect(popupsAt(page, 42, [{ ...popup, overrideRedirect: undefined }])).toEqual([]);
    expect(popupsAt(page, 42, [{ ...popup, pid: 7 }])).toEqual([]);
    expect(popupsAt(page, 42, [{ ...popup, surface: { x: 600, y: 10, width: 65, height: 74 } }])).toEqual([]);
  });
});
