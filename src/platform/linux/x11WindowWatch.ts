/**
 * Which top-level windows changed on an X display since a moment, from the X server's own events: the
 * perception mask must cover every window a frame shows, and a window list read before or after the capture
 * misses one that was mapped and unmapped (or moved) in between (`AgentCapture.windowsForFrame`).
 *
 * The watch selects `SubstructureNotify` on the root window (`ChangeWindowAttributes`, CWEventMask): the server
 * then reports every change of a root child — `MapNotify`, `UnmapNotify`, `ConfigureNotify` (moved, resized,
 * restacked), `ReparentNotify`, `GravityNotify`, `CirculateNotify`, `CreateNotify`, `DestroyNotify` — on this
 * connection, in order with the replies to its requests. Each one is a numbered {@link WindowTouch}. A moment is the number of
 * touches received when it is noted: every change the server makes afterwards, and any made before but not
 * received yet, gets a higher number (the latter is masked needlessly, never missed). Each touch carries the
 * bounds the window was known to have before it (from earlier events, or a scan of the root's children
 * made once the selection holds) and after it: a window moved away after a capture is masked at the place the
 * capture shows it.
 *
 * Source: X Window System Protocol (X11R7.7), §8 "Events" (SubstructureNotify; the event layouts of
 * Appendix B: event window at byte 4, window at byte 8; ConfigureNotify x, y, width, height at 16-22).
 */
import type { Rect } from '../types.js';
import { sameRect } from '../rect.js';
import type { X11Connection } from './x11Client.js';

/** Core event codes reported by SubstructureNotify (X11 protocol, Appendix B). */
export const SUBSTRUCTURE_EVENTS = { CreateNotify: 16, DestroyNotify: 17, UnmapNotify: 18, MapNotify: 19, ReparentNotify: 21, ConfigureNotify: 22, GravityNotify: 24, CirculateNotify: 26 } as const;

/** Event mask bit SubstructureNotify, and the CWEventMask value-mask bit of ChangeWindowAttributes (X11 protocol). */
const SUBSTRUCTURE_NOTIFY = 0x80000;
const CW_EVENT_MASK = 0x800;
/** Touches kept; beyond, the older half is dropped and marks before it can no longer be answered. */
const MAX_TOUCHES = 4096;

const CODES: ReadonlySet<number> = new Set(Object.values(SUBSTRUCTURE_EVENTS));

/**
 * One change of a root child: its number, the window (X id), and the outer bounds it is known to have had
 * around the change (pixels = points on X11): those it had before (from an earlier event or the first scan)
 * and, for a ConfigureNotify or CreateNotify, those it has after.
 */
export interface WindowTouch {
  epoch: number;
  id: number;
  bounds: Rect[];
  /** Whether the window was mapped before or after the change (one never mapped shows no pixels). */
  shown: boolean;
}

/** What changed since a moment about one window: every bounds it had, and whether it was mapped at any time. */
export interface WindowChanges {
  bounds: Rect[];
  shown: boolean;
}

/** The changes of the root's children, as the server reports them on one connection (see the module comment). */
export class X11WindowWatch {
  /** Touches received so far. */
  epoch = 0;
  private touches: WindowTouch[] = [];
  /** Touches up to this number were dropped. */
  private droppedTo = 0;
  /** The last outer bounds known of each root child (events, and the first scan for windows no event named yet). */
  private readonly lastBounds = new Map<number, Rect>();
  /** The root children mapped now, as the events (and the first scan) tell. */
  private readonly mapped = new Set<number>();
  /** Windows an event named (the first scan does not override what an event told). */
  private readonly told = new Set<number>();

  private constructor(
    readonly connection: X11Connection,
    private readonly root: number,
    private readonly onMap: (id: number) => void,
  ) {}

  /**
   * Select SubstructureNotify on `root` of `x` and start numbering its events. `onMap` is called with each
   * window as it is mapped (to read who it belongs to while it exists).
   * @throws what the connection throws (the X server is gone)
   */
  static async start(x: X11Connection, root: number, onMap: (id: number) => void): Promise<X11WindowWatch> {
    const w = new X11WindowWatch(x, root, onMap);
    const off = x.onEvent((ev) => w.onEvent(ev));
    try {
      await x.changeWindowAttributes(root, CW_EVENT_MASK, [SUBSTRUCTURE_NOTIFY]);
    } catch (e) {
      off();
      throw e;
    }
    return w;
  }

  /**
   * The bounds of a root child as a read after the selection found them (the first scan): kept unless an
   * event already told (an event's bounds are at least as new: the reply and the events arrive in order, but
   * the reply is handled after the events of the same read from the socket).
   */
  seed(id: number, bounds: Rect, mapped: boolean): void {
    if (this.told.has(id)) return;
    this.lastBounds.set(id, bounds);
    if (mapped) this.mapped.add(id);
  }

  /**
   * Record one event when it is a SubstructureNotify event the server made for the root. Events another
   * client sent (`SendEvent`: the 0x80 bit) are ignored: anyone can send them.
   */
  onEvent(ev: Buffer): void {
    if (ev.length < 32 || (ev[0]! & 0x80) !== 0) return;
    const code = ev[0]!;
    if (!CODES.has(code)) return;
    // CreateNotify names the parent at byte 4 and the window at 8, with x, y, width, height at 12-18; the others
    // name the event window (the root) at 4.
    if (ev.readUInt32LE(4) !== this.root) return;
    const id = ev.readUInt32LE(8);
    this.told.add(id);
    const before = this.lastBounds.get(id);
    const wasShown = this.mapped.has(id);
    if (code === SUBSTRUCTURE_EVENTS.MapNotify) this.mapped.add(id);
    else if (code === SUBSTRUCTURE_EVENTS.UnmapNotify || code === SUBSTRUCTURE_EVENTS.DestroyNotify || (code === SUBSTRUCTURE_EVENTS.ReparentNotify && ev.readUInt32LE(12) !== this.root)) this.mapped.delete(id);
    let after: Rect | null = null;
    if (code === SUBSTRUCTURE_EVENTS.ConfigureNotify) after = { x: ev.readInt16LE(16), y: ev.readInt16LE(18), width: ev.readUInt16LE(20), height: ev.readUInt16LE(22) };
    else if (code === SUBSTRUCTURE_EVENTS.CreateNotify) after = { x: ev.readInt16LE(12), y: ev.readInt16LE(14), width: ev.readUInt16LE(16), height: ev.readUInt16LE(18) };
    if (after) this.lastBounds.set(id, after);
    else if (code === SUBSTRUCTURE_EVENTS.DestroyNotify || (code === SUBSTRUCTURE_EVENTS.ReparentNotify && ev.readUInt32LE(12) !== this.root)) {
      this.lastBounds.delete(id);
      this.told.delete(id);
    }
    this.touches.push({ epoch: ++this.epoch, id, bounds: [...(before ? [before] : []), ...(after ? [after] : [])], shown: wasShown || this.mapped.has(id) });
    if (this.touches.length > MAX_TOUCHES) {
      const cut = this.touches.length - MAX_TOUCHES / 2;
      this.droppedTo = this.touches[cut - 1]!.epoch;
      this.touches = this.touches.slice(cut);
    }
    if (code === SUBSTRUCTURE_EVENTS.MapNotify) this.onMap(id);
  }

  /**
   * The windows touched after touch number `epoch`, each with every bounds it is known to have had around its
   * changes (distinct) and whether it was mapped at any of them; null when touches after it were dropped (more
   * than {@link MAX_TOUCHES} / 2 since).
   */
  since(epoch: number): Map<number, WindowChanges> | null {
    if (epoch < this.droppedTo) return null;
    const out = new Map<number, WindowChanges>();
    for (const t of this.touches) {
      if (t.epoch <= epoch) continue;
      const c = out.get(t.id) ?? { bounds: [], shown: false };
      for (const b of t.bounds) if (!c.bounds.some((v) => sameRect(v, b))) c.bounds.push(b);
      c.shown ||= t.shown;
      out.set(t.id, c);
    }
    return out;
  }
}
