/**
 * Targets of actions and policy decisions: the element at a screen point (hit-test), the application and
 * window owning an element, and the URL a browser window shows; plus the pid of each application's bus name.
 *
 * Sources: at-spi2-core xml/Component.xml (`GetAccessibleAtPoint`, `GetExtents`), Accessible.xml
 * (property `Parent`, `GetIndexInParent`), Document.xml (`GetAttributes`, `GetAttributeValue`); the D-Bus
 * specification (`GetConnectionUnixProcessID`).
 */
import { DeskdError, isDeskdError } from '../../../errors.js';
import { INTERACTIVE_ROLES } from '../../roles.js';
import type { ElementOwner, Point, RawAXNode, Rect, WindowInfo } from '../../types.js';
import { decodeAtspiStateBits, mapAtspiRole, type AtspiState } from '../atspiRoles.js';
import { processName } from '../x11Props.js';
import { guard, type AtspiBus } from './bus.js';
import { applications } from './focus.js';
import { readBasic, readDetails, toNode } from './reader.js';
import { ACCESSIBLE, COMPONENT, COORD_SCREEN, DOCUMENT, extentsToRect, inside, isGone, parseAtspiHandle, refKey, ROOT_PATH, sameRect, toRefs, type Ref } from './refs.js';
import { insideOf, NO_OFFSET, shiftRect, windowExtents, type Offset, type WindowOffsets } from './windowOffset.js';

/** A showing top-level window as a hit-test sees it. */
interface Frame {
  ref: Ref;
  name: string;
  /** Screen extents, placed where the window really is. */
  bounds: Rect | null;
  /** Named or placed like the window asked about. */
  matches: boolean;
  /** What was added to the toolkit's extents (subtracted from points given to it). */
  offset: Offset;
  /** The X client window the frame was placed by (its toolkit answers window-relative extents), else null. */
  placedBy: WindowInfo | null;
}

/** A top-level accessible window's facts as {@link AtspiTargets.frames} reads them (one round trip). */
interface FrameRead {
  ref: Ref;
  name: string;
  bounds: Rect | null;
  showing: boolean;
  inWindow: Promise<Rect | null> | undefined;
}

/**
 * Answers asked at the start of a hit-test, in the same round trip as the registry's application list, for
 * the objects the previous hit-test in the same process read (issue 15): each application's window list
 * (used only when the registry still lists exactly those applications for the pid), each window's facts
 * (by object), and `GetAccessibleAtPoint` of the window tried first last time and of each object the descent
 * went through then (each used only where the descent now asks that same object at the same point, i.e. the
 * window's offset is the same). Every answer used was asked after the hit-test began.
 */
interface Ahead {
  lists?: Ref[][];
  facts: Map<string, Promise<FrameRead>>;
  /** The point's answer asked of the window tried first last time and of each object its descent went through, by object. */
  atPoint: Map<string, Promise<Ref | null>>;
  /** The offset those were asked at (the point less it). */
  offset: Offset;
}

/** Most processes whose last hit-test is remembered ({@link AtspiTargets.lastHit}). */
const MAX_LAST_HITS = 32;
/** Most objects of the last descent asked ahead. */
const MAX_AHEAD_DEPTH = 12;

/** Most objects read looking for the object a popover window shows ({@link AtspiTargets.popupStart}). */
const MAX_POPUP_OBJECTS = 2000;

/** Levels above a non-interactive hit searched for an interactive ancestor (the element acted on). */
const MAX_HIT_ANCESTORS = 6;

/** Hit-test, owner and URL lookups over one accessibility bus, with the pid and document caches they keep. */
export class AtspiTargets {
  /** Pid of each application bus name asked about (targets: hit-test, owner, URL). */
  private readonly pidCache = new Map<string, Promise<number | null>>();
  /** The `document web` object last found in each window (by window id), re-checked before reuse ({@link urlOf}). */
  private readonly docCache = new Map<string, { pid: number; ref: Ref }>();
  /**
   * What the last hit-test in each process (by pid) read: its applications, their windows, the window tried
   * first and its offset. Only what to ask ahead on the next hit-test ({@link Ahead}); never an answer.
   */
  private readonly lastHit = new Map<number, { apps: Ref[]; lists: Ref[][]; frame: Ref; offset: Offset; path: Ref[] }>();

  /** @param offsets where windows really are when their toolkit answers window-relative extents (none: as answered). */
  constructor(
    private readonly bus: AtspiBus,
    private readonly offsets?: WindowOffsets,
  ) {}

  /** Forget the caches (a new bus hands out the same unique names again). */
  clear(): void {
    this.pidCache.clear();
    this.docCache.clear();
    this.lastHit.clear();
  }

  /** Process id of an application's bus name, remembered (a unique bus name never changes owner). */
  cachedPid(busName: string): Promise<number | null> {
    let p = this.pidCache.get(busName);
    if (!p) {
      p = this.bus.pidOf(busName);
      this.pidCache.set(busName, p);
      if (this.pidCache.size > 512) this.pidCache.delete(this.pidCache.keys().next().value!);
    }
    return p;
  }

  /**
   * Application roots whose process is `pid`.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the registry does not answer.
   */
  async appsOfPid(pid: number): Promise<Ref[]> {
    const apps = await guard(() => applications(this.bus));
    const pids = await Promise.all(apps.map((a) => this.cachedPid(a[0])));
    return apps.filter((_, i) => pids[i] === pid);
  }

  /**
   * The showing top-level windows of some applications with their names and extents (placed where the
   * window really is, with the `offset` that took: see `windowOffset.ts`), the window that best matches
   * `window` first (same title, then same bounds), then the others in the registry's order.
   */
  private async frames(apps: Ref[], window?: WindowInfo, ahead?: Ahead, seen?: { lists?: Ref[][] }): Promise<Frame[]> {
    const lists = ahead?.lists ?? (await Promise.all(apps.map((a) => this.windowsOf(a))));
    if (seen) seen.lists = lists;
    const all = await Promise.all(lists.flat().map((ref) => ahead?.facts.get(refKey(ref)) ?? this.frameRead(ref)));
    const shown = all.filter((f) => f.showing);
    const pids = await Promise.all(shown.map((f) => this.cachedPid(f.ref[0])));
    const placed = this.offsets ? (await this.offsets.place(shown.map((f, i) => ({ ref: f.ref, pid: pids[i]!, name: f.name, bounds: f.bounds, ...(f.inWindow ? { inWindow: f.inWindow } : {}) })))).placements : shown.map(() => null);
    const offsets = placed.map((p) => (p ? { dx: p.dx, dy: p.dy } : NO_OFFSET));
    shown.forEach((f, i) => {
      if (f.bounds) f.bounds = shiftRect(f.bounds, offsets[i]!);
    });
    const score = (f: (typeof shown)[number]) => (window?.title && f.name === window.title ? 2 : window && f.bounds && sameRect(f.bounds, window.bounds) ? 1 : 0);
    return shown
      .map((f, i) => ({ f, i, s: score(f) }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .map(({ f, i, s }) => ({ ref: f.ref, name: f.name, bounds: f.bounds, matches: s > 0, offset: offsets[i]!, placedBy: placed[i]?.window ?? null }));
  }

  /** An application's top-level windows (`GetChildren`; none when it fails). Never rejects. */
  private windowsOf(app: Ref): Promise<Ref[]> {
    return this.bus.call(app, ACCESSIBLE, 'GetChildren').then((b) => toRefs(b[0])).catch(() => [] as Ref[]);
  }

  /** A top-level window's state, name and screen extents, and (with offsets) its window-relative extents, in one round trip. Never rejects. */
  private async frameRead(ref: Ref): Promise<FrameRead> {
    // The window-relative extents the offset needs are asked in the same round trip (issue 15).
    const inWindow = this.offsets ? windowExtents(this.bus, ref) : undefined;
    const [st, name, bounds] = await Promise.all([
      this.bus.call(ref, ACCESSIBLE, 'GetState').then((b) => decodeAtspiStateBits(Array.isArray(b[0]) ? (b[0] as number[]) : [])).catch(() => new Set<AtspiState>()),
      this.bus.prop(ref, ACCESSIBLE, 'Name').then((v) => String(v ?? '')).catch(() => ''),
      this.bus.call(ref, COMPONENT, 'GetExtents', 'u', [COORD_SCREEN]).then((r) => extentsToRect(r[0])).catch(() => null),
    ]);
    return { ref, name, bounds, showing: st.has('showing') || st.has('visible'), inWindow };
  }

  /**
   * The applications of `pid`, with the answers asked ahead from what the last hit-test in that process read
   * ({@link Ahead}), all sent before the registry's answer arrives.
   */
  private async appsAhead(pid: number, x: number, y: number): Promise<{ apps: Ref[]; ahead?: Ahead }> {
    const last = this.lastHit.get(pid);
    if (!last) return { apps: await this.appsOfPid(pid) };
    const lists = Promise.all(last.apps.map((a) => this.windowsOf(a)));
    const facts = new Map(last.lists.flat().map((r) => [refKey(r), this.frameRead(r)] as const));
    const atPoint = new Map<string, Promise<Ref | null>>();
    for (const r of [last.frame, ...last.path.slice(0, MAX_AHEAD_DEPTH)]) {
      const q = this.childAtPoint(r, x - last.offset.dx, y - last.offset.dy);
      q.catch(() => undefined); // used only if the descent asks that object now
      atPoint.set(refKey(r), q);
    }
    const apps = await this.appsOfPid(pid);
    const same = apps.length === last.apps.length && apps.every((a, i) => refKey(a) === refKey(last.apps[i]!));
    return { apps, ahead: { ...(same ? { lists: await lists } : {}), facts, atPoint, offset: last.offset } };
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
   *
   * Asked ahead (issue 15): on a later hit-test in the same process, the window lists of the applications
   * found last time, the facts of their windows and `GetAccessibleAtPoint` in the window tried first last
   * time and in each object its descent went through (at the point less that window's offset then) are sent
   * together with the registry's list, before its answer. Each is used only where the steps above ask the
   * same thing now: the lists when the registry lists exactly those applications for the pid, a window's
   * facts for that same object, and an object's answer at the point when the descent reaches that object in
   * a window at the same offset. Everything used was thus asked after this hit-test began; the rest is asked
   * in order as before.
   * @returns null when the application's window at `p` has no element below it there.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached, no application of the
   *   window's pid is on the bus, none of its accessible windows contains `p`, or the application does not answer.
   */
  async elementAt(p: Point, window?: WindowInfo): Promise<RawAXNode | null> {
    const x = Math.round(p.x);
    const y = Math.round(p.y);
    let apps: Ref[];
    let ahead: Ahead | undefined;
    if (window?.pid != null) {
      ({ apps, ahead } = await this.appsAhead(window.pid, x, y));
      if (apps.length === 0) throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `no application of pid ${window.pid} (${window.app ?? '?'}) is on the accessibility bus`);
    } else {
      apps = await guard(() => applications(this.bus));
    }
    let frames: Frame[];
    try {
      const seen: { lists?: Ref[][] } = {};
      const all = await this.frames(apps, window, ahead, seen);
      // The window at the point is a surface of its own of a frame whose toolkit answers window-relative
      // extents (a GTK 4 popover): ask the toolkit from that popover, in its coordinates.
      const popup = window ? await this.popupStart(all, window) : null;
      frames = popup ? [popup] : all.filter((f) => f.bounds !== null && inside(f.bounds, x, y));
      if (window?.pid != null) this.lastHit.delete(window.pid);
      if (window?.pid != null && !popup && seen.lists) {
        // What to ask ahead next time: these applications and windows, and the window tried first below.
        const first = frames.length > 1 ? frames.find((f) => f.matches) : frames[0];
        if (first) this.lastHit.set(window.pid, { apps, lists: seen.lists, frame: first.ref, offset: first.offset, path: [] });
        if (this.lastHit.size > MAX_LAST_HITS) this.lastHit.delete(this.lastHit.keys().next().value!);
      }
    } catch (e) {
      throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the accessibility hit-test at (${x}, ${y}) failed: ${(e as Error).message}`);
    }
    // The window system has a window of this application at the point but no accessible window of it
    // contains the point (a popup not exposed as a window, extents in another space): unknown, not "nothing".
    if (window && frames.length === 0) {
      throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `no accessible window of ${window.app ?? 'the application'} (pid ${window.pid ?? '?'}) contains (${x}, ${y})`);
    }
    // Several windows of the application contain the point and none is named or placed like the window
    // on top: which one receives the event cannot be told.
    if (window && frames.length > 1) {
      const named = frames.filter((f) => f.matches);
      if (named.length === 0) throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `${frames.length} windows of ${window.app ?? 'the application'} contain (${x}, ${y}) and none is titled "${window.title ?? ''}"`);
      frames = named;
    }
    for (const f of frames) {
      let current = f.ref;
      const path: Ref[] = [];
      // The point in the coordinates the window's toolkit answers in (window-relative for GTK 4).
      const tx = x - f.offset.dx;
      const ty = y - f.offset.dy;
      // An answer asked ahead is the one for an object when it was asked at this same point (same offset).
      const early = ahead && ahead.offset.dx === f.offset.dx && ahead.offset.dy === f.offset.dy ? ahead.atPoint : null;
      const atPoint = (ref: Ref) => early?.get(refKey(ref))?.catch(() => this.childAtPoint(ref, tx, ty)) ?? this.childAtPoint(ref, tx, ty);
      try {
        for (let depth = 0; depth < 64; depth++) {
          const child = await atPoint(current);
          if (!child || (child[0] === current[0] && child[1] === current[1])) break;
          path.push(child);
          current = child;
        }
      } catch (e) {
        throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the accessibility hit-test at (${x}, ${y}) failed: ${(e as Error).message}`);
      }
      const remembered = window?.pid != null ? this.lastHit.get(window.pid) : undefined;
      if (remembered && refKey(remembered.frame) === refKey(f.ref)) remembered.path = path;
      if (path.length === 0) continue;
      try {
        // The deepest object is often the label inside a button (GTK 4 answers the label at once) or the
        // static text inside a button or link (Chromium): the element acted on is its nearest interactive
        // ancestor below the window, when it has one within a few levels.
        //
        // The walk up is pipelined (issue 15): each parent's own `Parent` is asked together with its role, so
        // a level costs one round trip to the application instead of two. A read asked ahead whose answer is
        // not needed (the walk stopped) is dropped, its failure included. The deepest object's `Parent` is
        // asked only once it is known not to be interactive (most hits on buttons need no walk).
        const deepest = path[path.length - 1]!;
        let chosen = deepest;
        const parentOf = (ref: Ref): Promise<Ref | undefined> => {
          const q = this.bus.prop(ref, ACCESSIBLE, 'Parent').then((v) => toRefs([v])[0]);
          q.catch(() => undefined);
          return q;
        };
        let b = await readBasic(this.bus, deepest);
        if (!INTERACTIVE_ROLES.has(mapAtspiRole(b.roleName))) {
          let nextParent = parentOf(deepest);
          for (let i = 0; i < MAX_HIT_ANCESTORS; i++) {
            const parent = await nextParent;
            if (!parent || parent[0] !== f.ref[0] || parent[1] === f.ref[1] || parent[1] === ROOT_PATH) break;
            if (i + 1 < MAX_HIT_ANCESTORS) nextParent = parentOf(parent);
            const roleName = String((await this.bus.call(parent, ACCESSIBLE, 'GetRoleName'))[0] ?? '');
            if (INTERACTIVE_ROLES.has(mapAtspiRole(roleName))) {
              chosen = parent;
              break;
            }
          }
          if (chosen !== deepest) b = await readBasic(this.bus, chosen);
        }
        const role = mapAtspiRole(b.roleName);
        return toNode(b, role, await readDetails(this.bus, b, role).then((d) => ({ bounds: d.bounds ? shiftRect(d.bounds, f.offset) : null, actions: d.actions, value: d.value })));
      } catch (e) {
        throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the element at (${x}, ${y}) could not be read: ${(e as Error).message}`);
      }
    }
    return null;
  }

  /**
   * When `window` is not the window of any frame but a surface of its own of a frame placed by another X
   * window of the same process (a GTK 4 popover or menu), the object below that frame it shows (the
   * shallowest showing object whose size is the window's inside size, breadth first, at most
   * {@link MAX_POPUP_OBJECTS} read) as a frame to hit-test from, with the offset from the toolkit's
   * coordinates to the window's place. Null otherwise (or when no such object is found).
   */
  private async popupStart(frames: Frame[], window: WindowInfo): Promise<Frame | null> {
    if (!window.surface || frames.length === 0 || frames.some((f) => f.placedBy?.id === window.id)) return null;
    const host = frames.find((f) => f.placedBy !== null && f.placedBy.pid === window.pid);
    if (!host) return null;
    const inside = insideOf(window)!;
    const { width, height } = inside;
    let level: Ref[] = [host.ref];
    let read = 0;
    while (level.length > 0 && read < MAX_POPUP_OBJECTS) {
      const next: Ref[] = [];
      const objs = await Promise.all(
        level.map(async (ref) => {
          const [st, kids, ext] = await Promise.all([
            this.bus.call(ref, ACCESSIBLE, 'GetState').then((b) => decodeAtspiStateBits(Array.isArray(b[0]) ? (b[0] as number[]) : [])).catch(() => new Set<AtspiState>()),
            this.bus.call(ref, ACCESSIBLE, 'GetChildren').then((b) => toRefs(b[0])).catch(() => [] as Ref[]),
            ref === host.ref ? Promise.resolve(null) : this.bus.call(ref, COMPONENT, 'GetExtents', 'u', [COORD_SCREEN]).then((r) => extentsToRect(r[0])).catch(() => null),
          ]);
          return { ref, shown: st.has('showing') || st.has('visible'), kids, ext };
        }),
      );
      read += objs.length;
      const hit = objs.find((o) => o.shown && o.ext !== null && o.ext.width === width && o.ext.height === height);
      if (hit) {
        const offset = { dx: inside.x - hit.ext!.x, dy: inside.y - hit.ext!.y };
        return { ref: hit.ref, name: host.name, bounds: inside, matches: true, offset, placedBy: window };
      }
      for (const o of objs) if (o.shown || o.ref === host.ref) next.push(...o.kids);
      level = next;
    }
    return null;
  }

  /**
   * The child of `ref` at a screen point: `Component.GetAccessibleAtPoint`, or, when the object does not
   * implement it, the last showing child whose extents contain the point. Null when there is none.
   */
  private async childAtPoint(ref: Ref, x: number, y: number): Promise<Ref | null> {
    try {
      const [r] = await this.bus.call(ref, COMPONENT, 'GetAccessibleAtPoint', 'iiu', [x, y, COORD_SCREEN]);
      const refs = toRefs([r]);
      return refs[0] ?? null;
    } catch (e) {
      const type = (e as { type?: string }).type ?? '';
      if (!/UnknownMethod|UnknownInterface|NotSupported/.test(type)) throw e;
    }
    const kids = toRefs((await this.bus.call(ref, ACCESSIBLE, 'GetChildren'))[0]);
    const ext = await Promise.all(kids.map((k) => this.bus.call(k, COMPONENT, 'GetExtents', 'u', [COORD_SCREEN]).then((r) => extentsToRect(r[0])).catch(() => null)));
    for (let i = kids.length - 1; i >= 0; i--) if (ext[i] && inside(ext[i]!, x, y)) return kids[i]!;
    return null;
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
  async ownerOf(handle: string): Promise<ElementOwner | null> {
    const ref = parseAtspiHandle(handle);
    const bus = ref[0];
    let top: Ref | null = ref[1] === ROOT_PATH ? null : ref;
    try {
      let current: Ref = ref;
      for (let i = 0; i < 128 && current[1] !== ROOT_PATH; i++) {
        const parent = toRefs([await this.bus.prop(current, ACCESSIBLE, 'Parent')])[0];
        if (!parent || parent[0] !== bus || parent[1] === ROOT_PATH) break;
        current = parent;
      }
      if (top) top = current;
    } catch (e) {
      if (isGone(e)) return null;
      if (isDeskdError(e)) throw e;
      throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the owner of ${handle} could not be read: ${(e as Error).message}`);
    }
    const [pid, appName, windowTitle, windowBounds] = await Promise.all([
      this.cachedPid(bus),
      this.bus.prop([bus, ROOT_PATH], ACCESSIBLE, 'Name').then((v) => String(v ?? '') || null).catch(() => null),
      top ? this.bus.prop(top, ACCESSIBLE, 'Name').then((v) => String(v ?? '')).catch(() => null) : Promise.resolve(null),
      top ? this.bus.call(top, COMPONENT, 'GetExtents', 'u', [COORD_SCREEN]).then((r) => extentsToRect(r[0])).catch(() => null) : Promise.resolve(null),
    ]);
    const app = (pid !== null ? await processName(pid).catch(() => null) : null) ?? appName;
    const [offset] = top && windowBounds && this.offsets ? await this.offsets.of([{ ref: top, pid, name: windowTitle ?? '', bounds: windowBounds }]) : [NO_OFFSET];
    return { app, pid, windowTitle, windowBounds: windowBounds ? shiftRect(windowBounds, offset!) : null };
  }

  /**
   * The document URL shown in a browser window: in the application of `window.pid`, the top-level window
   * named like `window` (else the one with its bounds, else the first showing one), then breadth-first the
   * first `document web` object with the `showing` state (a background tab's may stay `visible`) (at most 16 levels, 2000 objects), whose
   * `org.a11y.atspi.Document.GetAttributes()` entry `URI` (Chromium; `DocURL` as a fallback) is the URL.
   * The document found is remembered per window and asked again directly while it is still `showing`, not
   * `defunct` and attached (`GetIndexInParent` ≥ 0: Chromium keeps a navigated-away document alive and
   * `showing` but detached), three calls at once instead of the walk.
   * @returns null when the window's application is not on the bus, no document is found, or it names no URL.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached.
   */
  async urlOf(window: WindowInfo): Promise<string | null> {
    if (window.pid == null) return null;
    // The document found last time for this window, if it still shows (a navigation to another page
    // makes a new document object; the old one loses `showing` or goes away, then the walk runs again).
    const known = this.docCache.get(window.id);
    if (known && known.pid === window.pid) {
      // Chromium keeps the old document object alive after a navigation, still `showing`, but detached:
      // its index in its parent is -1.
      const [st, index, url] = await Promise.all([
        this.bus.call(known.ref, ACCESSIBLE, 'GetState').then((b) => decodeAtspiStateBits(Array.isArray(b[0]) ? (b[0] as number[]) : [])).catch(() => null),
        this.bus.call(known.ref, ACCESSIBLE, 'GetIndexInParent').then((b) => Number(b[0])).catch(() => -1),
        this.documentUrl(known.ref).catch(() => null),
      ]);
      if (st && st.has('showing') && !st.has('defunct') && index >= 0 && url) return url;
      this.docCache.delete(window.id);
    }
    const apps = await this.appsOfPid(window.pid);
    if (apps.length === 0) return null;
    const frames = await this.frames(apps, window);
    const frame = frames[0];
    if (!frame) return null;
    let level: Ref[] = [frame.ref];
    let seen = 0;
    for (let depth = 0; depth < 16 && level.length > 0 && seen < 2000; depth++) {
      const read = await Promise.all(
        level.map(async (ref) => {
          const [roleName, st, kids] = await Promise.all([
            this.bus.call(ref, ACCESSIBLE, 'GetRoleName').then((b) => String(b[0] ?? '')).catch(() => ''),
            this.bus.call(ref, ACCESSIBLE, 'GetState').then((b) => decodeAtspiStateBits(Array.isArray(b[0]) ? (b[0] as number[]) : [])).catch(() => new Set<AtspiState>()),
            this.bus.call(ref, ACCESSIBLE, 'GetChildren').then((b) => toRefs(b[0])).catch(() => [] as Ref[]),
          ]);
          return { ref, roleName, showing: st.has('showing'), shown: st.has('showing') || st.has('visible'), kids };
        }),
      );
      seen += read.length;
      // The document must be `showing`: a background tab's document can stay `visible`.
      const doc = read.find((r) => r.roleName === 'document web' && r.showing);
      if (doc) {
        const url = await this.documentUrl(doc.ref);
        if (url) {
          this.docCache.set(window.id, { pid: window.pid, ref: doc.ref });
          if (this.docCache.size > 64) this.docCache.delete(this.docCache.keys().next().value!);
        }
        return url;
      }
      level = read.filter((r) => r.shown || depth === 0).flatMap((r) => r.kids);
    }
    return null;
  }

  /** `Document.GetAttributes()` → `URI` (or `DocURL`), else `GetAttributeValue('DocURL')`; null when empty. */
  private async documentUrl(ref: Ref): Promise<string | null> {
    const attrs = await this.bus.call(ref, DOCUMENT, 'GetAttributes').then((b) => b[0] as Record<string, unknown> | unknown[]).catch(() => null);
    const pick = (k: string): string | null => {
      if (!attrs) return null;
      if (Array.isArray(attrs)) {
        const hit = attrs.map(String).find((a) => a.startsWith(`${k}:`));
        return hit ? hit.slice(k.length + 1) : null;
      }
      const v = attrs[k];
      return typeof v === 'string' && v ? v : null;
    };
    const fromAttrs = pick('URI') ?? pick('DocURL');
    if (fromAttrs) return fromAttrs;
    const v = await this.bus.call(ref, DOCUMENT, 'GetAttributeValue', 's', ['DocURL']).then((b) => String(b[0] ?? '')).catch(() => '');
    return v || null;
  }

}
