import type {
  AXSnapshot,
  DisplayInfo,
  ElementOwner,
  FocusInfo,
  MouseButton,
  Platform,
  Point,
  RawAXNode,
  RawImage,
  Rect,
  WindowInfo,
} from '../types.js';
import { DeskdError } from '../../errors.js';
import { INTERACTIVE_ROLES } from '../roles.js';

/** One input event the fake backend received, in order. */
export type FakeEvent =
  | { kind: 'move'; x: number; y: number }
  | { kind: 'down' | 'up'; button: MouseButton }
  | { kind: 'wheel'; dx: number; dy: number }
  | { kind: 'keydown' | 'keyup'; key: string }
  | { kind: 'type'; text: string }
  | { kind: 'action'; handle: string; action: string }
  | { kind: 'setValue'; handle: string; value: string }
  | { kind: 'activate'; id: string };

/** Options of {@link createFakePlatform}. */
export interface FakePlatformOptions {
  displays?: DisplayInfo[];
  /** Accessibility roots served by `snapshot`. Mutable through the returned handle. */
  tree?: RawAXNode[];
  focused?: FocusInfo | null;
  /** Top-level windows, top-most first (default: one window "Fake App" covering the first display). */
  windows?: WindowInfo[];
  /** Fill colour of captured frames, RGBA. */
  fill?: [number, number, number, number];
}

/** The fake platform plus its recorded events and mutable state, for tests. */
export interface FakePlatform extends Platform {
  readonly events: FakeEvent[];
  tree: RawAXNode[];
  focusInfo: FocusInfo | null;
  /** Top-level windows, top-most first; mutable. */
  windowList: WindowInfo[];
  /** Id of the focused window (default: the first window); null = none. */
  focusedWindowId: string | null;
  /** Screen-lock state reported by `windows.screenLocked`. */
  locked: boolean;
  /** Fill colour of frames, RGBA; mutable. */
  fill: [number, number, number, number];
  /** Custom frame producer (overrides the solid fill). */
  frame?: (display: DisplayInfo, region?: Rect) => RawImage;
  /** Handles whose `doAction` answers false (the node "has no such action"); the call is still recorded. */
  refuseActions: Set<string>;
  /** Handles whose `setValue` answers false (no editable-text interface, like Chromium's web fields); the call is still recorded. */
  noEditableText: Set<string>;
  /**
   * Owner of each accessibility root of `tree` (an application), by the root's handle. A root not listed
   * belongs to the first window's app and pid (`windowList[0]`). Used by `elementAt` (a window's pid picks
   * its roots) and `ownerOf`.
   */
  appOwners: Map<string, { app: string | null; pid: number | null }>;
  /** Document URL of each window, by window id, answered by `urlOf` (null when absent). */
  urls: Map<string, string>;
  /** When true, `elementAt`, `ownerOf` and `urlOf` throw `ACCESSIBILITY_UNAVAILABLE` (a bus that does not answer). */
  axUnavailable: boolean;
}

/**
 * An in-memory backend for unit and integration tests: frames are solid colour (or produced by `frame`),
 * the accessibility tree is whatever the test sets, and every input event is recorded in `events`.
 * Nothing touches the OS.
 */
export function createFakePlatform(opts: FakePlatformOptions = {}): FakePlatform {
  const displays: DisplayInfo[] = opts.displays ?? [{ id: 0, x: 0, y: 0, width: 1280, height: 800, scaleFactor: 1, primary: true }];

  let pointer: Point = { x: 0, y: 0 };
  const fp: FakePlatform = {
    name: 'fake',
    events: [],
    tree: opts.tree ?? [],
    fill: opts.fill ?? [255, 255, 255, 255],
    focusInfo: opts.focused ?? null,
    windowList: opts.windows ?? [{ id: '0x1', app: 'fakeapp', pid: 4242, wmClass: 'FakeApp', instance: 'fakeapp', title: 'Fake App', bounds: { x: displays[0]!.x, y: displays[0]!.y, width: displays[0]!.width, height: displays[0]!.height } }],
    focusedWindowId: null,
    locked: false,
    refuseActions: new Set(),
    noEditableText: new Set(),
    appOwners: new Map(),
    urls: new Map(),
    axUnavailable: false,
    windows: {
      async list() {
        return fp.windowList.map((w) => ({ ...w }));
      },
      async windowAt(p: Point) {
        const w = fp.windowList.find((x) => p.x >= x.bounds.x && p.y >= x.bounds.y && p.x < x.bounds.x + x.bounds.width && p.y < x.bounds.y + x.bounds.height);
        return w ? { ...w } : null;
      },
      async focused() {
        const w = fp.focusedWindowId === null ? fp.windowList[0] : fp.windowList.find((x) => x.id === fp.focusedWindowId);
        return w ? { ...w } : null;
      },
      async screenLocked() {
        return fp.locked;
      },
      async activate(id: string) {
        const i = fp.windowList.findIndex((x) => x.id === id);
        if (i < 0) throw new DeskdError('WINDOW_NOT_FOUND', `No visible top-level window has id ${id}`);
        const [w] = fp.windowList.splice(i, 1);
        fp.windowList.unshift(w!);
        fp.focusedWindowId = id;
        fp.events.push({ kind: 'activate', id });
      },
    },
    capture: {
      async displays() {
        return displays.map((d) => ({ ...d }));
      },
      async capture(displayId: number, region?: Rect): Promise<RawImage> {
        const d = displays.find((x) => x.id === displayId);
        if (!d) throw new DeskdError('DISPLAY_NOT_FOUND', `No display with id ${displayId}`);
        if (fp.frame) return fp.frame(d, region);
        const r = region ?? d;
        const width = Math.round(r.width * d.scaleFactor);
        const height = Math.round(r.height * d.scaleFactor);
        const data = Buffer.alloc(width * height * 4);
        for (let i = 0; i < data.length; i += 4) data.set(fp.fill, i);
        return { data, width, height, channels: 4, scale: d.scaleFactor, origin: { x: r.x, y: r.y } };
      },
    },
    mouse: {
      async move(p) {
        pointer = { ...p };
        fp.events.push({ kind: 'move', x: p.x, y: p.y });
      },
      async down(button) {
        fp.events.push({ kind: 'down', button });
      },
      async up(button) {
        fp.events.push({ kind: 'up', button });
      },
      async wheel(dx, dy) {
        fp.events.push({ kind: 'wheel', dx, dy });
      },
      async position() {
        return { ...pointer };
      },
    },
    keyboard: {
      async down(key) {
        fp.events.push({ kind: 'keydown', key });
      },
      async up(key) {
        fp.events.push({ kind: 'keyup', key });
      },
      async type(text) {
        fp.events.push({ kind: 'type', text });
      },
    },
    accessibility: {
      async snapshot(): Promise<AXSnapshot> {
        let n = 0;
        const count = (x: RawAXNode): void => {
          n++;
          x.children.forEach(count);
        };
        fp.tree.forEach(count);
        return { roots: structuredClone(fp.tree), truncated: false, nodeCount: n };
      },
      async focused() {
        return fp.focusInfo;
      },
      async doAction(handle, action) {
        fp.events.push({ kind: 'action', handle, action });
        return !fp.refuseActions.has(handle);
      },
      /** Sets `value` on the node with this handle in `tree` when it has the `editable` state; false otherwise. */
      async setValue(handle, value) {
        const find = (ns: RawAXNode[]): RawAXNode | undefined => {
          for (const n of ns) {
            if (n.handle === handle) return n;
            const c = find(n.children);
            if (c) return c;
          }
          return undefined;
        };
        const n = find(fp.tree);
        if (!n) throw new DeskdError('STALE_REF', `the element ${handle} no longer exists`);
        fp.events.push({ kind: 'setValue', handle, value });
        if (!n.states.includes('editable') || fp.noEditableText.has(handle)) return false;
        n.value = value;
        return true;
      },
      /**
       * Hit-test in `tree`: among the roots owned by `window.pid` (every root without a window), the
       * deepest node below the root and its `window` children whose bounds contain `p` (later children
       * first: drawn on top), or its nearest interactive ancestor (`INTERACTIVE_ROLES`) when it is not
       * interactive, with `children: []`. Null when none. Throws `ACCESSIBILITY_UNAVAILABLE` when
       * `axUnavailable`, or when no root is owned by the window's pid (its app is not on the bus).
       */
      async elementAt(p, window) {
        if (fp.axUnavailable) throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'fake accessibility is unavailable');
        const roots = window?.pid != null ? fp.tree.filter((r) => ownerOfRoot(r).pid === window.pid) : fp.tree;
        if (window?.pid != null && roots.length === 0) throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `no application of pid ${window.pid} is on the accessibility bus`);
        // The deepest node, or its nearest interactive ancestor below the window when it is not
        // interactive itself (the button around a label), as the AT-SPI backend answers.
        const hit = (n: RawAXNode): RawAXNode | null => {
          for (const c of [...n.children].reverse()) {
            const b = c.bounds;
            if (!b || p.x < b.x || p.y < b.y || p.x >= b.x + b.width || p.y >= b.y + b.height) continue;
            const deeper = hit(c);
            if (deeper && (INTERACTIVE_ROLES.has(deeper.role) || !INTERACTIVE_ROLES.has(c.role))) return deeper;
            return c.role === 'window' ? deeper : c;
          }
          return null;
        };
        for (const r of roots) {
          const n = hit(r);
          if (n) return structuredClone({ ...n, children: [] });
        }
        return null;
      },
      /** Owner of a node of `tree`: its root's entry in `appOwners` (else the first window's), and the root's child on its path as the window. Null when the handle is not in the tree. */
      async ownerOf(handle): Promise<ElementOwner | null> {
        if (fp.axUnavailable) throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'fake accessibility is unavailable');
        const path = (n: RawAXNode): RawAXNode[] | null => {
          if (n.handle === handle) return [n];
          for (const c of n.children) {
            const sub = path(c);
            if (sub) return [n, ...sub];
          }
          return null;
        };
        for (const r of fp.tree) {
          const found = path(r);
          if (!found) continue;
          const owner = ownerOfRoot(r);
          const top = found[1] ?? null;
          return { app: owner.app, pid: owner.pid, windowTitle: top ? top.name : null, windowBounds: top?.bounds ? { ...top.bounds } : null };
        }
        return null;
      },
      /** The window's entry in `urls`, or null. */
      async urlOf(window) {
        if (fp.axUnavailable) throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'fake accessibility is unavailable');
        return fp.urls.get(window.id) ?? null;
      },
      async close() {},
    },
    permissions: {
      async check() {
        return { accessibility: 'not-applicable', screenRecording: 'not-applicable' };
      },
    },
    async close() {},
  };
  const ownerOfRoot = (r: RawAXNode): { app: string | null; pid: number | null } =>
    fp.appOwners.get(r.handle) ?? { app: fp.windowList[0]?.app ?? null, pid: fp.windowList[0]?.pid ?? null };
  return fp;
}

/** Build a fake accessibility node (tests). */
export function axNode(role: string, name: string, bounds: Rect | null, extra: Partial<RawAXNode> = {}): RawAXNode {
  return {
    handle: extra.handle ?? `fake|${role}|${name}|${Math.random().toString(36).slice(2, 8)}`,
    role,
    platformRole: extra.platformRole ?? role,
    name,
    bounds,
    states: extra.states ?? ['enabled', 'visible', 'showing'],
    actions: extra.actions ?? (role === 'button' ? ['click'] : []),
    children: extra.children ?? [],
    ...(extra.value !== undefined ? { value: extra.value } : {}),
  };
}
