/**
 * Linux accessibility: AT-SPI 2 over D-Bus with `dbus-next` (low-level `Message` calls, no introspection).
 *
 * The backend is split by job in `./atspi/`:
 * - `bus.ts`: connection, calls (timeout, in-flight bound), reconnection, degraded status, change events;
 *   `dbusAdapter.ts`: the only access to `dbus-next` internals; `wire.ts`/`wireCodec.ts`: deskd's own D-Bus
 *   client for the reads, and `fastReads.ts`: which connection each read takes (peer-to-peer to the
 *   application when it offers one, else the bus);
 * - `snapshotRead.ts`: the pipelined snapshot read; `tree.ts`: the incremental tree kept from events; `budget.ts`: the
 *   traversal budgets and the on-screen rule; `reader.ts`: reading one object;
 * - `focus.ts`: the active application and window; `actions.ts`: actions and set-value;
 * - `targets.ts`: hit-test, owner and URL of a window's document;
 * - `windowOffset.ts`: where a window really is when its toolkit answers window-relative extents (GTK 4).
 *
 * Sources: at-spi2-core's D-Bus interfaces (xml/Accessible.xml, Component.xml, Action.xml, Text.xml,
 * Value.xml, Bus.xml, Event.xml): the session bus names the accessibility bus (`org.a11y.Bus.GetAddress`);
 * the registry (`org.a11y.atspi.Registry`, `/org/a11y/atspi/accessible/root`) lists one accessible root per
 * application; every object answers `org.a11y.atspi.Accessible` (`GetChildren`, `GetRole`, `GetState`,
 * properties `Name`, `Description`, `ChildCount`), most also `Component.GetExtents` and `Action.GetActions`;
 * GTK 4 and at-spi2-atk also answer `org.a11y.atspi.Cache.GetItems` (atspi/bulkItems.ts).
 * Every call has a timeout, so a hung application costs at most that long and never fails the snapshot of
 * the others.
 */
import { isDeskdError } from '../../errors.js';
import type { AccessibilityStatus, AXBudget, AXSnapshot, ElementOwner, FocusInfo, Point, RawAccessibility, RawAXNode, WindowInfo } from '../types.js';
import * as actions from './atspi/actions.js';
import { AtspiBus, guard, type AtspiBusOptions, type AtspiBusStats, type AtspiChange } from './atspi/bus.js';
import { applications, findActive, focusInfo } from './atspi/focus.js';
import { AtspiTargets } from './atspi/targets.js';
import { AtspiTree, type AtspiTreeStats } from './atspi/tree.js';
import { popupsAt, shiftRect, subsurfaces, WindowOffsets, type FrameFacts, type Offset } from './atspi/windowOffset.js';
import { parseAtspiHandle } from './atspi/refs.js';

export { onScreen } from './atspi/budget.js';
export type { AtspiCall, AtspiChange, AtspiTransport } from './atspi/bus.js';
export { atspiHandle, extentsToRect, parseAtspiHandle } from './atspi/refs.js';

/** Options of {@link AtspiAccessibility}. */
export interface AtspiOptions extends AtspiBusOptions {
  /** Session bus address; default `process.env.DBUS_SESSION_BUS_ADDRESS` at connect time. */
  sessionBusAddress?: string;
  /**
   * Accessibility bus address, skipping `org.a11y.Bus.GetAddress`. Default: `AT_SPI_BUS_ADDRESS` from the
   * environment when no `sessionBusAddress` is given, else asked from the session bus.
   */
  a11yBusAddress?: string;
  /** Timeout of each D-Bus call, ms. Default 1500. */
  callTimeoutMs?: number;
  /** Most D-Bus calls in flight at once. Default 256. */
  maxInFlight?: number;
  /**
   * Process id owning the keyboard focus according to the window system (e.g. X11 `XGetInputFocus` +
   * `_NET_WM_PID`); used when no AT-SPI window carries the `active` state (no window manager).
   */
  focusedPid?: () => Promise<number | null>;
  /**
   * While change events are subscribed, the age of the incremental tree after which a full read replaces (and
   * verifies) it, ms (default 15000): it runs right after the snapshot that finds the tree this old, which still
   * answers from it (`AtspiTree`).
   */
  verifyTreeMs?: number;
  /**
   * The window system's windows (with `surface`, e.g. `X11Windows.list`): where a toolkit that answers
   * window-relative extents (GTK 4) really shows its windows (`atspi/windowOffset.ts`). Without it,
   * extents are taken as the toolkit answers them.
   */
  windows?: () => Promise<WindowInfo[]>;
}

/**
 * `RawAccessibility` over AT-SPI 2. Connects lazily on first use (session bus → `org.a11y.Bus.GetAddress`
 * → a second connection to the accessibility bus) and reconnects after the bus goes away.
 *
 * Handles are `${busName}|${objectPath}` and stay valid as long as the application keeps the object.
 * Objects below the top-level windows that are not on screen are left out with their subtrees (hidden
 * GTK stack pages, web content scrolled out of view; see {@link onScreen}), which keeps GTK and Chromium
 * trees small. While {@link onChange} listeners are subscribed, snapshots come from a tree kept up to date
 * by the events (`atspi/tree.ts`).
 */
export class AtspiAccessibility implements RawAccessibility {
  private readonly opts: AtspiOptions;
  private readonly bus: AtspiBus;
  private readonly tree: AtspiTree;
  private readonly targets: AtspiTargets;
  private readonly offsets: WindowOffsets;
  /** Whether the tree follows events (an {@link onChange} subscription is live). */
  private tracking = 0;

  constructor(opts: AtspiOptions = {}) {
    this.opts = opts;
    this.bus = new AtspiBus(opts);
    this.offsets = new WindowOffsets(this.bus, opts.windows);
    this.targets = new AtspiTargets(this.bus, this.offsets);
    this.tree = new AtspiTree(this.bus, (b) => this.targets.cachedPid(b), opts.verifyTreeMs !== undefined ? { verifyMs: opts.verifyTreeMs } : {});
    this.bus.onNewConnection = () => {
      this.targets.clear();
      this.tree.forget();
    };
  }

  /** Counters: D-Bus calls (`calls`, `byMember`, `timeouts`) and the tree's (`fullReads`, `incremental`, `reread`, …). */
  get stats(): AtspiBusStats & AtspiTreeStats {
    return { ...this.bus.stats, ...this.tree.stats };
  }

  /**
   * Be told when accessible objects change: the `org.a11y.atspi.Event.Object` signals ChildrenChanged,
   * PropertyChange, BoundsChanged, StateChanged and TextChanged (at-spi2-core xml/Event.xml). Interest is
   * registered with the registry (`org.a11y.atspi.Registry.RegisterEvent`, so applications start emitting
   * them) and a match rule on the accessibility bus. After a reconnection the subscription is renewed and
   * listeners get a `reconnected` change. Resolves once subscribed, with a function that removes the listener.
   * While at least one listener is subscribed, snapshots are kept and updated from the events.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached or subscribing fails
   *   (always with an injected transport, which carries no signals).
   */
  async onChange(listener: (e: AtspiChange) => void): Promise<() => void> {
    // The tree sees every event before the listener does (a listener that snapshots at once sees it applied).
    const off = await this.bus.onChange((e) => {
      this.tree.noteChange(e);
      listener(e);
    });
    this.tracking++;
    let on = true;
    return () => {
      if (!on) return;
      on = false;
      off();
      if (--this.tracking === 0) this.tree.forget();
    };
  }

  /** Drop the tree kept from events: the next snapshot reads everything (an observation asked to be fresh). */
  resetTree(): void {
    this.tree.forget();
  }

  /**
   * The screen's pixels changed. While the tree is kept from events, the next snapshot checks the extents and
   * states of every object it holds again: a scroll moves objects on and off screen without any AT-SPI event
   * (Chromium sends none), which events alone would miss.
   */
  screenChanged(): void {
    this.tree.noteScreenChange();
  }

  /**
   * Whether the accessibility trees can be trusted. Degraded after the AT-SPI bus connection was lost
   * (dbus-next `error` or the socket closing): D-Bus activation starts a new, empty accessibility bus, and
   * applications that were registered with the old one (GTK's atk-bridge, Chromium) do not move to it, so
   * snapshots silently miss them. The state clears once the registry of a new connection lists at least as
   * many applications as the last healthy read did. Also degraded while no connection can be made.
   * The next call reconnects lazily. Never calls the bus.
   */
  status(): AccessibilityStatus {
    return this.bus.status();
  }

  /**
   * The application owning the active top-level window (AT-SPI `active` state), with its process id
   * (`org.freedesktop.DBus.GetConnectionUnixProcessID` on the accessibility bus), window title and bounds.
   * Without an `active` window (no window manager), the application whose pid `opts.focusedPid` names,
   * else the only application showing a window; null when none of these decides.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached.
   */
  async focused(): Promise<FocusInfo | null> {
    const active = await guard(() => findActive(this.bus, (b) => this.bus.pidOf(b), this.opts.focusedPid));
    return active ? focusInfo(this.bus, active, this.offsets) : null;
  }

  /**
   * Read the accessibility tree. Depth 0 is the application object; `maxDepth` is the deepest level read.
   * `maxNodes` counts every node returned (applications included; when it cuts, shallower objects are read
   * first); `timeMs` is a wall-clock budget after which unfinished objects are dropped. Any cut sets
   * `truncated`. `scope: 'focused'` reads only the application {@link focused} would name (active window,
   * window-system focus, or the only application showing windows), or every application when none is found.
   * An application that fails or times out is left out (logged), never failing the rest.
   * While change events are subscribed ({@link onChange}), the tree of the last read is brought up to date
   * from the events instead of being read again (`atspi/tree.ts`).
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the accessibility bus or registry cannot be reached.
   */
  async snapshot(opts: { scope: 'focused' | 'all'; budget: AXBudget }): Promise<AXSnapshot> {
    let apps = await guard(() => applications(this.bus));
    if (opts.scope === 'focused') {
      const active = await guard(() => findActive(this.bus, (b) => this.bus.pidOf(b), this.opts.focusedPid)).catch((e: unknown) => {
        if (isDeskdError(e)) throw e;
        return null;
      });
      if (active) apps = [active.app];
    }
    const { roots, truncated, nodeCount } = await this.tree.snapshot(apps, opts.budget, this.tracking > 0 && this.bus.eventsLive);
    await this.placeWindows(roots);
    return { roots, truncated, nodeCount };
  }

  /**
   * Move the extents of every object of a top-level window whose toolkit answered them relative to the
   * window (GTK 4) to where the window really is (`atspi/windowOffset.ts`). The nodes are the snapshot's own
   * (new objects every time), changed in place.
   */
  private async placeWindows(roots: RawAXNode[]): Promise<void> {
    const frames: Array<{ node: RawAXNode; facts: FrameFacts }> = [];
    for (const app of roots) for (const w of app.children) frames.push({ node: w, facts: { ref: parseAtspiHandle(w.handle), pid: app.pid ?? null, name: w.name, bounds: w.bounds } });
    const { placements, windows } = await this.offsets.place(frames.map((f) => f.facts));
    const shift = (node: RawAXNode, o: Offset) => {
      if (o.dx === 0 && o.dy === 0) return;
      const stack = [node];
      while (stack.length > 0) {
        const n = stack.pop()!;
        if (n.bounds) n.bounds = shiftRect(n.bounds, o);
        stack.push(...n.children);
      }
    };
    frames.forEach(({ node, facts }, i) => {
      const p = placements[i]!;
      if (facts.pid === null) return;
      if (p.window) {
        shift(node, p);
        // Popovers and menus on surfaces of their own are reported where their anchor is: put each where its window is.
        for (const s of subsurfaces(node, p.window, facts.pid, windows)) {
          shift(s.node, s.offset);
          s.node.windowId = s.window.id;
        }
      }
      // Items of a menu or list shown in a popup window of the process (placed by now) are in that window.
      for (const s of popupsAt(node, facts.pid, windows)) s.node.windowId ??= s.window.id;
    });
  }

  /**
   * Perform a named action through `org.a11y.atspi.Action.DoAction`. The name is matched case-insensitively;
   * `press`, `click` and `activate` stand for one another (tried in that order after the exact name).
   * `focus` calls `org.a11y.atspi.Component.GrabFocus`.
   * @returns false when the node has no such action (or the application refused it).
   * @throws DeskdError `STALE_REF` when the object or its application no longer exists; `TIMEOUT` when the
   *   application does not answer within the call timeout; `ACTION_FAILED` for other D-Bus errors;
   *   `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached.
   */
  doAction(handle: string, action: string): Promise<boolean> {
    return actions.doAction(this.bus, handle, action);
  }

  /**
   * Replace an element's text with `org.a11y.atspi.EditableText.SetTextContents(s) → b`
   * (at-spi2-core xml/EditableText.xml). The value is never logged nor put in error messages.
   * @returns false when the node has no EditableText interface or the application refused.
   * @throws DeskdError `STALE_REF`, `TIMEOUT`, `ACTION_FAILED`, `ACCESSIBILITY_UNAVAILABLE`, as {@link doAction}.
   */
  setValue(handle: string, value: string): Promise<boolean> {
    return actions.setValue(this.bus, handle, value);
  }

  /**
   * Hit-test: the deepest accessible element at `p` (logical global points), with `children: []`.
   * The application is the one on the bus whose pid (`GetConnectionUnixProcessID`) is `window.pid`
   * (every application when no pid is given); among its showing top-level windows containing `p`, the one
   * named like `window` is tried first (several containing `p` and none named or placed like `window`:
   * ambiguous, `ACCESSIBILITY_UNAVAILABLE`). From the window, `org.a11y.atspi.Component.GetAccessibleAtPoint(x, y,
   * 0 = screen)` is asked again of each answer until it names no deeper child (at most 64 levels); where an
   * object does not implement it, its children's extents are compared instead (last child first: drawn on top).
   * The answer is the deepest object, or its nearest ancestor with an interactive role (`INTERACTIVE_ROLES`)
   * within 6 levels below the window when it has none itself (the button around a GTK label, the link
   * around Chromium's static text).
   * @returns null when the application's window at `p` has no element below it there.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached, no application of the
   *   window's pid is on the bus, none of its accessible windows contains `p`, or the application does not answer.
   */
  elementAt(p: Point, window?: WindowInfo): Promise<RawAXNode | null> {
    return this.targets.elementAt(p, window);
  }

  /**
   * The application and top-level window owning an element: the pid of its bus name
   * (`org.freedesktop.DBus.GetConnectionUnixProcessID` on the accessibility bus), the process name as
   * `WindowInfo.app` has it (`processName`, else the accessible application's `Name`), and the ancestor
   * whose `Parent` is the application object (`/org/a11y/atspi/accessible/root` on the same bus name),
   * found by walking `Parent` up (at most 128 levels), with its `Name` and screen extents.
   * @returns null when the element no longer exists.
   * @throws DeskdError `STALE_REF` for a malformed handle; `ACCESSIBILITY_UNAVAILABLE` when the bus or
   *   the application does not answer.
   */
  ownerOf(handle: string): Promise<ElementOwner | null> {
    return this.targets.ownerOf(handle);
  }

  /**
   * The document URL shown in a browser window: in the application of `window.pid`, the top-level window
   * named like `window` (else the one with its bounds, else the first showing one), then breadth-first the
   * first `document web` object with the `showing` state (at most 16 levels, 2000 objects), whose
   * `org.a11y.atspi.Document.GetAttributes()` entry `URI` (Chromium; `DocURL` as a fallback) is the URL;
   * the document found is remembered per window and re-checked directly while it still shows.
   * @returns null when the window's application is not on the bus, no document is found, or it names no URL.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached.
   */
  urlOf(window: WindowInfo): Promise<string | null> {
    return this.targets.urlOf(window);
  }

  /** Disconnect from the accessibility bus. Later calls throw `ACCESSIBILITY_UNAVAILABLE`. */
  async close(): Promise<void> {
    this.tree.forget();
    await this.bus.close();
  }
}
