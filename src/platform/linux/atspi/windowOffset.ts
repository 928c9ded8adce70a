/**
 * Where a top-level accessible window really is on the screen.
 *
 * AT-SPI `Component.GetExtents(ATSPI_COORD_TYPE_SCREEN)` is meant to answer screen coordinates, but GTK 4
 * cannot know its window's position (its accessibility code is written for Wayland, where clients are
 * never told) and answers coordinates relative to its own window for both coordinate types. Checked on
 * Xvfb with gnome-calculator 46 (GTK 4) moved to 400,300 by `xdotool windowmove`: its frame still reads
 * 0,0 355x486 in screen and window coordinates, its "7" button 16,288, while the X client window is at
 * 400,300 365x496 and the button is drawn centred at 448,613, i.e. X origin + 5 px margin + the extents.
 * Chromium and GTK 3 answer true screen coordinates (their window coordinates differ from their screen
 * ones anywhere but at 0,0).
 *
 * So for each top-level accessible window: when its screen extents equal its window extents
 * (`GetExtents(ATSPI_COORD_TYPE_WINDOW)`), the X client window of the same process (same title, else the
 * one whose size is nearest) tells where it is: its inside origin plus the invisible margin its
 * client-side decorations keep around the frame (`_GTK_FRAME_EXTENTS` left/top when set, else half the
 * size difference). The difference from the reported origin is the window's offset, added to the extents
 * of every object of that window and subtracted from points given to `GetAccessibleAtPoint`.
 * A toolkit reporting true coordinates gets offset 0 (its window sits where it says). Qt 5 answers its
 * screen coordinates for both coordinate types (checked: Qt 5.15.8, three same-size windows of one process
 * at 100,100, 120,120 and 140,140 each answer their own origin for both), so a frame whose reported origin
 * is exactly the inside origin of a window of its process that fits it is taken as placed there, as
 * answered; only a frame that lies on none of them is moved.
 *
 * Sources: at-spi2-core xml/Component.xml (`GetExtents`, coord types 0 = screen, 1 = window); GTK 4
 * gtk/a11y/gtkatspicomponent.c; the `_GTK_FRAME_EXTENTS` property (GTK's client-side decorations).
 */
import type { Rect, WindowInfo } from '../../types.js';
import type { AtspiBus } from './bus.js';
import { COMPONENT, extentsToRect, type Ref } from './refs.js';

/** `ATSPI_COORD_TYPE_WINDOW`. */
const COORD_WINDOW = 1;
/** Largest margin (points, each side) taken for client-side decorations around a frame. */
const MAX_MARGIN = 128;

/** A shift in logical points. */
export interface Offset {
  dx: number;
  dy: number;
}

/** No shift. */
export const NO_OFFSET: Offset = Object.freeze({ dx: 0, dy: 0 });

/** A top-level accessible window as read: its object, process, name and reported screen extents. */
export interface FrameFacts {
  ref: Ref;
  pid: number | null;
  name: string;
  /** `GetExtents(screen)` as the toolkit answered it. */
  bounds: Rect | null;
  /**
   * `GetExtents(window)` when the caller asked it already (together with the screen extents: one round trip
   * less per hit-test, issue 15); absent = {@link WindowOffsets.place} asks it. Null when it failed.
   */
  inWindow?: Promise<Rect | null>;
}

/** `r` moved by `o` (the same object when `o` is zero). */
export function shiftRect(r: Rect, o: Offset): Rect {
  return o.dx === 0 && o.dy === 0 ? r : { x: r.x + o.dx, y: r.y + o.dy, width: r.width, height: r.height };
}

/**
 * The inside of a window's surface in global points: the surface less `_GTK_FRAME_EXTENTS` (the invisible
 * margins of client-side decorations), or the surface itself without them. Null without a surface.
 */
export function insideOf(w: WindowInfo): Rect | null {
  if (!w.surface) return null;
  const e = w.frameExtents ?? { left: 0, right: 0, top: 0, bottom: 0 };
  return { x: w.surface.x + e.left, y: w.surface.y + e.top, width: w.surface.width - e.left - e.right, height: w.surface.height - e.top - e.bottom };
}

/**
 * The X client window that shows an accessible frame, of `windows` (the window system's list): same pid,
 * with a `surface` at least the frame's size and at most {@link MAX_MARGIN} larger on each side; the one
 * titled like the frame first, else the one nearest in size. Null when none fits.
 */
export function windowOfFrame(frame: FrameFacts, windows: readonly WindowInfo[]): WindowInfo | null {
  const b = frame.bounds;
  if (!b || frame.pid === null) return null;
  const fits = windows.filter((w) => {
    if (w.pid !== frame.pid || !w.surface) return false;
    const ew = w.surface.width - b.width;
    const eh = w.surface.height - b.height;
    return ew >= 0 && eh >= 0 && ew <= 2 * MAX_MARGIN && eh <= 2 * MAX_MARGIN;
  });
  if (fits.length === 0) return null;
  const titled = fits.filter((w) => w.title !== null && w.title === frame.name);
  const pool = titled.length > 0 ? titled : fits;
  const gap = (w: WindowInfo) => w.surface!.width - b.width + (w.surface!.height - b.height);
  return [...pool].sort((a, c) => gap(a) - gap(c))[0]!;
}

/**
 * The window of the frame's process whose inside ({@link insideOf}) has the frame's reported origin and at
 * least its size (at most {@link MAX_MARGIN} more each way): the frame already is where it says (a toolkit
 * that answers screen coordinates for both coordinate types, Qt 5). Null when none.
 */
export function windowAtFrame(frame: FrameFacts, windows: readonly WindowInfo[]): WindowInfo | null {
  const b = frame.bounds;
  if (!b || frame.pid === null) return null;
  return (
    windows.find((w) => {
      const i = w.pid === frame.pid ? insideOf(w) : null;
      if (!i || i.x !== b.x || i.y !== b.y) return false;
      const ew = i.width - b.width;
      const eh = i.height - b.height;
      return ew >= 0 && eh >= 0 && ew <= 2 * MAX_MARGIN && eh <= 2 * MAX_MARGIN;
    }) ?? null
  );
}

/**
 * Where the frame's reported origin really is, given the X client window showing it: the surface's origin
 * plus the decorations' margin (`frameExtents` left/top, else half the size difference, rounded down).
 * @returns the offset to add to the frame's reported extents.
 */
export function offsetFromWindow(reported: Rect, w: WindowInfo): Offset {
  const s = w.surface!;
  const mx = w.frameExtents ? w.frameExtents.left : Math.floor((s.width - reported.width) / 2);
  const my = w.frameExtents ? w.frameExtents.top : Math.floor((s.height - reported.height) / 2);
  return { dx: s.x + mx - reported.x, dy: s.y + my - reported.y };
}

/** How a frame is placed: its offset, and the X client window it was placed by (null: taken as answered). */
export interface Placement extends Offset {
  window: WindowInfo | null;
}

/**
 * The X windows of the frame's process other than its own that show part of it (GTK 4 popovers and menus
 * are surfaces of their own), each with the shallowest object below the frame whose size is the window's
 * inside size (the surface less `_GTK_FRAME_EXTENTS`), and the offset that puts that object where its window
 * is (possibly 0). GTK 4 reports such an object where its anchor widget is, and its contents relative to that (checked:
 * gnome-calculator's mode menu reads at the menu button's origin; its items are drawn at the popover
 * window's origin plus their offset inside the popover).
 * @param frameNode the frame as placed (its objects' bounds already moved by the frame's offset)
 */
export function subsurfaces<N extends { bounds: Rect | null; children: N[] }>(frameNode: N, own: WindowInfo, pid: number, windows: readonly WindowInfo[]): Array<{ node: N; offset: Offset; window: WindowInfo }> {
  const out: Array<{ node: N; offset: Offset; window: WindowInfo }> = [];
  for (const w of windows) {
    const inside = insideOf(w);
    if (w === own || w.id === own.id || w.pid !== pid || !inside) continue;
    const { width, height } = inside;
    // Breadth first: the shallowest object of that size is the popover itself, not a child filling it.
    let level: N[] = [...frameNode.children];
    let found: N | null = null;
    while (level.length > 0 && !found) {
      found = level.find((n) => n.bounds !== null && n.bounds.width === width && n.bounds.height === height) ?? null;
      level = level.flatMap((n) => n.children);
    }
    if (!found) continue;
    const offset = { dx: inside.x - found.bounds!.x, dy: inside.y - found.bounds!.y };
    out.push({ node: found, offset, window: w });
  }
  return out;
}

/** Roles whose items a toolkit may show in a popup window of their own (a `<select>` list, a menu). */
const POPUP_CONTAINER_ROLES = new Set(['menu', 'listbox', 'combobox', 'menubar']);

/**
 * For a frame whose toolkit answers true screen coordinates: the objects it shows in a popup window of its
 * process (override-redirect, e.g. Chromium's open `<select>` list, whose items stay below the page's combo
 * box in the accessibility tree while a separate X window draws them: checked, items at 157,218 in a popup
 * window at 156,217 65x74). An object below a menu, list box or combo box that lies wholly inside such a
 * window is taken as shown in it (the shallowest such object; its subtree goes with it). Objects of the page
 * under the popup that are not in such a container stay covered by it.
 */
export function popupsAt<N extends { role: string; bounds: Rect | null; children: N[] }>(frameNode: N, pid: number, windows: readonly WindowInfo[]): Array<{ node: N; window: WindowInfo }> {
  const popups = windows.filter((w) => w.pid === pid && w.overrideRedirect && w.surface).map((w) => ({ w, r: w.surface! }));
  const out: Array<{ node: N; window: WindowInfo }> = [];
  if (popups.length === 0) return out;
  const holding = (b: Rect) => popups.find(({ r }) => b.x >= r.x && b.y >= r.y && b.x + b.width <= r.x + r.width && b.y + b.height <= r.y + r.height)?.w;
  const walk = (n: N, inContainer: boolean): void => {
    if (inContainer && n.bounds && n.bounds.width > 0 && n.bounds.height > 0) {
      const w = holding(n.bounds);
      if (w) {
        out.push({ node: n, window: w });
        return;
      }
    }
    const below = inContainer || POPUP_CONTAINER_ROLES.has(n.role);
    for (const c of n.children) walk(c, below);
  };
  walk(frameNode, false);
  return out;
}

/**
 * Offsets of top-level accessible windows (see the module comment). `windows` lists the window system's
 * windows (with `surface`); without it every offset is 0 (a backend with no window list, tests).
 */
export class WindowOffsets {
  constructor(
    private readonly bus: AtspiBus,
    private readonly windows?: () => Promise<WindowInfo[]>,
  ) {}

  /**
   * The offset of each frame, in order. One `GetExtents(window)` per frame whose screen extents are known,
   * and one window list. Never throws: a frame that cannot be read, or a window list that fails, gets 0.
   */
  async of(frames: readonly FrameFacts[]): Promise<Offset[]> {
    return (await this.place(frames)).placements.map(({ dx, dy }) => (dx === 0 && dy === 0 ? NO_OFFSET : { dx, dy }));
  }

  /**
   * As {@link of}, with the X client window each frame was placed by (null where the toolkit's extents are
   * taken as answered) and the window list used.
   */
  async place(frames: readonly FrameFacts[]): Promise<{ placements: Placement[]; windows: WindowInfo[] }> {
    const none = (): Placement => ({ ...NO_OFFSET, window: null });
    if (!this.windows || frames.length === 0) return { placements: frames.map(none), windows: [] };
    const list = this.windows().catch(() => [] as WindowInfo[]);
    const placements = await Promise.all(
      frames.map(async (f): Promise<Placement> => {
        if (!f.bounds || f.pid === null) return none();
        const inWindow = await (f.inWindow ?? windowExtents(this.bus, f.ref));
        // True screen coordinates differ from window coordinates unless the window is at 0,0 (then the
        // window system says so too, and the offset below is 0).
        if (!inWindow || inWindow.x !== f.bounds.x || inWindow.y !== f.bounds.y) return none();
        const ws = await list;
        const exact = windowAtFrame(f, ws);
        if (exact) return { ...NO_OFFSET, window: exact };
        const w = windowOfFrame(f, ws);
        if (!w) return none();
        return { ...offsetFromWindow(f.bounds, w), window: w };
      }),
    );
    return { placements, windows: await list };
  }
}

/** `Component.GetExtents(ATSPI_COORD_TYPE_WINDOW)` of an object, null on any failure. Never rejects. */
export function windowExtents(bus: AtspiBus, ref: Ref): Promise<Rect | null> {
  return bus
    .call(ref, COMPONENT, 'GetExtents', 'u', [COORD_WINDOW])
    .then((r) => extentsToRect(r[0]))
    .catch(() => null);
}
