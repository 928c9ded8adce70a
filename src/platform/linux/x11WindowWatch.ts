/**
 * Which top-level windows changed on an X display since a moment, from the X server's own events: the
 * perception mask must cover every window a frame shows, and a window list read before or after the capture
 * misses one that was mapped and unmapped (or moved) in between (`AgentCapture.windowsForFrame`).
 *
 * The watch selects `SubstructureNotify` on the root window (`ChangeWindowAttributes`, CWEventMask): the server
 * then reports every change of a root child — `MapNotify`, `UnmapNotify`, `ConfigureNotify` (moved, resized,
 * restacked), `ReparentNotify`, `GravityNotify`, `CirculateNotify`, `CreateNotify`, `DestroyNotify` — on this
 * connection, in order with the replies to its requests. Each one is a numbered {@link WindowTouch}. A moment
 * is the number of touches received when a round trip (`GetInputFocus`) came back: a change the server made
 * after it processed that request arrives after its reply, so it gets a higher number.
 *
 * Source: X Window System Protocol (X11R7.7), §8 "Events" (SubstructureNotify; the event layouts of
 * Appendix B: event window at byte 4, window at byte 8; ConfigureNotify x, y, width, height at 16-22).
 */
import type { Rect } from '../types.js';
import type { X11Connection } from './x11Client.js';

/** Core event codes reported by SubstructureNotify (X11 protocol, Appendix B). */
export const SUBSTRUCTURE_EVENTS = { CreateNotify: 16, DestroyNotify: 17, UnmapNotify: 18, MapNotify: 19, ReparentNotify: 21, ConfigureNotify: 22, GravityNotify: 24, CirculateNotify: 26 } as const;

/** Event mask bit SubstructureNotify, and the CWEventMask value-mask bit of ChangeWindowAttributes (X11 protocol). */
const SUBSTRUCTURE_NOTIFY = 0x80000;
const CW_EVENT_MASK = 0x800;
/** Touches kept; beyond, the older half is dropped and marks before it can no longer be answered. */
const MAX_TOUCHES = 4096;

const CODES: ReadonlySet<number> = new Set(Object.values(SUBSTRUCTURE_EVENTS));

/** One change of a root child: its number, the window (X id), and its new outer bounds for a ConfigureNotify (pixels = points on X11). */
export interface WindowTouch {
  epoch: number;
  id: number;
  bounds: Rect | null;
}

/** The changes of the root's children, as the server reports them on one connection (see the module comment). */
export class X11WindowWatch {
  /** Touches received so far. */
  epoch = 0;
  private touches: WindowTouch[] = [];
  /** Touches up to this number were dropped. */
  private droppedTo = 0;

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

  /** Record one event when it is a SubstructureNotify event of the root (others are not ours). */
  onEvent(ev: Buffer): void {
    const code = ev[0]! & 0x7f;
    if (!CODES.has(code) || ev.length < 32 || ev.readUInt32LE(4) !== this.root) return;
    const id = ev.readUInt32LE(8);
    const bounds = code === SUBSTRUCTURE_EVENTS.ConfigureNotify ? { x: ev.readInt16LE(16), y: ev.readInt16LE(18), width: ev.readUInt16LE(20), height: ev.readUInt16LE(22) } : null;
    this.touches.push({ epoch: ++this.epoch, id, bounds });
    if (this.touches.length > MAX_TOUCHES) {
      const cut = this.touches.length - MAX_TOUCHES / 2;
      this.droppedTo = this.touches[cut - 1]!.epoch;
      this.touches = this.touches.slice(cut);
    }
    if (code === SUBSTRUCTURE_EVENTS.MapNotify) this.onMap(id);
  }

  /**
   * The windows touched after touch number `epoch`, each with the bounds its ConfigureNotify events gave;
   * null when touches after it were dropped (more than {@link MAX_TOUCHES} / 2 since).
   */
  since(epoch: number): Map<number, Rect[]> | null {
    if (epoch < this.droppedTo) return null;
    const out = new Map<number, Rect[]>();
    for (const t of this.touches) {
      if (t.epoch <= epoch) continue;
      const list = out.get(t.id) ?? [];
      if (t.bounds && !list.some((b) => b.x === t.bounds!.x && b.y === t.bounds!.y && b.width === t.bounds!.width && b.height === t.bounds!.height)) list.push(t.bounds);
      out.set(t.id, list);
    }
    return out;
  }
}
