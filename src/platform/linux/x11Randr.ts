/**
 * The displays (RandR monitors) of an X screen over one persistent X connection, instead of running
 * `xrandr --listmonitors` (a process spawn: 5–15 ms on a quiet machine, 100–250 ms on a loaded one, which a
 * warm observe paid every 2 s). One `RRGetMonitors` round trip answers what `xrandr --listmonitors` prints
 * (xrandr calls the same request through `XRRGetMonitors`).
 *
 * Source: the X Resize, Rotate and Reflect Extension, version 1.5 (xorgproto `randrproto.txt`):
 * RRQueryVersion (minor opcode 0), RRGetMonitors (42) and its MONITORINFO; core QueryExtension (98).
 */
import type { DisplayInfo } from '../types.js';
import { X11Connection } from './x11Client.js';
import { decodeQueryExtension, encodeQueryExtension } from './x11Damage.js';

/** Minor opcodes of RandR used here. */
export const RANDR_REQUEST = { QueryVersion: 0, GetMonitors: 42 } as const;

/** One MONITORINFO of an RRGetMonitors reply; pixels of the screen. */
export interface RandrMonitor {
  name: number;
  primary: boolean;
  automatic: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
  outputs: number[];
}

/** The body of RRQueryVersion: the client's major and minor version (CARD32 each). */
export function encodeRandrQueryVersion(major: number, minor: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(major, 0);
  b.writeUInt32LE(minor, 4);
  return b;
}

/** The body of RRGetMonitors: the window (a root) and get-active (only monitors with an active output). */
export function encodeGetMonitors(window: number, getActive = true): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(window >>> 0, 0);
  b[4] = getActive ? 1 : 0;
  return b;
}

/**
 * Decode an RRGetMonitors reply: 32-byte header (nmonitors at 12), then per monitor 24 bytes (name ATOM,
 * primary, automatic, noutput CARD16, x, y INT16, width, height CARD16, width/height in mm CARD32) and
 * `noutput` CARD32 outputs.
 * @throws Error when the reply is shorter than its monitor list says.
 */
export function decodeGetMonitors(reply: Buffer): RandrMonitor[] {
  const n = reply.readUInt32LE(12);
  const out: RandrMonitor[] = [];
  let o = 32;
  for (let i = 0; i < n; i++) {
    if (o + 24 > reply.length) throw new Error(`RRGetMonitors reply too short for ${n} monitors`);
    const noutput = reply.readUInt16LE(o + 6);
    if (o + 24 + 4 * noutput > reply.length) throw new Error(`RRGetMonitors reply too short for monitor ${i}'s ${noutput} outputs`);
    const outputs: number[] = [];
    for (let k = 0; k < noutput; k++) outputs.push(reply.readUInt32LE(o + 24 + 4 * k));
    out.push({ name: reply.readUInt32LE(o), primary: reply[o + 4] === 1, automatic: reply[o + 5] === 1, x: reply.readInt16LE(o + 8), y: reply.readInt16LE(o + 10), width: reply.readUInt16LE(o + 12), height: reply.readUInt16LE(o + 14), outputs });
    o += 24 + 4 * noutput;
  }
  return out;
}

/**
 * Monitors as deskd's displays, numbered in the server's order as `xrandr --listmonitors` numbers them; the
 * first is primary when none is (as {@link parseXrandrMonitors} in `nutCapture.ts` does). X11 has no backing
 * scale: scale factor 1.
 */
export function monitorsToDisplays(monitors: RandrMonitor[]): DisplayInfo[] {
  const out = monitors.map((m, id) => ({ id, x: m.x, y: m.y, width: m.width, height: m.height, scaleFactor: 1, primary: m.primary }));
  if (out.length > 0 && !out.some((d) => d.primary)) out[0]!.primary = true;
  return out;
}

/** Options of {@link X11Monitors}. */
export interface X11MonitorsOptions {
  /** The X display, read at each use (default `process.env.DISPLAY`); a new connection is opened when it changes. */
  display?: () => string | undefined;
  /** Open a connection (default {@link X11Connection.connect}), for tests. */
  connect?: (display: string) => Promise<X11Connection>;
}

interface Conn {
  display: string;
  x: X11Connection;
  opcode: number;
}

/**
 * The displays of the X screen through RandR 1.5 over a persistent connection. {@link list} resolves null
 * when RandR 1.5 is missing or the server cannot be reached (callers then fall back to `xrandr`).
 * Never throws.
 */
export class X11Monitors {
  private conn: Promise<Conn | null> | null = null;
  private connDisplay: string | null = null;
  /** Displays whose server has no RandR ≥ 1.5 (asked once per display name). */
  private readonly absent = new Set<string>();
  private retryAt = 0;

  constructor(private readonly opts: X11MonitorsOptions = {}) {}

  /** The monitors as displays (one round trip), or null when RandR 1.5 cannot answer. */
  async list(): Promise<DisplayInfo[] | null> {
    const c = await this.current();
    if (!c) return null;
    try {
      return monitorsToDisplays(decodeGetMonitors(await c.x.request(c.opcode, RANDR_REQUEST.GetMonitors, encodeGetMonitors(c.x.setup.root), true)));
    } catch {
      return null;
    }
  }

  /** Close the connection; a later call opens a new one. */
  close(): void {
    const c = this.conn;
    this.conn = null;
    this.connDisplay = null;
    void c?.then((x) => x?.x.close(), () => undefined);
  }

  private async current(): Promise<Conn | null> {
    const display = (this.opts.display ? this.opts.display() : process.env.DISPLAY) ?? '';
    if (display === '' || this.absent.has(display)) return null;
    const pending = this.connDisplay === display ? this.conn : null;
    if (pending) {
      const c = await pending;
      if (c && !c.x.closed) return c;
      if (this.conn !== pending) return this.conn ? this.conn : null;
      if (!c && Date.now() < this.retryAt) return null;
    }
    this.close();
    this.connDisplay = display;
    this.conn = this.open(display).catch(() => {
      this.retryAt = Date.now() + 1000;
      return null;
    });
    return this.conn;
  }

  private async open(display: string): Promise<Conn | null> {
    const x = await (this.opts.connect ?? ((d: string) => X11Connection.connect(d)))(display);
    try {
      const ext = decodeQueryExtension(await x.request(98, 0, encodeQueryExtension('RANDR'), true));
      const v = ext.present ? await x.request(ext.majorOpcode, RANDR_REQUEST.QueryVersion, encodeRandrQueryVersion(1, 5), true) : null;
      // RRGetMonitors is RandR 1.5.
      if (!v || v.readUInt32LE(8) < 1 || (v.readUInt32LE(8) === 1 && v.readUInt32LE(12) < 5)) {
        this.absent.add(display);
        x.close();
        return null;
      }
      return { display, x, opcode: ext.majorOpcode };
    } catch (e) {
      x.close();
      throw e;
    }
  }
}
