/**
 * The X DAMAGE client (src/platform/linux/x11Damage.ts): request encoding and event decoding against the
 * damageproto 1.1 layouts, and the mark / drawnSince logic against a scripted X connection: a drawing after
 * a mark is always reported, one before it at worst counts as a drawing, and a lost or replaced connection
 * answers "drawn". Also the RandR 1.5 monitor list (src/platform/linux/x11Randr.ts) that replaces `xrandr`.
 */
import { describe, it, expect } from 'vitest';
import type { X11Connection } from '../../src/platform/linux/x11Client.js';
import {
  DAMAGE_LEVEL,
  DAMAGE_REQUEST,
  X11Damage,
  decodeDamageNotify,
  decodeDamageQueryVersion,
  decodeQueryExtension,
  encodeDamageCreate,
  encodeDamageDestroy,
  encodeDamageQueryVersion,
  encodeDamageSubtract,
  encodeQueryExtension,
} from '../../src/platform/linux/x11Damage.js';
import { RANDR_REQUEST, decodeGetMonitors, encodeGetMonitors, encodeRandrQueryVersion, monitorsToDisplays } from '../../src/platform/linux/x11Randr.js';

describe('DAMAGE protocol encoding', () => {
  it('QueryExtension: name length, two unused bytes, the name', () => {
    const b = encodeQueryExtension('DAMAGE');
    expect(b.readUInt16LE(0)).toBe(6);
    expect(b.readUInt16LE(2)).toBe(0);
    expect(b.subarray(4).toString('latin1')).toBe('DAMAGE');
  });

  it('QueryExtension reply: present, major opcode, first event, first error', () => {
    const r = Buffer.alloc(32);
    r[0] = 1;
    r[8] = 1;
    r[9] = 143;
    r[10] = 91;
    r[11] = 152;
    expect(decodeQueryExtension(r)).toEqual({ present: true, majorOpcode: 143, firstEvent: 91, firstError: 152 });
    r[8] = 0;
    expect(decodeQueryExtension(r).present).toBe(false);
  });

  it('QueryVersion: two CARD32s each way', () => {
    const b = encodeDamageQueryVersion(1, 1);
    expect([b.length, b.readUInt32LE(0), b.readUInt32LE(4)]).toEqual([8, 1, 1]);
    const r = Buffer.alloc(32);
    r.writeUInt32LE(1, 8);
    r.writeUInt32LE(1, 12);
    expect(decodeDamageQueryVersion(r)).toEqual({ major: 1, minor: 1 });
  });

  it('Create: damage, drawable, level, three unused bytes; Subtract: damage, repair, parts; Destroy: damage', () => {
    const c = encodeDamageCreate(0x00400001, 0x000001e5, DAMAGE_LEVEL.NonEmpty);
    expect([c.length, c.readUInt32LE(0), c.readUInt32LE(4), c[8], c[9], c[10], c[11]]).toEqual([12, 0x00400001, 0x1e5, 3, 0, 0, 0]);
    const s = encodeDamageSubtract(0x00400001);
    expect([s.length, s.readUInt32LE(0), s.readUInt32LE(4), s.readUInt32LE(8)]).toEqual([12, 0x00400001, 0, 0]);
    const d = encodeDamageDestroy(0x00400001);
    expect([d.length, d.readUInt32LE(0)]).toEqual([4, 0x00400001]);
    expect(DAMAGE_REQUEST).toEqual({ QueryVersion: 0, Create: 1, Destroy: 2, Subtract: 3 });
    expect(DAMAGE_LEVEL).toEqual({ RawRectangles: 0, DeltaRectangles: 1, BoundingBox: 2, NonEmpty: 3 });
  });

  it('DamageNotify: level and more flag, sequence, drawable, damage, timestamp, area, geometry', () => {
    const ev = notify(91, 0x00400001, { level: 3, more: true, seq: 77, area: [-2, 5, 30, 40], geometry: [0, 0, 1920, 1080] });
    expect(decodeDamageNotify(ev, 91)).toEqual({
      level: 3,
      more: true,
      sequence: 77,
      drawable: 0x1e5,
      damage: 0x00400001,
      timestamp: 123456,
      area: { x: -2, y: 5, width: 30, height: 40 },
      geometry: { x: 0, y: 0, width: 1920, height: 1080 },
    });
    // A SendEvent copy has bit 7 of the type set: still a DamageNotify.
    ev[0] = 91 | 0x80;
    expect(decodeDamageNotify(ev, 91)?.damage).toBe(0x00400001);
    // Another event type, or a short buffer.
    expect(decodeDamageNotify(notify(12, 1), 91)).toBeNull();
    expect(decodeDamageNotify(Buffer.alloc(16), 91)).toBeNull();
  });
});

function notify(type: number, damage: number, o: { level?: number; more?: boolean; seq?: number; area?: number[]; geometry?: number[] } = {}): Buffer {
  const ev = Buffer.alloc(32);
  ev[0] = type;
  ev[1] = (o.level ?? 3) | (o.more ? 0x80 : 0);
  ev.writeUInt16LE(o.seq ?? 1, 2);
  ev.writeUInt32LE(0x1e5, 4);
  ev.writeUInt32LE(damage, 8);
  ev.writeUInt32LE(123456, 12);
  const [ax, ay, aw, ah] = o.area ?? [0, 0, 1, 1];
  ev.writeInt16LE(ax!, 16);
  ev.writeInt16LE(ay!, 18);
  ev.writeUInt16LE(aw!, 20);
  ev.writeUInt16LE(ah!, 22);
  const [gx, gy, gw, gh] = o.geometry ?? [0, 0, 1920, 1080];
  ev.writeInt16LE(gx!, 24);
  ev.writeInt16LE(gy!, 26);
  ev.writeUInt16LE(gw!, 28);
  ev.writeUInt16LE(gh!, 30);
  return ev;
}

const MAJOR = 143;
const FIRST_EVENT = 91;

/**
 * A scripted X server behind one connection: it answers QueryExtension/QueryVersion, keeps the Damage's
 * region state (empty after Subtract; the first drawing into an empty region queues a DamageNotify), and
 * delivers queued events before the reply of each round trip, as the real stream orders them.
 */
class FakeServer {
  readonly connections: FakeConnection[] = [];
  hasDamage = true;
  /** Requests seen, as `major:minor`. */
  readonly log: string[] = [];
  connect = async (display: string): Promise<X11Connection> => {
    const c = new FakeConnection(this, display);
    this.connections.push(c);
    return c as unknown as X11Connection;
  };
  /** Another client draws now. */
  draw(): void {
    for (const c of this.connections) c.drawn();
  }
}

class FakeConnection {
  readonly setup = { root: 0x1e5, width: 1920, height: 1080, maxRequestLength: 65535, ridBase: 0x00400000, ridMask: 0x001fffff };
  closed = false;
  damage: number | null = null;
  empty = true;
  private queue: Buffer[] = [];
  private readonly listeners = new Set<(ev: Buffer) => void>();
  /** Called while a request is processed (a drawing "during" it). */
  duringNext: (() => void) | null = null;

  constructor(
    private readonly server: FakeServer,
    readonly display: string,
  ) {}

  onEvent(fn: (ev: Buffer) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.closed = true;
  }

  drawn(): void {
    if (this.damage === null || this.closed) return;
    if (this.empty) this.queue.push(notify(FIRST_EVENT, this.damage));
    this.empty = false;
  }

  private deliver(): void {
    const q = this.queue;
    this.queue = [];
    for (const ev of q) for (const fn of this.listeners) fn(ev);
  }

  async request(opcode: number, data: number, body: Buffer | null, reply: boolean): Promise<Buffer> {
    if (this.closed) throw new Error('closed');
    this.server.log.push(`${opcode}:${data}`);
    const during = this.duringNext;
    this.duringNext = null;
    during?.();
    const r = Buffer.alloc(32);
    r[0] = 1;
    if (opcode === 98) {
      r[8] = this.server.hasDamage ? 1 : 0;
      r[9] = MAJOR;
      r[10] = FIRST_EVENT;
    } else if (opcode === MAJOR && data === DAMAGE_REQUEST.QueryVersion) {
      r.writeUInt32LE(1, 8);
      r.writeUInt32LE(1, 12);
    } else if (opcode === MAJOR && data === DAMAGE_REQUEST.Create) {
      this.damage = body!.readUInt32LE(0);
      expect(body!.readUInt32LE(4)).toBe(this.setup.root);
      expect(body![8]).toBe(DAMAGE_LEVEL.NonEmpty);
    } else if (opcode === MAJOR && data === DAMAGE_REQUEST.Subtract) {
      expect(body!.readUInt32LE(0)).toBe(this.damage);
      this.empty = true;
    }
    await Promise.resolve();
    this.deliver();
    return reply ? r : Buffer.alloc(0);
  }

  getInputFocus(): Promise<{ focus: number; revertTo: number }> {
    return this.request(43, 0, null, true).then(() => ({ focus: 1, revertTo: 0 }));
  }
}

function watcher(server: FakeServer, display = () => ':5' as string | undefined): X11Damage {
  return new X11Damage({ display, connect: server.connect });
}

describe('X11Damage marks', () => {
  it('creates one Damage on the root at level NonEmpty with an id of this connection, after QueryVersion', async () => {
    const s = new FakeServer();
    const d = watcher(s);
    expect(await d.mark()).not.toBeNull();
    expect(s.log.slice(0, 3)).toEqual(['98:0', `${MAJOR}:0`, `${MAJOR}:1`]);
    const c = s.connections[0]!;
    expect(c.damage! & ~c.setup.ridMask).toBe(c.setup.ridBase);
    expect(c.damage).not.toBe(c.setup.ridBase);
  });

  it('nothing drawn since the mark: false; a drawing after it: true, until the next mark', async () => {
    const s = new FakeServer();
    const d = watcher(s);
    s.draw(); // before any connection: nothing watches yet
    const m1 = (await d.mark())!;
    expect(await d.drawnSince(m1)).toBe(false);
    s.draw();
    expect(await d.drawnSince(m1)).toBe(true);
    s.draw(); // the region is not empty: no second event, still drawn
    expect(await d.drawnSince(m1)).toBe(true);
    const m2 = (await d.mark())!;
    expect(await d.drawnSince(m2)).toBe(false);
    expect(await d.drawnSince(m1)).toBe(true);
    s.draw();
    expect(await d.drawnSince(m2)).toBe(true);
    expect(d.stats).toMatchObject({ marks: 2, quiet: 2, drawn: 4, notifies: 2, connections: 1 });
  });

  it('an event that arrives while the mark is taken counts as drawn (a needless capture, never a stale frame)', async () => {
    const s = new FakeServer();
    const d = watcher(s);
    await d.mark();
    const c = s.connections[0]!;
    s.draw();
    // The notify for that drawing is delivered during the mark's own round trip.
    const m = (await d.mark())!;
    expect(await d.drawnSince(m)).toBe(true);
    // A drawing while the Subtract is processed (after the region was emptied) is reported too.
    const m2 = (await d.mark())!;
    expect(await d.drawnSince(m2)).toBe(false);
    c.duringNext = () => s.draw();
    const m3 = (await d.mark())!;
    expect(await d.drawnSince(m3)).toBe(true);
  });

  it('several marks outstanding: each sees drawings after it', async () => {
    const s = new FakeServer();
    const d = watcher(s);
    const a = (await d.mark())!;
    const b = (await d.mark())!;
    expect([await d.drawnSince(a), await d.drawnSince(b)]).toEqual([false, false]);
    s.draw();
    expect([await d.drawnSince(a), await d.drawnSince(b)]).toEqual([true, true]);
  });

  it('ignores other events and other Damage objects', async () => {
    const s = new FakeServer();
    const d = watcher(s);
    const m = (await d.mark())!;
    const c = s.connections[0]!;
    const deliver = (ev: Buffer) => (c as unknown as { listeners: Set<(e: Buffer) => void> }).listeners.forEach((fn) => fn(ev));
    deliver(notify(12, c.damage!)); // Expose, not DamageNotify
    deliver(notify(FIRST_EVENT, c.damage! + 1));
    expect(await d.drawnSince(m)).toBe(false);
  });

  it('no DAMAGE extension: no mark, asked once per display', async () => {
    const s = new FakeServer();
    s.hasDamage = false;
    const d = watcher(s);
    expect(await d.mark()).toBeNull();
    expect(await d.mark()).toBeNull();
    expect(s.connections.length).toBe(1);
    expect(s.connections[0]!.closed).toBe(true);
  });

  it('a lost connection answers drawn; the next mark opens a new one, and old marks stay drawn', async () => {
    const s = new FakeServer();
    const d = watcher(s);
    const m = (await d.mark())!;
    s.connections[0]!.close();
    expect(await d.drawnSince(m)).toBe(true);
    const m2 = (await d.mark())!;
    expect(s.connections.length).toBe(2);
    expect(m2.generation).not.toBe(m.generation);
    expect(await d.drawnSince(m2)).toBe(false);
    expect(await d.drawnSince(m)).toBe(true);
  });

  it('a changed DISPLAY: a new connection, and marks of the old one answer drawn', async () => {
    const s = new FakeServer();
    let display = ':5';
    const d = watcher(s, () => display);
    const m = (await d.mark())!;
    display = ':6';
    expect(await d.drawnSince(m)).toBe(true);
    expect(s.connections.map((c) => c.display)).toEqual([':5', ':6']);
    expect(s.connections[0]!.closed).toBe(true);
  });

  it('no display, or a server that cannot be reached: no mark (retried at most once a second)', async () => {
    const none = new X11Damage({ display: () => undefined });
    expect(await none.mark()).toBeNull();
    let tries = 0;
    const broken = new X11Damage({
      display: () => ':7',
      connect: async () => {
        tries++;
        throw new Error('connect ENOENT');
      },
    });
    expect(await broken.mark()).toBeNull();
    expect(await broken.mark()).toBeNull();
    expect(tries).toBe(1);
  });

  it('close() closes the connection; a later mark reconnects', async () => {
    const s = new FakeServer();
    const d = watcher(s);
    const m = (await d.mark())!;
    d.close();
    await Promise.resolve();
    expect(s.connections[0]!.closed).toBe(true);
    expect(await d.drawnSince(m)).toBe(true);
    expect(await d.mark()).not.toBeNull();
    expect(s.connections.length).toBe(2);
  });
});

describe('RandR monitors (x11Randr.ts)', () => {
  /** An RRGetMonitors reply holding `ms` (randrproto 1.5 MONITORINFO layout). */
  function monitorsReply(ms: { name: number; primary: boolean; x: number; y: number; w: number; h: number; outputs: number[] }[]): Buffer {
    const parts = ms.map((m) => {
      const b = Buffer.alloc(24 + 4 * m.outputs.length);
      b.writeUInt32LE(m.name, 0);
      b[4] = m.primary ? 1 : 0;
      b[5] = 0;
      b.writeUInt16LE(m.outputs.length, 6);
      b.writeInt16LE(m.x, 8);
      b.writeInt16LE(m.y, 10);
      b.writeUInt16LE(m.w, 12);
      b.writeUInt16LE(m.h, 14);
      b.writeUInt32LE(508, 16);
      b.writeUInt32LE(285, 20);
      m.outputs.forEach((o, i) => b.writeUInt32LE(o, 24 + 4 * i));
      return b;
    });
    const head = Buffer.alloc(32);
    head[0] = 1;
    const body = Buffer.concat(parts);
    head.writeUInt32LE(body.length / 4, 4);
    head.writeUInt32LE(ms.length, 12);
    head.writeUInt32LE(ms.reduce((a, m) => a + m.outputs.length, 0), 16);
    return Buffer.concat([head, body]);
  }

  it('encodes RRQueryVersion and RRGetMonitors', () => {
    const v = encodeRandrQueryVersion(1, 5);
    expect([v.readUInt32LE(0), v.readUInt32LE(4)]).toEqual([1, 5]);
    const g = encodeGetMonitors(0x1e5);
    expect([g.length, g.readUInt32LE(0), g[4]]).toEqual([8, 0x1e5, 1]);
    expect(RANDR_REQUEST).toEqual({ QueryVersion: 0, GetMonitors: 42 });
  });

  it('decodes monitors with their outputs, negative positions, and numbers them as xrandr --listmonitors does', () => {
    const r = monitorsReply([
      { name: 300, primary: false, x: -1280, y: 0, w: 1280, h: 1024, outputs: [0x41, 0x42] },
      { name: 301, primary: true, x: 0, y: 0, w: 1920, h: 1080, outputs: [0x43] },
    ]);
    const ms = decodeGetMonitors(r);
    expect(ms).toEqual([
      { name: 300, primary: false, automatic: false, x: -1280, y: 0, width: 1280, height: 1024, outputs: [0x41, 0x42] },
      { name: 301, primary: true, automatic: false, x: 0, y: 0, width: 1920, height: 1080, outputs: [0x43] },
    ]);
    expect(monitorsToDisplays(ms)).toEqual([
      { id: 0, x: -1280, y: 0, width: 1280, height: 1024, scaleFactor: 1, primary: false },
      { id: 1, x: 0, y: 0, width: 1920, height: 1080, scaleFactor: 1, primary: true },
    ]);
    // None primary: the first is.
    expect(monitorsToDisplays(decodeGetMonitors(monitorsReply([{ name: 1, primary: false, x: 0, y: 0, w: 800, h: 600, outputs: [] }])))[0]!.primary).toBe(true);
    expect(() => decodeGetMonitors(r.subarray(0, 60))).toThrow(/too short/);
  });
});
