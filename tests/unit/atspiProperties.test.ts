/**
 * Properties of an interface in as few round trips as the application takes (src/platform/linux/atspi/properties.ts):
 * Qt 5's AT-SPI adaptor drops its accessibility connection on `Properties.GetAll` (checked on Qt 5.15.8), so a
 * Qt application is never sent `GetAll`; every other toolkit gets one `GetAll` per interface as before.
 * The e2e check on a real Qt 5 application: tests/e2e/qtAccessibility.test.ts.
 */
import dbus from 'dbus-next';
import { describe, expect, it } from 'vitest';
import { AtspiBus, type AtspiCall } from '../../src/platform/linux/atspi/bus.js';
import { getAllSafe, readProperties } from '../../src/platform/linux/atspi/properties.js';
import { readCore, readRoleName } from '../../src/platform/linux/atspi/reader.js';

const ACCESSIBLE = 'org.a11y.atspi.Accessible';

/** A bus of applications with the given `ToolkitName` (null: the property is not answered); `GetAll` to a Qt one "drops" it. */
function busOf(toolkits: Record<string, string | null>) {
  const calls: AtspiCall[] = [];
  const dropped = new Set<string>();
  const props: Record<string, unknown> = { Name: 'Save', Description: 'saves', ChildCount: 2 };
  const transport = async (c: AtspiCall): Promise<unknown[]> => {
    calls.push(c);
    if (dropped.has(c.destination)) throw Object.assign(new Error('gone'), { type: 'org.freedesktop.DBus.Error.ServiceUnknown' });
    const tk = toolkits[c.destination];
    if (c.member === 'Get' && c.body[0] === 'org.a11y.atspi.Application' && c.body[1] === 'ToolkitName') {
      if (tk == null) throw Object.assign(new Error('no'), { type: 'org.freedesktop.DBus.Error.UnknownProperty' });
      return [new dbus.Variant('s', tk)];
    }
    if (c.member === 'GetAll') {
      if (tk?.startsWith('Qt')) {
        dropped.add(c.destination);
        throw Object.assign(new Error('no reply'), { type: 'org.freedesktop.DBus.Error.NoReply' });
      }
      return [Object.fromEntries(Object.entries(props).map(([k, v]) => [k, new dbus.Variant(typeof v === 'number' ? 'i' : 's', v)]))];
    }
    if (c.member === 'Get' && c.body[0] === ACCESSIBLE) {
      const v = props[String(c.body[1])];
      if (v === undefined) throw Object.assign(new Error('no'), { type: 'org.freedesktop.DBus.Error.UnknownProperty' });
      return [new dbus.Variant(typeof v === 'number' ? 'i' : 's', v)];
    }
    if (c.member === 'GetRoleName') return ['push button'];
    throw Object.assign(new Error('no method'), { type: 'org.freedesktop.DBus.Error.UnknownMethod' });
  };
  return { bus: new AtspiBus({ transport }), calls, dropped };
}

describe('readProperties', () => {
  it('never sends GetAll to a Qt application: one Get per property, and the application stays readable', async () => {
    const { bus, calls, dropped } = busOf({ ':1.7': 'Qt' });
    for (let i = 0; i < 3; i++) expect(await readCore(bus, [':1.7', `/o${i}`])).toEqual({ roleName: 'push button', name: 'Save', description: 'saves', childCount: 2 });
    expect(calls.filter((c) => c.member === 'GetAll')).toEqual([]);
    expect(dropped.size).toBe(0);
    // The toolkit is asked once per application.
    expect(calls.filter((c) => c.member === 'Get' && c.body[1] === 'ToolkitName')).toHaveLength(1);
  });

  it('sends one GetAll per interface to other toolkits, and to an application that does not answer ToolkitName', async () => {
    const { bus, calls } = busOf({ ':1.8': 'GTK', ':1.9': null });
    expect(await readProperties(bus, [':1.8', '/a'], ACCESSIBLE, ['Name'])).toEqual({ Name: 'Save', Description: 'saves', ChildCount: 2 });
    expect(await readProperties(bus, [':1.9', '/a'], ACCESSIBLE, ['Name'])).toMatchObject({ Name: 'Save' });
    expect(calls.filter((c) => c.member === 'GetAll').map((c) => c.destination)).toEqual([':1.8', ':1.9']);
    expect(calls.filter((c) => c.member === 'Get' && c.body[0] === ACCESSIBLE)).toEqual([]);
  });

  it('per-property reads leave out what failed, and throw only when every Get failed (the interface is missing)', async () => {
    const { bus } = busOf({ ':1.7': 'Qt5' });
    expect(await readProperties(bus, [':1.7', '/a'], ACCESSIBLE, ['Name', 'Locale'])).toEqual({ Name: 'Save' });
    await expect(readProperties(bus, [':1.7', '/a'], ACCESSIBLE, ['Locale', 'AccessibleId'])).rejects.toMatchObject({ message: expect.stringMatching(/no/) });
    expect(await getAllSafe(bus, ':1.7')).toBe(false);
  });
});

describe('readRoleName', () => {
  /** Objects answering `GetRoleName` and `GetRole` as given. */
  function roles(objs: Record<string, { name: string; role: number }>) {
    const calls: AtspiCall[] = [];
    const transport = async (c: AtspiCall): Promise<unknown[]> => {
      calls.push(c);
      const o = objs[c.path]!;
      if (c.member === 'GetRoleName') return [o.name];
      if (c.member === 'GetRole') return [o.role];
      throw Object.assign(new Error('no method'), { type: 'org.freedesktop.DBus.Error.UnknownMethod' });
    };
    return { bus: new AtspiBus({ transport }), calls };
  }

  it('names a text field whose numeric role is ATSPI_ROLE_PASSWORD_TEXT "password text" (Qt 5 answers "text" to GetRoleName)', async () => {
    const { bus, calls } = roles({ '/qtpw': { name: 'text', role: 40 }, '/qttext': { name: 'text', role: 61 }, '/entry': { name: 'entry', role: 40 }, '/gtkpw': { name: 'password text', role: 40 }, '/label': { name: 'label', role: 29 } });
    expect(await readRoleName(bus, [':1.2', '/qtpw'])).toBe('password text');
    expect(await readRoleName(bus, [':1.2', '/entry'])).toBe('password text');
    expect(await readRoleName(bus, [':1.2', '/qttext'])).toBe('text');
    expect(await readRoleName(bus, [':1.2', '/gtkpw'])).toBe('password text');
    expect(await readRoleName(bus, [':1.2', '/label'])).toBe('label');
    // GetRole is asked only of roles deskd maps to a text box, and not when the name already says password.
    expect(calls.filter((c) => c.member === 'GetRole').map((c) => c.path)).toEqual(['/qtpw', '/entry', '/qttext']);
  });
});
