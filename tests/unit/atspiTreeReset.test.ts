/**
 * The kept AT-SPI tree after `forget()` (refs.ts resetTreeAfterInput calls it after every input event): events
 * that arrive while the full read after a reset runs are applied to the model it makes (the read may already
 * have passed the object they name), and a reset that lands while a full read is in flight keeps that read's
 * model from being installed. Both cases failed before (review of 2026-12-07).
 */
import { describe, expect, it } from 'vitest';
import { AtspiBus, type AtspiCall, type AtspiChange } from '../../src/platform/linux/atspi/bus.js';
import { AtspiTree } from '../../src/platform/linux/atspi/tree.js';
import type { AXBudget } from '../../src/platform/types.js';
import { ATSPI_STATE_TYPES } from '../../src/platform/linux/atspiRoles.js';

const SHOWING = (() => {
  const w = [0, 0];
  for (const s of ['enabled', 'sensitive', 'visible', 'showing'] as const) {
    const i = ATSPI_STATE_TYPES.indexOf(s);
    w[i >> 5] = (w[i >> 5]! | (1 << (i & 31))) >>> 0;
  }
  return w;
})();

const APP = ':1.7';
const FULL: AXBudget = { maxDepth: 40, maxNodes: 5000, timeMs: 10_000 };
const apps = (): [string, string][] => [[APP, '/root']];

function app() {
  const objs = new Map<string, { role: string; name: string; children: string[] }>([
    ['/root', { role: 'application', name: 'fake', children: ['/win'] }],
    ['/win', { role: 'frame', name: 'W', children: ['/b1', '/b2'] }],
    ['/b1', { role: 'push button', name: 'Cancel', children: [] }],
    ['/b2', { role: 'push button', name: 'Other', children: [] }],
  ]);
  let onCall: ((c: AtspiCall) => void) | null = null;
  const transport = async (c: AtspiCall): Promise<unknown[]> => {
    onCall?.(c);
    if (c.member === 'GetConnectionUnixProcessID') return [4242];
    const o = objs.get(c.path);
    const none = () => Object.assign(new Error('no'), { type: 'org.freedesktop.DBus.Error.UnknownMethod' });
    if (!o) throw none();
    switch (`${c.iface}.${c.member}`) {
      case 'org.freedesktop.DBus.Properties.GetAll':
        if (c.body[0] !== 'org.a11y.atspi.Accessible') throw none();
        return [{ Name: o.name, Description: '', ChildCount: o.children.length }];
      case 'org.a11y.atspi.Accessible.GetRoleName':
        return [o.role];
      case 'org.a11y.atspi.Accessible.GetState':
        return [SHOWING];
      case 'org.a11y.atspi.Accessible.GetChildren':
        return [o.children.map((p) => [APP, p])];
      case 'org.a11y.atspi.Accessible.GetRelationSet':
        return [[]];
      case 'org.a11y.atspi.Component.GetExtents':
        return [[0, 0, 50, 20]];
      default:
        throw none();
    }
  };
  return { objs, transport, setOnCall: (f: ((c: AtspiCall) => void) | null) => (onCall = f) };
}

const rename: AtspiChange = { kind: 'property-change', app: APP, path: '/b1', detail: 'accessible-name' };

describe('AtspiTree: events and resets during a full read', () => {
  it('a rename announced while the read after a reset runs is not lost', async () => {
    const a = app();
    const tree = new AtspiTree(new AtspiBus({ transport: a.transport, callTimeoutMs: 60_000 }), async () => 4242);
    await tree.snapshot(apps(), FULL, true);
    tree.forget(); // resetTreeAfterInput after a click
    let fired = false;
    let b1Read = false;
    a.setOnCall((c) => {
      // Once the read has asked the first button's name, the app renames it, with its event, while the read goes on.
      if (c.path === '/b1' && c.member === 'GetAll') b1Read = true;
      else if (!fired && b1Read) {
        fired = true;
        a.objs.get('/b1')!.name = 'Delete everything';
        tree.noteChange(rename);
      }
    });
    await tree.snapshot(apps(), FULL, true);
    a.setOnCall(null);
    expect(fired).toBe(true);
    const next = await tree.snapshot(apps(), FULL, true);
    expect(JSON.stringify(next.roots)).toContain('Delete everything');
  });

  it('a reset that lands while a full read is in flight makes the next snapshot a full read', async () => {
    const a = app();
    const tree = new AtspiTree(new AtspiBus({ transport: a.transport, callTimeoutMs: 60_000 }), async () => 4242);
    let fired = false;
    a.setOnCall((c) => {
      if (!fired && c.path === '/b2') {
        fired = true;
        a.objs.get('/b1')!.name = 'Changed without an event';
        tree.forget(); // the click's resetTree while an observe's read runs
      }
    });
    await tree.snapshot(apps(), FULL, true);
    a.setOnCall(null);
    expect(fired).toBe(true);
    const full = tree.stats.fullReads;
    const next = await tree.snapshot(apps(), FULL, true);
    expect(tree.stats.fullReads).toBe(full + 1);
    expect(JSON.stringify(next.roots)).toContain('Changed without an event');
  });
});
