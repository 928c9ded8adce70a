/**
 * Which application and window have the focus: the top-level window with the AT-SPI `active` state, else
 * (no window manager sets `active`) the application whose pid the window system names, else the only
 * application showing windows.
 *
 * Sources: at-spi2-core xml/Accessible.xml (`GetChildren`, `GetState`, property `Name`); the D-Bus
 * specification (`org.freedesktop.DBus.GetConnectionUnixProcessID`).
 */
import type { FocusInfo } from '../../types.js';
import type { AtspiBus } from './bus.js';
import { readChildren, readStates, readBounds } from './reader.js';
import { ACCESSIBLE, REGISTRY, ROOT_PATH, type Ref } from './refs.js';
import { NO_OFFSET, shiftRect, type WindowOffsets } from './windowOffset.js';

/** The active application and window. */
export interface ActiveWindow {
  app: Ref;
  appName: string;
  window: Ref;
  windowName: string;
}

/**
 * Application roots listed by the registry (`(so)` refs); tells the bus how many there are (its degraded
 * status depends on it). @throws the D-Bus error when the registry does not answer.
 */
export async function applications(bus: AtspiBus): Promise<Ref[]> {
  const refs = await readChildren(bus, [REGISTRY, ROOT_PATH]);
  bus.noteApplications(refs.length);
  return refs;
}

/**
 * The active top-level window (see the module comment), or null when nothing decides.
 * @throws the D-Bus error when the registry does not answer.
 */
export async function findActive(bus: AtspiBus, pidOf: (busName: string) => Promise<number | null>, focusedPid?: () => Promise<number | null>): Promise<ActiveWindow | null> {
  const apps = await applications(bus);
  const perApp = await Promise.all(
    apps.map(async (app) => {
      try {
        const [appName, kids] = await Promise.all([bus.prop(app, ACCESSIBLE, 'Name').then((v) => String(v ?? '')), readChildren(bus, app)]);
        const wins = await Promise.all(
          kids.map(async (w) => {
            const [st, name] = await Promise.all([readStates(bus, w), bus.prop(w, ACCESSIBLE, 'Name').then((v) => String(v ?? ''))]);
            return { w, st, name };
          }),
        );
        return { app, appName, wins };
      } catch {
        return null;
      }
    }),
  );
  for (const a of perApp) {
    const win = a?.wins.find((x) => x.st.has('active'));
    if (a && win) return { app: a.app, appName: a.appName, window: win.w, windowName: win.name };
  }
  // No window is `active` (e.g. no window manager): ask the window system which process has focus.
  const showing = perApp.flatMap((a) => (a ? a.wins.filter((x) => x.st.has('showing')).map((x) => ({ a, x })) : []));
  if (focusedPid && showing.length > 0) {
    const pid = await focusedPid().catch(() => null);
    if (pid !== null) {
      for (const { a, x } of showing) {
        if ((await pidOf(a.app[0])) === pid) return { app: a.app, appName: a.appName, window: x.w, windowName: x.name };
      }
    }
  }
  // Exactly one application shows windows: it is the only candidate.
  const apps1 = new Set(showing.map((s) => s.a));
  if (apps1.size === 1) {
    const first = showing[0]!;
    return { app: first.a.app, appName: first.a.appName, window: first.x.w, windowName: first.x.name };
  }
  return null;
}

/** The focus as `RawAccessibility.focused` reports it, from the active window (its bounds placed by `offsets`, when given). */
export async function focusInfo(bus: AtspiBus, active: ActiveWindow, offsets?: WindowOffsets): Promise<FocusInfo> {
  const [pid, bounds] = await Promise.all([bus.pidOf(active.app[0]), readBounds(bus, active.window)]);
  const [o] = offsets && bounds ? await offsets.of([{ ref: active.window, pid, name: active.windowName, bounds }]) : [NO_OFFSET];
  return { app: active.appName, pid, window: active.windowName || null, windowBounds: bounds ? shiftRect(bounds, o!) : null };
}
