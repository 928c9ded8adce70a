/**
 * Snapshots that take objects from `org.a11y.atspi.Cache.GetItems` (src/platform/linux/atspi/bulkItems.ts),
 * over an in-process fake of the accessibility bus: the snapshot equals the one-by-one read, objects the answer
 * describes are not asked their states, role or properties, optional interfaces the item does not list are not
 * called, objects missing from the answer are read one by one, and the answer is not asked of Qt or when
 * `bulkReads` is off. The real toolkits are compared in tests/e2e/atspiBulk.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AtspiAccessibility, type AtspiCall } from '../../src/platform/linux/atspi.js';
import { indexItems } from '../../src/platform/linux/atspi/bulkItems.js';
import type { AtspiState } from '../../src/platform/linux/atspiRoles.js';
import type { AXBudget } from '../../src/platform/types.js';
import { ATSPI_ROLE_NAMES, DBusLikeError, splitKey as split, stateWords as words } from '../helpers/atspiFakeBus.js';

const REGISTRY = 'org.a11y.atspi.Registry|/org/a11y/atspi/accessible/root';
const FULL: AXBudget = { maxDepth: 40, maxNodes: 1000, timeMs: 10_000 };
const ON: AtspiState[] = ['enabled', 'sensitive', 'visible', 'showing'];
const ACC = 'org.a11y.atspi.Accessible';

interface FakeObject {
  role: string;
  name?: string;
  states?: AtspiState[];
  children?: string[];
  extents?: [number, number, number, number];
  actions?: string[];
}

/** An application with a window, a panel, two buttons (one without Action), a label and an off-screen page. */
function app(): Record<string, FakeObject> {
  return {
    [REGISTRY]: { role: 'desktop frame', children: [':1.1|/root'] },
    ':1.1|/root': { role: 'application', name: 'tool', children: [':1.1|/win'] },
    ':1.1|/win': { role: 'frame', name: 'Tool', states: [...ON, 'active'], extents: [0, 0, 800, 600], children: [':1.1|/panel'] },
    ':1.1|/panel': { role: 'panel', states: ON, extents: [0, 0, 800, 600], children: [':1.1|/ok', ':1.1|/mute', ':1.1|/label', ':1.1|/page'] },
    ':1.1|/ok': { role: 'push button', name: 'OK', states: [...ON, 'focusable'], extents: [10, 20, 80, 30], actions: ['click'] },
    ':1.1|/mute': { role: 'push button', name: 'Mute', states: ON, extents: [100, 20, 80, 30] },
    ':1.1|/label': { role: 'label', name: 'Ready', states: ON, extents: [10, 60, 80, 20] },
    // A stack page that is not on screen (visible, not showing, under a showing parent below the windows).
    ':1.1|/page': { role: 'panel', states: ['enabled', 'visible'], children: [':1.1|/pagebtn'] },
    ':1.1|/pagebtn': { role: 'push button', name: 'Hidden', states: ON, extents: [0, 0, 1, 1], actions: ['click'] },
  };
}

/** The interfaces an object implements, as a toolkit lists them in a cache item. */
function interfacesOf(o: FakeObject): string[] {
  return [ACC, ...(o.extents ? ['org.a11y.atspi.Component'] : []), ...(o.actions ? ['org.a11y.atspi.Action'] : [])];
}

/**
 * A fake bus over `objects`; `GetItems` answers items for the keys in `cached` (all but the registry by
 * default), or fails when `cached` is null; `toolkit` is the application's `ToolkitName`.
 */
function fakeBus(objects: Record<string, FakeObject>, opts: { cached?: string[] | null; toolkit?: string } = {}) {
  const calls: AtspiCall[] = [];
  const parentOf = (key: string) => Object.keys(objects).find((k) => objects[k]!.children?.includes(key));
  const item = (key: string) => {
    const o = objects[key]!;
    const parent = parentOf(key);
    return [split(key), [split(key)[0], '/root'], parent ? split(parent) : ['', '/null'], 0, (o.children ?? []).length, interfacesOf(o), o.name ?? '', ATSPI_ROLE_NAMES.indexOf(o.role), '', words(o.states)];
  };
  const transport = async (c: AtspiCall): Promise<unknown[]> => {
    calls.push(c);
    if (c.iface === 'org.freedesktop.DBus' && c.member === 'GetConnectionUnixProcessID') return [4242];
    if (c.iface === 'org.a11y.atspi.Cache' && c.member === 'GetItems') {
      if (opts.cached === null) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', 'no cache');
      const keys = opts.cached ?? Object.keys(objects).filter((k) => k !== REGISTRY && k.startsWith(`${c.destination}|`));
      return [keys.map(item)];
    }
    const key = `${c.destination}|${c.path}`;
    const o = objects[key];
    const noIface = () => new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', `No such interface “${c.iface}”`);
    if (c.iface === 'org.freedesktop.DBus.Properties' && c.member === 'Get' && c.body[0] === 'org.a11y.atspi.Application') return [opts.toolkit ?? 'GTK'];
    if (!o) throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', `Object does not exist at path “${c.path}”`);
    switch (`${c.iface}.${c.member}`) {
      case 'org.freedesktop.DBus.Properties.GetAll':
        return [{ Name: o.name ?? '', Description: '', ChildCount: (o.children ?? []).length }];
      case 'org.freedesktop.DBus.Properties.Get':
        if (c.body[1] === 'Name') return [o.name ?? ''];
        if (c.body[1] === 'Description') return [''];
        if (c.body[1] === 'ChildCount') return [(o.children ?? []).length];
        throw noIface();
      case 'org.a11y.atspi.Accessible.GetRole':
        return [ATSPI_ROLE_NAMES.indexOf(o.role)];
      case 'org.a11y.atspi.Accessible.GetRoleName':
        return [o.role];
      case 'org.a11y.atspi.Accessible.GetState':
        return [words(o.states)];
      case 'org.a11y.atspi.Accessible.GetChildren':
        return [(o.children ?? []).map(split)];
      case 'org.a11y.atspi.Component.GetExtents':
        if (!o.extents) throw noIface();
        return [o.extents];
      case 'org.a11y.atspi.Action.GetActions':
        if (!o.actions) throw noIface();
        return [o.actions.map((a) => [a, '', ''])];
      default:
        throw noIface();
    }
  };
  return { transport, calls };
}

const asked = (calls: AtspiCall[], member: string) => calls.filter((c) => c.member === member).map((c) => c.path).sort();
const reference = async (objects: Record<string, FakeObject>) => {
  const ax = new AtspiAccessibility({ transport: fakeBus(objects).transport, bulkReads: false });
  try {
    return await ax.snapshot({ scope: 'all', budget: FULL });
  } finally {
    await ax.close();
  }
};

/** A backend over `transport` that has read once (the first deep read of an application is one by one), with the calls of that read dropped. */
async function learned(transport: (c: AtspiCall) => Promise<unknown[]>, calls: AtspiCall[], opts: { bulkReads?: boolean } = {}): Promise<AtspiAccessibility> {
  const ax = new AtspiAccessibility({ transport, ...opts });
  await ax.snapshot({ scope: 'all', budget: FULL });
  calls.length = 0;
  return ax;
}

describe('snapshots from Cache.GetItems', () => {
  it('equal the one-by-one read, without asking described objects their states, role or properties', async () => {
    const { transport, calls } = fakeBus(app());
    const ax = await learned(transport, calls);
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    await ax.close();
    expect(snap).toEqual(await reference(app()));
    expect(JSON.stringify(snap)).toContain('"name":"OK"');
    expect(JSON.stringify(snap)).not.toContain('Hidden');
    expect(asked(calls, 'GetItems')).toEqual(['/org/a11y/atspi/cache']);
    // Only the application object (not in the answer's use: depth 0) is read one by one; every object is
    // still asked its role name.
    expect(asked(calls, 'GetState')).toEqual(['/root']);
    expect(asked(calls, 'GetAll')).toEqual(['/root']);
    expect(asked(calls, 'GetRoleName')).toEqual(['/label', '/mute', '/ok', '/panel', '/root', '/win']);
    // Optional interfaces are asked only where the item lists them; the off-screen page's button never.
    expect(asked(calls, 'GetActions')).toEqual(['/ok']);
    expect(asked(calls, 'GetExtents')).toEqual(['/label', '/mute', '/ok', '/panel', '/win']);
  });

  it('read objects missing from the answer one by one (a widget the toolkit has not cached yet)', async () => {
    const { transport, calls } = fakeBus(app(), { cached: [':1.1|/win', ':1.1|/panel', ':1.1|/label'] });
    const ax = await learned(transport, calls);
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    await ax.close();
    expect(snap).toEqual(await reference(app()));
    expect(asked(calls, 'GetAll')).toEqual(['/mute', '/ok', '/root']);
    // The off-screen page is missing too: its states are read (one call) and its subtree is not.
    expect(asked(calls, 'GetState')).toEqual(['/mute', '/ok', '/page', '/root']);
  });

  it('take the name, role and states the answer gives (the answer is what the object says when asked)', async () => {
    const objects = app();
    const { transport } = fakeBus(objects);
    // The item is serialised from the object when asked; here the item alone says "Renamed".
    const renamed = async (c: AtspiCall) => {
      const r = await transport(c);
      if (c.member === 'GetItems') for (const it of r[0] as unknown[][]) if ((it[0] as string[])[1] === '/ok') it[6] = 'Renamed';
      return r;
    };
    const ax = await learned(renamed, []);
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    await ax.close();
    expect(JSON.stringify(snap)).toContain('"name":"Renamed"');
  });

  for (const [what, opts] of [
    ['the call fails (Chromium before at-spi2-atk 2.46, any toolkit without a cache)', { cached: null }],
    ['the toolkit is Qt (not sent calls it may not take)', { toolkit: 'Qt' }],
  ] as const) {
    it(`read one by one when ${what}, and do not ask again`, async () => {
      const { transport, calls } = fakeBus(app(), opts);
      const ax = await learned(transport, calls);
      const snap = await ax.snapshot({ scope: 'all', budget: FULL });
      expect(snap).toEqual(await reference(app()));
      expect(asked(calls, 'GetState')).toEqual(['/label', '/mute', '/ok', '/page', '/panel', '/root', '/win']);
      for (let i = 0; i < 4; i++) await ax.snapshot({ scope: 'all', budget: FULL });
      await ax.close();
      expect(asked(calls, 'GetItems')).toHaveLength('toolkit' in opts ? 0 : 1);
    });
  }

  it('an answer in another layout (at-spi2-atk before 2.46: children lists) is taken as none, and not asked again', async () => {
    const { transport, calls } = fakeBus(app());
    const old = async (c: AtspiCall) => {
      const r = await transport(c);
      if (c.member !== 'GetItems') return r;
      // (o(so)(so)a(so)assusau)-like: 9 fields, a children list where the index and count were.
      return [(r[0] as unknown[][]).map((it) => [it[0], it[1], it[2], [], it[5], it[6], it[7], it[8], it[9]])];
    };
    const ax = await learned(old, calls);
    for (let i = 0; i < 5; i++) expect(await ax.snapshot({ scope: 'all', budget: FULL })).toEqual(await reference(app()));
    await ax.close();
    expect(asked(calls, 'GetItems')).toHaveLength(1);
    expect(asked(calls, 'GetAll').filter((p) => p === '/ok')).toHaveLength(5);
  });

  it('an answer not given within the call timeout is not waited for again for 20 reads', async () => {
    const { transport, calls } = fakeBus(app());
    const hangs = (c: AtspiCall) => (c.member === 'GetItems' ? transport(c).then(() => new Promise<unknown[]>(() => {})) : transport(c));
    const ax = new AtspiAccessibility({ transport: hangs, callTimeoutMs: 50 });
    await ax.snapshot({ scope: 'all', budget: FULL }); // one by one
    const slow = await ax.snapshot({ scope: 'all', budget: FULL }); // asks; waits 50 ms; reads one by one
    expect(slow).toEqual(await reference(app()));
    for (let i = 0; i < 19; i++) await ax.snapshot({ scope: 'all', budget: FULL });
    expect(asked(calls, 'GetItems')).toHaveLength(1);
    await ax.snapshot({ scope: 'all', budget: FULL }); // the 20th read since: the size is forgotten
    await ax.snapshot({ scope: 'all', budget: FULL });
    expect(asked(calls, 'GetItems')).toHaveLength(2);
    await ax.close();
  });

  it('an item with an unknown child count (-1: menus, objects managing their descendants) still has its children asked', async () => {
    const { transport, calls } = fakeBus(app());
    const unknownCount = async (c: AtspiCall) => {
      const r = await transport(c);
      if (c.member === 'GetItems') for (const it of r[0] as unknown[][]) if ((it[0] as string[])[1] === '/panel') it[4] = -1;
      return r;
    };
    const ax = await learned(unknownCount, calls);
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    await ax.close();
    expect(snap).toEqual(await reference(app()));
    expect(asked(calls, 'GetChildren')).toContain('/panel');
  });

  it('a password field described by the answer (numeric role 40) is a password field', async () => {
    const objects = app();
    objects[':1.1|/pw'] = { role: 'password text', name: 'Password', states: [...ON, 'editable', 'focusable'], extents: [10, 90, 200, 24] };
    objects[':1.1|/panel']!.children!.push(':1.1|/pw');
    const { transport, calls } = fakeBus(objects);
    const ax = await learned(transport, calls);
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    await ax.close();
    expect(asked(calls, 'GetRole')).not.toContain('/pw');
    const pw = JSON.parse(JSON.stringify(snap)).roots[0].children[0].children[0].children.find((n: { name: string }) => n.name === 'Password');
    expect(pw).toMatchObject({ role: 'textbox', platformRole: 'password text' });
    expect(pw.states).toContain('password');
    expect(pw.value).toBeUndefined();
  });

  it('an application cannot describe another application\'s objects: a lying answer about them is not taken', async () => {
    const objects: Record<string, FakeObject> = {
      ...app(),
      [REGISTRY]: { role: 'desktop frame', children: [':1.1|/root', ':1.2|/root'] },
      ':1.2|/root': { role: 'application', name: 'vault', children: [':1.2|/win'] },
      ':1.2|/win': { role: 'frame', name: 'Vault', states: [...ON], extents: [900, 0, 300, 300], children: [':1.2|/pw'] },
      ':1.2|/pw': { role: 'password text', name: 'Secret', states: [...ON, 'editable'], extents: [910, 10, 200, 24] },
    };
    const { transport } = fakeBus(objects);
    // :1.1 answers items for :1.2's password field too: a plain, named push button.
    const lying = async (c: AtspiCall) => {
      const r = await transport(c);
      if (c.member === 'GetItems' && c.destination === ':1.1') (r[0] as unknown[][]).push([[':1.2', '/pw'], [':1.2', '/root'], [':1.2', '/win'], 0, 0, [ACC], 'Harmless', 43, '', words(ON)]);
      if (c.member === 'GetItems' && c.destination === ':1.2') throw new DBusLikeError('org.freedesktop.DBus.Error.UnknownMethod', 'no cache');
      return r;
    };
    const ax = await learned(lying, []);
    const snap = await ax.snapshot({ scope: 'all', budget: FULL });
    await ax.close();
    expect(snap).toEqual(await reference(objects));
    expect(JSON.stringify(snap)).not.toContain('Harmless');
    expect(JSON.stringify(snap)).toContain('"platformRole":"password text"');
  });

  it('are not asked with bulkReads: false', async () => {
    const { transport, calls } = fakeBus(app());
    const ax = await learned(transport, calls, { bulkReads: false });
    await ax.snapshot({ scope: 'all', budget: FULL });
    await ax.close();
    expect(asked(calls, 'GetItems')).toEqual([]);
  });
});

describe('when Cache.GetItems is asked (its answer holds every cached object, on screen or not)', () => {
  /** The application of {@link app} with `n` more buttons under the panel, `showing` or not. */
  function withButtons(n: number, showing: boolean): Record<string, FakeObject> {
    const objects = app();
    for (let i = 0; i < n; i++) {
      objects[`:1.1|/b${i}`] = { role: 'push button', name: `b${i}`, states: showing ? ON : ['enabled', 'visible'], extents: [0, 0, 5, 5] };
      objects[':1.1|/panel']!.children!.push(`:1.1|/b${i}`);
    }
    return objects;
  }
  const snapshot = (ax: AtspiAccessibility, budget: AXBudget = FULL) => ax.snapshot({ scope: 'all', budget });

  it('not by the first read of an application (one by one: it learns how much is on screen), then by every read', async () => {
    const { transport, calls } = fakeBus(app());
    const ax = new AtspiAccessibility({ transport });
    await snapshot(ax);
    expect(asked(calls, 'GetItems')).toEqual([]);
    for (let i = 0; i < 3; i++) await snapshot(ax);
    expect(asked(calls, 'GetItems')).toHaveLength(3);
    await ax.close();
  });

  it('never by reads that stay above the windows (maxDepth ≤ 2)', async () => {
    const { transport, calls } = fakeBus(app());
    const ax = new AtspiAccessibility({ transport });
    for (let i = 0; i < 3; i++) await snapshot(ax, { maxDepth: 2, maxNodes: 400, timeMs: 2000 });
    await snapshot(ax);
    await snapshot(ax, { maxDepth: 2, maxNodes: 400, timeMs: 2000 });
    expect(asked(calls, 'GetItems')).toEqual([]);
    await ax.close();
  });

  it('not of an application with far more objects off screen than on (a long page): its answer would cost more than it saves', async () => {
    const { transport, calls } = fakeBus(withButtons(400, false));
    const ax = new AtspiAccessibility({ transport });
    for (let i = 0; i < 5; i++) await snapshot(ax);
    expect(asked(calls, 'GetItems')).toEqual([]);
    await ax.close();
  });

  it('an answer up to 8 items per object kept (plus 200) keeps being asked (the dashboard: 1423 for 440)', async () => {
    const objects = withButtons(100, true);
    const { transport, calls } = fakeBus(objects);
    // 900 more items than objects on screen: within 8 per object kept (105 kept: bound 1040).
    const stale = Array.from({ length: 900 }, (_, i) => [[':1.1', `/old${i}`], [':1.1', '/root'], ['', '/null'], -1, 0, [ACC], 'old', 43, '', [0, 0]]);
    const padded = async (c: AtspiCall) => {
      const r = await transport(c);
      return c.member === 'GetItems' ? [[...(r[0] as unknown[]), ...stale]] : r;
    };
    const ax = new AtspiAccessibility({ transport: padded });
    for (let i = 0; i < 6; i++) await snapshot(ax);
    expect(asked(calls, 'GetItems')).toHaveLength(5);
    await ax.close();
  });

  it('an answer found too large is not asked again for 20 reads, then asked again', async () => {
    const objects = withButtons(0, true);
    const { transport, calls } = fakeBus(objects);
    // The toolkit's cache holds 600 objects that are in no tree any more (a page navigated away from).
    const stale = Array.from({ length: 600 }, (_, i) => [[':1.1', `/old${i}`], [':1.1', '/root'], ['', '/null'], -1, 0, [ACC], 'old', 43, '', [0, 0]]);
    const bloated = async (c: AtspiCall) => {
      const r = await transport(c);
      return c.member === 'GetItems' ? [[...(r[0] as unknown[]), ...stale]] : r;
    };
    const ax = new AtspiAccessibility({ transport: bloated });
    await snapshot(ax); // one by one
    await snapshot(ax); // asks: 600 + 8 items for 5 objects kept
    expect(asked(calls, 'GetItems')).toHaveLength(1);
    for (let i = 0; i < 19; i++) await snapshot(ax);
    expect(asked(calls, 'GetItems')).toHaveLength(1);
    await snapshot(ax); // the 20th read since: the size is forgotten
    await snapshot(ax); // asks again
    expect(asked(calls, 'GetItems')).toHaveLength(2);
    await ax.close();
  });
});

describe('indexItems', () => {
  const good = (path: string, over: Partial<Record<number, unknown>> = {}) => {
    const it: unknown[] = [[':1.1', path], [':1.1', '/root'], [':1.1', '/p'], 0, 2, [ACC], 'Name', 43, 'Desc', [0, 0]];
    for (const [i, v] of Object.entries(over)) it[Number(i)] = v;
    return it;
  };

  it('takes well-formed items of its own bus name, with libatspi role names and decoded states', () => {
    const index = indexItems(':1.1', [good('/a', { 9: words(['showing', 'focused']) }), good('/b', { 0: [':1.9', '/b'] })]);
    expect(index.size).toBe(1);
    expect(index.object('/a')).toMatchObject({ role: 43, name: 'Name', description: 'Desc', childCount: 2 });
    expect([...index.object('/a')!.states].sort()).toEqual(['focused', 'showing']);
    expect(index.object('/b')).toBeUndefined();
  });

  it('leaves out items of another layout or with values of the wrong type', () => {
    const old = [[':1.1', '/old'], [':1.1', '/root'], [':1.1', '/p'], [[':1.1', '/k']], [ACC], 'Name', 43, '', [0, 0]];
    const index = indexItems(':1.1', [
      old,
      good('/neg', { 7: -1 }),
      good('/frac', { 7: 4.5 }),
      good('/str', { 6: 5 }),
      good('/st', { 9: ['x'] }),
      good('/if', { 5: [1] }),
      good('/cc', { 4: 1.5 }),
      'junk',
      null,
    ]);
    expect(index.size).toBe(0);
    expect(indexItems(':1.1', { not: 'a list' }).size).toBe(0);
    // Object.prototype names are not objects.
    expect(indexItems(':1.1', []).object('constructor')).toBeUndefined();
  });
});
