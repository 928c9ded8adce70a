/**
 * "Was anything drawn on the screen since then?" from the X server itself, through the DAMAGE extension,
 * so an observation of an unchanged screen need not capture (XGetImage of a 1920x1080 root costs 10–40 ms
 * through the X11 worker) nor compare frames.
 *
 * One persistent X connection (`x11Client.ts`) holds one Damage object on the root window at report level
 * NonEmpty: the server sends one `DamageNotify` each time the object's region goes from empty to non-empty,
 * i.e. on the first drawing after each `DamageSubtract`. Damage registered on the root window is kept on the
 * screen pixmap, which every (non-redirected) window draws into, and clipped to the root's border clip, which
 * covers the children: drawing into any window, an exposure (a window mapped, unmapped, moved, raised,
 * resized), a CopyArea, a PutImage or a MIT-SHM put all damage it. Under a compositing manager windows draw
 * into their own pixmaps and the compositor draws the result on the screen (or its overlay window, a child of
 * the root), which damages it too.
 *
 * A {@link DamageMark} is taken right BEFORE a capture:
 * 1. read the count of DamageNotify events received so far (`epoch`);
 * 2. send `DamageSubtract(damage, None, None)` (the region becomes empty) and a `GetInputFocus`, and wait for
 *    the reply: the server has processed the subtract before the capture starts.
 * Any drawing after the subtract finds the region empty (or made non-empty by another drawing after it) and
 * so makes a DamageNotify after the mark; it arrives on this connection before the reply to any later
 * request. {@link X11Damage.drawnSince} makes one round trip (`GetInputFocus`) and answers "nothing drawn"
 * only when no DamageNotify arrived since `epoch`. A DamageNotify made before the subtract that arrives after
 * step 1 counts as a drawing: a needless capture, never a stale answer. Several outstanding marks share the
 * one Damage object: each subtract empties the region, and each drawing after it raises the count.
 *
 * The pointer is never in a capture (X11 protocol, GetImage: the cursor image is not included; Xvfb removes
 * its software cursor before GetImage), but Xvfb reports its moves as damage (measured: a `mousemove` over
 * an xterm makes a DamageNotify): a needless capture after a pointer move, never a stale frame.
 *
 * Anything that makes the answer uncertain answers "drawn": no DAMAGE extension, a connection that failed
 * or was reopened since the mark (the X server restarted, `DISPLAY` changed), an X error.
 *
 * Source: the X Damage Extension protocol, version 1.1 (xorgproto `damageproto.txt`): QueryVersion (minor
 * opcode 0), Create (1), Destroy (2), Subtract (3); report levels RawRectangles 0, DeltaRectangles 1,
 * BoundingBox 2, NonEmpty 3; the DamageNotify event (first event + 0). Core protocol: QueryExtension (98).
 */
import { X11Connection } from './x11Client.js';

/** Minor opcodes of the DAMAGE extension (damageproto 1.1). */
export const DAMAGE_REQUEST = { QueryVersion: 0, Create: 1, Destroy: 2, Subtract: 3 } as const;

/** Damage report levels (damageproto 1.1, DamageCreate). */
export const DAMAGE_LEVEL = { RawRectangles: 0, DeltaRectangles: 1, BoundingBox: 2, NonEmpty: 3 } as const;

/** Core request QueryExtension (X11 protocol, Appendix B). */
const QUERY_EXTENSION = 98;

/**
 * A moment noted by {@link X11Damage.mark}: opaque to callers. `generation` names the connection (and its
 * Damage object) the mark belongs to; `epoch` the number of DamageNotify events received before it.
 */
export interface DamageMark {
  readonly generation: number;
  readonly epoch: number;
}

/** QueryExtension's answer (X11 protocol, QueryExtension). */
export interface X11Extension {
  present: boolean;
  majorOpcode: number;
  firstEvent: number;
  firstError: number;
}

/** The body of a QueryExtension request for `name` (length, 2 unused bytes, the name in Latin-1, padded by the connection). */
export function encodeQueryExtension(name: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const body = Buffer.alloc(4 + n.length);
  body.writeUInt16LE(n.length, 0);
  n.copy(body, 4);
  return body;
}

/** Decode a QueryExtension reply (32 bytes). */
export function decodeQueryExtension(reply: Buffer): X11Extension {
  return { present: reply[8] === 1, majorOpcode: reply[9]!, firstEvent: reply[10]!, firstError: reply[11]! };
}

/** The body of DamageQueryVersion: the client's major and minor version (CARD32 each). */
export function encodeDamageQueryVersion(major: number, minor: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32LE(major, 0);
  body.writeUInt32LE(minor, 4);
  return body;
}

/** Decode a DamageQueryVersion reply: the server's major and minor version. */
export function decodeDamageQueryVersion(reply: Buffer): { major: number; minor: number } {
  return { major: reply.readUInt32LE(8), minor: reply.readUInt32LE(12) };
}

/** The body of DamageCreate: the new Damage id, the drawable it watches, the report level, 3 unused bytes. */
export function encodeDamageCreate(damage: number, drawable: number, level: number): Buffer {
  const body = Buffer.alloc(12);
  body.writeUInt32LE(damage >>> 0, 0);
  body.writeUInt32LE(drawable >>> 0, 4);
  body[8] = level;
  return body;
}

/** The body of DamageSubtract: damage, repair region, parts region (0 = None: the whole damage is repaired, nothing copied). */
export function encodeDamageSubtract(damage: number, repair = 0, parts = 0): Buffer {
  const body = Buffer.alloc(12);
  body.writeUInt32LE(damage >>> 0, 0);
  body.writeUInt32LE(repair >>> 0, 4);
  body.writeUInt32LE(parts >>> 0, 8);
  return body;
}

/** The body of DamageDestroy. */
export function encodeDamageDestroy(damage: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32LE(damage >>> 0, 0);
  return body;
}

/** A decoded DamageNotify event (damageproto 1.1). Rectangles in pixels of the drawable. */
export interface DamageNotify {
  /** The report level the Damage was created with. */
  level: number;
  /** True when more DamageNotify events follow for this damage (level bit 0x80). */
  more: boolean;
  sequence: number;
  drawable: number;
  damage: number;
  /** Server time, ms. */
  timestamp: number;
  area: { x: number; y: number; width: number; height: number };
  geometry: { x: number; y: number; width: number; height: number };
}

/**
 * Decode a 32-byte event as a DamageNotify when its type is `firstEvent` (the `send_event` bit ignored);
 * null for any other event.
 */
export function decodeDamageNotify(ev: Buffer, firstEvent: number): DamageNotify | null {
  if (ev.length < 32 || (ev[0]! & 0x7f) !== firstEvent) return null;
  const rect = (o: number) => ({ x: ev.readInt16LE(o), y: ev.readInt16LE(o + 2), width: ev.readUInt16LE(o + 4), height: ev.readUInt16LE(o + 6) });
  return {
    level: ev[1]! & 0x7f,
    more: (ev[1]! & 0x80) !== 0,
    sequence: ev.readUInt16LE(2),
    drawable: ev.readUInt32LE(4),
    damage: ev.readUInt32LE(8),
    timestamp: ev.readUInt32LE(12),
    area: rect(16),
    geometry: rect(24),
  };
}

/** Counters of an {@link X11Damage}, for tests and benchmarks. */
export interface X11DamageStats {
  /** DamageNotify events received (all connections). */
  notifies: number;
  /** Marks taken. */
  marks: number;
  /** `drawnSince` calls that answered "nothing drawn". */
  quiet: number;
  /** `drawnSince` calls that answered "drawn". */
  drawn: number;
  /** Connections opened with a Damage object. */
  connections: number;
}

interface Tracker {
  generation: number;
  display: string;
  x: X11Connection;
  opcode: number;
  damage: number;
  /** DamageNotify events received on this connection. */
  count: number;
}

/** Options of {@link X11Damage}. */
export interface X11DamageOptions {
  /** The X display to watch, read at each use (default `process.env.DISPLAY`); a new connection is opened when it changes. */
  display?: () => string | undefined;
  /** Open a connection (default {@link X11Connection.connect}), for tests. */
  connect?: (display: string) => Promise<X11Connection>;
}

/**
 * Tells whether anything was drawn on the screen (the root window of the display's screen, with every window
 * in it) since a {@link DamageMark}; see the module comment for the protocol and why it is race-free.
 * Never throws: a display without the DAMAGE extension, or an X server that cannot be reached, makes
 * {@link mark} resolve null and {@link drawnSince} resolve true.
 */
export class X11Damage {
  private tracker: Promise<Tracker | null> | null = null;
  private trackerDisplay: string | null = null;
  /** Displays whose server has no usable DAMAGE extension (asked once per display name). */
  private readonly absent = new Set<string>();
  private generation = 0;
  private retryAt = 0;
  readonly stats: X11DamageStats = { notifies: 0, marks: 0, quiet: 0, drawn: 0, connections: 0 };

  constructor(private readonly opts: X11DamageOptions = {}) {}

  /**
   * Note this moment; call it right before capturing (it resolves once the X server emptied the damage
   * region). Resolves null when damage cannot be tracked on this display (no DAMAGE extension, no X server).
   */
  async mark(): Promise<DamageMark | null> {
    const t = await this.current();
    if (!t) return null;
    const epoch = t.count;
    try {
      await Promise.all([t.x.request(t.opcode, DAMAGE_REQUEST.Subtract, encodeDamageSubtract(t.damage), false), t.x.getInputFocus()]);
    } catch {
      return null;
    }
    if (t.x.closed) return null;
    this.stats.marks++;
    return { generation: t.generation, epoch };
  }

  /**
   * True unless it is certain that nothing was drawn since `mark`: one round trip to the X server, after
   * which every DamageNotify made before it has arrived. True as well when the connection of the mark is
   * gone, was replaced, or the round trip fails.
   */
  async drawnSince(mark: DamageMark): Promise<boolean> {
    const drawn = await this.check(mark);
    if (drawn) this.stats.drawn++;
    else this.stats.quiet++;
    return drawn;
  }

  private async check(mark: DamageMark): Promise<boolean> {
    const t = await this.current();
    if (!t || t.generation !== mark.generation || t.count !== mark.epoch) return true;
    try {
      await t.x.getInputFocus();
    } catch {
      return true;
    }
    return t.x.closed || t.count !== mark.epoch;
  }

  /** Close the connection (its Damage object goes with it); a later call opens a new one. */
  close(): void {
    const t = this.tracker;
    this.tracker = null;
    this.trackerDisplay = null;
    void t?.then((x) => x?.x.close(), () => undefined);
  }

  /** The tracker for the current display, opened (or reopened after a failure) as needed; null when damage cannot be tracked. */
  private async current(): Promise<Tracker | null> {
    const display = (this.opts.display ? this.opts.display() : process.env.DISPLAY) ?? '';
    if (display === '' || this.absent.has(display)) return null;
    const pending = this.trackerDisplay === display ? this.tracker : null;
    if (pending) {
      const t = await pending;
      if (t && !t.x.closed) return t;
      // Another call reopened it meanwhile: use that one.
      if (this.tracker !== pending) return this.tracker ? this.tracker : null;
      // A connection that failed, or could not be opened, is retried (at most once a second).
      if (!t && Date.now() < this.retryAt) return null;
    }
    this.close();
    this.trackerDisplay = display;
    this.tracker = this.open(display).catch(() => {
      this.retryAt = Date.now() + 1000;
      return null;
    });
    return this.tracker;
  }

  private async open(display: string): Promise<Tracker | null> {
    const x = await (this.opts.connect ?? ((d: string) => X11Connection.connect(d)))(display);
    try {
      const ext = decodeQueryExtension(await x.request(QUERY_EXTENSION, 0, encodeQueryExtension('DAMAGE'), true));
      if (!ext.present) {
        this.absent.add(display);
        x.close();
        return null;
      }
      const version = decodeDamageQueryVersion(await x.request(ext.majorOpcode, DAMAGE_REQUEST.QueryVersion, encodeDamageQueryVersion(1, 1), true));
      if (version.major < 1) {
        this.absent.add(display);
        x.close();
        return null;
      }
      const t: Tracker = { generation: ++this.generation, display, x, opcode: ext.majorOpcode, damage: allocateId(x), count: 0 };
      x.onEvent((ev) => {
        const n = decodeDamageNotify(ev, ext.firstEvent);
        if (n && n.damage === t.damage) {
          t.count++;
          this.stats.notifies++;
        }
      });
      // DamageCreate has no reply: the GetInputFocus after it settles it (rejected with the X error it caused).
      await Promise.all([x.request(ext.majorOpcode, DAMAGE_REQUEST.Create, encodeDamageCreate(t.damage, x.setup.root, DAMAGE_LEVEL.NonEmpty), false), x.getInputFocus()]);
      this.stats.connections++;
      return t;
    } catch (e) {
      x.close();
      throw e;
    }
  }
}

/**
 * A resource id of this connection (X11 protocol §8, connection setup: resource-id-base | some bits of
 * resource-id-mask). One Damage per connection: the lowest id above 0 under the mask.
 */
function allocateId(x: X11Connection): number {
  const mask = x.setup.ridMask >>> 0;
  const low = mask & -mask;
  return (x.setup.ridBase | low) >>> 0;
}
