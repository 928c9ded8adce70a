/**
 * The AT-SPI backend's traversal, filtering, budgets, focus and actions, over an in-process fake of the
 * accessibility bus (the `transport` seam), so every branch runs without a desktop. The real thing is
 * exercised in tests/e2e/atspi.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AtspiAccessibility, type AtspiCall } from '../../src/platform/linux/atspi.js';
import type { AtspiState } from '../../src/platform/linux/atspiRoles.js';
import { DBusLikeError, splitKey as split, stateWords as words } from '../helpers/atspiFakeBus.js';
import type { AXBudget, RawAXNode } from '../../src/platform/types.js';

const REGISTRY = 'org.a11y.atspi.Registry|/org/a11y/atspi/accessible/root';
const FULL: AXBudget = { maxDepth: 40, maxNodes: 1000, timeMs: 10_000 };

interface FakeObject {
  role: string;
  name?: string;
  states?: AtspiState[];
  children?: string[];
  extents?: [number, number, number, number];
  /** Action names: GetName gives `name`, GetActions gives `localized` (default: same as name). */
  actions?: Array<{ name: string; localized?: string }>;
  text?: string;
  value?: number;
  /** Never answer. */
  hang?: boolean;
  /** Answer after this many ms. */
  delayMs?: number;
}


/** A fake accessibility bus over a map of objects keyed `bus|path`; records every call. */
function fakeBus(objects: Record<string, FakeObject>, pids: Record<string, number> = {}) {
  const calls: AtspiCall[] = [];
  const done: Array<{ key: string; index: number }> = [];
  const transport = async (c: AtspiCall): Promise<unknown[]> => {
    calls.push(c);
    if (c.iface === 'org.freedesktop.DBus' && c.member === 'GetConnectionUnixProcessID') {
      const pid = pids[c.body[0] as string];
      if (pid === undefined) throw new DBusLikeError('org.freedesktop.DBus.Error.NameHasNoOwner', 'no such name');
      return [pid];
    }
    const key = `${c.destination}|${c.path}`;
    const o = objects[key];
    if (!o) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', `Object does not exist at path “${c.path}”`);
    if (o.hang) return new Promise(() => {});
    if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
    const noIface = () => new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', `No such interface “${c.iface}”`);
    const kids = () => (o.children ?? []).map(split);
    switch (`${c.iface}.${c.member}`) {
      case 'org.freedesktop.DBus.Properties.GetAll':
        return [{ Name: o.name ?? '', Description: '', ChildCount: (o.children ?? []).length }];
      case 'org.freedesktop.DBus.Properties.Get': {
        const [iface, prop] = c.body as [string, string];
        if (iface === 'org.a11y.atspi.Accessible' && prop === 'Name') return [o.name ?? ''];
        if (iface === 'org.a11y.atspi.Action' && prop === 'NActions') {
          if (!o.actions) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownProperty', 'no property');
          return [o.actions.length];
        }
        if (iface === 'org.a11y.atspi.Value' && prop === 'CurrentValue' && o.value !== undefined) return [o.value];
        throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownProperty', 'no property');
      }
      case 'org.a11y.atspi.Accessible.GetRoleName':
        return [o.role];
      case 'org.a11y.atspi.Accessible.GetState':
        return [words(o.states)];
      case 'org.a11y.atspi.Accessible.GetChildren':
        return [kids()];
      case 'org.a11y.atspi.Component.GetExtents':
        if (!o.extents) throw noIface();
        return [o.extents];
      case 'org.a11y.atspi.Component.GrabFocus':
        return [true];
      case 'org.a11y.atspi.Action.GetActions':
        if (!o.actions) throw noIface();
        return [o.actions.map((a) => [a.localized ?? a.name, '', ''])];
      case 'org.a11y.atspi.Action.GetName': {
        const a = o.actions?.[c.body[0] as number];
        if (!a) throw noIface();
        return [a.name];
      }
      case 'org.a11y.atspi.Action.DoAction':
        if (!o.actions) throw noIface();
        done.push({ key, index: c.body[0] as number });
        return [true];
      case 'org.a11y.atspi.Text.GetText':
        if (o.text === undefined) throw noIface();
        return [o.text];
      default:
        throw noIface();
    }
  };
  return { transport, calls, done };
}

function* walk(nodes: RawAXNode[]): Generator<RawAXNode> {
  for (const n of nodes) {
    yield n;
    yield* walk(n.children);
  }
}
const byName = (nodes: RawAXNode[], name: string) => [...walk(nodes)].find((n) => n.name === name);
const ON: AtspiState[] = ['enabled', 'sensitive', 'visible', 'showing'];

/** Two apps: "editor" (GTK 3 style: showing everywhere, with a hidden page) and "viewer" (GTK 4 style). */
function twoApps() {
  return {
    [REGISTRY]: { role: 'desktop frame', children: [':1.1|/root', ':1.2|/root'] },
    ':1.1|/root': { role: 'application', name: 'editor', children: [':1.1|/win'] },
    ':1.1|/win': { role: 'frame', name: 'Editor', states: [...ON, 'active'], extents: [0, 0, 800, 600], children: [':1.1|/panel', ':1.1|/hidden'] },
    ':1.1|/panel': { role: 'panel', states: ON, extents: [0, 0, 800, 600], children: [':1.1|/ok', ':1.1|/entry', ':1.1|/pw', ':1.1|/progress', ':1.1|/page2'] },
    ':1.1|/ok': { role: 'push button', name: 'OK', states: [...ON, 'focusable'], extents: [10, 20, 80, 30], actions: [{ name: 'click' }] },
    ':1.1|/entry': { role: 'text', name: 'Name', states: [...ON, 'editable', 'focused'], extents: [10, 60, 200, 24], text: 'Ada', actions: [{ name: 'activate' }] },
    ':1.1|/pw': { role: 'password text', name: 'Password', states: [...ON, 'editable'], extents: [10, 90, 200, 24], text: 'hunter2' },
    ':1.1|/progress': { role: 'progress bar', name: 'Progress', states: ON, extents: [10, 120, 200, 10], value: 42.5 },
    // A GTK 3 stack page that is not on screen: visible but not showing, under a showing parent.
    ':1.1|/page2': { role: 'panel', states: ['enabled', 'visible'], extents: [0, 0, 0, 0], children: [':1.1|/page2btn'] },
    ':1.1|/page2btn': { role: 'push button', name: 'Hidden page button', states: ['enabled', 'visible'], actions: [{ name: 'click' }] },
    ':1.1|/hidden': { role: 'filler', states: ['enabled'], children: [] },
    ':1.2|/root': { role: 'application', name: 'viewer', children: [':1.2|/win', ':1.2|/offwin'] },
    ':1.2|/win': { role: 'window', name: 'Viewer', states: ['sensitive', 'visible', 'showing'], extents: [900, 0, 300, 300], children: [':1.2|/group'] },
    ':1.2|/group': { role: 'group', states: ['sensitive', 'visible'], extents: [900, 0, 300, 300], children: [':1.2|/btn', ':1.2|/gone'] },
    ':1.2|/btn': { role: 'button', name: 'Zoom Zoom', states: ['sensitive', 'visible', 'focusable'], extents: [910, 10, 60, 30], actions: [{ name: 'click', localized: 'Klicken' }] },
    ':1.2|/gone': { role: 'button', name: 'Invisible', states: ['sensitive'] },
    ':1.2|/offwin': { role: 'window', name: 'Off-screen window', states: ['sensitive'], children: [':1.2|/offbtn'] },
    ':1.2|/offbtn': { role: 'button', name: 'Never read', states: ['sensitive', 'visible'] },
  } satisfies Record<string, FakeObject>;
}

describe('AtspiAccessibility over a fake bus', () => {
  it('maps roles, names, states, bounds, actions and values, in document order', async () => {
    const bus = fakeBus(twoApps());
    const ax = new AtspiAccessibility({ transport: bus.transport });
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    expect(snap.truncated).toBe(false);
    expect(snap.roots.map((r) => r.name)).toEqual(['editor', 'viewer']);
    expect(snap.nodeCount).toBe([...walk(snap.roots)].length);
    const app = snap.roots[0]!;
    expect(app).toMatchObject({ role: 'application', platformRole: 'application', bounds: null, handle: ':1.1|/root' });
    const panel = app.children[0]!.children[0]!;
    expect(panel.children.map((n) => n.name)).toEqual(['OK', 'Name', 'Password', 'Progress']);
    expect(byName(snap.roots, 'OK')).toMatchObject({
      role: 'button',
      platformRole: 'push button',
      handle: ':1.1|/ok',
      bounds: { x: 10, y: 20, width: 80, height: 30 },
      actions: ['click'],
      states: ['enabled', 'visible', 'showing', 'focusable'],
    });
    expect(byName(snap.roots, 'Name')).toMatchObject({ role: 'textbox', value: 'Ada', states: expect.arrayContaining(['focused', 'editable']) });
    expect(byName(snap.roots, 'Progress')).toMatchObject({ role: 'progressbar', value: '42.5' });
    expect(byName(snap.roots, 'Zoom Zoom')).toMatchObject({ role: 'button', actions: ['Klicken'] });
    await ax.close();
  });

  it('never reads a password field and marks it', async () => {
    const bus = fakeBus(twoApps());
    const ax = new AtspiAccessibility({ transport: bus.transport });
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    const pw = byName(snap.roots, 'Password')!;
    expect(pw.role).toBe('textbox');
    expect(pw.states).toContain('password');
    expect(pw.value).toBeUndefined();
    expect(bus.calls.filter((c) => c.path === '/pw' && c.iface === 'org.a11y.atspi.Text')).toEqual([]);
    expect(JSON.stringify(snap)).not.toContain('hunter2');
  });

  it('leaves out what is not on screen, for both GTK 3 and GTK 4 state conventions', async () => {
    const bus = fakeBus(twoApps());
    const ax = new AtspiAccessibility({ transport: bus.transport });
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    const names = [...walk(snap.roots)].map((n) => n.name);
    expect(names).not.toContain('Hidden page button'); // GTK 3 hidden stack page
    expect(names).not.toContain('Invisible'); // neither showing nor visible
    expect(names).toContain('Zoom Zoom'); // GTK 4: visible under a parent without `showing`
    // A window that is not showing is listed but not descended into.
    expect(names).toContain('Off-screen window');
    expect(names).not.toContain('Never read');
    expect(bus.calls.some((c) => c.path === '/offbtn')).toBe(false);
  });

  it('stops at maxNodes breadth-first, at maxDepth, and at the time budget, saying so', async () => {
    const objects = twoApps();
    const ax = new AtspiAccessibility({ transport: fakeBus(objects).transport });

    const few = await ax.snapshot({ scope: 'all', budget: { ...FULL, maxNodes: 5 } });
    expect(few.truncated).toBe(true);
    expect(few.nodeCount).toBe([...walk(few.roots)].length);
    expect(few.nodeCount).toBeLessThanOrEqual(5);
    // Breadth-first: both applications and their windows come before anything deeper.
    expect([...walk(few.roots)].map((n) => n.name)).toEqual(expect.arrayContaining(['editor', 'viewer', 'Editor', 'Viewer']));

    const shallow = await ax.snapshot({ scope: 'all', budget: { ...FULL, maxDepth: 1 } });
    expect(shallow.truncated).toBe(true);
    expect([...walk(shallow.roots)].every((n) => n.role === 'application' || n.role === 'window')).toBe(true);

    const slow = fakeBus({ ...objects, ':1.1|/panel': { ...objects[':1.1|/panel'], delayMs: 300 } });
    const ax2 = new AtspiAccessibility({ transport: slow.transport });
    const timed = await ax2.snapshot({ scope: 'all', budget: { ...FULL, timeMs: 100 } });
    expect(timed.truncated).toBe(true);
    expect(timed.nodeCount).toBe([...walk(timed.roots)].length);
    expect(byName(timed.roots, 'OK')).toBeUndefined();
  });

  it('leaves out an application that does not answer, and logs it', async () => {
    const objects = { ...twoApps(), ':1.2|/root': { role: 'application', name: 'viewer', hang: true } };
    const warnings: unknown[] = [];
    const ax = new AtspiAccessibility({ transport: fakeBus(objects).transport, callTimeoutMs: 50, logger: { warn: (o) => warnings.push(o) } });
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    expect(snap.roots.map((r) => r.name)).toEqual(['editor']);
    expect(byName(snap.roots, 'OK')).toBeDefined();
    expect(warnings).toEqual([expect.objectContaining({ app: ':1.2' })]);
  });

  it('throws ACCESSIBILITY_UNAVAILABLE when the registry does not answer', async () => {
    const objects: Record<string, FakeObject> = { [REGISTRY]: { role: 'desktop frame', hang: true } };
    const ax = new AtspiAccessibility({ transport: fakeBus(objects).transport, callTimeoutMs: 50 });
    await expect(ax.snapshot({ scope: 'all', budget: FULL })).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
    await expect(ax.focused()).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
  });

  describe('focus', () => {
    it('reads only the application owning the active window', async () => {
      const ax = new AtspiAccessibility({ transport: fakeBus(twoApps(), { ':1.1': 4242 }).transport });
      const snap = await ax.snapshot({ scope: 'focused', budget: FULL });
      expect(snap.roots.map((r) => r.name)).toEqual(['editor']);
      expect(await ax.focused()).toEqual({ app: 'editor', pid: 4242, window: 'Editor', windowBounds: { x: 0, y: 0, width: 800, height: 600 } });
    });

    it('without an active window, asks the window system for the focused pid', async () => {
      const objects = twoApps();
      objects[':1.1|/win'].states = ON;
      const ax = new AtspiAccessibility({ transport: fakeBus(objects, { ':1.1': 10, ':1.2': 20 }).transport, focusedPid: async () => 20 });
      expect(await ax.focused()).toMatchObject({ app: 'viewer', pid: 20, window: 'Viewer' });
      const snap = await ax.snapshot({ scope: 'focused', budget: FULL });
      expect(snap.roots.map((r) => r.name)).toEqual(['viewer']);
    });

    it('without an active window or a hint, picks the only application showing windows, else reads all', async () => {
      const objects = twoApps();
      objects[':1.1|/win'].states = ON;
      const both = new AtspiAccessibility({ transport: fakeBus(objects).transport });
      expect(await both.focused()).toBeNull();
      expect((await both.snapshot({ scope: 'focused', budget: FULL })).roots.map((r) => r.name)).toEqual(['editor', 'viewer']);

      objects[':1.2|/win'].states = ['sensitive'];
      const one = new AtspiAccessibility({ transport: fakeBus(objects).transport });
      expect(await one.focused()).toMatchObject({ app: 'editor', window: 'Editor' });
    });
  });

  describe('doAction', () => {
    it('matches case-insensitively, treats press/click/activate as synonyms, and refuses unknown names', async () => {
      const bus = fakeBus(twoApps());
      const ax = new AtspiAccessibility({ transport: bus.transport });
      expect(await ax.doAction(':1.1|/ok', 'CLICK')).toBe(true);
      expect(await ax.doAction(':1.1|/ok', 'press')).toBe(true);
      expect(await ax.doAction(':1.1|/entry', 'press')).toBe(true); // only "activate" there
      expect(await ax.doAction(':1.1|/ok', 'jump')).toBe(false);
      expect(bus.done).toEqual([
        { key: ':1.1|/ok', index: 0 },
        { key: ':1.1|/ok', index: 0 },
        { key: ':1.1|/entry', index: 0 },
      ]);
    });

    it('accepts the localised name a snapshot listed', async () => {
      const bus = fakeBus(twoApps());
      const ax = new AtspiAccessibility({ transport: bus.transport });
      expect(await ax.doAction(':1.2|/btn', 'Klicken')).toBe(true);
      expect(bus.done).toEqual([{ key: ':1.2|/btn', index: 0 }]);
    });

    it('answers false without an Action interface, STALE_REF for a vanished object, TIMEOUT for a hung app', async () => {
      const objects: Record<string, FakeObject> = { ...twoApps(), ':1.3|/hung': { role: 'push button', hang: true } };
      const ax = new AtspiAccessibility({ transport: fakeBus(objects).transport, callTimeoutMs: 50 });
      expect(await ax.doAction(':1.1|/progress', 'click')).toBe(false);
      await expect(ax.doAction(':1.1|/vanished', 'click')).rejects.toMatchObject({ code: 'STALE_REF' });
      await expect(ax.doAction('not-a-handle', 'click')).rejects.toMatchObject({ code: 'STALE_REF' });
      await expect(ax.doAction(':1.3|/hung', 'click')).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(await ax.doAction(':1.1|/ok', 'focus')).toBe(true);
    });
  });

  it('fills empty localised action names (Chromium) from GetName', async () => {
    const objects: Record<string, FakeObject> = {
      [REGISTRY]: { role: 'desktop frame', children: [':1.9|/app'] },
      ':1.9|/app': { role: 'application', name: 'Chromium', children: [':1.9|/w'] },
      ':1.9|/w': { role: 'frame', name: 'page - Chromium', states: ON, extents: [0, 0, 100, 100], children: [':1.9|/b'] },
      ':1.9|/b': { role: 'push button', name: 'Go', states: ON, extents: [1, 1, 10, 10], actions: [{ name: 'press', localized: '' }, { name: 'showContextMenu', localized: '' }] },
    };
    const ax = new AtspiAccessibility({ transport: fakeBus(objects).transport });
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    expect(byName(snap.roots, 'Go')!.actions).toEqual(['press', 'showContextMenu']);
  });
});

describe('AtspiAccessibility.status', () => {
  it('is not degraded while the bus answers', async () => {
    const ax = new AtspiAccessibility({ transport: fakeBus(twoApps()).transport });
    expect(ax.status()).toEqual({ degraded: false });
    await ax.snapshot({ scope: 'all', budget: FULL });
    expect(ax.status()).toEqual({ degraded: false });
    await ax.close();
  });

  it('is degraded, with the reason, while the accessibility bus cannot be reached, and not after close', async () => {
    const ax = new AtspiAccessibility({ a11yBusAddress: 'unix:path=/nonexistent/deskd-test-bus', callTimeoutMs: 200 });
    await expect(ax.snapshot({ scope: 'all', budget: FULL })).rejects.toMatchObject({ code: 'ACCESSIBILITY_UNAVAILABLE' });
    const s = ax.status();
    expect(s.degraded).toBe(true);
    expect(s.reason).toMatch(/^the accessibility bus cannot be reached: .*\/nonexistent\/deskd-test-bus/);
    await ax.close();
    expect(ax.status()).toEqual({ degraded: false });
  });
});
