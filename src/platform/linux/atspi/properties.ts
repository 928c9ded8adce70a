/**
 * Reading an interface's properties in as few round trips as the application can take.
 *
 * `org.freedesktop.DBus.Properties.GetAll` answers every property of an interface in one call, and GTK
 * (GDBus and at-spi2-atk) and Chromium/Electron (at-spi2-atk) answer it. Qt's AT-SPI adaptor does not:
 * checked on Qt 5.15.8 (Debian's `qt5` examples, `QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1`), `GetAll` of
 * `org.a11y.atspi.Accessible` on a child answers `UnknownInterface`, and `GetAll` of the application root's
 * `Accessible` or of a child's `Component` makes the application drop its accessibility connection (its
 * name leaves the bus, so every later read of it fails: the whole application vanished from deskd's tree).
 * So each application's toolkit (`org.a11y.atspi.Application.ToolkitName`, at-spi2-core
 * xml/Application.xml) is asked once per connection, and a Qt application's properties are read one
 * `Properties.Get` each (all in flight at once).
 */
import type { AtspiBus } from './bus.js';
import { APPLICATION } from './fastReads.js';
import { ROOT_PATH, type Ref } from './refs.js';

/** `ToolkitName` values whose applications must not be sent `GetAll` (case-insensitive prefix `Qt`). */
const NO_GET_ALL = /^qt/i;
/** Bus names remembered per bus; past this the memory is cleared (unique names are not reused). */
const MAX_REMEMBERED = 1024;

const byBus = new WeakMap<AtspiBus, Map<string, Promise<boolean>>>();

/**
 * True when `GetAll` may be sent to the application owning `busName`: its `ToolkitName` was read and is not
 * Qt's, or could not be read (then it is sent as before: every toolkit known to drop `GetAll` answers
 * `ToolkitName`). Asked once per bus name and bus. Never throws.
 */
export function getAllSafe(bus: AtspiBus, busName: string): Promise<boolean> {
  let m = byBus.get(bus);
  if (!m) byBus.set(bus, (m = new Map()));
  let p = m.get(busName);
  if (!p) {
    if (m.size >= MAX_REMEMBERED) m.clear();
    p = bus.prop([busName, ROOT_PATH], APPLICATION, 'ToolkitName').then(
      (name) => !(typeof name === 'string' && NO_GET_ALL.test(name.trim())),
      () => true,
    );
    m.set(busName, p);
  }
  return p;
}

/**
 * The properties `names` of interface `iface` of one object, variants unwrapped: one `GetAll` where the
 * application takes it ({@link getAllSafe}; then every property it answers is returned, `names` or not),
 * else one `Get` per name at once, leaving out the names whose `Get` failed.
 * @throws the D-Bus error of `GetAll`, or of the first `Get` when every `Get` failed (the interface is missing).
 */
export async function readProperties(bus: AtspiBus, ref: Ref, iface: string, names: readonly string[]): Promise<Record<string, unknown>> {
  if (await getAllSafe(bus, ref[0])) return bus.props(ref, iface);
  const got = await Promise.allSettled(names.map((n) => bus.prop(ref, iface, n)));
  const out: Record<string, unknown> = {};
  let firstError: unknown = null;
  got.forEach((g, i) => {
    if (g.status === 'fulfilled') out[names[i]!] = g.value;
    else firstError ??= g.reason;
  });
  if (Object.keys(out).length === 0 && firstError !== null) throw firstError;
  return out;
}
