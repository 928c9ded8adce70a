import { spawn } from 'node:child_process';
/**
 * The AT-SPI backend's target reads (elementAt, ownerOf, urlOf) over an in-process fake of the
 * accessibility bus (the `transport` seam): hit-test descent and its fallback, the interactive ancestor of
 * a label, "not on the bus" vs "nothing there", the owner walk up `Parent`, the document URL and its
 * remembered document. The real thing runs in tests/e2e/targets.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AtspiAccessibility, type AtspiCall } from '../../src/platform/linux/atspi.js';
import type { AtspiState } from '../../src/platform/linux/atspiRoles.js';
import { DBusLikeError, splitKey as split, stateWords as words } from '../helpers/atspiFakeBus.js';
import type { WindowInfo } from '../../src/platform/types.js';

const ROOT = '/org/a11y/atspi/accessible/root';
const NULL_REF: [string, string] = ['', '/org/a11y/atspi/null'];

interface Obj {
  role: string;
  name?: string;
  states?: AtspiState[];
  parent?: string;
  children?: string[];
  extents?: [number, number, number, number];
  /** `GetAccessibleAtPoint` answers: the child key containing the point, by rectangle; absent = UnknownMethod. */
  atPoint?: boolean;
  /** Document attributes (`GetAttributes`). */
  attrs?: Record<string, string>;
  index?: number;
}

const inRect = (e: [number, number, number, number] | undefined, x: number, y: number) => !!e && x >= e[0] && y >= e[1] && x < e[0] + e[2] && y < e[1] + e[3];

/** A fake bus over objects keyed `bus|path`; the registry lists `apps`. Records calls. */
function fakeBus(objects: Record<string, Obj>, apps: string[], pids: Record<string, number>) {
  const calls: AtspiCall[] = [];
  const transport = async (c: AtspiCall): Promise<unknown[]> => {
    calls.push(c);
    if (c.iface === 'org.freedesktop.DBus' && c.member === 'GetConnectionUnixProcessID') {
      const pid = pids[c.body[0] as string];
      if (pid === undefined) throw new DBusLikeError('org.freedesktop.DBus.Error.NameHasNoOwner', 'no such name');
      return [pid];
    }
    if (c.destination === 'org.a11y.atspi.Registry' && c.path === ROOT && c.member === 'GetChildren') return [apps.map((a) => [a, ROOT])];
    const key = `${c.destination}|${c.path}`;
    const o = objects[key];
    if (!o) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownObject', `Object does not exist at path ${c.path}`);
    switch (`${c.iface}.${c.member}`) {
      case 'org.freedesktop.DBus.Properties.GetAll':
        return [{ Name: o.name ?? '', Description: '', ChildCount: (o.children ?? []).length }];
      case 'org.freedesktop.DBus.Properties.Get': {
        const [, prop] = c.body as [string, string];
        if (prop === 'Name') return [o.name ?? ''];
        if (prop === 'Parent') return [o.parent ? split(o.parent) : NULL_REF];
        throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownProperty', 'no property');
      }
      case 'org.a11y.atspi.Accessible.GetRoleName':
        return [o.role];
      case 'org.a11y.atspi.Accessible.GetState':
        return [words(o.states)];
      case 'org.a11y.atspi.Accessible.GetChildren':
        return [(o.children ?? []).map(split)];
      case 'org.a11y.atspi.Accessible.GetIndexInParent':
        return [o.index ?? 0];
      case 'org.a11y.atspi.Component.GetExtents':
        if (!o.extents) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', 'no Component');
        return [o.extents];
      case 'org.a11y.atspi.Component.GetAccessibleAtPoint': {
        if (!o.atPoint) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', 'no GetAccessibleAtPoint');
        const [x, y] = c.body as [number, number];
        const hit = [...(o.children ?? [])].reverse().find((k) => inRect(objects[k]?.extents, x, y));
        return [hit ? split(hit) : NULL_REF];
      }
      case 'org.a11y.atspi.Document.GetAttributes':
        if (!o.attrs) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', 'no Document');
        return [o.attrs];
      case 'org.a11y.atspi.Document.GetAttributeValue':
        return [''];
      case 'org.a11y.atspi.Action.GetActions':
        return [[]];
      default:
        throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', `no ${c.iface}.${c.member}`);
    }
  };
  return { transport, calls };
}

const SHOWN: AtspiState[] = ['showing', 'visible', 'enabled'];

/** gnome-calculator (`:1.5`, pid = this process) with a frame, a button holding a label, and a frame-less app `:1.9`. */
function calculator() {
  const objects: Record<string, Obj> = {
    [`:1.5|${ROOT}`]: { role: 'application', name: 'gnome-calculator', children: [':1.5|/w'] },
    ':1.5|/w': { role: 'frame', name: 'Calculator', states: SHOWN, parent: `:1.5|${ROOT}`, children: [':1.5|/grid'], extents: [0, 0, 400, 500], atPoint: true },
    ':1.5|/grid': { role: 'panel', states: SHOWN, parent: ':1.5|/w', children: [':1.5|/b7', ':1.5|/b8'], extents: [0, 100, 400, 400], atPoint: true },
    ':1.5|/b7': { role: 'push button', name: '7', states: SHOWN, parent: ':1.5|/grid', children: [':1.5|/l7'], extents: [10, 110, 60, 40], atPoint: true },
    ':1.5|/l7': { role: 'label', name: '7', states: SHOWN, parent: ':1.5|/b7', extents: [20, 120, 20, 20] },
    // No GetAccessibleAtPoint: found by extents.
    ':1.5|/b8': { role: 'push button', name: '8', states: SHOWN, parent: ':1.5|/grid', extents: [80, 110, 60, 40] },
  };
  return objects;
}
const calcWin: WindowInfo = { id: '0x1', app: 'gnome-calculator', pid: process.pid, title: 'Calculator', bounds: { x: 0, y: 0, width: 400, height: 500 } };

describe('elementAt', () => {
  it('descends with GetAccessibleAtPoint and answers the button around the label it hits', async () => {
    const { transport } = fakeBus(calculator(), [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport });
    const n = await ax.elementAt({ x: 25, y: 125 }, calcWin);
    expect(n).toMatchObject({ handle: ':1.5|/b7', role: 'button', name: '7', bounds: { x: 10, y: 110, width: 60, height: 40 }, children: [] });
  });

  it('the interactive ancestor is looked for at most 6 levels up and never at or above the window (the walk is pipelined: one round trip a level)', async () => {
    // A label 8 levels below a button that fills the window: too far up, so the label itself is the answer;
    // 5 levels below it the button is found.
    const deep = (levels: number) => {
      const objects: Record<string, Obj> = {
        [`:1.5|${ROOT}`]: { role: 'application', name: 'gnome-calculator', children: [':1.5|/w'] },
        ':1.5|/w': { role: 'frame', name: 'Calculator', states: SHOWN, parent: `:1.5|${ROOT}`, children: [':1.5|/btn'], extents: [0, 0, 400, 500], atPoint: true },
        ':1.5|/btn': { role: 'push button', name: 'big', states: SHOWN, parent: ':1.5|/w', children: [':1.5|/p1'], extents: [0, 0, 400, 500], atPoint: true },
      };
      for (let i = 1; i <= levels; i++) {
        const last = i === levels;
        objects[`:1.5|/p${i}`] = { role: last ? 'label' : 'panel', name: last ? 'text' : '', states: SHOWN, parent: i === 1 ? ':1.5|/btn' : `:1.5|/p${i - 1}`, children: last ? [] : [`:1.5|/p${i + 1}`], extents: [0, 0, 400, 500], atPoint: !last };
      }
      return objects;
    };
    const near = fakeBus(deep(6), [':1.5'], { ':1.5': process.pid });
    expect(await new AtspiAccessibility({ transport: near.transport }).elementAt({ x: 25, y: 125 }, calcWin)).toMatchObject({ handle: ':1.5|/btn', role: 'button', name: 'big' });
    const far = fakeBus(deep(7), [':1.5'], { ':1.5': process.pid });
    expect(await new AtspiAccessibility({ transport: far.transport }).elementAt({ x: 25, y: 125 }, calcWin)).toMatchObject({ handle: ':1.5|/p7', role: 'label', name: 'text' });
    // No role asked at or above the window (the frame and the application are never taken).
    const objects = deep(2);
    objects[':1.5|/btn']!.role = 'filler';
    const none = fakeBus(objects, [':1.5'], { ':1.5': process.pid });
    expect(await new AtspiAccessibility({ transport: none.transport }).elementAt({ x: 25, y: 125 }, calcWin)).toMatchObject({ handle: ':1.5|/p2', role: 'label' });
    // Roles read: the label's own (its basic read), then /p1 and the filler; never the frame's or the application's.
    expect(none.calls.filter((c) => c.member === 'GetRoleName').map((c) => c.path)).toEqual(['/p2', '/p1', '/btn']);
  });

  it('falls back to the children\'s extents where GetAccessibleAtPoint is missing', async () => {
    const objects = calculator();
    const { transport } = fakeBus(objects, [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport });
    expect((await ax.elementAt({ x: 100, y: 120 }, calcWin))?.handle).toBe(':1.5|/b8');
    objects[':1.5|/grid']!.atPoint = false;
    expect((await ax.elementAt({ x: 25, y: 125 }, calcWin))?.handle).toBe(':1.5|/b7');
  });

  it('an app on the bus with nothing at the point: null; a point outside all its accessible windows: unknown (ACCESSIBILITY_UNAVAILABLE)', async () => {
    const { transport } = fakeBus(calculator(), [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport });
    expect(await ax.elementAt({ x: 300, y: 50 }, calcWin)).toBeNull();
    await expect(ax.elementAt({ x: 900, y: 900 }, calcWin)).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
    // Without a window (every application): nothing there is null.
    expect(await ax.elementAt({ x: 900, y: 900 })).toBeNull();
  });

  it('no application of the window\'s pid on the bus (xterm): ACCESSIBILITY_UNAVAILABLE', async () => {
    const { transport } = fakeBus(calculator(), [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport });
    await expect(ax.elementAt({ x: 25, y: 125 }, { ...calcWin, pid: 424242, app: 'xterm' })).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
  });

  it('two windows of the app over the point: the one titled like the window on top; neither titled so: ACCESSIBILITY_UNAVAILABLE', async () => {
    const objects = calculator();
    objects[`:1.5|${ROOT}`]!.children = [':1.5|/w', ':1.5|/w2'];
    objects[':1.5|/w2'] = { role: 'dialog', name: 'Preferences', states: SHOWN, parent: `:1.5|${ROOT}`, children: [':1.5|/ok'], extents: [0, 0, 200, 200], atPoint: true };
    objects[':1.5|/ok'] = { role: 'push button', name: 'OK', states: SHOWN, parent: ':1.5|/w2', extents: [10, 110, 60, 40] };
    const { transport } = fakeBus(objects, [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport });
    expect((await ax.elementAt({ x: 25, y: 125 }, { ...calcWin, title: 'Preferences', bounds: { x: 0, y: 0, width: 200, height: 200 } }))?.name).toBe('OK');
    expect((await ax.elementAt({ x: 25, y: 125 }, calcWin))?.name).toBe('7');
    await expect(ax.elementAt({ x: 25, y: 125 }, { ...calcWin, title: 'Something else', bounds: { x: 5, y: 5, width: 10, height: 10 } })).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
  });

  it('a hit-test call that fails: ACCESSIBILITY_UNAVAILABLE, not null', async () => {
    const objects = calculator();
    const { transport } = fakeBus(objects, [':1.5'], { ':1.5': process.pid });
    const failing = async (c: AtspiCall) => {
      if (c.member === 'GetAccessibleAtPoint') throw new DBusLikeError('org.freedesktop.DBus.Error.NoReply', 'no reply');
      return transport(c);
    };
    const ax = new AtspiAccessibility({ transport: failing });
    await expect(ax.elementAt({ x: 25, y: 125 }, calcWin)).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
  });
});

describe('elementAt: the answers asked ahead from the last hit-test in the same process (issue 15)', () => {
  /** A transport whose registry answer waits for `release`: what is asked before it arrives is "ahead". */
  function gated(objects: Record<string, Obj>, apps: string[], pids: Record<string, number>) {
    const bus = fakeBus(objects, apps, pids);
    const g = { hold: false, released: false, waiting: [] as Array<() => void>, beforeRegistry: [] as AtspiCall[] };
    const transport = async (c: AtspiCall): Promise<unknown[]> => {
      const registry = c.destination === 'org.a11y.atspi.Registry' && c.member === 'GetChildren';
      if (g.hold && !registry && !g.released) g.beforeRegistry.push(c);
      if (g.hold && registry) {
        const p = new Promise<void>((r) => g.waiting.push(r));
        await p;
      }
      return bus.transport(c);
    };
    const release = async () => {
      while (g.waiting.length === 0) await new Promise((r) => setTimeout(r, 1));
      // Let everything asked before the registry's answer be asked, then answer it.
      await new Promise((r) => setTimeout(r, 5));
      g.released = true;
      for (const r of g.waiting.splice(0)) r();
    };
    return { ...bus, transport, g, release };
  }

  it('a second hit-test in the process asks the app\'s windows, their facts and GetAccessibleAtPoint of the last window with the registry, and answers the same', async () => {
    const bus = gated(calculator(), [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport: bus.transport });
    expect((await ax.elementAt({ x: 25, y: 125 }, calcWin))?.handle).toBe(':1.5|/b7');
    bus.g.hold = true;
    const second = ax.elementAt({ x: 25, y: 125 }, calcWin);
    await bus.release();
    expect((await second)?.handle).toBe(':1.5|/b7');
    const ahead = bus.g.beforeRegistry.map((c) => `${c.member} ${c.path}`);
    expect(ahead).toEqual(expect.arrayContaining(['GetChildren /org/a11y/atspi/accessible/root', 'GetState /w', 'GetExtents /w', 'GetAccessibleAtPoint /w', 'GetAccessibleAtPoint /grid']));
  });

  it('the tree changed between two hit-tests: the answer is the tree as it is now (everything used was asked during this hit-test)', async () => {
    const objects = calculator();
    const { transport } = fakeBus(objects, [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport });
    expect((await ax.elementAt({ x: 25, y: 125 }, calcWin))?.name).toBe('7');
    objects[':1.5|/grid']!.children = [':1.5|/b8'];
    objects[':1.5|/b8']!.extents = [10, 110, 60, 40];
    expect((await ax.elementAt({ x: 25, y: 125 }, calcWin))?.name).toBe('8');
  });

  it('attack: the pid now belongs to another application on the bus (a new process, a new bus name): its own tree answers, never the old one\'s', async () => {
    const objects = calculator();
    objects[`:1.7|${ROOT}`] = { role: 'application', name: 'impostor', children: [':1.7|/w'] };
    objects[':1.7|/w'] = { role: 'frame', name: 'Calculator', states: SHOWN, parent: `:1.7|${ROOT}`, children: [':1.7|/pay'], extents: [0, 0, 400, 500], atPoint: true };
    objects[':1.7|/pay'] = { role: 'push button', name: 'Pay', states: SHOWN, parent: ':1.7|/w', extents: [10, 110, 60, 40] };
    const apps = [':1.5'];
    const pids: Record<string, number> = { ':1.5': process.pid };
    const { transport } = fakeBus(objects, apps, pids);
    const ax = new AtspiAccessibility({ transport });
    expect((await ax.elementAt({ x: 25, y: 125 }, calcWin))?.handle).toBe(':1.5|/b7');
    apps.splice(0, 1, ':1.7');
    pids[':1.7'] = process.pid;
    expect(await ax.elementAt({ x: 25, y: 125 }, calcWin)).toMatchObject({ handle: ':1.7|/pay', name: 'Pay' });
  });

  it('attack: the window moved between two hit-tests (GTK 4, window-relative extents): the point asked ahead at the old offset is not used', async () => {
    // The toolkit answers window-relative extents for both coordinate types; the X window places it.
    const at = (x: number): WindowInfo => ({ ...calcWin, bounds: { x, y: 300, width: 400, height: 500 }, surface: { x, y: 300, width: 400, height: 500 } });
    let win = at(400);
    const { transport, calls } = fakeBus(calculator(), [':1.5'], { ':1.5': process.pid });
    const ax = new AtspiAccessibility({ transport, windows: async () => [win] });
    expect((await ax.elementAt({ x: 425, y: 425 }, win))?.name).toBe('7');
    win = at(500);
    calls.length = 0;
    // Asked ahead at the old offset, (525, 425) is (125, 125) in the toolkit: button 8. At the new one, (25, 125): 7.
    expect((await ax.elementAt({ x: 525, y: 425 }, win))?.name).toBe('7');
    expect(calls.filter((c) => c.member === 'GetAccessibleAtPoint' && c.path === '/w').map((c) => c.body.slice(0, 2))).toEqual([
      [125, 125],
      [25, 125],
    ]);
  });
});

describe('ownerOf', () => {
  it('names the process by its executable (from the pid of the bus name) and the top-level window found up Parent', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const { transport } = fakeBus(calculator(), [':1.5'], { ':1.5': child.pid! });
      const ax = new AtspiAccessibility({ transport });
      expect(await ax.ownerOf(':1.5|/l7')).toEqual({ app: 'sleep', pid: child.pid, windowTitle: 'Calculator', windowBounds: { x: 0, y: 0, width: 400, height: 500 } });
      // An interpreter's executable (this test runs in node) names nothing: the accessible application name stands.
      const { transport: t2 } = fakeBus(calculator(), [':1.5'], { ':1.5': process.pid });
      expect(await new AtspiAccessibility({ transport: t2 }).ownerOf(':1.5|/l7')).toMatchObject({ app: 'gnome-calculator', pid: process.pid });
    } finally {
      child.kill();
    }
  });

  it('a pid with no readable process: the accessible application name; a gone element: null', async () => {
    const { transport } = fakeBus(calculator(), [':1.5'], { ':1.5': 2 ** 22 + 7 });
    const ax = new AtspiAccessibility({ transport });
    expect(await ax.ownerOf(':1.5|/b8')).toMatchObject({ app: 'gnome-calculator', pid: 2 ** 22 + 7, windowTitle: 'Calculator' });
    expect(await ax.ownerOf(':1.5|/gone')).toBeNull();
  });
});

describe('urlOf', () => {
  function browser() {
    const objects: Record<string, Obj> = {
      [`:1.7|${ROOT}`]: { role: 'application', name: 'Chromium', children: [':1.7|/f1', ':1.7|/f2'] },
      ':1.7|/f1': { role: 'frame', name: 'Other - Chromium', states: SHOWN, parent: `:1.7|${ROOT}`, children: [':1.7|/d1'], extents: [900, 0, 300, 300] },
      ':1.7|/d1': { role: 'document web', states: SHOWN, parent: ':1.7|/f1', attrs: { URI: 'https://other.example/' } },
      ':1.7|/f2': { role: 'frame', name: 'Shop - Chromium', states: SHOWN, parent: `:1.7|${ROOT}`, children: [':1.7|/p', ':1.7|/hidden'], extents: [0, 0, 800, 600] },
      ':1.7|/hidden': { role: 'document web', states: ['visible'], parent: ':1.7|/f2', attrs: { URI: 'https://background-tab.example/' } },
      ':1.7|/p': { role: 'panel', states: SHOWN, parent: ':1.7|/f2', children: [':1.7|/d2'] },
      ':1.7|/d2': { role: 'document web', states: SHOWN, parent: ':1.7|/p', attrs: { URI: 'https://shop.example.com/cart', Title: 'Shop' } },
    };
    return objects;
  }
  const shopWin: WindowInfo = { id: '0x2', app: 'chromium', pid: 77, title: 'Shop - Chromium', bounds: { x: 0, y: 0, width: 800, height: 600 } };

  it('the showing document of the window with that title', async () => {
    const { transport } = fakeBus(browser(), [':1.7'], { ':1.7': 77 });
    const ax = new AtspiAccessibility({ transport });
    expect(await ax.urlOf(shopWin)).toBe('https://shop.example.com/cart');
    expect(await ax.urlOf({ ...shopWin, id: '0x3', title: 'Other - Chromium', bounds: { x: 900, y: 0, width: 300, height: 300 } })).toBe('https://other.example/');
  });

  it('remembers the document; a detached one (index -1) is looked up again', async () => {
    const objects = browser();
    const { transport, calls } = fakeBus(objects, [':1.7'], { ':1.7': 77 });
    const ax = new AtspiAccessibility({ transport });
    expect(await ax.urlOf(shopWin)).toBe('https://shop.example.com/cart');
    const before = calls.length;
    expect(await ax.urlOf(shopWin)).toBe('https://shop.example.com/cart');
    expect(calls.length - before, 'a remembered document costs three calls').toBe(3);
    // Navigation: a new document replaces the old one, which stays alive but detached.
    objects[':1.7|/d2']!.index = -1;
    objects[':1.7|/p']!.children = [':1.7|/d3'];
    objects[':1.7|/d3'] = { role: 'document web', states: SHOWN, parent: ':1.7|/p', attrs: { URI: 'https://shop.example.com/pay' } };
    expect(await ax.urlOf(shopWin)).toBe('https://shop.example.com/pay');
  });

  it('no document, no URI, no app of the pid, no pid: null', async () => {
    const objects = browser();
    delete objects[':1.7|/d2']!.attrs!.URI;
    const { transport } = fakeBus(objects, [':1.7'], { ':1.7': 77 });
    const ax = new AtspiAccessibility({ transport });
    expect(await ax.urlOf(shopWin)).toBeNull();
    expect(await ax.urlOf({ ...shopWin, pid: 78 })).toBeNull();
    expect(await ax.urlOf({ ...shopWin, pid: null })).toBeNull();
  });
});
