/**
 * The AT-SPI backend's reading of names, values and ranges (issue 14, items 2 and 5) over an in-process
 * fake bus shaped like what gnome-calculator (GTK 4) and Chromium answered under Xvfb: `GetRelationSet`
 * (`a(ua(so))`, `RELATION_LABELLED_BY` = 2), `Value` properties in one `GetAll`, a `<select>` whose
 * options' `selected` states are stale while `posinset` follows the shown option, and application pids.
 */
import { describe, expect, it } from 'vitest';
import { AtspiAccessibility, type AtspiCall } from '../../src/platform/linux/atspi.js';
import { ATSPI_STATE_TYPES, type AtspiState } from '../../src/platform/linux/atspiRoles.js';
import type { RawAXNode } from '../../src/platform/types.js';

interface Obj {
  role: string;
  name?: string;
  states?: AtspiState[];
  children?: string[];
  extents?: [number, number, number, number];
  text?: string;
  value?: Record<string, number>;
  relations?: Array<[number, string[]]>;
  attributes?: Record<string, string>;
}

const ON: AtspiState[] = ['enabled', 'sensitive', 'visible', 'showing'];
const words = (states: AtspiState[] = []) => {
  const w = [0, 0];
  for (const s of states) {
    const i = ATSPI_STATE_TYPES.indexOf(s);
    w[i >> 5] = (w[i >> 5]! | (1 << (i & 31))) >>> 0;
  }
  return w;
};
const ref = (k: string) => [k.slice(0, k.indexOf('|')), k.slice(k.indexOf('|') + 1)];

function transportOf(objects: Record<string, Obj>, pids: Record<string, number>) {
  const calls: AtspiCall[] = [];
  const transport = async (c: AtspiCall): Promise<unknown[]> => {
    calls.push(c);
    if (c.member === 'GetConnectionUnixProcessID') return [pids[c.body[0] as string]];
    const o = objects[`${c.destination}|${c.path}`];
    const none = () => Object.assign(new Error(`No such interface “${c.iface}”`), { type: 'org.freedesktop.DBus.Error.UnknownMethod' });
    if (!o) throw none();
    switch (`${c.iface}.${c.member}`) {
      case 'org.freedesktop.DBus.Properties.GetAll':
        if (c.body[0] === 'org.a11y.atspi.Value') {
          if (!o.value) throw none();
          return [o.value];
        }
        return [{ Name: o.name ?? '', Description: '', ChildCount: (o.children ?? []).length }];
      case 'org.freedesktop.DBus.Properties.Get':
        if ((c.body as string[])[1] === 'Name') return [o.name ?? ''];
        if ((c.body as string[])[1] === 'CurrentValue' && o.value) return [o.value.CurrentValue];
        throw none();
      case 'org.a11y.atspi.Accessible.GetRoleName':
        return [o.role];
      case 'org.a11y.atspi.Accessible.GetState':
        return [words(o.states)];
      case 'org.a11y.atspi.Accessible.GetChildren':
        return [(o.children ?? []).map(ref)];
      case 'org.a11y.atspi.Accessible.GetRelationSet':
        return [(o.relations ?? []).map(([t, targets]) => [t, targets.map(ref)])];
      case 'org.a11y.atspi.Accessible.GetAttributes':
        return [o.attributes ?? {}];
      case 'org.a11y.atspi.Component.GetExtents':
        if (!o.extents) throw none();
        return [o.extents];
      case 'org.a11y.atspi.Text.GetText':
        if (o.text === undefined) throw none();
        return [o.text];
      case 'org.a11y.atspi.Selection.GetSelectedChild':
        return [[':1.2', '/org/a11y/atspi/null']];
      default:
        throw none();
    }
  };
  return { transport, calls };
}

const objects: Record<string, Obj> = {
  'org.a11y.atspi.Registry|/org/a11y/atspi/accessible/root': { role: 'desktop frame', children: [':1.1|/root', ':1.2|/root'] },
  ':1.1|/root': { role: 'application', name: 'gnome-calculator', children: [':1.1|/win'] },
  ':1.1|/win': { role: 'window', name: 'Calculator', states: ON, extents: [0, 0, 355, 486], children: [':1.1|/clear', ':1.1|/icon', ':1.1|/display'] },
  // GTK 4: a class name as Name, labelled by an object that has a real name.
  ':1.1|/clear': { role: 'button', name: 'GtkImage', states: ON, extents: [16, 240, 55, 40], relations: [[3, [':1.1|/icon']], [2, [':1.1|/icon']]] },
  ':1.1|/icon': { role: 'label', name: 'Backspace', states: ON, extents: [30, 250, 20, 20] },
  ':1.1|/display': { role: 'text', name: 'GtkSourceView', states: [...ON, 'editable'], extents: [0, 166, 343, 32], text: '' },
  ':1.2|/root': { role: 'application', name: 'Chromium', children: [':1.2|/frame'] },
  ':1.2|/frame': { role: 'frame', name: 'Seeing - Chromium', states: ON, extents: [0, 0, 1279, 799], children: [':1.2|/select', ':1.2|/range', ':1.2|/number'] },
  ':1.2|/select': { role: 'combo box', name: 'Priority', states: ON, extents: [93, 314, 71, 20], text: '\uFFFC', attributes: { posinset: '3', setsize: '3' }, children: [':1.2|/menu'] },
  ':1.2|/menu': { role: 'menu', states: ['enabled'], children: [':1.2|/o1', ':1.2|/o2', ':1.2|/o3'] },
  ':1.2|/o1': { role: 'menu item', name: 'Low', states: ['enabled', 'selected'] },
  ':1.2|/o2': { role: 'menu item', name: 'Medium', states: ['enabled'] },
  ':1.2|/o3': { role: 'menu item', name: 'High', states: ['enabled'] },
  ':1.2|/range': { role: 'slider', name: 'Volume', states: ON, extents: [98, 367, 130, 17], value: { CurrentValue: 20, MinimumValue: 0, MaximumValue: 50, MinimumIncrement: 5 } },
  ':1.2|/number': { role: 'spin button', name: 'Quantity', states: [...ON, 'editable'], extents: [107, 423, 41, 22], text: '3', value: { CurrentValue: 3, MinimumValue: 1, MaximumValue: 9, MinimumIncrement: 0 } },
};

function* all(nodes: RawAXNode[]): Generator<RawAXNode> {
  for (const n of nodes) {
    yield n;
    yield* all(n.children);
  }
}

describe('AT-SPI names, values and ranges', () => {
  it('reads pids onto application roots, labelled-by names, combo box values and Value ranges', async () => {
    const { transport, calls } = transportOf(objects, { ':1.1': 101, ':1.2': 202 });
    const ax = new AtspiAccessibility({ transport });
    const snap = await ax.snapshot({ scope: 'all', budget: { maxDepth: 10, maxNodes: 100, timeMs: 5000 } });
    expect(snap.roots.map((r) => [r.name, r.pid])).toEqual([['gnome-calculator', 101], ['Chromium', 202]]);
    const nodes = [...all(snap.roots)];
    const by = (h: string) => nodes.find((n) => n.handle === h)!;
    // Labelled-by (type 2; type 3, controller-for, ignored) replaces the class name.
    expect(by(':1.1|/clear').name).toBe('Backspace');
    // No relation: the class name stays for the generic naming rule to drop.
    expect(by(':1.1|/display').name).toBe('GtkSourceView');
    // posinset wins over the stale `selected` state of the first option.
    expect(by(':1.2|/select').value).toBe('High');
    expect(by(':1.2|/range')).toMatchObject({ value: '20', range: { min: 0, max: 50, step: 5 } });
    const spin = by(':1.2|/number');
    expect(spin.value).toBe('3');
    expect(spin.range).toEqual({ min: 1, max: 9 }); // MinimumIncrement 0: no step
    // Relations are asked only of elements without a real name of their own.
    const asked = calls.filter((c) => c.member === 'GetRelationSet').map((c) => c.path);
    expect(asked).toContain('/clear');
    expect(asked).not.toContain('/range');
    expect(asked).not.toContain('/win');
  });

  it('a combo box without posinset falls back to the option with the selected state', async () => {
    const o = { ...objects, ':1.2|/select': { ...objects[':1.2|/select']!, attributes: {} } };
    const ax = new AtspiAccessibility({ transport: transportOf(o, { ':1.1': 1, ':1.2': 2 }).transport });
    const snap = await ax.snapshot({ scope: 'all', budget: { maxDepth: 10, maxNodes: 100, timeMs: 5000 } });
    expect([...all(snap.roots)].find((n) => n.handle === ':1.2|/select')!.value).toBe('Low');
  });
});
