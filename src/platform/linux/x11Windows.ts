import type { Point, Rect, RawWindows, WindowInfo, WindowMark, WindowReadOptions } from '../types.js';
import { X11WindowWatch } from './x11WindowWatch.js';
import { sameRect } from '../rect.js';
import { DeskdError } from '../../errors.js';
import { X11Link, X11ProtocolError, XA, type X11Connection } from './x11Client.js';
import { decodeText, hit, parseWmClass, processName, sleep, windowIdHex } from './x11Props.js';

/** Atoms a read needs (interned once per connection). */
interface Atoms {
  utf8String: number;
  compoundText: number;
  netWmName: number;
  netWmPid: number;
  netSupportingWmCheck: number;
  netActiveWindow: number;
  gtkFrameExtents: number;
}

/** What one window's requests answered (null fields: unset, or the window went away). */
interface Described {
  id: number;
  viewable: boolean;
  bounds: Rect | null;
  title: string | null;
  cls: { instance: string; wmClass: string } | null;
  pid: number | null;
  /** X border width (pixels). */
  borderWidth: number;
  /** The override-redirect attribute (a menu, a dropdown, a tooltip: placed by its application, not by a window manager). */
  overrideRedirect: boolean;
  /** `_GTK_FRAME_EXTENTS` (left, right, top, bottom), when set. */
  frameExtents: { left: number; right: number; top: number; bottom: number } | null;
}

/** One read of the window system: the list, what it was built from, and when. */
interface Snapshot {
  windows: WindowInfo[];
  /** The top-level window (root child) of each listed window, by listed id (the frame of a client under a window manager). */
  topOf: Map<string, number>;
  root: number;
  pointer: Point | null;
  /** X input focus (`GetInputFocus`): 0 None, 1 PointerRoot, else a window. */
  focus: number;
  /** The root child holding the focus window, when the focus is a window other than the root; else null. */
  focusTop: number | null;
  /** An EWMH window manager runs (the root's `_NET_SUPPORTING_WM_CHECK` is set). */
  wm: boolean;
  at: number;
}

/** Windows whose identity read at map time (or by the first scan) is kept, for one gone before `touchedSince` asks. */
const KNOWN_KEPT = 512;
/** How long a read is reused by non-fresh calls, ms (the executor invalidates it on every dispatch). */
const CACHE_MS = 150;
/** How long `activate` waits for a window manager to make the window active (`_NET_ACTIVE_WINDOW`), ms. */
const ACTIVATE_WAIT_MS = 2000;
/** Longest title read, 4-byte units (4 KiB). */
const TITLE_LONGS = 1024;
/** How deep below a top-level window a client window (one with WM_CLASS) is looked for under a reparenting window manager. */
const CLIENT_DEPTH = 4;
/** Largest `_GTK_FRAME_EXTENTS` value believed (pixels): a shadow margin, not a window. */
const MAX_FRAME_EXTENT = 256;

/** An X error (the window went away between two requests) reads as "nothing"; a failed connection is thrown. */
function gone<T>(p: Promise<T>): Promise<T | null> {
  return p.catch((e: unknown) => {
    if (e instanceof X11ProtocolError) return null;
    throw e;
  });
}

/**
 * X11 top-level windows through one persistent X connection (`x11Client.ts`): stacking order, geometry,
 * WM_CLASS, `_NET_WM_PID`, titles, the input focus and the pointer, each read a few pipelined requests on a
 * socket that stays open (a read costs one or two round trips to the X server instead of starting
 * xwininfo, xdotool and xprop: 5–15 ms a process).
 *
 * One read: `QueryTree(root)` (the root's children bottom-most first: reversed here so the list is
 * top-most first), `GetInputFocus`, `QueryPointer(root)` and the root's `_NET_SUPPORTING_WM_CHECK`; and for
 * every root child `GetWindowAttributes` (IsViewable), `GetGeometry` (bounds in root pixels = points, the
 * outer corner), `WM_CLASS`, `_NET_WM_NAME` (UTF-8; `WM_NAME` when absent) and `_NET_WM_PID` — in the same
 * write for the children the previous read found (one round trip when none appeared), after the tree's
 * answer for new ones. Under a
 * reparenting window manager the top-level window is a frame without WM_CLASS: the client is its first
 * descendant with WM_CLASS (depth first, top-most first), whose id, title, class and pid are listed with the
 * frame's bounds. A window that disappears between requests (an X error) is left out. App names come from
 * `/proc/PID/exe` ({@link processName}) on every read.
 *
 * The focus (`XGetInputFocus`): with `PointerRoot` focus, as under a bare Xvfb, the focused window is the
 * one under the pointer.
 *
 * Reads are reused for {@link CACHE_MS} ms and shared while in flight, unless `fresh` is asked for
 * (the executor's dispatch-time re-check) or {@link invalidate} was called (after every dispatch). The
 * connection follows `DISPLAY`: a new one is opened when it changed, or after the old one failed.
 */
export class X11Windows implements RawWindows {
  private readonly link: X11Link;
  /**
   * @param opts.display the X display to read (called at each connection check); default `process.env.DISPLAY`
   *   then. A workspace backend (issue 22) passes its own display here. Ignored when `link` is given.
   * @param opts.link the X connection to use (one shared with other backends); default: one of its own.
   */
  constructor(opts: { display?: () => string | undefined; link?: X11Link } = {}) {
    this.link = opts.link ?? new X11Link(opts.display ? { display: opts.display } : {});
  }
  private cached: Snapshot | null = null;
  private inflight: Promise<Snapshot> | null = null;
  /** Bumped by invalidate(): a read started before it is neither cached nor shared afterwards. */
  private generation = 0;
  private freshPending: Promise<Snapshot> | null = null;
  /** The atoms a read needs, interned once per connection. */
  private readonly atomsOf = new WeakMap<X11Connection, Promise<Atoms>>();
  /** The window watch of each connection (`x11WindowWatch.ts`). */
  private readonly watches = new WeakMap<X11Connection, Promise<{ watch: X11WindowWatch; known: Map<number, Promise<WindowInfo | null>> }>>();
  /** The root's children at the last read (top-most first), on that connection: what the next read asks about at once. */
  private lastTops: { x: X11Connection; ids: number[] } | null = null;

  /**
   * Visible top-level windows, top-most first (only IsViewable windows larger than 1x1).
   * @param opts.fresh read the window system now instead of reusing a read of the last 150 ms.
   * @throws DeskdError `INTERNAL` when the X display cannot be read (DISPLAY unset, the X server is gone or does not answer in 2 s).
   */
  async list(opts?: WindowReadOptions): Promise<WindowInfo[]> {
    return (await this.snapshot(opts?.fresh ?? false)).windows;
  }

  /** The top-most visible window containing a point (points), or null (desktop). Same caching and errors as {@link list}. */
  async windowAt(p: Point, opts?: WindowReadOptions): Promise<WindowInfo | null> {
    return hit((await this.snapshot(opts?.fresh ?? false)).windows, p);
  }

  /**
   * The window receiving keyboard input: the top-level window holding the X input focus (or one of
   * its descendants: GTK focuses an inner window), or the window under the pointer when the focus is
   * `PointerRoot`, `None` or the root window. The focus is part of the read, with the caching of {@link list}.
   */
  async focused(opts?: WindowReadOptions): Promise<WindowInfo | null> {
    return focusedOf(await this.snapshot(opts?.fresh ?? false));
  }

  /**
   * Raise window `id` and give it the input focus: with a window manager, the EWMH `_NET_ACTIVE_WINDOW`
   * client message to the root (source indication 2, "pager", as `xdotool windowactivate` sends it; the WM
   * decides), waiting up to 2 s for the root's `_NET_ACTIVE_WINDOW` to name the window; without one,
   * `ConfigureWindow` stack-mode Above (`XRaiseWindow`) and `SetInputFocus` (revert-to Parent). Checked by
   * a fresh read of the focus afterwards.
   * @throws DeskdError `WINDOW_NOT_FOUND` (no such visible window), `ACTION_FAILED` (the X server refused or the focus did not move).
   */
  async activate(id: string): Promise<void> {
    const snap = await this.snapshot(true);
    if (!snap.windows.some((w) => w.id === id)) throw new DeskdError('WINDOW_NOT_FOUND', `No visible top-level window has id ${id}`);
    const win = Number.parseInt(id, 16);
    try {
      const { x, atoms } = await this.connection();
      if (snap.wm) {
        await x.sendClientMessage(snap.root, win, atoms.netActiveWindow, [2, 0, 0]);
        const deadline = performance.now() + ACTIVATE_WAIT_MS;
        const activeNow = async () => {
          const v = (await x.getProperty(snap.root, atoms.netActiveWindow, 1)).value;
          return v.length >= 4 ? v.readUInt32LE(0) : 0;
        };
        while ((await activeNow()) !== win && performance.now() < deadline) await sleep(10);
      } else {
        await Promise.all([x.raiseWindow(win), x.setInputFocus(win)]);
      }
    } catch (e) {
      throw new DeskdError('ACTION_FAILED', `Could not activate window ${id}: ${(e as Error).message}`);
    } finally {
      this.invalidate();
    }
    const now = await this.focused({ fresh: true });
    if (now?.id !== id) throw new DeskdError('ACTION_FAILED', `Window ${id} was raised but the keyboard focus is on ${now ? now.id : 'no window'}`);
  }

  /**
   * Click-to-focus for a display without a window manager: give window `id` the input focus
   * (`SetInputFocus`) unless it already has it (a fresh read). With a window manager nothing is done (it
   * focuses on click itself), nor for an override-redirect window (a menu, an open `<select>` list: a window
   * manager never focuses one, and its owner closes it when the focus leaves the owner: Chromium's open list
   * then dropped the click that had just picked an option, 1 time in 4 at load, 4 in 4 when the click came
   * fast, tests/e2e/movedWindows.test.ts). Errors are swallowed: the click already happened.
   *
   * The read is its own, after the caller's (reusing the fresh read the executor makes right before, tried
   * for issue 15, made xterm clicks 2x slower end to end in the pointer bench), and only what the answer
   * needs, in one round trip (issue 15; before, a whole window read): the input focus, the pointer's root
   * child (who has the keys when the focus is PointerRoot or None), the window manager check and the
   * window's attributes; the root child holding the focus is walked up to only when the focus is on
   * another window than `id` (GTK focuses an inner window).
   */
  async clickToFocus(id: string): Promise<void> {
    try {
      const win = Number.parseInt(id, 16);
      const { x, atoms } = await this.connection();
      const root = x.setup.root;
      const [focus, pointer, wmCheck, attrs] = await Promise.all([x.getInputFocus(), x.queryPointer(root), x.getProperty(root, atoms.netSupportingWmCheck, 1), gone(x.getWindowAttributes(win))]);
      const wm = wmCheck.format === 32 && wmCheck.value.length >= 4 && wmCheck.value.readUInt32LE(0) !== 0;
      if (wm || !attrs || attrs.overrideRedirect) return;
      const f = focus.focus;
      // PointerRoot (1), None (0) or the root: the keys go to the window under the pointer (see focusedOf).
      const has = f <= 1 || f === root ? pointer.sameScreen && pointer.child === win : f === win || (await this.topOfWindow(x, root, f)) === win;
      if (has) return;
      await x.setInputFocus(win);
    } catch {
      // The window went away, or X is gone: the next action's checks will say so.
    } finally {
      this.invalidate();
    }
  }

  /** Drop the reused read (called by the executor after every dispatched action: windows may have moved). */
  invalidate(): void {
    this.generation++;
    this.cached = null;
    this.inflight = null;
  }

  /** Close the X connection (a later read opens a new one). */
  close(): void {
    this.link.close();
  }

  private snapshot(fresh: boolean): Promise<Snapshot> {
    if (!fresh) {
      if (this.cached && performance.now() - this.cached.at < CACHE_MS) return Promise.resolve(this.cached);
      if (this.inflight) return this.inflight;
    } else {
      // Fresh reads asked for in the same turn of the event loop (the dispatch-time re-check of a drag
      // reads once per point) share one read that starts after all of them were asked: still fresh for each.
      if (!this.freshPending) {
        this.freshPending = new Promise<void>((r) => setImmediate(r)).then(() => {
          this.freshPending = null;
          return this.startRead(true);
        });
      }
      return this.freshPending;
    }
    return this.startRead(false);
  }

  private startRead(fresh: boolean): Promise<Snapshot> {
    const gen = this.generation;
    const p = this.read().then((s) => {
      if (gen === this.generation) this.cached = s;
      return s;
    });
    if (!fresh) {
      this.inflight = p;
      const clear = () => {
        if (this.inflight === p) this.inflight = null;
      };
      p.then(clear, clear);
    }
    return p;
  }

  /** The connection for the current `DISPLAY` (the link's, atoms interned), reused while it works. */
  private async connection(): Promise<{ x: X11Connection; atoms: Atoms }> {
    if (!this.link.displayName()) throw new DeskdError('INTERNAL', 'DISPLAY is not set: there is no X display to read windows from');
    try {
      const x = await this.link.get();
      let atoms = this.atomsOf.get(x);
      if (!atoms) {
        atoms = Promise.all(
          ['UTF8_STRING', 'COMPOUND_TEXT', '_NET_WM_NAME', '_NET_WM_PID', '_NET_SUPPORTING_WM_CHECK', '_NET_ACTIVE_WINDOW', '_GTK_FRAME_EXTENTS'].map((n) => x.atom(n)),
        ).then(([utf8String, compoundText, netWmName, netWmPid, netSupportingWmCheck, netActiveWindow, gtkFrameExtents]) => ({
          utf8String: utf8String!,
          compoundText: compoundText!,
          netWmName: netWmName!,
          netWmPid: netWmPid!,
          netSupportingWmCheck: netSupportingWmCheck!,
          netActiveWindow: netActiveWindow!,
          gtkFrameExtents: gtkFrameExtents!,
        }));
        atoms.catch(() => this.atomsOf.delete(x));
        this.atomsOf.set(x, atoms);
      }
      return { x, atoms: await atoms };
    } catch (e) {
      throw new DeskdError('INTERNAL', `Cannot read X11 windows: ${(e as Error).message}`);
    }
  }

  private async read(): Promise<Snapshot> {
    const { x, atoms } = await this.connection();
    try {
      const root = x.setup.root;
      // One round trip in the usual case: the windows the last read found are described in the same write as
      // the QueryTree that lists the root's children now (the server processes them after it, as it would a
      // second batch); only children new since then need a second round trip. Every answer used is to a
      // request sent after this read began — as fresh as asking after the tree's answer.
      const early = new Map<number, Promise<Described | null>>();
      const tree$ = Promise.all([x.queryTree(root), x.getInputFocus(), x.queryPointer(root), x.getProperty(root, atoms.netSupportingWmCheck, 1)]);
      if (this.lastTops?.x === x) {
        for (const id of this.lastTops.ids) {
          const p = this.describe(x, atoms, id);
          p.catch(() => undefined); // awaited below only if the window is still there
          early.set(id, p);
        }
      }
      const [tree, focus, pointer, wmCheck] = await tree$;
      const tops = [...tree.children].reverse();
      this.lastTops = { x, ids: tops };
      const described = await Promise.all(tops.map((id) => early.get(id) ?? this.describe(x, atoms, id)));
      const topOf = new Map<string, number>();
      const windows = await Promise.all(
        described.map(async (t): Promise<WindowInfo | null> => {
          if (!t || !t.viewable || !t.bounds || t.bounds.width <= 1 || t.bounds.height <= 1) return null;
          const w = await this.info(x, atoms, t, t.bounds);
          topOf.set(w.id, t.id);
          return w;
        }),
      );
      const f = focus.focus;
      const focusTop = f > 1 && f !== root ? (topOf.get(windowIdHex(f)) ?? (await this.topOfWindow(x, root, f))) : null;
      return {
        windows: windows.filter((w) => w !== null),
        topOf,
        root,
        pointer: pointer.sameScreen ? { x: pointer.rootX, y: pointer.rootY } : null,
        focus: f,
        focusTop,
        wm: wmCheck.format === 32 && wmCheck.value.length >= 4 && wmCheck.value.readUInt32LE(0) !== 0,
        at: performance.now(),
      };
    } catch (e) {
      if (e instanceof DeskdError) throw e;
      throw new DeskdError('INTERNAL', `Cannot read X11 windows on ${x.display}: ${(e as Error).message}`);
    }
  }

  /**
   * A root child as listed, with `bounds`: under a reparenting window manager the top-level is a frame and
   * the client (id, title, class, pid) is below it.
   */
  private async info(x: X11Connection, atoms: Atoms, t: Described, bounds: Rect): Promise<WindowInfo> {
    const client = t.cls ? null : await this.clientOf(x, atoms, t.id, 0, { x: bounds.x + t.borderWidth, y: bounds.y + t.borderWidth });
    const w = client ?? t;
    const surface = client?.surface ?? { x: bounds.x + t.borderWidth, y: bounds.y + t.borderWidth, width: bounds.width, height: bounds.height };
    const name = w.pid ? await processName(w.pid) : null;
    return {
      id: windowIdHex(w.id),
      app: name ?? w.cls?.instance ?? w.cls?.wmClass ?? null,
      pid: w.pid,
      wmClass: w.cls?.wmClass ?? null,
      instance: w.cls?.instance ?? null,
      title: client ? (client.title ?? t.title) : t.title,
      bounds,
      surface,
      ...(w.frameExtents ? { frameExtents: w.frameExtents } : {}),
      ...(t.overrideRedirect ? { overrideRedirect: true } : {}),
    };
  }

  /**
   * The watch of the root's children on the current connection (started on first use), and who each window
   * is, read when it was mapped or found by the first scan (for a window gone by the time it is asked about).
   */
  private async watched(): Promise<{ x: X11Connection; atoms: Atoms; watch: X11WindowWatch; known: Map<number, Promise<WindowInfo | null>> }> {
    const { x, atoms } = await this.connection();
    let w = this.watches.get(x);
    if (!w) {
      const known = new Map<number, Promise<WindowInfo | null>>();
      const identify = (id: number) => {
        const p = this.describe(x, atoms, id).then((d) => (d?.bounds ? this.info(x, atoms, d, d.bounds) : null));
        p.catch(() => undefined);
        known.delete(id);
        known.set(id, p);
        // The oldest first in a Map: keep the last KNOWN_KEPT.
        if (known.size > KNOWN_KEPT) known.delete(known.keys().next().value!);
        return p;
      };
      w = X11WindowWatch.start(x, x.setup.root, identify).then(async (watch) => {
        // The first scan, once the selection holds: every root child's bounds and who it is.
        const tree = await x.queryTree(x.setup.root);
        await Promise.all(tree.children.slice(-KNOWN_KEPT).map(async (id) => {
          const d = await this.describe(x, atoms, id).catch(() => null);
          if (d?.bounds) watch.seed(id, d.bounds, d.viewable);
          if (d?.viewable) await identify(id).catch(() => null);
        }));
        return { watch, known };
      });
      w.catch(() => this.watches.delete(x));
      this.watches.set(x, w);
    }
    return { x, atoms, ...(await w) };
  }

  /**
   * The moment right before a capture: the number of window changes received so far (`x11WindowWatch.ts`);
   * every change the server makes afterwards is numbered above it. Null when X cannot be reached (the window
   * list then fails too).
   */
  async mark(): Promise<WindowMark | null> {
    try {
      const { x, watch } = await this.watched();
      return { epoch: watch.epoch, connection: x } as WindowMark;
    } catch {
      return null;
    }
  }

  /**
   * Every root child changed and mapped at some point since `mark` (`RawWindows.touchedSince`), after a round
   * trip: described now (an unmapped one too), or as when mapped if gone; one entry per bounds it had. Null when
   * the mark is of another connection, its changes were dropped, or a window gone now was never identified.
   * @throws DeskdError `INTERNAL` when X cannot be read.
   */
  async touchedSince(mark: WindowMark): Promise<WindowInfo[] | null> {
    const { x, atoms, watch, known } = await this.watched();
    if ((mark as WindowMark & { connection?: unknown }).connection !== x) return null;
    await x.getInputFocus();
    const touched = watch.since(mark.epoch);
    if (!touched) return null;
    const entries = await Promise.all(
      // A window never mapped since the moment (nor at it) shows no pixels.
      [...touched].filter(([id, c]) => id !== x.setup.root && c.shown).map(async ([id, { bounds: seen }]) => {
        const d = await this.describe(x, atoms, id);
        const who = d?.bounds ? await this.info(x, atoms, d, d.bounds) : await (known.get(id) ?? Promise.resolve(null));
        const all = [...(d?.bounds ? [d.bounds] : []), ...seen.filter((b) => !(d?.bounds && sameRect(b, d.bounds)))];
        if (!who) return all.some((b) => b.width > 1 && b.height > 1) ? null : [];
        return all.map((b) => ({ ...who, bounds: b }));
      }),
    );
    return entries.some((e) => e === null) ? null : entries.flatMap((e) => e ?? []);
  }

  /** One window's attributes, geometry, WM_CLASS, title and pid, pipelined; null when it went away. */
  private async describe(x: X11Connection, atoms: Atoms, id: number): Promise<Described | null> {
    const [attrs, geom, cls, netName, wmName, pid, extents] = await Promise.all([
      gone(x.getWindowAttributes(id)),
      gone(x.getGeometry(id)),
      gone(x.getProperty(id, XA.WM_CLASS, 64)),
      gone(x.getProperty(id, atoms.netWmName, TITLE_LONGS)),
      gone(x.getProperty(id, XA.WM_NAME, TITLE_LONGS)),
      gone(x.getProperty(id, atoms.netWmPid, 1)),
      gone(x.getProperty(id, atoms.gtkFrameExtents, 4)),
    ]);
    if (!attrs || !geom) return null;
    const e = extents && extents.format === 32 && extents.value.length >= 16 ? [0, 4, 8, 12].map((o) => extents.value.readUInt32LE(o)) : null;
    return {
      id,
      viewable: attrs.mapState === 2,
      overrideRedirect: attrs.overrideRedirect,
      bounds: { x: geom.x, y: geom.y, width: geom.width, height: geom.height },
      title: decodeText(netName, atoms) ?? decodeText(wmName, atoms),
      cls: parseWmClass(cls),
      pid: pid && pid.format === 32 && pid.value.length >= 4 ? pid.value.readUInt32LE(0) : null,
      borderWidth: geom.borderWidth,
      frameExtents: e && e.every((v) => v <= MAX_FRAME_EXTENT) ? { left: e[0]!, right: e[1]!, top: e[2]!, bottom: e[3]! } : null,
    };
  }

  /**
   * The first descendant of `id` with WM_CLASS, depth first, top-most child first, with its inside area in
   * root coordinates (`surface`); null when none (within {@link CLIENT_DEPTH}). `origin` is where the inside
   * of `id` is on the root (a child's `GetGeometry` x, y are its outer corner relative to that).
   */
  private async clientOf(x: X11Connection, atoms: Atoms, id: number, depth: number, origin: Point): Promise<(Described & { surface: Rect }) | null> {
    if (depth >= CLIENT_DEPTH) return null;
    const tree = await gone(x.queryTree(id));
    if (!tree) return null;
    const children = [...tree.children].reverse();
    const described = await Promise.all(children.map((c) => this.describe(x, atoms, c)));
    for (const [i, d] of described.entries()) {
      if (!d?.bounds) continue;
      const inside = { x: origin.x + d.bounds.x + d.borderWidth, y: origin.y + d.bounds.y + d.borderWidth };
      if (d.cls) return { ...d, surface: { ...inside, width: d.bounds.width, height: d.bounds.height } };
      const deeper = await this.clientOf(x, atoms, children[i]!, depth + 1, inside);
      if (deeper) return deeper;
    }
    return null;
  }

  /** The root child that contains window `id` (walking up with QueryTree), or null when it went away. */
  private async topOfWindow(x: X11Connection, root: number, id: number): Promise<number | null> {
    let w = id;
    for (let i = 0; i < 64; i++) {
      const t = await gone(x.queryTree(w));
      if (!t || t.parent === 0) return null;
      if (t.parent === root) return w;
      w = t.parent;
    }
    return null;
  }
}

/** The focused window of a read (see {@link X11Windows.focused}). */
function focusedOf(snap: Snapshot): WindowInfo | null {
  const f = snap.focus;
  if (f <= 1 || f === snap.root) {
    // PointerRoot (1) or None (0), or the root after the focused window closed: keys go to the window under the pointer.
    return snap.pointer ? hit(snap.windows, snap.pointer) : null;
  }
  const hex = windowIdHex(f);
  const direct = snap.windows.find((w) => w.id === hex);
  if (direct) return direct;
  if (snap.focusTop === null) return null;
  return snap.windows.find((w) => snap.topOf.get(w.id) === snap.focusTop) ?? null;
}
