/**
 * The X11 window backend (src/platform/linux/x11Windows.ts over x11Client.ts, one persistent X connection)
 * against real Xvfb servers this file starts, with real xterms. The X utilities (xwininfo, xprop, xdotool)
 * are the oracle: what deskd reads through its own connection must be what they print. Covers the list
 * (ids, bounds, titles, WM_CLASS, pids, app names, stacking order), the focus (PointerRoot, a top-level, an
 * inner window), a reparenting frame, activate and click-to-focus with and without a window manager (a
 * minimal EWMH window manager played by this test on its own X connection), Xauthority cookies, a display
 * that does not answer, the X server going away and coming back, and a DISPLAY change.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { X11Windows } from '../../src/platform/linux/x11Windows.js';
import { X11Connection } from '../../src/platform/linux/x11Client.js';
import { launchApp, waitFor, type AppHandle, freeDisplay as freeDisplayIn } from '../helpers/desktop.js';
import { rejection } from '../helpers/rejection.js';
import { spawnXvfb, stopChild as stop } from '../helpers/xvfb.js';

const run = promisify(execFile);
const procs: ChildProcess[] = [];
const apps: AppHandle[] = [];
const conns: X11Connection[] = [];
const previous = { DISPLAY: process.env.DISPLAY, XAUTHORITY: process.env.XAUTHORITY };

afterAll(async () => {
  for (const [k, v] of Object.entries(previous)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  for (const c of conns) c.close();
  for (const a of apps) await a.kill();
  for (const p of procs) if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
});

/** A free display number from :300 upward (tests/helpers/desktop.ts `freeDisplay`; other tests take other ranges). */
function freeDisplay(skip: number[] = []): number {
  return freeDisplayIn(300, 400, skip);
}

/** Xvfb `:n` with a 1024x768 screen (`extra`: more server arguments); killed after the tests. */
const startXvfb = (n: number, extra: string[] = []): Promise<ChildProcess> => spawnXvfb(n, '1024x768x24', procs, extra);

const tool = async (cmd: string, ...args: string[]) => (await run(cmd, args, { env: process.env })).stdout;

/** An xterm on the current DISPLAY with a title and a WM_CLASS instance of its own; resolves with its window id once it is viewable. */
async function xterm(title: string, geometry: string, instance = 'xterm'): Promise<{ id: string; app: AppHandle }> {
  const app = launchApp('xterm', ['-geometry', geometry, '-title', title, '-name', instance]);
  apps.push(app);
  const id = await waitFor(async () => (await tool('xdotool', 'search', '--sync', '--onlyvisible', '--pid', String(app.pid)).catch(() => '')).trim().split('\n')[0] ?? '', 10_000, `xterm ${title}`);
  return { id: `0x${Number(id).toString(16)}`, app };
}

/** What the X utilities say about window `id`: absolute geometry (xwininfo), WM_CLASS, _NET_WM_PID, name (xprop). */
async function oracle(id: string) {
  const info = await tool('xwininfo', '-id', id);
  const num = (re: RegExp) => Number(re.exec(info)![1]);
  const props = await tool('xprop', '-id', id, 'WM_CLASS', '_NET_WM_PID', '_NET_WM_NAME', 'WM_NAME');
  const cls = /WM_CLASS\(STRING\) = "([^"]*)", "([^"]*)"/.exec(props);
  const name = /_NET_WM_NAME\(UTF8_STRING\) = "(.*)"/.exec(props) ?? /WM_NAME\(\w+\) = "(.*)"/.exec(props);
  return {
    // xwininfo's absolute upper-left is the outer corner (border included), as deskd's bounds.
    bounds: { x: num(/Absolute upper-left X:\s+(-?\d+)/), y: num(/Absolute upper-left Y:\s+(-?\d+)/), width: num(/Width:\s+(\d+)/), height: num(/Height:\s+(\d+)/) },
    borderWidth: num(/Border width:\s+(\d+)/),
    instance: cls?.[1] ?? null,
    wmClass: cls?.[2] ?? null,
    pid: /_NET_WM_PID\(CARDINAL\) = (\d+)/.exec(props) ? Number(/_NET_WM_PID\(CARDINAL\) = (\d+)/.exec(props)![1]) : null,
    title: name?.[1] ?? null,
  };
}

/** Raw protocol requests this test needs to play other clients (create/reparent windows, a window manager). */
function rawClient(c: X11Connection) {
  let next = 1;
  const u32s = (...v: number[]) => {
    const b = Buffer.alloc(4 * v.length);
    v.forEach((x, i) => b.writeUInt32LE(x >>> 0, 4 * i));
    return b;
  };
  return {
    /** CreateWindow (1): an InputOutput child of `parent`, border 0, copying depth and visual. */
    async createWindow(parent: number, x: number, y: number, w: number, h: number): Promise<number> {
      const id = c.setup.ridBase | (next++ & c.setup.ridMask);
      const body = Buffer.alloc(28);
      body.writeUInt32LE(id, 0);
      body.writeUInt32LE(parent, 4);
      body.writeInt16LE(x, 8);
      body.writeInt16LE(y, 10);
      body.writeUInt16LE(w, 12);
      body.writeUInt16LE(h, 14);
      body.writeUInt16LE(0, 16); // border
      body.writeUInt16LE(1, 18); // InputOutput
      body.writeUInt32LE(0, 20); // CopyFromParent visual
      body.writeUInt32LE(0, 24); // no values
      await c.request(1, 0, body, false);
      return id;
    },
    map: (w: number) => c.request(8, 0, u32s(w), false),
    reparent: (w: number, parent: number, x: number, y: number) => {
      const b = u32s(w, parent, 0);
      b.writeInt16LE(x, 8);
      b.writeInt16LE(y, 10);
      return c.request(7, 0, b, false);
    },
    /** ChangeProperty (18) Replace, format 32. */
    setProp32: (w: number, prop: number, type: number, values: number[]) => c.request(18, 0, Buffer.concat([u32s(w, prop, type), Buffer.from([32, 0, 0, 0]), u32s(values.length, ...values)]), false),
    /** ChangeProperty (18) Replace, format 8 (a STRING property such as WM_CLASS: "instance\0class\0"). */
    setProp8: (w: number, prop: number, type: number, value: Buffer) => {
      const padded = Buffer.concat([value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
      return c.request(18, 0, Buffer.concat([u32s(w, prop, type), Buffer.from([8, 0, 0, 0]), u32s(value.length), padded]), false);
    },
    /** ChangeWindowAttributes (2) override-redirect (a popup: menus, an open list). */
    setOverrideRedirect: (w: number) => c.request(2, 0, u32s(w, 0x200, 1), false),
    /** ChangeWindowAttributes (2) event-mask. */
    selectInput: (w: number, mask: number) => c.request(2, 0, u32s(w, 0x800, mask), false),
  };
}

describe('X11 windows through one X connection', () => {
  let n: number;
  let one: { id: string; app: AppHandle };
  let two: { id: string; app: AppHandle };
  const windows = new X11Windows();

  beforeAll(async () => {
    n = freeDisplay();
    await startXvfb(n);
    process.env.DISPLAY = `:${n}`;
    one = await xterm('term one ✓ "quoted"', '60x10+10+20', 'first');
    two = await xterm('term two', '50x8+300+200');
  });

  it('lists what xwininfo, xprop and xdotool print: ids, bounds, titles, WM_CLASS, pids, app names, top-most first', async () => {
    const list = await windows.list({ fresh: true });
    const viewable = (await tool('xdotool', 'search', '--onlyvisible', '--maxdepth', '1', '')).trim().split('\n').map((d) => `0x${Number(d).toString(16)}`);
    // xdotool prints the root's children in QueryTree order (bottom-most first); deskd lists them top-most first.
    expect(list.map((w) => w.id)).toEqual(viewable.filter((id) => list.some((w) => w.id === id)).reverse());
    expect(list.map((w) => w.id)).toEqual([two.id, one.id]);
    for (const w of [one, two]) {
      const o = await oracle(w.id);
      const got = list.find((x) => x.id === w.id)!;
      // No window manager: the client window is the top-level one; its surface is its inside (within the X border).
      const surface = { x: o.bounds.x + o.borderWidth, y: o.bounds.y + o.borderWidth, width: o.bounds.width, height: o.bounds.height };
      expect(got).toEqual({ id: w.id, app: 'xterm', pid: o.pid, wmClass: o.wmClass, instance: o.instance, title: o.title, bounds: o.bounds, surface });
      expect(got.pid).toBe(w.app.pid);
    }
    expect(list.find((w) => w.id === one.id)).toMatchObject({ title: 'term one ✓ "quoted"', instance: 'first', wmClass: 'XTerm', bounds: { x: 10, y: 20 } });

    await tool('xdotool', 'windowraise', one.id);
    expect((await windows.list({ fresh: true })).map((w) => w.id)).toEqual([one.id, two.id]);
    // A non-fresh read within 150 ms is the one just made; invalidate() drops it.
    await tool('xdotool', 'windowraise', two.id);
    expect((await windows.list()).map((w) => w.id)).toEqual([one.id, two.id]);
    windows.invalidate();
    expect((await windows.list()).map((w) => w.id)).toEqual([two.id, one.id]);
  });

  it('names the focused window: under the pointer with PointerRoot, the focus window, or the top-level of an inner focus window', async () => {
    await tool('xdotool', 'windowfocus', '--sync', '0x1'); // PointerRoot
    await tool('xdotool', 'mousemove', '--sync', '320', '220');
    expect((await windows.focused({ fresh: true }))?.id).toBe(two.id);
    expect((await windows.windowAt({ x: 15, y: 25 }, { fresh: true }))?.id).toBe(one.id);
    expect(await windows.windowAt({ x: 1000, y: 700 }, { fresh: true })).toBeNull();
    await tool('xdotool', 'windowfocus', '--sync', one.id);
    expect((await windows.focused({ fresh: true }))?.id).toBe(one.id);
    // xterm's inner VT window (a child of the top-level): the top-level is the focused window.
    const inner = /^\s+(0x[0-9a-f]+)/m.exec(await tool('xwininfo', '-children', '-id', two.id))![1]!;
    await tool('xdotool', 'windowfocus', '--sync', inner);
    expect((await windows.focused({ fresh: true }))?.id).toBe(two.id);
  });

  it('finds the client below a reparenting frame and lists it with the frame bounds', async () => {
    const c = await X11Connection.connect(`:${n}`);
    conns.push(c);
    const raw = rawClient(c);
    const frame = await raw.createWindow(c.setup.root, 500, 400, 300, 200);
    const deco = await raw.createWindow(frame, 0, 20, 300, 180);
    const three = await xterm('framed', '20x5+0+0', 'framed');
    await raw.reparent(Number.parseInt(three.id, 16), deco, 0, 0);
    await raw.map(deco);
    await raw.map(frame);
    const list = await windows.list({ fresh: true });
    expect(list.find((w) => w.id === three.id)).toMatchObject({ app: 'xterm', instance: 'framed', title: 'framed', bounds: { x: 500, y: 400, width: 300, height: 200 } });
    // Its surface is the client's own inside on the root, below the frame and the decoration (as xwininfo sees the client).
    const o = await oracle(three.id);
    expect(o.bounds).toMatchObject({ x: 500, y: 420 });
    expect(list.find((w) => w.id === three.id)!.surface).toEqual({ x: o.bounds.x + o.borderWidth, y: o.bounds.y + o.borderWidth, width: o.bounds.width, height: o.bounds.height });
    expect(list.some((w) => w.id === `0x${frame.toString(16)}`)).toBe(false);
    // The focus on the client or on the frame names the client.
    await tool('xdotool', 'windowfocus', '--sync', `0x${frame.toString(16)}`);
    expect((await windows.focused({ fresh: true }))?.id).toBe(three.id);
    await three.app.kill();
  });

  it('activates a window without a window manager (raise + focus) and gives a clicked window the focus', async () => {
    await tool('xdotool', 'windowraise', two.id);
    await windows.activate(one.id);
    expect(Number((await tool('xdotool', 'getwindowfocus', '-f')).trim())).toBe(Number.parseInt(one.id, 16));
    expect((await windows.list({ fresh: true }))[0]!.id).toBe(one.id);
    await windows.clickToFocus(two.id);
    expect(Number((await tool('xdotool', 'getwindowfocus', '-f')).trim())).toBe(Number.parseInt(two.id, 16));
    expect((await rejection(windows.activate('0x7777777'))).code).toBe('WINDOW_NOT_FOUND');

    // The focus on an inner window of the clicked one (GTK focuses one) stays there; on an inner window of
    // another one it moves to the clicked one.
    const probe = await X11Connection.connect(`:${n}`);
    conns.push(probe);
    const inner = (await probe.queryTree(Number.parseInt(two.id, 16))).children[0]!;
    const otherInner = (await probe.queryTree(Number.parseInt(one.id, 16))).children[0]!;
    await probe.setInputFocus(inner);
    await windows.clickToFocus(two.id);
    expect((await probe.getInputFocus()).focus).toBe(inner);
    await probe.setInputFocus(otherInner);
    await windows.clickToFocus(two.id);
    expect((await probe.getInputFocus()).focus).toBe(Number.parseInt(two.id, 16));

    // A popup (override-redirect: a menu, an open <select> list) never takes the focus from its owner: its
    // owner would close it and drop the click that picked an item (Chromium did).
    const c = await X11Connection.connect(`:${n}`);
    conns.push(c);
    const raw = rawClient(c);
    const popup = await raw.createWindow(c.setup.root, 40, 40, 60, 80);
    await raw.setOverrideRedirect(popup);
    await raw.setProp8(popup, 67 /* WM_CLASS */, 31 /* STRING */, Buffer.from('popup\0Popup\0', 'latin1'));
    await raw.map(popup);
    const id = `0x${popup.toString(16)}`;
    const listed = await waitFor(async () => (await windows.list({ fresh: true })).find((w) => w.id === id), 5_000, 'the popup listed');
    expect(listed.overrideRedirect).toBe(true);
    await windows.clickToFocus(id);
    expect(Number((await tool('xdotool', 'getwindowfocus', '-f')).trim())).toBe(Number.parseInt(two.id, 16));
  });

  it('with a window manager, activates through _NET_ACTIVE_WINDOW and leaves click-to-focus to it', async () => {
    // A minimal EWMH window manager on its own connection: it announces itself on the root and answers
    // _NET_ACTIVE_WINDOW requests by focusing the window and publishing it.
    const wm = await X11Connection.connect(`:${n}`);
    conns.push(wm);
    const raw = rawClient(wm);
    const root = wm.setup.root;
    const [check, active, windowType] = await Promise.all([wm.atom('_NET_SUPPORTING_WM_CHECK'), wm.atom('_NET_ACTIVE_WINDOW'), Promise.resolve(33)]);
    const requests: number[] = [];
    wm.onEvent((ev) => {
      if ((ev[0]! & 0x7f) !== 33 || ev.readUInt32LE(8) !== active) return;
      const target = ev.readUInt32LE(4);
      requests.push(ev.readUInt32LE(12));
      void wm.setInputFocus(target).then(() => raw.setProp32(root, active, windowType, [target]));
    });
    await raw.selectInput(root, 0x00100000); // SubstructureRedirect: client messages to the root come here
    const me = await raw.createWindow(root, -10, -10, 1, 1);
    await raw.setProp32(me, check, windowType, [me]);
    await raw.setProp32(root, check, windowType, [me]);

    await tool('xdotool', 'windowfocus', '--sync', two.id);
    windows.invalidate();
    await windows.activate(one.id);
    expect(requests).toEqual([2]); // source indication: pager, as xdotool sends it
    expect(Number((await tool('xdotool', 'getwindowfocus', '-f')).trim())).toBe(Number.parseInt(one.id, 16));
    // Click-to-focus is the window manager's job: nothing changes.
    await windows.clickToFocus(two.id);
    expect(Number((await tool('xdotool', 'getwindowfocus', '-f')).trim())).toBe(Number.parseInt(one.id, 16));
    await tool('xprop', '-root', '-remove', '_NET_SUPPORTING_WM_CHECK');
    wm.close();
  });
});

describe('X11 windows: connection faults', () => {
  it('fails with INTERNAL naming the display when nothing answers, and reads again once an X server is back', async () => {
    const n = freeDisplay();
    process.env.DISPLAY = `:${n}`;
    const windows = new X11Windows();
    const t0 = performance.now();
    const e = await rejection(windows.list({ fresh: true }));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain(`:${n}`);
    expect(performance.now() - t0).toBeLessThan(2000);
    const x = await startXvfb(n);
    expect(await windows.list({ fresh: true })).toEqual([]);
    // The server goes away under an open connection: the next read fails, then a new server is read.
    await stop(x);
    expect((await rejection(windows.list({ fresh: true }))).code).toBe('INTERNAL');
    await startXvfb(n);
    const xt = await xterm('back', '20x5+0+0');
    expect((await windows.list({ fresh: true })).map((w) => w.id)).toEqual([xt.id]);
    await xt.app.kill();
    windows.close();
  });

  it('follows DISPLAY to another server', async () => {
    const a = freeDisplay();
    await startXvfb(a);
    const b = freeDisplay([a]);
    await startXvfb(b);
    const windows = new X11Windows();
    process.env.DISPLAY = `:${a}`;
    const onA = await xterm('on a', '20x5+0+0');
    expect((await windows.list({ fresh: true })).map((w) => w.title)).toEqual(['on a']);
    process.env.DISPLAY = `:${b}`;
    expect(await windows.list({ fresh: true })).toEqual([]);
    await onA.app.kill();
    windows.close();
  });

  it('authenticates with the MIT-MAGIC-COOKIE-1 of XAUTHORITY, and says why when the server refuses', async () => {
    const n = freeDisplay();
    const dir = mkdtempSync(join(tmpdir(), 'deskd-xauth-'));
    const auth = join(dir, 'Xauthority');
    const cookie = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    writeFileSync(auth, '');
    await run('xauth', ['-f', auth, 'add', `:${n}`, 'MIT-MAGIC-COOKIE-1', cookie]);
    await startXvfb(n, ['-auth', auth]);
    process.env.DISPLAY = `:${n}`;
    process.env.XAUTHORITY = auth;
    expect(await new X11Windows().list({ fresh: true })).toEqual([]);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    process.env.XAUTHORITY = empty;
    const e = await rejection(new X11Windows().list({ fresh: true }));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toMatch(/refused|Authorization/i);
    delete process.env.XAUTHORITY;
  });
});
