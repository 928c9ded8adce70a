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
 * A toolkit reporting true coordinates gets offset 0 (its window sits where it says).
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
}

/** `r` moved by `o` (the same object when `o` is zero). */
export function shiftRect(r: Rect, o: Offset): Rect {
  return o.dx === 0 && o.dy === 0 ? r : { x: r.x + o.dx, y: r.y + o.dy, width: r.width, height: r.height };
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
    if (!this.windows || frames.length === 0) return frames.map(() => NO_OFFSET);
    const list = this.windows().catch(() => [] as WindowInfo[]);
    return Promise.all(
      frames.map(async (f) => {
        if (!f.bounds || f.pid === null) return NO_OFFSET;
        const inWindow = await this.bus
          .call(f.ref, COMPONENT, 'GetExtents', 'u', [COORD_WINDOW])
          .then((r) => extentsToRect(r[0]))
          .catch(() => null);
        // True screen coordinates differ from window coordinates unless the window is at 0,0 (then the
        // window system says so too, and the offset below is 0).
        if (!inWindow || inWindow.x !== f.bounds.x || inWindow.y !== f.bounds.y) return NO_OFFSET;
        const w = windowOfFrame(f, await list);
        if (!w) return NO_OFFSET;
        const o = offsetFromWindow(f.bounds, w);
        return o.dx === 0 && o.dy === 0 ? NO_OFFSET : o;
      }),
    );
  }
}
